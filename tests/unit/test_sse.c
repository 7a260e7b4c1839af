/*
 * SSE framing: events whole whatever the read boundaries, line endings,
 * fields, comments, the size cap, cut streams, and a seeded comparison
 * against a plain reference parser over random streams.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "upstream/sse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_CAP (1024 * 1024)
#define MAX_EVENTS 512

/* One event as the callback saw it, copied out of the parser. */
typedef struct seen_event {
    char *raw;
    size_t raw_len;
    char *data;
    size_t data_len;
    char name[64];
} seen_event_t;

typedef struct recorder {
    seen_event_t events[MAX_EVENTS];
    size_t n;
    size_t stop_at; /* return stop_rc on this event (1-based); 0 never */
    int stop_rc;
} recorder_t;

static char *copy_bytes(const char *bytes, size_t len)
{
    char *p = malloc(len + 1);

    assert_non_null(p);
    memcpy(p, bytes, len);
    p[len] = '\0';
    return p;
}

static int record(void *ctx, const sse_event_t *ev)
{
    recorder_t *rec = ctx;
    seen_event_t *s;

    assert_true(rec->n < MAX_EVENTS);
    assert_int_equal(ev->data[ev->data_len], '\0');
    s = &rec->events[rec->n++];
    s->raw = copy_bytes(ev->raw, ev->raw_len);
    s->raw_len = ev->raw_len;
    s->data = copy_bytes(ev->data, ev->data_len);
    s->data_len = ev->data_len;
    snprintf(s->name, sizeof(s->name), "%s", ev->name);
    if (rec->stop_at != 0 && rec->n == rec->stop_at)
        return rec->stop_rc;
    return 0;
}

static void recorder_clear(recorder_t *rec)
{
    for (size_t i = 0; i < rec->n; i++) {
        free(rec->events[i].raw);
        free(rec->events[i].data);
    }
    memset(rec, 0, sizeof(*rec));
}

/* Two recorders per test at most; the teardown empties them, so a failed
 * assertion leaks nothing. */
static recorder_t recorders[2];
static size_t recorders_used;

static recorder_t *recorder_new(void)
{
    assert_true(recorders_used < 2);
    return &recorders[recorders_used++];
}

static void recorder_free(recorder_t *rec)
{
    recorder_clear(rec);
}

static int recorders_reset(void **state)
{
    recorder_clear(&recorders[0]);
    recorder_clear(&recorders[1]);
    recorders_used = 0;
    return 0;
}

/* Feeds text in pieces of `step` bytes (0: all at once); returns the
 * first non-zero sse_feed result and the bytes left pending. */
static int feed_in_steps(const char *text, size_t len, size_t step, size_t cap,
                         recorder_t *rec, size_t *pending)
{
    sse_parser_t p;
    int rc = 0;

    sse_init(&p, cap);
    if (step == 0)
        step = len ? len : 1;
    for (size_t off = 0; off < len && rc == 0; off += step) {
        size_t n = len - off < step ? len - off : step;

        rc = sse_feed(&p, text + off, n, record, rec);
    }
    *pending = sse_pending(&p);
    sse_free(&p);
    return rc;
}

static void expect_event(const recorder_t *rec, size_t i, const char *name,
                         const char *data, const char *raw)
{
    const seen_event_t *s = &rec->events[i];

    assert_true(i < rec->n);
    assert_string_equal(s->name, name);
    assert_int_equal(s->data_len, strlen(data));
    assert_string_equal(s->data, data);
    assert_int_equal(s->raw_len, strlen(raw));
    assert_string_equal(s->raw, raw);
}

static void expect_same_events(const recorder_t *a, const recorder_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const seen_event_t *x = &a->events[i], *y = &b->events[i];

        assert_int_equal(x->raw_len, y->raw_len);
        assert_memory_equal(x->raw, y->raw, x->raw_len);
        assert_int_equal(x->data_len, y->data_len);
        assert_memory_equal(x->data, y->data, x->data_len);
        assert_string_equal(x->name, y->name);
    }
}

