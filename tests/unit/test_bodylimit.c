/*
 * Tests of the body limit: the stream rewriter on its own (framing,
 * limits, any split of the input), then a real evhttp server on 127.0.0.1
 * behind bodylimit_install, driven by a plain-socket client.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "http/bodylimit.h"

#define LIMIT 100
#define REJECT_PATH "/_too_large"

static char reject_text[256];

/* ---- The stream on its own -------------------------------------------- */

typedef struct fed {
    char *out; /* what evhttp would see, NUL-terminated */
    size_t out_len;
    size_t held; /* input bytes still held */
    bodylimit_mode_t mode;
    unsigned flags; /* every flag any feed returned */
} fed_t;

static void stream_start(bodylimit_stream_t *st, size_t limit)
{
    int n =
        bodylimit_reject_request(REJECT_PATH, reject_text, sizeof(reject_text));

    assert_true(n > 0 && (size_t)n < sizeof(reject_text));
    bodylimit_stream_init(st, limit, reject_text);
}

/*
 * Feeds data to a fresh stream in pieces of `step` bytes (0: at once),
 * then once more with nothing new, as the filter loop does. Returns what
 * came out; the caller frees f->out.
 */
static void feed_in_steps(const char *data, size_t len, size_t step,
                          size_t limit, fed_t *f)
{
    bodylimit_stream_t st;
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    size_t off = 0;

    stream_start(&st, limit);
    memset(f, 0, sizeof(*f));
    do {
        size_t n = step == 0 || len - off < step ? len - off : step;

        evbuffer_add(in, data + off, n);
        off += n;
        f->flags |= bodylimit_stream_feed(&st, in, out);
    } while (off < len);
    assert_false(bodylimit_stream_feed(&st, in, out) & BODYLIMIT_PROGRESS);

    f->out_len = evbuffer_get_length(out);
    f->out = malloc(f->out_len + 1);
    assert_non_null(f->out);
    evbuffer_remove(out, f->out, f->out_len);
    f->out[f->out_len] = '\0';
    f->held = evbuffer_get_length(in);
    f->mode = st.mode;
    evbuffer_free(in);
    evbuffer_free(out);
}

static void feed_text(const char *text, size_t step, fed_t *f)
{
    feed_in_steps(text, strlen(text), step, LIMIT, f);
}

/* The whole text must come out unchanged however it is split. */
static void assert_passes_unchanged(const char *text)
{
    static const size_t steps[] = {0, 1, 2, 3, 7, 64};
    fed_t f;

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        feed_text(text, steps[i], &f);
        assert_int_equal(f.out_len, strlen(text));
        assert_memory_equal(f.out, text, f.out_len);
        assert_int_equal(f.held, 0);
        free(f.out);
    }
}

static const char small_post[] = "POST /v1/chat/completions HTTP/1.1\r\n"
                                 "Host: a\r\nContent-Length: 11\r\n\r\n"
                                 "hello world";

static void test_stream_passes_a_small_body_unchanged(void **state)
{
    assert_passes_unchanged(small_post);
}

static void test_stream_replaces_a_length_over_the_limit(void **state)
{
    const char *text = "POST /a HTTP/1.1\r\nContent-Length: 500\r\n\r\n"
                       "xxxxxxxxxx"
                       "GET /next HTTP/1.1\r\n\r\n";
    fed_t f;

    for (size_t step = 0; step < 4; step++) {
        feed_text(text, step, &f);
        assert_string_equal(f.out, reject_text);
        assert_int_equal(f.mode, BODYLIMIT_REJECT);
        assert_int_equal(f.held, 0);
        free(f.out);
    }
}

static void test_stream_limit_is_inclusive(void **state)
{
    char text[512], body[LIMIT + 2];
    fed_t f;

    memset(body, 'b', sizeof(body) - 1);
    body[LIMIT] = '\0';
    snprintf(text, sizeof(text),
             "PUT /a HTTP/1.1\r\nContent-Length: %d"
             "\r\n\r\n%s",
             LIMIT, body);
    assert_passes_unchanged(text);

    body[LIMIT] = 'b';
    body[LIMIT + 1] = '\0';
    snprintf(text, sizeof(text),
             "PUT /a HTTP/1.1\r\nContent-Length: %d"
             "\r\n\r\n%s",
             LIMIT + 1, body);
    feed_text(text, 0, &f);
    assert_string_equal(f.out, reject_text);
    free(f.out);
}

