/*
 * SSE framing: lines end in LF or CRLF; a blank line ends an event. Bytes
 * are kept until their event is complete, so an event split across reads
 * reaches the gateway whole.
 */
#include "upstream/sse.h"

#include <errno.h>
#include <string.h>

#define SSE_READ_MAX (64 * 1024)

void sse_init(sse_parser_t *p, size_t cap)
{
    memset(p, 0, sizeof(*p));
    p->cap = cap;
    /* pending may hold a whole read beside the unfinished event; the cap
     * is checked per event once the read is split. */
    buf_init(&p->pending, cap + SSE_READ_MAX);
    buf_init(&p->data, cap);
}

void sse_free(sse_parser_t *p)
{
    buf_free(&p->pending);
    buf_free(&p->data);
}

size_t sse_pending(const sse_parser_t *p)
{
    return p->pending.len;
}

/* Takes one line's field into the event under construction. */
static int take_line(sse_parser_t *p, const char *line, size_t len)
{
    if (len >= 5 && memcmp(line, "data:", 5) == 0) {
        size_t skip = (len > 5 && line[5] == ' ') ? 6 : 5;

        if (p->has_data && buf_append(&p->data, "\n", 1) < 0)
            return -ENOSPC;
        if (buf_append(&p->data, line + skip, len - skip) < 0)
            return -ENOSPC;
        p->has_data = 1;
    } else if (len >= 6 && memcmp(line, "event:", 6) == 0) {
        size_t skip = (len > 6 && line[6] == ' ') ? 7 : 6;
        size_t n = len - skip;

        if (n >= sizeof(p->name))
            n = sizeof(p->name) - 1;
        memcpy(p->name, line + skip, n);
        p->name[n] = '\0';
    }
    return 0;
}

static int emit(sse_parser_t *p, size_t end, sse_event_fn fn, void *ctx)
{
    sse_event_t ev = {
        .raw = p->pending.data + p->event_start,
        .raw_len = end - p->event_start,
        .data = p->has_data ? p->data.data : "",
        .data_len = p->data.len,
        .name = p->name,
    };
    int rc = 0;

    /* A block of only comments or blank lines carries no event. */
    if (p->has_data || p->name[0] != '\0')
        rc = fn(ctx, &ev);
    buf_consume(&p->data, p->data.len);
    p->has_data = 0;
    p->name[0] = '\0';
    p->event_start = end;
    return rc;
}

int sse_feed(sse_parser_t *p, const char *bytes, size_t len, sse_event_fn fn,
             void *ctx)
{
    size_t before;
    int rc = 0;

    /* Reads larger than SSE_READ_MAX are fed in pieces. */
    while (len > SSE_READ_MAX) {
        int part = sse_feed(p, bytes, SSE_READ_MAX, fn, ctx);

        if (part < 0)
            return part;
        bytes += SSE_READ_MAX;
        len -= SSE_READ_MAX;
    }
    before = p->pending.len;
    if (buf_append(&p->pending, bytes, len) < 0)
        return -ENOSPC;
    while (p->scanned < p->pending.len) {
        char *start = p->pending.data + p->scanned;
        char *nl = memchr(start, '\n', p->pending.len - p->scanned);
        size_t line_len;

        if (nl == NULL)
            break;
        line_len = (size_t)(nl - start);
        if (line_len > 0 && start[line_len - 1] == '\r')
            line_len--;
        p->scanned = (size_t)(nl - p->pending.data) + 1;
        if (p->scanned - p->event_start > p->cap) {
            rc = -ENOSPC;
            break;
        }
        if (line_len == 0) {
            rc = emit(p, p->scanned, fn, ctx);
            if (rc < 0)
                break;
        } else if (start[0] != ':' && take_line(p, start, line_len) < 0) {
            rc = -ENOSPC;
            break;
        }
    }
    buf_consume(&p->pending, p->event_start);
    p->scanned -= p->event_start;
    p->event_start = 0;
    if (rc == 0 && p->pending.len > p->cap) {
        /* Keep what fitted, so the buffer never holds more than cap. */
        if (before <= p->cap)
            p->pending.len = p->cap;
        rc = -ENOSPC;
    }
    return rc;
}
