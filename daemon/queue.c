#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "macro.h"
#include "queue.h"

typedef struct QueueItem {
        void *data;
        struct QueueItem *next;
} QueueItem;

struct Queue {
        pthread_mutex_t lock;
        QueueItem *head, *tail;
        int fd;
};

int queue_new(Queue **ret) {
        Queue *q = calloc(1, sizeof(Queue));

        if (!q)
                return -ENOMEM;
        q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (q->fd < 0) {
                int r = -errno;
                free(q);
                return r;
        }
        pthread_mutex_init(&q->lock, NULL);
        *ret = q;
        return 0;
}

Queue *queue_free(Queue *q, void (*free_item)(void *)) {
        void *item;

        if (!q)
                return NULL;
        while ((item = queue_pop(q)))
                if (free_item)
                        free_item(item);
        (void) close(q->fd);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
}

int queue_fd(const Queue *q) {
        return q->fd;
}

int queue_push(Queue *q, void *item) {
        QueueItem *i = malloc(sizeof(QueueItem));
        uint64_t one = 1;

        if (!i)
                return -ENOMEM;
        *i = (QueueItem) { .data = item };
        pthread_mutex_lock(&q->lock);
        if (q->tail)
                q->tail->next = i;
        else
                q->head = i;
        q->tail = i;
        pthread_mutex_unlock(&q->lock);
        /* EAGAIN means the counter is already non-zero: the reader will wake anyway. */
        (void) !write(q->fd, &one, sizeof one);
        return 0;
}

void *queue_pop(Queue *q) {
        QueueItem *i;
        void *data = NULL;
        uint64_t v;

        pthread_mutex_lock(&q->lock);
        i = q->head;
        if (i) {
                q->head = i->next;
                if (!q->head)
                        q->tail = NULL;
                data = i->data;
        } else
                /* Drain the eventfd under the lock, so that a push after this re-arms it. */
                (void) !read(q->fd, &v, sizeof v);
        pthread_mutex_unlock(&q->lock);
        free(i);
        return data;
}