static void test_stream_holds_chunked_until_its_end(void **state)
{
    const char *head = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                       "\r\n14\r\n01234567890123456789\r\n1e\r\n";
    const char *tail = "012345678901234567890123456789\r\n0\r\n\r\n";
    bodylimit_stream_t st;
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();

    stream_start(&st, LIMIT);
    evbuffer_add(in, head, strlen(head));
    bodylimit_stream_feed(&st, in, out);
    assert_int_equal(evbuffer_get_length(out), 0);
    assert_int_equal(evbuffer_get_length(in), strlen(head));

    evbuffer_add(in, tail, strlen(tail));
    bodylimit_stream_feed(&st, in, out);
    assert_int_equal(evbuffer_get_length(out), strlen(head) + strlen(tail));
    assert_int_equal(evbuffer_get_length(in), 0);
    assert_int_equal(st.mode, BODYLIMIT_HEAD);
    evbuffer_free(in);
    evbuffer_free(out);
}

static void test_stream_replaces_chunked_over_the_limit(void **state)
{
    char text[1024], chunk[301];
    fed_t f;

    memset(chunk, 'c', 300);
    chunk[300] = '\0';
    snprintf(text, sizeof(text),
             "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "c8\r\n%.200s\r\n12c\r\n%s\r\n0\r\n\r\n",
             chunk, chunk);
    for (size_t step = 0; step < 3; step++) {
        feed_text(text, step, &f);
        assert_string_equal(f.out, reject_text);
        assert_int_equal(f.held, 0);
        free(f.out);
    }

    /* Exactly the limit in chunks passes; one byte more does not. */
    snprintf(text, sizeof(text),
             "POST /a HTTP/1.1\r\nTransfer-Encoding: "
             "chunked\r\n\r\n32\r\n%.50s\r\n32\r\n%.50s\r\n0\r\n\r\n",
             chunk, chunk);
    assert_passes_unchanged(text);
    snprintf(text, sizeof(text),
             "POST /a HTTP/1.1\r\nTransfer-Encoding: "
             "chunked\r\n\r\n32\r\n%.50s\r\n33\r\n%.51s\r\n0\r\n\r\n",
             chunk, chunk);
    feed_text(text, 0, &f);
    assert_string_equal(f.out, reject_text);
    free(f.out);
}

static void test_stream_keeps_pipelined_requests_identical(void **state)
{
    assert_passes_unchanged(
        "POST /1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /3 HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n"
        "3 ;name=value\r\nxyz\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n"
        "HEAD /4 HTTP/1.1\r\nContent-Length: 500\r\n\r\n"
        "DELETE /5 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        "POST /6 HTTP/1.0\nContent-Length:  2 \n\nok"
        "PATCH /7 HTTP/1.1\r\ncontent-length: +4\r\n\r\nabcd"
        "POST /8 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0x2\r\nhi\r\n-0\r\n\r\n");
}

static void test_stream_reads_bare_lf_line_ends(void **state)
{
    const char *text = "POST /a HTTP/1.1\nTransfer-Encoding: chunked\n\n"
                       "200\n";
    fed_t f;

    assert_passes_unchanged("POST /a HTTP/1.1\nContent-Length: 5\n\nhello"
                            "POST /b HTTP/1.1\nTransfer-Encoding: chunked\n"
                            "\n5\nhello\n0\n\n");
    feed_text(text, 0, &f);
    assert_string_equal(f.out, reject_text);
    free(f.out);
}

/* A body evhttp would not read is not counted either. */
static void test_stream_counts_no_body_for_head_and_trace(void **state)
{
    assert_passes_unchanged("HEAD /a HTTP/1.1\r\nContent-Length: 900\r\n\r\n"
                            "TRACE /b HTTP/1.1\r\nTransfer-Encoding: chunked"
                            "\r\n\r\nBREW /c HTTP/1.1\r\nContent-Length: 1000"
                            "\r\n\r\n");
}

/* Framing evhttp refuses, or reads differently across its patch levels,
 * passes unchanged for evhttp to judge, with the rest of the connection. */
