/*
 * Expands the generated Unicode range table into a two-stage lookup.
 * Blocks of 256 code points that share one class point at a shared
 * uniform block; only mixed blocks get memory of their own.
 */
#include "tokens/ucd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_BLOCKS 0x1100

const uint8_t *ucd_stage1[N_BLOCKS];

static uint8_t uniform[UCD_N_CLASSES][256];
static uint8_t *pool;
static size_t pool_used;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* A block of our own for block B, copied from the uniform one it had. */
static uint8_t *block_writable(uint32_t b)
{
    const uint8_t *cur = ucd_stage1[b];
    uint8_t *blk;

    if (cur < uniform[0] || cur >= uniform[0] + sizeof(uniform))
        return (uint8_t *)cur;
    blk = pool + 256 * pool_used++;
    memcpy(blk, cur, 256);
    ucd_stage1[b] = blk;
    return blk;
}

static void range_apply(const ucd_range_t *r)
{
    uint32_t cp = r->first;

    while (cp <= r->last) {
        uint32_t b = cp >> 8;
        uint32_t block_last = (b << 8) | 0xFF;
        uint32_t end = r->last < block_last ? r->last : block_last;

        if ((cp & 0xFF) == 0 && end == block_last &&
            ucd_stage1[b] == uniform[UCD_OTHER]) {
            ucd_stage1[b] = uniform[r->cls];
        } else {
            uint8_t *blk = block_writable(b);

            memset(blk + (cp & 0xFF), r->cls, end - cp + 1);
        }
        cp = end + 1;
    }
}

static void build(void)
{
    pool = calloc(N_BLOCKS, 256);
    if (pool == NULL) {
        fputs("tollgate: out of memory building Unicode tables\n", stderr);
        abort();
    }
    for (int c = 0; c < UCD_N_CLASSES; c++)
        memset(uniform[c], c, 256);
    for (uint32_t b = 0; b < N_BLOCKS; b++)
        ucd_stage1[b] = uniform[UCD_OTHER];

    for (size_t i = 0; i < ucd_n_ranges; i++)
        range_apply(&ucd_ranges[i]);
}

void ucd_init(void)
{
    pthread_once(&once, build);
}
