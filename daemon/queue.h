/* The only structure shared between threads: a mutex-protected FIFO of owned items plus an
 * eventfd that wakes the main loop (redis bio.c style). Workers push; the main thread pops. */
#pragma once

#include <stddef.h>

typedef struct Queue Queue;

int queue_new(Queue **ret);
/* Frees the queue and every item still in it with free_item. */
Queue *queue_free(Queue *q, void (*free_item)(void *));
/* The eventfd to watch for EPOLLIN (main thread). */
int queue_fd(const Queue *q);
/* Takes ownership of item and wakes the reader. Any thread. Returns 0 or -ENOMEM. */
int queue_push(Queue *q, void *item);
/* Returns the oldest item (owned by the caller) or NULL; clears the eventfd when empty. */
void *queue_pop(Queue *q);