static void test_stream_passes_framing_it_cannot_follow(void **state)
{
    static const char *const heads[] = {
        "Content-Length: 500\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: 500\r\nContent-Length: 500\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: 5x00\r\n",
        "Content-Length: -500\r\n",
        "Content-Length: 5\r\n 00\r\n",
        "X-No-Colon\r\n",
    };
    char text[1024];
    fed_t f;

    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        snprintf(text, sizeof(text),
                 "POST /a HTTP/1.1\r\n%s\r\n%0500d"
                 "POST /b HTTP/1.1\r\nContent-Length: 999\r\n\r\n",
                 heads[i], 0);
        feed_text(text, 1, &f);
        assert_int_equal(f.mode, BODYLIMIT_PASS);
        assert_string_equal(f.out, text);
        free(f.out);
    }
}

#define TEXT(s)                                                                \
    {                                                                          \
        s, sizeof(s) - 1                                                       \
    }

static void test_stream_passes_a_bad_chunk_size(void **state)
{
    static const struct {
        const char *text;
        size_t len;
    } cases[] = {
        TEXT("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        TEXT("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5;x=1\r\n"),
        TEXT("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n"),
        TEXT("\r\nPOST /a HTTP/1.1\r\nContent-Length: 500\r\n\r\n"),
        TEXT("POST /a HTTP/1.1\r\nX: 1\r\n\0\r\nContent-Length: 500\r\n\r\n"),
    };
    fed_t f;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        feed_in_steps(cases[i].text, cases[i].len, 0, LIMIT, &f);
        assert_int_equal(f.mode, BODYLIMIT_PASS);
        assert_int_equal(f.out_len, cases[i].len);
        assert_memory_equal(f.out, cases[i].text, f.out_len);
        free(f.out);
    }
}

static void test_stream_passes_a_header_block_over_64k(void **state)
{
    size_t len = BODYLIMIT_HEAD_MAX + 4096;
    char *text = malloc(len + 64);
    fed_t f;

    assert_non_null(text);
    strcpy(text, "POST /a HTTP/1.1\r\nContent-Length: 500\r\nX-Big: ");
    memset(text + strlen(text), 'x', len);
    strcpy(text + len, "\r\n\r\n");
    feed_in_steps(text, strlen(text), 1000, LIMIT, &f);
    assert_int_equal(f.mode, BODYLIMIT_PASS);
    assert_int_equal(f.out_len, strlen(text));
    free(f.out);
    free(text);
}

static void test_stream_asks_continue_only_for_a_waiting_chunked(void **state)
{
    const char *waiting = "POST /a HTTP/1.1\r\nExpect: 100-Continue\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n";
    const char *sending = "POST /a HTTP/1.1\r\nExpect: 100-continue\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n5\r\n";
    const char *length = "POST /a HTTP/1.1\r\nExpect: 100-continue\r\n"
                         "Content-Length: 5\r\n\r\n";
    const char *old = "POST /a HTTP/1.0\r\nExpect: 100-continue\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
    fed_t f;

    feed_text(waiting, 0, &f);
    assert_true(f.flags & BODYLIMIT_CONTINUE);
    free(f.out);
    feed_text(sending, 0, &f);
    assert_false(f.flags & BODYLIMIT_CONTINUE);
    free(f.out);
    feed_text(length, 0, &f);
    assert_false(f.flags & BODYLIMIT_CONTINUE);
    free(f.out);
    feed_text(old, 0, &f);
    assert_false(f.flags & BODYLIMIT_CONTINUE);
    free(f.out);
}

static void test_stream_reject_request_checks_the_path(void **state)
{
    const char *want = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0"
                       "\r\nConnection: close\r\n\r\n";
    char out[128];

    assert_int_equal(bodylimit_reject_request("/x", out, sizeof(out)),
                     (int)strlen(want));
    assert_string_equal(out, want);
    assert_int_equal(bodylimit_reject_request("x", out, sizeof(out)), -EINVAL);
    assert_int_equal(bodylimit_reject_request("/a b", out, sizeof(out)),
                     -EINVAL);
    assert_int_equal(bodylimit_reject_request("/a\r\n", out, sizeof(out)),
                     -EINVAL);
    assert_int_equal(bodylimit_install(NULL, NULL, 1, "/x"), -EINVAL);
}

/* A small deterministic generator (xorshift), so failures repeat. */
static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Appends printf output to buf at *n, if it fits. */
static void put(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (len > 0 && (size_t)len < cap - *n)
        *n += (size_t)len;
}