static const char STREAM[] =
    ": connected\n"
    "\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n"
    "\n"
    "event: ping\r\n"
    "data:{}\r\n"
    "\r\n"
    "data: line one\n"
    ": a comment between data lines\n"
    "data: line two\n"
    "\n"
    "data: [DONE]\n"
    "\n";

static void expect_stream_events(const recorder_t *rec)
{
    assert_int_equal(rec->n, 4);
    expect_event(
        rec, 0, "",
        "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}",
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}"
        "\n\n");
    expect_event(rec, 1, "ping", "{}", "event: ping\r\ndata:{}\r\n\r\n");
    expect_event(rec, 2, "", "line one\nline two",
                 "data: line one\n: a comment between data lines\n"
                 "data: line two\n\n");
    expect_event(rec, 3, "", "[DONE]", "data: [DONE]\n\n");
}

static void test_sse_same_events_byte_by_byte_and_all_at_once(void **state)
{
    recorder_t *whole = recorder_new(), *bytes = recorder_new();
    size_t len = sizeof(STREAM) - 1, pending = 1;

    assert_int_equal(feed_in_steps(STREAM, len, 0, BIG_CAP, whole, &pending),
                     0);
    assert_int_equal(pending, 0);
    expect_stream_events(whole);

    assert_int_equal(feed_in_steps(STREAM, len, 1, BIG_CAP, bytes, &pending),
                     0);
    assert_int_equal(pending, 0);
    expect_same_events(whole, bytes);
    recorder_free(whole);
    recorder_free(bytes);
}

static void test_sse_same_events_at_every_split_point(void **state)
{
    size_t len = sizeof(STREAM) - 1;
    recorder_t *rec = recorder_new();

    for (size_t cut = 0; cut <= len; cut++) {
        sse_parser_t p;

        sse_init(&p, BIG_CAP);
        assert_int_equal(sse_feed(&p, STREAM, cut, record, rec), 0);
        assert_int_equal(sse_feed(&p, STREAM + cut, len - cut, record, rec), 0);
        assert_int_equal(sse_pending(&p), 0);
        sse_free(&p);
        expect_stream_events(rec);
        recorder_clear(rec);
    }
    for (size_t step = 2; step < 17; step++) {
        size_t pending = 1;

        assert_int_equal(
            feed_in_steps(STREAM, len, step, BIG_CAP, rec, &pending), 0);
        assert_int_equal(pending, 0);
        expect_stream_events(rec);
        recorder_clear(rec);
    }
    recorder_free(rec);
}

static void test_sse_accepts_crlf_endings(void **state)
{
    static const char text[] = "data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n";
    recorder_t *rec = recorder_new();
    size_t pending = 1;

    assert_int_equal(
        feed_in_steps(text, sizeof(text) - 1, 0, BIG_CAP, rec, &pending), 0);
    assert_int_equal(pending, 0);
    assert_int_equal(rec->n, 2);
    expect_event(rec, 0, "", "a\nb", "data: a\r\ndata: b\r\n\r\n");
    expect_event(rec, 1, "", "c", "data: c\r\n\r\n");
    recorder_free(rec);
}

static void test_sse_data_with_or_without_space(void **state)
{
    static const char text[] = "data:x\n\n"
                               "data:  two spaces\n\n"
                               "data:\n\n"
                               "data: \n\n";
    recorder_t *rec = recorder_new();
    size_t pending = 1;

    assert_int_equal(
        feed_in_steps(text, sizeof(text) - 1, 0, BIG_CAP, rec, &pending), 0);
    assert_int_equal(rec->n, 4);
    expect_event(rec, 0, "", "x", "data:x\n\n");
    /* Only the one space after the colon belongs to the framing. */
    expect_event(rec, 1, "", " two spaces", "data:  two spaces\n\n");
    expect_event(rec, 2, "", "", "data:\n\n");
    expect_event(rec, 3, "", "", "data: \n\n");
    recorder_free(rec);
}

