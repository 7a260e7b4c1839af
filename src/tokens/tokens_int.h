/*
 * Internals shared by the token counter's files: the rank table, the
 * byte-pair merge and the two pre-tokenisers (split patterns).
 */
#ifndef TOLLGATE_TOKENS_INT_H
#define TOLLGATE_TOKENS_INT_H

#include "tokens/tokens.h"

#include <stdint.h>
#include <string.h>

#define RANK_NONE UINT32_MAX

/* One slot of the open-addressing table: bytes blob[off, off + len). */
typedef struct rank_slot {
    uint32_t off;
    uint32_t len; /* 0: empty slot */
    uint32_t rank;
    uint32_t tag; /* high bits of the hash, compared before the bytes */
} rank_slot_t;

/* A slot of the short-token table: a token of 1 to 7 bytes packed with
 * its length into 64 bits (key_hi all ones when free), so a lookup is one
 * integer compare with no trip to the byte blob. */
typedef struct short_slot {
    uint32_t key_lo;
    uint32_t key_hi;
    uint32_t rank;
} short_slot_t;

#define SHORT_TOKEN_MAX 7

struct tokens_encoding {
    tokens_kind_t kind;
    uint32_t serial; /* unique per load: keys the piece caches */
    uint32_t n_ranks;
    uint32_t max_len;     /* longest token, in bytes */
    uint8_t *blob;        /* every token's bytes, in rank order */
    uint32_t *rank_off;   /* rank -> offset in blob; n_ranks + 1 */
    rank_slot_t *slots;   /* tokens longer than SHORT_TOKEN_MAX */
    uint32_t mask;        /* slots - 1 (a power of two) */
    short_slot_t *shorts; /* tokens of up to SHORT_TOKEN_MAX bytes */
    uint32_t short_mask;
    uint32_t *pair_rank; /* [a << 8 | b]: rank of the two bytes a, b */
    uint32_t byte_rank[256];
};

/* A fast hash of short byte strings (not for untrusted-collision use). */
static inline uint64_t rank_hash(const uint8_t *p, size_t n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15ull;
    uint64_t w;

    while (n >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    }
    h ^= h >> 29;
    h *= 0x94D049BB133111EBull;
    return h ^ (h >> 32);
}

/* P[0, N) (1 <= N <= 7) and N packed into 64 bits, without reading past
 * P + N: overlapping loads, the way short-string hashes do it. */
static inline uint64_t short_key(const uint8_t *p, size_t n)
{
    uint64_t k;

    if (n >= 4) {
        uint32_t lo, hi;

        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        k = (uint64_t)lo | (uint64_t)hi << (8 * (n - 4));
    } else {
        k = (uint64_t)p[0] | (uint64_t)p[n / 2] << (8 * (n / 2)) |
            (uint64_t)p[n - 1] << (8 * (n - 1));
    }
    return k | (uint64_t)n << 56;
}

static inline uint32_t short_index(const tokens_encoding_t *enc, uint64_t k)
{
    return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 40) & enc->short_mask;
}

static inline uint32_t short_lookup(const tokens_encoding_t *enc, uint64_t k)
{
    uint32_t lo = (uint32_t)k, hi = (uint32_t)(k >> 32);

    for (uint32_t i = short_index(enc, k);; i = (i + 1) & enc->short_mask) {
        const short_slot_t *s = &enc->shorts[i];

        if (s->key_lo == lo && s->key_hi == hi)
            return s->rank;
        if (s->key_hi == UINT32_MAX)
            return RANK_NONE;
    }
}

/* The rank of the long token (N > 7) with bytes P[0, N) and rank_hash H. */
static inline uint32_t rank_lookup_hashed(const tokens_encoding_t *enc,
                                          const uint8_t *p, size_t n,
                                          uint64_t h)
{
    uint32_t tag = (uint32_t)(h >> 32);
    uint32_t i = (uint32_t)h & enc->mask;

    if (n > enc->max_len)
        return RANK_NONE;
    for (;; i = (i + 1) & enc->mask) {
        const rank_slot_t *s = &enc->slots[i];

        if (s->len == 0)
            return RANK_NONE;
        if (s->tag == tag && s->len == n &&
            memcmp(enc->blob + s->off, p, n) == 0)
            return s->rank;
    }
}

/* The rank of the token with bytes P[0, N) (N >= 1), or RANK_NONE. */
static inline uint32_t rank_lookup(const tokens_encoding_t *enc,
                                   const uint8_t *p, size_t n)
{
    if (n <= SHORT_TOKEN_MAX)
        return short_lookup(enc, short_key(p, n));
    if (n > enc->max_len)
        return RANK_NONE;
    return rank_lookup_hashed(enc, p, n, rank_hash(p, n));
}

/* Parses a .tiktoken text (already hash-checked) into ENC. 0 or -errno. */
int ranks_parse(tokens_encoding_t *enc, const char *text, size_t len);

/* Frees what ranks_parse allocated. */
void ranks_release(tokens_encoding_t *enc);

/*
 * Merges the bytes PIECE[0, N) by rank (lowest first, leftmost on ties)
 * and returns the number of tokens; writes their ids into IDS when it is
 * not NULL (room for N).
 */
size_t bpe_merge(const tokens_encoding_t *enc, const uint8_t *piece, size_t n,
                 uint32_t *ids);

/* Where the piece that starts at P of valid UTF-8 S[0, N) ends. */
size_t pretoken_next_cl100k(const uint8_t *s, size_t n, size_t p);
size_t pretoken_next_o200k(const uint8_t *s, size_t n, size_t p);

/* The number of tokens of a piece that is not itself a token (N >= 2):
 * bpe_merge's count, from the calling thread's piece cache when it can. */
size_t cache_merge_count(const tokens_encoding_t *enc, const uint8_t *piece,
                         size_t n, uint64_t hash);

/* Empties the calling thread's piece cache (benchmarks measure a cold
 * start with it). */
void cache_clear(void);

/* The length of the longest valid UTF-8 prefix of S[0, N). */
size_t utf8_valid_prefix(const uint8_t *s, size_t n);

#endif
