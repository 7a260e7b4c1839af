/*
 * The byte-pair merge, tiktoken's rule exactly.
 *
 * A piece (one match of the split pattern) that is itself a token is that
 * token. Otherwise it starts as single bytes, and at each step the
 * adjacent pair whose joined bytes have the lowest rank merges, the
 * leftmost pair on ties, until no adjacent pair is a token. The ranks are
 * merge priorities, so this order is the whole algorithm: a greedy or
 * local-minimum merge gives as few tokens but not the same ones.
 *
 * Short pieces (nearly all of them) use flat arrays on the stack: finding
 * the minimum by a scan is quadratic but tiny. Long pieces (a run of one
 * letter, base64, unbroken CJK) would make that quadratic hurt, so they
 * use a linked list of parts and a min-heap of (rank, start) with stale
 * entries skipped on pop; (rank, start) order is the same lowest-rank,
 * leftmost order.
 */
#include "tokens/tokens_int.h"

#include <stdio.h>
#include <stdlib.h>

#define SHORT_MAX 128

static size_t merge_short(const tokens_encoding_t *enc, const uint8_t *piece,
                          size_t n, uint32_t *ids)
{
    uint8_t start[SHORT_MAX + 1];
    uint32_t pr[SHORT_MAX];
    uint32_t id[SHORT_MAX];
    size_t m = n;

    for (size_t i = 0; i < n; i++) {
        start[i] = (uint8_t)i;
        id[i] = enc->byte_rank[piece[i]];
        pr[i] = i + 1 < n ? enc->pair_rank[piece[i] << 8 | piece[i + 1]]
                          : RANK_NONE;
    }
    start[n] = (uint8_t)n;

    for (;;) {
        uint32_t best = RANK_NONE;
        size_t at = 0;

        /* The lowest rank, then its leftmost position. */
        for (size_t i = 0; i + 1 < m; i++)
            best = pr[i] < best ? pr[i] : best;
        if (best == RANK_NONE)
            break;
        while (pr[at] != best)
            at++;

        /* Part AT absorbs part AT + 1. */
        id[at] = best;
        memmove(&start[at + 1], &start[at + 2], m - at - 1);
        memmove(&id[at + 1], &id[at + 2], (m - at - 2) * sizeof(id[0]));
        memmove(&pr[at + 1], &pr[at + 2], (m - at - 2) * sizeof(pr[0]));
        m--;

        pr[at] = at + 1 < m ? rank_lookup(enc, piece + start[at],
                                          start[at + 2] - start[at])
                            : RANK_NONE;
        if (at > 0)
            pr[at - 1] = rank_lookup(enc, piece + start[at - 1],
                                     start[at + 1] - start[at - 1]);
    }
    if (ids != NULL)
        memcpy(ids, id, m * sizeof(id[0]));
    return m;
}

/* The long-piece state: parts keyed by their first byte's offset. */
typedef struct long_merge {
    const tokens_encoding_t *enc;
    const uint8_t *piece;
    size_t n;
    uint32_t *next; /* offset of the next part, n at the end */
    uint32_t *prev; /* offset of the previous part, UINT32_MAX at start */
    uint32_t *pr;   /* rank of this part joined with the next */
    uint32_t *id;
    uint64_t *heap; /* rank << 32 | offset */
    size_t heap_len;
} long_merge_t;

static void heap_push(long_merge_t *lm, uint64_t v)
{
    size_t i = lm->heap_len++;

    while (i > 0 && lm->heap[(i - 1) / 2] > v) {
        lm->heap[i] = lm->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    lm->heap[i] = v;
}

static uint64_t heap_pop(long_merge_t *lm)
{
    uint64_t top = lm->heap[0];
    uint64_t last = lm->heap[--lm->heap_len];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= lm->heap_len)
            break;
        if (c + 1 < lm->heap_len && lm->heap[c + 1] < lm->heap[c])
            c++;
        if (lm->heap[c] >= last)
            break;
        lm->heap[i] = lm->heap[c];
        i = c;
    }
    lm->heap[i] = last;
    return top;
}

/* Recomputes part I's pair rank and queues it. */
static void pair_update(long_merge_t *lm, uint32_t i)
{
    uint32_t j = lm->next[i];
    uint32_t end = j < lm->n ? lm->next[j] : 0;

    lm->pr[i] =
        j < lm->n ? rank_lookup(lm->enc, lm->piece + i, end - i) : RANK_NONE;
    if (lm->pr[i] != RANK_NONE)
        heap_push(lm, (uint64_t)lm->pr[i] << 32 | i);
}

static size_t long_run(long_merge_t *lm)
{
    size_t m = lm->n;

    for (uint32_t i = 0; i < lm->n; i++)
        pair_update(lm, i);
    while (lm->heap_len > 0) {
        uint64_t top = heap_pop(lm);
        uint32_t i = (uint32_t)top;
        uint32_t j;

        if (lm->pr[i] != (uint32_t)(top >> 32))
            continue;
        j = lm->next[i];
        lm->id[i] = lm->pr[i];
        lm->pr[j] = RANK_NONE;
        lm->next[i] = lm->next[j];
        if (lm->next[j] < lm->n)
            lm->prev[lm->next[j]] = i;
        m--;
        pair_update(lm, i);
        if (lm->prev[i] != UINT32_MAX)
            pair_update(lm, lm->prev[i]);
    }
    return m;
}

static size_t merge_long(const tokens_encoding_t *enc, const uint8_t *piece,
                         size_t n, uint32_t *ids)
{
    long_merge_t lm = {.enc = enc, .piece = piece, .n = n};
    uint32_t *mem = malloc(n * 4 * sizeof(uint32_t));
    size_t m;

    lm.heap = malloc(n * 3 * sizeof(uint64_t));
    if (mem == NULL || lm.heap == NULL) {
        fputs("tollgate: out of memory in the token merge\n", stderr);
        abort();
    }
    lm.next = mem;
    lm.prev = mem + n;
    lm.pr = mem + 2 * n;
    lm.id = mem + 3 * n;
    for (uint32_t i = 0; i < n; i++) {
        lm.next[i] = i + 1;
        lm.prev[i] = i == 0 ? UINT32_MAX : i - 1;
        lm.id[i] = enc->byte_rank[piece[i]];
    }

    m = long_run(&lm);
    for (uint32_t i = 0, k = 0; ids != NULL && i < n; i = lm.next[i])
        ids[k++] = lm.id[i];
    free(mem);
    free(lm.heap);
    return m;
}

size_t bpe_merge(const tokens_encoding_t *enc, const uint8_t *piece, size_t n,
                 uint32_t *ids)
{
    uint32_t whole = n > 1 ? rank_lookup(enc, piece, n) : RANK_NONE;

    if (n == 0)
        return 0;
    if (n == 1 || whole != RANK_NONE) {
        if (ids != NULL)
            ids[0] = n == 1 ? enc->byte_rank[piece[0]] : whole;
        return 1;
    }
    if (n <= SHORT_MAX)
        return merge_short(enc, piece, n, ids);
    return merge_long(enc, piece, n, ids);
}
