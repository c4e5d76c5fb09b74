/* See strmap.h. */
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "strmap.h"

struct StrMapSlot {
        const char *key; /* NULL: empty */
        uint64_t hash;
        size_t value;
};

static uint64_t hash_seed(void) {
        static uint64_t seed; /* set once; a race sets it twice to equally good values */
        uint64_t s = __atomic_load_n(&seed, __ATOMIC_RELAXED);

        if (s == 0) {
                if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t) sizeof s) {
                        struct timespec ts = {};
                        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
                        s = (uint64_t) ts.tv_nsec ^ (uint64_t) getpid() << 32;
                }
                s |= 1;
                __atomic_store_n(&seed, s, __ATOMIC_RELAXED);
        }
        return s;
}

/* FNV-1a over the seed and the bytes, then a final mix so that the low bits (the slot) depend
 * on every byte. */
static uint64_t hash_string(const char *s) {
        uint64_t h = 0xcbf29ce484222325ull ^ hash_seed();

        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 0x100000001b3ull;
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        return h;
}

static StrMapSlot *find(const StrMap *m, const char *key, uint64_t h) {
        size_t mask = m->allocated - 1;

        for (size_t i = h & mask;; i = (i + 1) & mask) {
                StrMapSlot *s = &m->slots[i];
                if (!s->key || (s->hash == h && streq(s->key, key)))
                        return s;
        }
}

static int grow(StrMap *m) {
        size_t n = m->allocated ? m->allocated * 2 : 16;
        StrMap bigger = { .slots = calloc(n, sizeof(StrMapSlot)), .n = m->n, .allocated = n };

        if (!bigger.slots)
                return -ENOMEM;
        for (size_t i = 0; i < m->allocated; i++)
                if (m->slots[i].key)
                        *find(&bigger, m->slots[i].key, m->slots[i].hash) = m->slots[i];
        free(m->slots);
        *m = bigger;
        return 0;
}

int strmap_put(StrMap *m, const char *key, size_t value) {
        uint64_t h = hash_string(key);
        StrMapSlot *s;

        if ((m->n + 1) * 2 > m->allocated && grow(m) < 0)
                return -ENOMEM;
        s = find(m, key, h);
        if (s->key)
                return -EEXIST;
        *s = (StrMapSlot) { .key = key, .hash = h, .value = value };
        m->n++;
        return 0;
}

bool strmap_get(const StrMap *m, const char *key, size_t *ret) {
        StrMapSlot *s;

        if (m->n == 0)
                return false;
        s = find(m, key, hash_string(key));
        if (!s->key)
                return false;
        if (ret)
                *ret = s->value;
        return true;
}

size_t strmap_size(const StrMap *m) {
        return m->n;
}

void strmap_done(StrMap *m) {
        free(m->slots);
        *m = (StrMap) STRMAP_INIT;
}
