/*
 * Bump allocator in linked blocks, and capped buffers. A request's arena is
 * made when it arrives and freed in one place when it ends.
 */
#include "util/arena.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

struct block {
    struct block *next;
    size_t size;
    size_t used;
    max_align_t data[];
};

struct arena {
    struct block *head;
    size_t block_size;
    size_t footprint;
};

void die_oom(void)
{
    fputs("tollgate: out of memory\n", stderr);
    abort();
}

arena_t *arena_new(size_t block_size)
{
    arena_t *arena = calloc(1, sizeof(*arena));

    if (arena == NULL)
        die_oom();
    arena->block_size = block_size < 256 ? 256 : block_size;
    return arena;
}

void arena_free(arena_t *arena)
{
    struct block *b, *next;

    if (arena == NULL)
        return;
    for (b = arena->head; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(arena);
}

static struct block *block_new(arena_t *arena, size_t need)
{
    size_t size = need > arena->block_size ? need : arena->block_size;
    struct block *b = malloc(sizeof(*b) + size);

    if (b == NULL)
        die_oom();
    b->size = size;
    b->used = 0;
    b->next = arena->head;
    arena->head = b;
    arena->footprint += sizeof(*b) + size;
    return b;
}

void *arena_alloc(arena_t *arena, size_t size)
{
    struct block *b = arena->head;
    size_t aligned = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    void *p;

    if (aligned == 0)
        aligned = ARENA_ALIGN;
    if (b == NULL || b->size - b->used < aligned)
        b = block_new(arena, aligned);
    p = (char *)b->data + b->used;
    b->used += aligned;
    return p;
}

char *arena_strndup(arena_t *arena, const char *s, size_t len)
{
    char *p = arena_alloc(arena, len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *arena_strdup(arena_t *arena, const char *s)
{
    return arena_strndup(arena, s, strlen(s));
}

char *arena_printf(arena_t *arena, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return arena_strdup(arena, "");
    p = arena_alloc(arena, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t arena_footprint(const arena_t *arena)
{
    return arena->footprint;
}

void buf_init(buf_t *buf, size_t cap)
{
    buf->data = NULL;
    buf->len = 0;
    buf->size = 0;
    buf->cap = cap;
}

int buf_append(buf_t *buf, const void *data, size_t len)
{
    size_t need = buf->len + len + 1;

    if (buf->len + len > buf->cap)
        return -ENOSPC;
    if (need > buf->size) {
        size_t size = buf->size ? buf->size : 1024;
        char *p;

        while (size < need)
            size *= 2;
        p = realloc(buf->data, size);
        if (p == NULL)
            die_oom();
        buf->data = p;
        buf->size = size;
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

void buf_consume(buf_t *buf, size_t n)
{
    if (n >= buf->len) {
        buf->len = 0;
    } else {
        memmove(buf->data, buf->data + n, buf->len - n);
        buf->len -= n;
    }
    if (buf->data != NULL)
        buf->data[buf->len] = '\0';
}

void buf_free(buf_t *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->size = 0;
}
