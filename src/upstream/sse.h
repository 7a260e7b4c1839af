/*
 * Server-sent events from a provider, split into whole events as bytes
 * arrive. The gateway forwards each event's raw bytes unchanged (or drops
 * it) and reads the joined data lines to find usage.
 */
#ifndef TOLLGATE_SSE_H
#define TOLLGATE_SSE_H

#include "util/arena.h"

#include <stddef.h>

typedef struct sse_event {
    const char *raw; /* the event's bytes, blank line included */
    size_t raw_len;
    const char *data; /* data lines joined by '\n', NUL-terminated */
    size_t data_len;
    const char *name; /* the "event:" field, "" when none */
} sse_event_t;

typedef int (*sse_event_fn)(void *ctx, const sse_event_t *event);

typedef struct sse_parser {
    buf_t pending; /* bytes of the event not yet complete */
    buf_t data;    /* data lines of the event being read */
    char name[64];
    int has_data;   /* the event has a data line */
    size_t cap;     /* bound on one event's bytes */
    size_t scanned; /* bytes of pending already split into lines */
    size_t event_start;
} sse_parser_t;

/* cap bounds one event's size. */
void sse_init(sse_parser_t *p, size_t cap);
void sse_free(sse_parser_t *p);

/*
 * Feeds bytes; calls fn for each complete event, in order. Accepts LF and
 * CRLF endings, "data:" with or without a space, ignores ":" comments.
 * Returns 0, a negative code if an event passes the cap (-ENOSPC), or the
 * first negative value fn returned (parsing stops there).
 */
int sse_feed(sse_parser_t *p, const char *bytes, size_t len, sse_event_fn fn,
             void *ctx);

/* Bytes of an event that never ended (a stream cut mid-event). */
size_t sse_pending(const sse_parser_t *p);

#endif
