/*
 * Counting and encoding a text: split valid UTF-8 into pieces, merge each
 * piece by rank, and follow tiktoken's encode-bytes rule for input that
 * is not valid UTF-8.
 */
#include "tokens/tokens_int.h"

#include <stdio.h>
#include <stdlib.h>

typedef size_t (*pretoken_fn)(const uint8_t *s, size_t n, size_t p);

static pretoken_fn pretoken_for(const tokens_encoding_t *enc)
{
    return enc->kind == TOKENS_O200K ? pretoken_next_o200k
                                     : pretoken_next_cl100k;
}

/* The length of a valid sequence at S[0, N), or 0 when it is not one. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t b = s[0];

    if (b >= 0xC2 && b <= 0xDF && n >= 2 && (s[1] & 0xC0) == 0x80)
        return 2;
    if (b >= 0xE0 && b <= 0xEF && n >= 3 && (s[1] & 0xC0) == 0x80 &&
        (s[2] & 0xC0) == 0x80) {
        if ((b == 0xE0 && s[1] < 0xA0) || (b == 0xED && s[1] >= 0xA0))
            return 0; /* overlong, or a surrogate */
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4 && n >= 4 && (s[1] & 0xC0) == 0x80 &&
        (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
        if ((b == 0xF0 && s[1] < 0x90) || (b == 0xF4 && s[1] >= 0x90))
            return 0; /* overlong, or past U+10FFFF */
        return 4;
    }
    return 0;
}

size_t utf8_valid_prefix(const uint8_t *s, size_t n)
{
    size_t p = 0;

    while (p < n) {
        uint64_t w;
        size_t len;

        if (n - p >= 8) {
            memcpy(&w, s + p, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                p += 8;
                continue;
            }
        }
        if (s[p] < 0x80) {
            p++;
            continue;
        }
        len = utf8_seq(s + p, n - p);
        if (len == 0)
            break;
        p += len;
    }
    return p;
}

/* One piece's count: a whole token is 1; others merge (or hit the
 * cache). */
static inline size_t piece_count(const tokens_encoding_t *enc,
                                 const uint8_t *piece, size_t n)
{
    uint64_t h;

    if (n <= SHORT_TOKEN_MAX) {
        if (n == 1 || short_lookup(enc, short_key(piece, n)) != RANK_NONE)
            return 1;
        return cache_merge_count(enc, piece, n, rank_hash(piece, n));
    }
    if (n > enc->max_len)
        return bpe_merge(enc, piece, n, NULL);
    h = rank_hash(piece, n);
    if (rank_lookup_hashed(enc, piece, n, h) != RANK_NONE)
        return 1;
    return cache_merge_count(enc, piece, n, h);
}

static int64_t count_valid(const tokens_encoding_t *enc, const uint8_t *s,
                           size_t n)
{
    int64_t total = 0;

    if (enc->kind == TOKENS_O200K) {
        for (size_t p = 0, e; p < n; p = e) {
            e = pretoken_next_o200k(s, n, p);
            total += (int64_t)piece_count(enc, s + p, e - p);
        }
    } else {
        for (size_t p = 0, e; p < n; p = e) {
            e = pretoken_next_cl100k(s, n, p);
            total += (int64_t)piece_count(enc, s + p, e - p);
        }
    }
    return total;
}

/* Encodes valid S[0, N) into IDS (room for N); *LAST gets the number of
 * tokens of the last piece. Returns the number of ids. */
static size_t encode_valid(const tokens_encoding_t *enc, const uint8_t *s,
                           size_t n, uint32_t *ids, size_t *last)
{
    pretoken_fn next = pretoken_for(enc);
    size_t k = 0;

    *last = 0;
    for (size_t p = 0, e; p < n; p = e) {
        e = next(s, n, p);
        *last = bpe_merge(enc, s + p, e - p, ids + k);
        k += *last;
    }
    return k;
}

static bool token_all_space(const tokens_encoding_t *enc, uint32_t id)
{
    for (uint32_t i = enc->rank_off[id]; i < enc->rank_off[id + 1]; i++) {
        uint8_t b = enc->blob[i];

        if (b != ' ' && b != '\n' && b != '\t')
            return false;
    }
    return true;
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size == 0 ? 1 : size);

    if (p == NULL) {
        fputs("tollgate: out of memory counting tokens\n", stderr);
        abort();
    }
    return p;
}

/*
 * tiktoken's _encode_bytes: encode the valid prefix, take back the tokens
 * of its last piece (and the all-space tokens just before, since a split
 * there can disappear), and merge their bytes with the rest of the input
 * as one piece. IDS has room for N.
 */
static size_t encode_bytes(const tokens_encoding_t *enc, const uint8_t *s,
                           size_t n, size_t valid, uint32_t *ids)
{
    size_t last;
    size_t k = encode_valid(enc, s, valid, ids, &last);
    size_t tail_len = n - valid;
    uint8_t *tail;

    if (last > 0 && token_all_space(enc, ids[k - last]))
        while (last < k && token_all_space(enc, ids[k - last - 1]))
            last++;
    for (size_t i = k - last; i < k; i++)
        tail_len += enc->rank_off[ids[i] + 1] - enc->rank_off[ids[i]];

    tail = xmalloc(tail_len);
    tail_len = 0;
    for (size_t i = k - last; i < k; i++) {
        uint32_t off = enc->rank_off[ids[i]];
        uint32_t len = enc->rank_off[ids[i] + 1] - off;

        memcpy(tail + tail_len, enc->blob + off, len);
        tail_len += len;
    }
    memcpy(tail + tail_len, s + valid, n - valid);
    tail_len += n - valid;

    k -= last;
    k += bpe_merge(enc, tail, tail_len, ids + k);
    free(tail);
    return k;
}

static size_t encode_all(const tokens_encoding_t *enc, const uint8_t *s,
                         size_t n, uint32_t *ids)
{
    size_t valid = utf8_valid_prefix(s, n);
    size_t last;

    if (valid == n)
        return encode_valid(enc, s, n, ids, &last);
    return encode_bytes(enc, s, n, valid, ids);
}

int64_t tokens_count(const tokens_encoding_t *enc, const char *text, size_t len)
{
    const uint8_t *s = (const uint8_t *)text;
    uint32_t *ids;
    size_t k;

    if (utf8_valid_prefix(s, len) == len)
        return count_valid(enc, s, len);
    ids = xmalloc(len * sizeof(*ids));
    k = encode_all(enc, s, len, ids);
    free(ids);
    return (int64_t)k;
}

size_t tokens_encode(const tokens_encoding_t *enc, const char *text, size_t len,
                     uint32_t *ids, size_t cap)
{
    uint32_t *all = xmalloc(len * sizeof(*all));
    size_t k = encode_all(enc, (const uint8_t *)text, len, all);

    if (cap > 0)
        memcpy(ids, all, (k < cap ? k : cap) * sizeof(*ids));
    free(all);
    return k;
}
