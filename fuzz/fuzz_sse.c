/*
 * libFuzzer target for the SSE framer, which reads a provider's stream
 * byte for byte. The same bytes fed whole and in fuzzer-chosen pieces
 * must give the same events and the same pending count.
 */
#include "upstream/sse.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_CAP (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_sse: %s\n", what);
        abort();
    }
}

/* Appends each event to a log as length-prefixed fields, so two runs
 * can be compared byte for byte. */
static int log_event(void *ctx, const sse_event_t *ev)
{
    buf_t *log = ctx;
    size_t name_len = strlen(ev->name);

    check(ev->raw_len >= 2 && ev->raw[ev->raw_len - 1] == '\n',
          "raw does not end in a line ending");
    check(ev->data[ev->data_len] == '\0', "data is not NUL-terminated");
    check(ev->data_len < ev->raw_len, "data longer than raw");
    check(name_len < 64, "name longer than its field");
    check(buf_append(log, &ev->raw_len, sizeof(size_t)) == 0 &&
              buf_append(log, ev->raw, ev->raw_len) == 0 &&
              buf_append(log, &ev->data_len, sizeof(size_t)) == 0 &&
              buf_append(log, ev->data, ev->data_len) == 0 &&
              buf_append(log, ev->name, name_len + 1) == 0,
          "event log full");
    return 0;
}

/* Feeds stream in pieces whose sizes come from plan (0: all at once). */
static int feed(const uint8_t *plan, size_t plan_len, const char *stream,
                size_t len, size_t cap, buf_t *log, size_t *pending)
{
    sse_parser_t p;
    size_t off = 0, i = 0;
    int rc = 0;

    sse_init(&p, cap);
    while (off < len && rc == 0) {
        size_t n = plan_len ? 1 + plan[i++ % plan_len] % 64 : len;

        if (n > len - off)
            n = len - off;
        rc = sse_feed(&p, stream + off, n, log_event, log);
        off += n;
    }
    *pending = sse_pending(&p);
    sse_free(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t plan_len = size > 0 ? data[0] % 16 : 0;
    const char *stream;
    size_t len, whole_pending, piece_pending;
    buf_t whole, pieces;
    int rc;

    if (size < 1 + plan_len)
        return 0;
    stream = (const char *)data + 1 + plan_len;
    len = size - 1 - plan_len;
    if (len > STREAM_CAP / 4)
        return 0;
    buf_init(&whole, 8 * STREAM_CAP);
    buf_init(&pieces, 8 * STREAM_CAP);

    rc = feed(NULL, 0, stream, len, STREAM_CAP, &whole, &whole_pending);
    check(rc == 0, "whole feed failed under a cap larger than the input");
    rc = feed(data + 1, plan_len, stream, len, STREAM_CAP, &pieces,
              &piece_pending);
    check(rc == 0, "piecewise feed failed under a large cap");
    check(
        whole.len == pieces.len &&
            (whole.len == 0 || memcmp(whole.data, pieces.data, whole.len) == 0),
        "events differ between whole and piecewise feeds");
    check(whole_pending == piece_pending, "pending differs");
    check(whole_pending <= len, "pending larger than the input");

    /* A small cap may refuse, but only with -ENOSPC. */
    buf_consume(&pieces, pieces.len);
    rc = feed(data + 1, plan_len, stream, len, 1 + (size % 97), &pieces,
              &piece_pending);
    check(rc == 0 || rc == -ENOSPC, "small cap gave an unexpected code");

    buf_free(&whole);
    buf_free(&pieces);
    return 0;
}