static void test_sse_joins_data_lines_with_newline(void **state)
{
    static const char text[] = "data: {\"a\":\ndata: 1}\ndata:\n\n";
    recorder_t *rec = recorder_new();
    size_t pending = 1;

    assert_int_equal(
        feed_in_steps(text, sizeof(text) - 1, 1, BIG_CAP, rec, &pending), 0);
    assert_int_equal(rec->n, 1);
    expect_event(rec, 0, "", "{\"a\":\n1}\n", text);
    recorder_free(rec);
}

static void test_sse_ignores_comment_lines(void **state)
{
    static const char text[] = ": keep-alive\n\n"
                               ":\n\n"
                               "\n\n"
                               ": before\ndata: x\n: after\n\n";
    recorder_t *rec = recorder_new();
    size_t pending = 1;

    assert_int_equal(
        feed_in_steps(text, sizeof(text) - 1, 0, BIG_CAP, rec, &pending), 0);
    assert_int_equal(pending, 0);
    assert_int_equal(rec->n, 1);
    expect_event(rec, 0, "", "x", ": before\ndata: x\n: after\n\n");
    recorder_free(rec);
}

static void test_sse_reads_event_names(void **state)
{
    static const char text[] = "event: error\ndata: {}\n\n"
                               "event:done\n\n"
                               "id: 7\nretry: 10\ndata: plain\n\n";
    recorder_t *rec = recorder_new();
    size_t pending = 1;

    assert_int_equal(
        feed_in_steps(text, sizeof(text) - 1, 0, BIG_CAP, rec, &pending), 0);
    assert_int_equal(rec->n, 3);
    expect_event(rec, 0, "error", "{}", "event: error\ndata: {}\n\n");
    /* A named event with no data still reaches the caller. */
    expect_event(rec, 1, "done", "", "event:done\n\n");
    /* Unknown fields are kept in raw and otherwise ignored; the name does
     * not leak from the previous event. */
    expect_event(rec, 2, "", "plain", "id: 7\nretry: 10\ndata: plain\n\n");
    recorder_free(rec);
}

static void test_sse_truncates_a_long_event_name(void **state)
{
    char text[256];
    char want[64];
    recorder_t *rec = recorder_new();
    size_t pending = 1;

    memset(want, 'n', 63);
    want[63] = '\0';
    snprintf(text, sizeof(text), "event: %s%s\ndata: 1\n\n", want, "tail");
    assert_int_equal(
        feed_in_steps(text, strlen(text), 0, BIG_CAP, rec, &pending), 0);
    assert_int_equal(rec->n, 1);
    assert_string_equal(rec->events[0].name, want);
    recorder_free(rec);
}

static void test_sse_event_over_cap_is_enospc(void **state)
{
    char text[128];
    recorder_t *rec = recorder_new();
    size_t pending = 0;

    /* 40 bytes of event against a 32-byte cap. */
    snprintf(text, sizeof(text), "data: %032d\n\n", 0);
    assert_int_equal(strlen(text), 40);
    assert_int_equal(feed_in_steps(text, 40, 0, 32, rec, &pending), -ENOSPC);
    assert_int_equal(rec->n, 0);
    assert_int_equal(feed_in_steps(text, 40, 1, 32, rec, &pending), -ENOSPC);
    assert_int_equal(rec->n, 0);
    assert_int_equal(pending, 32);

    /* Exactly at the cap is allowed. */
    assert_int_equal(feed_in_steps(text, 40, 1, 40, rec, &pending), 0);
    assert_int_equal(rec->n, 1);
    assert_int_equal(pending, 0);
    recorder_free(rec);
}

static void test_sse_cap_bounds_one_event_not_one_read(void **state)
{
    /* Three 12-byte events in a single read, with a 16-byte cap: no event
     * passes the cap, so the header's contract says they all arrive. */
    static const char text[] = "data: 1234\n\ndata: 5678\n\ndata: 9abc\n\n";
    recorder_t *rec = recorder_new();
    size_t pending = 1;

    assert_int_equal(
        feed_in_steps(text, sizeof(text) - 1, 0, 16, rec, &pending), 0);
    assert_int_equal(rec->n, 3);
    assert_int_equal(pending, 0);
    recorder_free(rec);
}