/* A chunked body of a few chunks, sizes in varied spellings. */
static void random_chunks(char *buf, size_t cap, size_t *n, const char *eol)
{
    int chunks = (int)(rng_next() % 4);

    for (int i = 0; i < chunks; i++) {
        unsigned size = 1 + (unsigned)(rng_next() % 60);

        put(buf, cap, n, rng_next() % 4 ? "%x%s" : "%X ;ext=1%s", size, eol);
        put(buf, cap, n, "%0*d%s", (int)size, 0, eol);
    }
    put(buf, cap, n, "0%s%s%s", eol, rng_next() % 4 ? "" : "X-T: 1\r\n", eol);
}

/* One request: varied methods, line ends, framing and body sizes. */
static void random_request(char *buf, size_t cap, size_t *n)
{
    static const char *const methods[] = {"POST", "POST", "GET", "HEAD", "PUT"};
    const char *eol = rng_next() % 4 ? "\r\n" : "\n";
    unsigned framing = (unsigned)(rng_next() % 8);
    unsigned length = (unsigned)(rng_next() % 150);

    put(buf, cap, n, "%s /r HTTP/1.%d%s", methods[rng_next() % 5],
        (int)(rng_next() % 2), eol);
    if (rng_next() % 2)
        put(buf, cap, n, "Host: x%s", eol);
    if (framing < 3)
        put(buf, cap, n, "Content-Length: %u%s%s%0*d", length, eol, eol,
            (int)length, 0);
    else if (framing < 6)
        put(buf, cap, n, "Transfer-Encoding: chunked%s%s", eol, eol);
    else
        put(buf, cap, n, "%s", eol);
    if (framing >= 3 && framing < 6)
        random_chunks(buf, cap, n, eol);
}

/* Requests, now and then broken by a stray piece at a random place. */
static size_t random_stream(char *buf, size_t cap)
{
    static const char *const strays[] = {
        "\r\n",
        "\n",
        "\r",
        ":",
        " ",
        "zz\r\n",
        "Content-Length: 9\r\n",
        "Transfer-Encoding: chunked\r\n",
        " folded\r\n",
        "\0",
    };
    size_t n = 0;

    while (n + 512 < cap && rng_next() % 6 != 0)
        random_request(buf, cap - 16, &n);
    if (n > 0 && rng_next() % 3 == 0) {
        size_t at = rng_next() % n, i = rng_next() % 10;
        size_t len = i == 9 ? 1 : strlen(strays[i]);

        memmove(buf + at + len, buf + at, n - at);
        memcpy(buf + at, strays[i], len);
        n += len;
    }
    return n;
}

/* For any input, however split: the same output, a prefix of the input
 * (plus the stand-in request after a refusal), and nothing lost. */
static void test_stream_output_does_not_depend_on_splits(void **state)
{
    char buf[4096];

    for (int round = 0; round < 3000; round++) {
        size_t len = random_stream(buf, sizeof(buf));
        size_t step = 1 + rng_next() % 16, limit = rng_next() % 200;
        fed_t whole, split;
        size_t passed;

        feed_in_steps(buf, len, 0, limit, &whole);
        feed_in_steps(buf, len, step, limit, &split);
        assert_int_equal(whole.out_len, split.out_len);
        assert_memory_equal(whole.out, split.out, whole.out_len);
        assert_int_equal(whole.mode, split.mode);

        passed = whole.out_len;
        if (whole.mode == BODYLIMIT_REJECT) {
            assert_true(passed >= strlen(reject_text));
            passed -= strlen(reject_text);
            assert_string_equal(whole.out + passed, reject_text);
        } else {
            assert_int_equal(passed + whole.held, len);
        }
        assert_memory_equal(whole.out, buf, passed);
        free(whole.out);
        free(split.out);
    }
}

/* ---- A real server ---------------------------------------------------- */

typedef struct server {
    struct event_base *base;
    struct evhttp *http;
    int port;
    pthread_t thread;
    int closed[2]; /* a pipe: a byte per connection closed mid-reply */
    struct evhttp_request *endless; /* the reply that never ends */
} server_t;

static void on_close(struct evhttp_connection *conn, void *arg)
{
    server_t *srv = arg;

    evhttp_send_reply_end(srv->endless); /* frees it: its caller is gone */
    assert_int_equal(write(srv->closed[1], "c", 1), 1);
}

