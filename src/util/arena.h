/*
 * Per-request arena: every allocation a request makes comes from here and
 * is released at once when the request ends. Also capped growable buffers.
 */
#ifndef TOLLGATE_ARENA_H
#define TOLLGATE_ARENA_H

#include <stddef.h>

typedef struct arena arena_t;

/* A new arena whose blocks are at least block_size bytes. Aborts on out of
 * memory. Freed with arena_free(), which releases everything in it. */
arena_t *arena_new(size_t block_size);
void arena_free(arena_t *arena);

/* Aligned memory from the arena; never NULL (aborts on out of memory). */
void *arena_alloc(arena_t *arena, size_t size);
char *arena_strndup(arena_t *arena, const char *s, size_t len);
char *arena_strdup(arena_t *arena, const char *s);
/* printf into arena memory. */
char *arena_printf(arena_t *arena, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Bytes the arena holds from the system, for memory figures. */
size_t arena_footprint(const arena_t *arena);

/*
 * A growable byte buffer with a cap fixed at creation. Memory is malloc'd
 * (not from an arena) because it may grow many times; buf_free releases it.
 */
typedef struct buf {
    char *data;
    size_t len;
    size_t size;
    size_t cap;
} buf_t;

void buf_init(buf_t *buf, size_t cap);
/* Appends; returns 0 or -ENOSPC when the cap would be passed (nothing is
 * appended then). Keeps a NUL after the data. Aborts on out of memory. */
int buf_append(buf_t *buf, const void *data, size_t len);
/* Drops the first n bytes. */
void buf_consume(buf_t *buf, size_t n);
void buf_free(buf_t *buf);

/* Prints the message and aborts: the one answer to out of memory. */
void die_oom(void) __attribute__((noreturn));

#endif