static void test_sse_pending_counts_a_cut_event(void **state)
{
    static const char whole[] = "data: {\"a\":1}\n\n";
    static const char cut[] = "event: x\ndata: {\"choices\":[";
    recorder_t *rec = recorder_new();
    sse_parser_t p;

    sse_init(&p, BIG_CAP);
    assert_int_equal(sse_pending(&p), 0);
    assert_int_equal(sse_feed(&p, whole, strlen(whole), record, rec), 0);
    assert_int_equal(sse_pending(&p), 0);
    assert_int_equal(sse_feed(&p, cut, strlen(cut), record, rec), 0);
    assert_int_equal(rec->n, 1);
    assert_int_equal(sse_pending(&p), strlen(cut));
    assert_int_equal(sse_feed(&p, "]}\n", 3, record, rec), 0);
    assert_int_equal(sse_pending(&p), strlen(cut) + 3);
    assert_int_equal(sse_feed(&p, "\n", 1, record, rec), 0);
    assert_int_equal(sse_pending(&p), 0);
    assert_int_equal(rec->n, 2);
    expect_event(rec, 1, "x", "{\"choices\":[]}",
                 "event: x\ndata: {\"choices\":[]}\n\n");

    /* A comment-only block left open is pending too. */
    assert_int_equal(sse_feed(&p, ": ping\n", 7, record, rec), 0);
    assert_int_equal(sse_pending(&p), 7);
    sse_free(&p);
    recorder_free(rec);
}

static void test_sse_negative_callback_stops_parsing(void **state)
{
    static const char text[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    recorder_t *rec = recorder_new();
    sse_parser_t p;

    rec->stop_at = 2;
    rec->stop_rc = -42;
    sse_init(&p, BIG_CAP);
    assert_int_equal(sse_feed(&p, text, strlen(text), record, rec), -42);
    assert_int_equal(rec->n, 2);
    expect_event(rec, 1, "", "2", "data: 2\n\n");
    sse_free(&p);

    /* A positive value is not a stop. */
    recorder_clear(rec);
    rec->stop_at = 1;
    rec->stop_rc = 5;
    sse_init(&p, BIG_CAP);
    assert_int_equal(sse_feed(&p, text, strlen(text), record, rec), 0);
    assert_int_equal(rec->n, 3);
    sse_free(&p);
    recorder_free(rec);
}

static void test_sse_empty_feeds_change_nothing(void **state)
{
    recorder_t *rec = recorder_new();
    sse_parser_t p;

    sse_init(&p, BIG_CAP);
    assert_int_equal(sse_feed(&p, "", 0, record, rec), 0);
    assert_int_equal(sse_feed(&p, "data: a", 7, record, rec), 0);
    assert_int_equal(sse_feed(&p, "", 0, record, rec), 0);
    assert_int_equal(sse_pending(&p), 7);
    assert_int_equal(rec->n, 0);
    sse_free(&p);
    recorder_free(rec);
}

/*
 * The seeded robustness check. A reference parser that sees the whole
 * stream at once gives the expected events; the real one is fed the same
 * bytes in random pieces under ASan. Streams are made of SSE fragments
 * and random bytes so that every branch gets input.
 */
static uint64_t rng_state;

static uint32_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static size_t random_stream(char *out, size_t size)
{
    static const char *const parts[] = {
        "data:", "data: ", "event:", "event: ",   ":", "\n",
        "\r\n",  "\r",     "\n\n",   "{\"a\":1}", "x", "[DONE]",
        "id: 1", "data",   " ",      "\0",
    };
    size_t n = 0, count = rng_next() % 40;

    for (size_t i = 0; i < count; i++) {
        uint32_t pick = rng_next() % 20;

        if (pick < 16) {
            const char *s = parts[pick];
            size_t len = pick == 15 ? 1 : strlen(s);

            if (n + len > size)
                break;
            memcpy(out + n, s, len);
            n += len;
        } else if (n < size) {
            out[n++] = (char)(rng_next() & 0xff);
        }
    }
    return n;
}

/* The framing rules, applied to a complete buffer line by line. */
static void reference_parse(const char *text, size_t len, recorder_t *rec,
                            size_t *pending)
{
    char *data = malloc(len + 1);
    char name[64] = "";
    size_t dlen = 0, start = 0, pos = 0;
    int has_data = 0;
    const char *nl;

    assert_non_null(data);
    while ((nl = memchr(text + pos, '\n', len - pos)) != NULL) {
        size_t ll = (size_t)(nl - (text + pos)), next = pos + ll + 1;
        const char *line = text + pos;

        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll == 0) {
            if (has_data || name[0] != '\0') {
                sse_event_t ev = {text + start, next - start,
                                  has_data ? data : "", dlen, name};

                data[dlen] = '\0';
                record(rec, &ev);
            }
            dlen = 0;
            has_data = 0;
            name[0] = '\0';
            start = next;
        } else if (ll >= 5 && memcmp(line, "data:", 5) == 0) {
            size_t skip = ll > 5 && line[5] == ' ' ? 6 : 5;

            if (has_data)
                data[dlen++] = '\n';
            memcpy(data + dlen, line + skip, ll - skip);
            dlen += ll - skip;
            has_data = 1;
        } else if (ll >= 6 && memcmp(line, "event:", 6) == 0) {
            size_t skip = ll > 6 && line[6] == ' ' ? 7 : 6;
            size_t nn = ll - skip < 63 ? ll - skip : 63;

            memcpy(name, line + skip, nn);
            name[nn] = '\0';
        }
        pos = next;
    }
    *pending = len - start;
    free(data);
}