static void stream_next(evutil_socket_t fd, short what, void *arg);

/* Echoes "<method> <uri>\n<body>"; /stream answers in pieces sent from
 * later loop turns; the reject path answers 413 as the gateway will. */
static void on_request(struct evhttp_request *req, void *arg)
{
    server_t *srv = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *reply = evbuffer_new();
    int code = 200;

    if (strcmp(uri, "/endless") == 0) {
        srv->endless = req;
        evhttp_connection_set_closecb(evhttp_request_get_connection(req),
                                      on_close, srv);
        evhttp_send_reply_start(req, 200, "OK");
        evbuffer_add_printf(reply, "part 1\n");
        evhttp_send_reply_chunk(req, reply);
        evbuffer_free(reply);
        return;
    }
    if (strcmp(uri, "/stream") == 0) {
        evhttp_send_reply_start(req, 200, "OK");
        evbuffer_add_printf(reply, "part 1\n");
        evhttp_send_reply_chunk(req, reply);
        event_base_once(srv->base, -1, EV_TIMEOUT, stream_next, req, NULL);
        evbuffer_free(reply);
        return;
    }
    if (strcmp(uri, REJECT_PATH) == 0)
        code = 413;
    evbuffer_add_printf(
        reply, "%s %s\n",
        evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "OTHER",
        uri);
    evbuffer_add_buffer(reply, evhttp_request_get_input_buffer(req));
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Too Large", reply);
    evbuffer_free(reply);
    if (strcmp(uri, "/_stop") == 0)
        event_base_loopexit(srv->base, NULL);
}

static void stream_next(evutil_socket_t fd, short what, void *arg)
{
    struct evhttp_request *req = arg;
    struct evbuffer *part = evbuffer_new();

    evbuffer_add_printf(part, "part 2\n");
    evhttp_send_reply_chunk(req, part);
    evhttp_send_reply_end(req);
    evbuffer_free(part);
}

static void *server_run(void *arg)
{
    server_t *srv = arg;

    event_base_dispatch(srv->base);
    return NULL;
}

static int server_start(void **state)
{
    server_t *srv = calloc(1, sizeof(*srv));
    struct evhttp_bound_socket *sock;
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    assert_non_null(srv);
    assert_int_equal(pipe(srv->closed), 0);
    srv->base = event_base_new();
    srv->http = evhttp_new(srv->base);
    assert_non_null(srv->http);
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
                                              EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT);
    evhttp_set_gencb(srv->http, on_request, srv);
    assert_int_equal(
        bodylimit_install(srv->http, srv->base, LIMIT, REJECT_PATH), 0);
    sock = evhttp_bind_socket_with_handle(srv->http, "127.0.0.1", 0);
    assert_non_null(sock);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(sock),
                                 (struct sockaddr *)&sin, &len),
                     0);
    srv->port = ntohs(sin.sin_port);
    assert_int_equal(pthread_create(&srv->thread, NULL, server_run, srv), 0);
    *state = srv;
    return 0;
}

typedef struct client {
    int fd;
    size_t len;
    char buf[1 << 16];
} client_t;

typedef struct reply {
    int status;
    bool close; /* the reply said Connection: close */
    size_t body_len;
    char body[1 << 14];
} reply_t;

