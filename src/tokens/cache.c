/*
 * A per-thread cache of piece -> token count, for pieces that are not
 * tokens themselves and must be merged. Text repeats (resent histories,
 * system prompts, the same words), and a hit costs one cache line and a
 * byte compare instead of a merge. Entries keep the piece's bytes, so a
 * hit is exact; they are keyed by the encoding's load serial, so a freed
 * and reloaded encoding never sees stale counts.
 */
#include "tokens/tokens_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define CACHE_BITS 16
#define PIECE_MAX 50

typedef struct cache_entry {
    uint64_t hash;
    uint32_t serial; /* 0: empty */
    uint8_t len;
    uint8_t count;
    uint8_t bytes[PIECE_MAX];
} cache_entry_t;

static pthread_key_t cache_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static _Thread_local cache_entry_t *thread_cache;

static void key_create(void)
{
    if (pthread_key_create(&cache_key, free) != 0)
        abort();
}

/* The calling thread's cache (4 MiB), made on first use and freed when
 * the thread exits. */
static cache_entry_t *cache_get(void)
{
    if (thread_cache != NULL)
        return thread_cache;
    pthread_once(&key_once, key_create);
    thread_cache = calloc(1u << CACHE_BITS, sizeof(cache_entry_t));
    if (thread_cache == NULL) {
        fputs("tollgate: out of memory for the token cache\n", stderr);
        abort();
    }
    pthread_setspecific(cache_key, thread_cache);
    return thread_cache;
}

size_t cache_merge_count(const tokens_encoding_t *enc, const uint8_t *piece,
                         size_t n, uint64_t hash)
{
    cache_entry_t *e;
    size_t count;

    if (n > PIECE_MAX)
        return bpe_merge(enc, piece, n, NULL);
    e = &cache_get()[(hash >> 20) & ((1u << CACHE_BITS) - 1)];
    if (e->hash == hash && e->serial == enc->serial && e->len == n &&
        memcmp(e->bytes, piece, n) == 0)
        return e->count;

    count = bpe_merge(enc, piece, n, NULL);
    e->hash = hash;
    e->serial = enc->serial;
    e->len = (uint8_t)n;
    e->count = (uint8_t)count;
    memcpy(e->bytes, piece, n);
    return count;
}

void cache_clear(void)
{
    if (thread_cache != NULL)
        memset(thread_cache, 0, sizeof(cache_entry_t) << CACHE_BITS);
}
