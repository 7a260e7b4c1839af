/*
 * libFuzzer target for the body-limit stream rewriter on arbitrary bytes:
 * fed whole or in pieces it gives the same output, and that output is a
 * prefix of the input (plus the stand-in request after a refusal).
 */
#include "http/bodylimit.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct run {
    char *out;
    size_t out_len, held;
    bodylimit_mode_t mode;
} run_t;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_bodylimit: %s\n", what);
        abort();
    }
}

static void feed(const uint8_t *d, size_t n, size_t step, size_t limit,
                 const char *reject, run_t *r)
{
    bodylimit_stream_t st;
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    size_t off = 0;

    bodylimit_stream_init(&st, limit, reject);
    do {
        size_t k = step == 0 || n - off < step ? n - off : step;

        evbuffer_add(in, d + off, k);
        off += k;
        bodylimit_stream_feed(&st, in, out);
    } while (off < n);
    check(!(bodylimit_stream_feed(&st, in, out) & BODYLIMIT_PROGRESS),
          "progress without new input");

    r->out_len = evbuffer_get_length(out);
    r->out = malloc(r->out_len + 1);
    check(r->out != NULL, "out of memory");
    evbuffer_remove(out, r->out, r->out_len);
    r->held = evbuffer_get_length(in);
    r->mode = st.mode;
    evbuffer_free(in);
    evbuffer_free(out);
}

/* Byte 0 picks the limit, byte 1 the piece size; the rest is the stream. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char reject[128];
    size_t limit, step, passed, rlen;
    run_t whole, split;

    if (size < 2)
        return 0;
    limit = (size_t)data[0] * 4;
    step = 1 + data[1] % 17;
    rlen = (size_t)bodylimit_reject_request("/r", reject, sizeof(reject));
    feed(data + 2, size - 2, 0, limit, reject, &whole);
    feed(data + 2, size - 2, step, limit, reject, &split);

    check(whole.out_len == split.out_len && whole.mode == split.mode &&
              memcmp(whole.out, split.out, whole.out_len) == 0,
          "output depends on how the input is split");
    passed = whole.out_len;
    if (whole.mode == BODYLIMIT_REJECT) {
        check(passed >= rlen &&
                  memcmp(whole.out + passed - rlen, reject, rlen) == 0,
              "a refusal does not end in the stand-in request");
        passed -= rlen;
    } else {
        check(passed + whole.held == size - 2, "bytes lost or invented");
    }
    check(memcmp(whole.out, data + 2, passed) == 0,
          "output is not a prefix of the input");
    free(whole.out);
    free(split.out);
    return 0;
}