static client_t *client_open(const server_t *srv)
{
    client_t *c = calloc(1, sizeof(*c));
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct timeval wait = {5, 0};
    int one = 1;

    assert_non_null(c);
    sin.sin_port = htons((uint16_t)srv->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return c;
}

static void client_close(client_t *c)
{
    close(c->fd);
    free(c);
}

static void client_send(client_t *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

static void client_send_text(client_t *c, const char *text)
{
    client_send(c, text, strlen(text));
}

/* Receives more; false at EOF. Fails the test on a timeout or an error. */
static bool client_recv(client_t *c)
{
    ssize_t n;

    assert_true(c->len < sizeof(c->buf));
    n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n < 0)
        fail_msg("recv: %s", strerror(errno));
    c->len += (size_t)n;
    return n > 0;
}

static void client_take(client_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static bool header_has(const char *head, const char *line)
{
    return strcasestr(head, line) != NULL;
}

/* Decodes a chunked body from the client's buffer; false until whole. */
static bool chunked_take(client_t *c, size_t start, reply_t *r)
{
    size_t at = start;

    r->body_len = 0;
    for (;;) {
        char *lf = memchr(c->buf + at, '\n', c->len - at);
        unsigned long size;

        if (lf == NULL)
            return false;
        size = strtoul(c->buf + at, NULL, 16);
        at = (size_t)(lf - c->buf) + 1;
        if (c->len - at < size + 2)
            return false;
        if (size == 0) {
            client_take(c, at + 2);
            return true;
        }
        memcpy(r->body + r->body_len, c->buf + at, size);
        r->body_len += size;
        at += size + 2;
    }
}

/* Reads one reply: by Content-Length, chunked, or until EOF. */
static void client_reply(client_t *c, reply_t *r)
{
    char *end, head[4096];
    size_t hlen, length;
    bool eof = false;

    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
        assert_true(client_recv(c));
    hlen = (size_t)(end - c->buf) + 4;
    assert_true(hlen < sizeof(head));
    memcpy(head, c->buf, hlen);
    head[hlen] = '\0';
    memset(r, 0, sizeof(*r));
    assert_int_equal(sscanf(head, "HTTP/1.%*d %d", &r->status), 1);
    r->close = header_has(head, "\r\nConnection: close\r\n");

    if (r->status / 100 == 1) {
        client_take(c, hlen);
    } else if (header_has(head, "\r\nTransfer-Encoding: chunked\r\n")) {
        while (!chunked_take(c, hlen, r))
            assert_true(client_recv(c));
    } else if (strcasestr(head, "\r\nContent-Length:") != NULL) {
        length =
            strtoul(strcasestr(head, "\r\nContent-Length:") + 17, NULL, 10);
        while (c->len < hlen + length)
            assert_true(client_recv(c));
        memcpy(r->body, c->buf + hlen, length);
        r->body_len = length;
        client_take(c, hlen + length);
    } else {
        while (!eof)
            eof = !client_recv(c);
        r->body_len = c->len - hlen;
        memcpy(r->body, c->buf + hlen, r->body_len);
        client_take(c, c->len);
    }
    r->body[r->body_len] = '\0';
}

static void client_expect_eof(client_t *c)
{
    assert_int_equal(c->len, 0);
    assert_false(client_recv(c));
}

static void assert_reply(client_t *c, int status, const char *body)
{
    reply_t r;

    client_reply(c, &r);
    assert_int_equal(r.status, status);
    assert_string_equal(r.body, body);
}

static int server_stop(void **state)
{
    server_t *srv = *state;
    client_t *c = client_open(srv);

    client_send_text(c, "GET /_stop HTTP/1.1\r\n\r\n");
    assert_reply(c, 200, "OTHER /_stop\n");
    client_close(c);
    pthread_join(srv->thread, NULL);
    evhttp_free(srv->http);
    event_base_free(srv->base);
    close(srv->closed[0]);
    close(srv->closed[1]);
    free(srv);
    return 0;
}

static void test_server_small_body_reaches_the_handler(void **state)
{
    client_t *c = client_open(*state);

    client_send_text(c, small_post);
    assert_reply(c, 200, "POST /v1/chat/completions\nhello world");
    client_close(c);
}

static void test_server_length_over_limit_reaches_reject_path(void **state)
{
    client_t *c = client_open(*state);
    char text[1024];
    reply_t r;

    snprintf(text, sizeof(text),
             "POST /v1/chat/completions HTTP/1.1\r\n"
             "Content-Length: 500\r\n\r\n%0500d",
             7);
    client_send_text(c, text);
    client_reply(c, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "POST " REJECT_PATH "\n");
    assert_true(r.close);
    client_expect_eof(c);
    client_close(c);
}

static void test_server_chunked_over_limit_reaches_reject_path(void **state)
{
    client_t *c = client_open(*state);
    char text[1024];

    snprintf(text, sizeof(text),
             "POST /v1/chat/completions HTTP/1.1\r\n"
             "Transfer-Encoding: chunked\r\n\r\n"
             "c8\r\n%0200d\r\n12c\r\n%0300d\r\n0\r\n\r\n",
             1, 2);
    client_send_text(c, text);
    assert_reply(c, 413, "POST " REJECT_PATH "\n");
    client_expect_eof(c);
    client_close(c);
}

static void test_server_chunked_within_limit_is_reassembled(void **state)
{
    client_t *c = client_open(*state);

    client_send_text(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked"
                        "\r\n\r\n14\r\n01234567890123456789\r\n"
                        "1e\r\nabcdefghijabcdefghijabcdefghij\r\n0\r\n\r\n");
    assert_reply(c, 200,
                 "POST /echo\n01234567890123456789"
                 "abcdefghijabcdefghijabcdefghij");

    /* The connection stays usable after it. */
    client_send_text(c, "GET /again HTTP/1.1\r\n\r\n");
    assert_reply(c, 200, "OTHER /again\n");
    client_close(c);
}

static void test_server_answers_pipelined_requests_in_order(void **state)
{
    client_t *c = client_open(*state);

    client_send_text(c, "POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                        "POST /two HTTP/1.1\r\nTransfer-Encoding: chunked"
                        "\r\n\r\n2\r\nde\r\n0\r\n\r\n"
                        "POST /three HTTP/1.1\r\nContent-Length: 2\r\n\r\nfg");
    assert_reply(c, 200, "POST /one\nabc");
    assert_reply(c, 200, "POST /two\nde");
    assert_reply(c, 200, "POST /three\nfg");
    client_close(c);
}

/* Each piece is waited out on the socket so the server reads it alone. */
static void test_server_reads_a_request_in_tiny_writes(void **state)
{
    const char *text = "POST /tiny HTTP/1.1\r\nContent-Length: 12\r\n\r\n"
                       "twelve bytes"
                       "POST /tinier HTTP/1.1\r\nTransfer-Encoding: chunked"
                       "\r\n\r\n4\r\nabcd\r\n0\r\n\r\n";
    client_t *c = client_open(*state);
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    size_t len = strlen(text);

    for (size_t off = 0; off < len; off += 2) {
        client_send(c, text + off, len - off < 2 ? len - off : 2);
        poll(&pfd, 1, 1);
    }
    assert_reply(c, 200, "POST /tiny\ntwelve bytes");
    assert_reply(c, 200, "POST /tinier\nabcd");
    client_close(c);
}

/* A reply on a connection evhttp closes right after must arrive whole. */
static void test_server_replies_in_full_before_closing(void **state)
{
    client_t *c = client_open(*state);
    reply_t r;

    client_send_text(c, "POST /old HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi");
    assert_reply(c, 200, "POST /old\nhi");
    client_expect_eof(c);
    client_close(c);

    c = client_open(*state);
    client_send_text(c, "GET /stream HTTP/1.0\r\n\r\n");
    client_reply(c, &r);
    assert_string_equal(r.body, "part 1\npart 2\n");
    client_close(c);
}

static void test_server_streams_a_chunked_reply(void **state)
{
    client_t *c = client_open(*state);

    client_send_text(c, "GET /stream HTTP/1.1\r\n\r\n");
    assert_reply(c, 200, "part 1\npart 2\n");
    client_send_text(c, "GET /after HTTP/1.1\r\n\r\n");
    assert_reply(c, 200, "OTHER /after\n");
    client_close(c);
}

/* The gateway cancels an upstream call when its caller leaves: evhttp
 * must still see the close while it streams a reply through the filter. */
static void test_server_sees_a_caller_leave_mid_reply(void **state)
{
    server_t *srv = *state;
    client_t *c = client_open(srv);
    struct pollfd pfd = {.fd = srv->closed[0], .events = POLLIN};

    client_send_text(c, "GET /endless HTTP/1.1\r\n\r\n");
    while (memmem(c->buf, c->len, "part 1", 6) == NULL)
        assert_true(client_recv(c));
    client_close(c);
    assert_int_equal(poll(&pfd, 1, 5000), 1);
}

static void test_server_sends_continue_for_a_held_chunked(void **state)
{
    client_t *c = client_open(*state);
    reply_t r;

    client_send_text(c, "POST /ask HTTP/1.1\r\nExpect: 100-continue\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n");
    client_reply(c, &r);
    assert_int_equal(r.status, 100);
    client_send_text(c, "3\r\nabc\r\n0\r\n\r\n");
    assert_reply(c, 200, "POST /ask\nabc");

    /* With a Content-Length, evhttp sends it itself. */
    client_send_text(c, "POST /ask2 HTTP/1.1\r\nExpect: 100-continue\r\n"
                        "Content-Length: 2\r\n\r\n");
    client_reply(c, &r);
    assert_int_equal(r.status, 100);
    client_send_text(c, "xy");
    assert_reply(c, 200, "POST /ask2\nxy");
    client_close(c);
}

/*
 * A caller that keeps sending a large body reads the whole 413, then the
 * server's end of stream, and never a reset: the refused socket is
 * drained after evhttp closes it.
 */
static void test_server_refused_caller_reads_413_not_a_reset(void **state)
{
    client_t *c = client_open(*state);
    static char body[1 << 16];
    size_t sent = 0, total = 8u << 20;
    struct pollfd pfd = {.fd = c->fd};
    bool eof = false;
    reply_t r;

    client_send_text(c, "POST /big HTTP/1.1\r\nContent-Length: 8388608\r\n"
                        "\r\n");
    memset(body, 'b', sizeof(body));
    while (sent < total / 2 || !eof) {
        pfd.events = (short)((sent < total ? POLLOUT : 0) | (eof ? 0 : POLLIN));
        assert_true(poll(&pfd, 1, 5000) > 0);
        if (pfd.revents & POLLOUT) {
            ssize_t n =
                send(c->fd, body, sizeof(body), MSG_NOSIGNAL | MSG_DONTWAIT);

            if (n < 0 && errno != EAGAIN)
                fail_msg("send after %zu bytes: %s", sent, strerror(errno));
            sent += n > 0 ? (size_t)n : 0;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
            eof = !client_recv(c);
    }
    client_reply(c, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "POST " REJECT_PATH "\n");
    assert_int_equal(c->len, 0);
    client_close(c);
}

/* The server stops cleanly while a refused socket is still drained. */
static void test_server_stops_while_draining_a_refused_caller(void **state)
{
    client_t *c = client_open(*state);

    client_send_text(c, "POST /big HTTP/1.1\r\nContent-Length: 900\r\n\r\n"
                        "some of it");
    assert_reply(c, 413, "POST " REJECT_PATH "\n");
    client_expect_eof(c);
    server_stop(state);
    client_close(c);
    assert_int_equal(server_start(state), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_passes_a_small_body_unchanged),
        cmocka_unit_test(test_stream_replaces_a_length_over_the_limit),
        cmocka_unit_test(test_stream_limit_is_inclusive),
        cmocka_unit_test(test_stream_holds_chunked_until_its_end),
        cmocka_unit_test(test_stream_replaces_chunked_over_the_limit),
        cmocka_unit_test(test_stream_keeps_pipelined_requests_identical),
        cmocka_unit_test(test_stream_reads_bare_lf_line_ends),
        cmocka_unit_test(test_stream_counts_no_body_for_head_and_trace),
        cmocka_unit_test(test_stream_passes_framing_it_cannot_follow),
        cmocka_unit_test(test_stream_passes_a_bad_chunk_size),
        cmocka_unit_test(test_stream_passes_a_header_block_over_64k),
        cmocka_unit_test(test_stream_asks_continue_only_for_a_waiting_chunked),
        cmocka_unit_test(test_stream_reject_request_checks_the_path),
        cmocka_unit_test(test_stream_output_does_not_depend_on_splits),
#define SERVER_TEST(t)                                                         \
    cmocka_unit_test_setup_teardown(t, server_start, server_stop)
        SERVER_TEST(test_server_small_body_reaches_the_handler),
        SERVER_TEST(test_server_length_over_limit_reaches_reject_path),
        SERVER_TEST(test_server_chunked_over_limit_reaches_reject_path),
        SERVER_TEST(test_server_chunked_within_limit_is_reassembled),
        SERVER_TEST(test_server_answers_pipelined_requests_in_order),
        SERVER_TEST(test_server_reads_a_request_in_tiny_writes),
        SERVER_TEST(test_server_replies_in_full_before_closing),
        SERVER_TEST(test_server_streams_a_chunked_reply),
        SERVER_TEST(test_server_sees_a_caller_leave_mid_reply),
        SERVER_TEST(test_server_sends_continue_for_a_held_chunked),
        SERVER_TEST(test_server_refused_caller_reads_413_not_a_reset),
        SERVER_TEST(test_server_stops_while_draining_a_refused_caller),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