static void test_sse_random_streams_match_reference(void **state)
{
    enum { ROUNDS = 20000, SIZE = 512 };
    char *text = malloc(SIZE);
    recorder_t *want = recorder_new(), *got = recorder_new();
    size_t total_events = 0;

    assert_non_null(text);
    rng_state = 0x5eed5eed12345678ULL;
    for (int round = 0; round < ROUNDS; round++) {
        size_t len = random_stream(text, SIZE), want_pending, got_pending;
        size_t step = rng_next() % 9;
        char *exact = malloc(len ? len : 1);

        /* An exact-size copy, so a read past the end trips ASan. */
        memcpy(exact, text, len);
        reference_parse(exact, len, want, &want_pending);
        assert_int_equal(
            feed_in_steps(exact, len, step, BIG_CAP, got, &got_pending), 0);
        expect_same_events(want, got);
        assert_int_equal(want_pending, got_pending);
        total_events += got->n;
        recorder_clear(want);
        recorder_clear(got);

        /* Small caps: only -ENOSPC or 0, never a fault. */
        {
            int rc = feed_in_steps(exact, len, step, 1 + rng_next() % 64, got,
                                   &got_pending);

            assert_true(rc == 0 || rc == -ENOSPC);
            recorder_clear(got);
        }
        free(exact);
    }
    assert_true(total_events > 1000);
    free(text);
    recorder_free(want);
    recorder_free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_sse_same_events_byte_by_byte_and_all_at_once, recorders_reset),
        cmocka_unit_test_teardown(test_sse_same_events_at_every_split_point,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_accepts_crlf_endings,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_data_with_or_without_space,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_joins_data_lines_with_newline,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_ignores_comment_lines,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_reads_event_names, recorders_reset),
        cmocka_unit_test_teardown(test_sse_truncates_a_long_event_name,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_event_over_cap_is_enospc,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_cap_bounds_one_event_not_one_read,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_pending_counts_a_cut_event,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_negative_callback_stops_parsing,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_empty_feeds_change_nothing,
                                  recorders_reset),
        cmocka_unit_test_teardown(test_sse_random_streams_match_reference,
                                  recorders_reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
