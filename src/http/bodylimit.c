/*
 * Body limit: rewrites the request stream under evhttp so that a request
 * over the limit reaches the gateway as a stand-in it can answer itself.
 *
 * Why a filter. evhttp 2.1 answers an oversized body with its own HTML
 * page and has no hook to change that, but evhttp_set_bevcb lets us build
 * each connection's bufferevent. We hand it a filter over a socket
 * bufferevent (evhttp's bufferevent_setfd reaches the socket through the
 * filter). The filter's input side follows HTTP/1.1 framing the way
 * evhttp's own parser does (lines end at LF with an optional CR, values
 * are C strings, sizes are read with strtoll), so both agree on where
 * each request ends and keep-alive and pipelining pass byte for byte.
 *
 * Input. A Content-Length request within the limit is released at once:
 * its header block, then body bytes as they come, so streaming and
 * evhttp's own 100 Continue are unchanged. A chunked request is held (its
 * bytes stay in the socket bufferevent's input) until its last chunk and
 * trailers are in, then released unchanged. Past the limit the held bytes
 * are dropped, the stand-in request is released in their place and all
 * later input is dropped. Framing the filter cannot follow, or that evhttp
 * would refuse anyway, passes unchanged for evhttp to judge, and so does
 * the rest of that connection.
 *
 * Output. A filter's own output path does not work under evhttp 2.1:
 * enabling EV_WRITE does not flush what evhttp queued while it was off,
 * and the filter reports "written" once bytes reach the socket
 * bufferevent rather than the kernel, so evhttp frees a Connection: close
 * connection with its reply still queued. So the output filter moves
 * nothing; a callback on the filter's output schedules a direct write to
 * the socket, and evhttp's write callback runs once all of it is in the
 * kernel, as it would over a socket bufferevent.
 *
 * Refusal. evhttp closes a refused connection while the caller may still
 * be sending its body; unread bytes at close make the kernel send a
 * reset, which can destroy the 413 before the caller reads it. So the
 * socket is kept open (a dup) and drained for a while after evhttp is done.
 */
#include "http/bodylimit.h"

#include "util/arena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>

#define CHUNK_LINE_MAX 4096  /* longest chunk-size line followed */
#define REJECT_PATH_MAX 1024 /* longest reject_path accepted */
#define DRAIN_IDLE_SEC 5     /* a refused caller silent this long is cut */
#define DRAIN_TOTAL_SEC 30   /* nor is one drained longer than this */
#define DRAIN_READS 16       /* reads per wakeup, so no caller hogs it */
#define CONTINUE_LINE "HTTP/1.1 100 Continue\r\n\r\n"

enum { STEP_WAIT, STEP_AGAIN };

/* What a header block says about the body after it. */
typedef enum head_kind {
    HEAD_NO_BODY,
    HEAD_LENGTH,
    HEAD_CHUNKED,
    HEAD_UNCLEAR /* evhttp would refuse it, or might read it differently */
} head_kind_t;

typedef struct head {
    head_kind_t kind;
    uint64_t length;
    bool expect_continue;
} head_t;

/* A header line split as evhttp splits it: name up to the first ':',
 * value without leading spaces or trailing spaces and tabs. */
typedef struct field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} field_t;

/* The framing headers of one block. */
typedef struct framing {
    field_t length, coding, expect;
    int n_length, n_coding;
    bool folded;    /* a continuation line follows a framing header */
    bool malformed; /* a header line without ':' */
} framing_t;

/* Settings of one bodylimit_install; see `installed` below. */
typedef struct bodylimit_conf {
    struct bodylimit_conf *next;
    struct drain *draining; /* refused sockets being drained */
    size_t max_body;
    char reject[]; /* the stand-in request */
} bodylimit_conf_t;

/* One connection's filter state, owned by its filter bufferevent. */
typedef struct conn {
    bodylimit_conf_t *conf;
    struct bufferevent *bev; /* the filter evhttp holds */
    struct evbuffer_cb_entry *on_output;
    struct event *flush; /* writes the filter's output to the socket */
    bodylimit_stream_t stream;
} conn_t;

/* A refused socket drained after evhttp let it go. */
typedef struct drain {
    struct drain *prev, *next;
    bodylimit_conf_t *conf;
    struct event_base *base;
    struct event *ev;
    evutil_socket_t fd;
    struct timeval deadline;
} drain_t;

/*
 * Every configuration ever installed, and through it every lingering
 * socket. evhttp never tells us when it is freed, so they live until the
 * process exits; keeping them reachable here says that they are owned.
 */
static bodylimit_conf_t *installed;

/* ---- Header blocks ---------------------------------------------------- */

/*
 * Finds the empty line that ends the header block in p[0, n), resuming
 * at *scan. 1: found, *end just past it; 0: not yet, *scan where to
 * resume; -1: a block evhttp refuses (empty request line) or ends early
 * (a line starting with NUL is its empty line).
 */
static int head_search(const char *p, size_t n, size_t *scan, size_t *end)
{
    size_t i = *scan;
    const char *lf;

    if (i == 0 && n > 0) {
        if (p[0] == '\n' || p[0] == '\0')
            return -1;
        if (p[0] == '\r' && (n < 2 || p[1] == '\n'))
            return n < 2 ? 0 : -1;
    }
    while (i < n && (lf = memchr(p + i, '\n', n - i)) != NULL) {
        size_t at = (size_t)(lf - p);

        if (at + 2 >= n && (at + 1 >= n || p[at + 1] == '\r')) {
            *scan = at;
            return 0;
        }
        if (p[at + 1] == '\n' || (p[at + 1] == '\r' && p[at + 2] == '\n')) {
            *end = at + (p[at + 1] == '\n' ? 2 : 3);
            return 1;
        }
        if (p[at + 1] == '\0')
            return -1;
        i = at + 1;
    }
    *scan = n;
    return 0;
}

/* Looks for the end of the header block at the front of in, making it
 * contiguous at *block. Returns as head_search. */
static int head_find(bodylimit_stream_t *st, struct evbuffer *in, size_t len,
                     const char **block, size_t *end)
{
    size_t limit = len < BODYLIMIT_HEAD_MAX ? len : BODYLIMIT_HEAD_MAX;
    struct evbuffer_iovec first;
    int found;

    /* The block is nearly always inside the first chain: search it in
     * place, and copy chains together only when it is not. */
    evbuffer_peek(in, -1, NULL, &first, 1);
    *block = first.iov_base;
    if (first.iov_len < limit) {
        found = head_search(*block, first.iov_len, &st->scan, end);
        if (found != 0)
            return found;
        *block = (const char *)evbuffer_pullup(in, (ev_ssize_t)limit);
        if (*block == NULL)
            die_oom();
    }
    return head_search(*block, limit, &st->scan, end);
}

/* The line at p, which a '\n' before end closes: sets *len to its length
 * as evhttp reads it (no CR before the LF, cut at a NUL) and returns the
 * start of the next line. */
static const char *line_next(const char *p, const char *end, size_t *len)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)(lf - p);

    if (n > 0 && p[n - 1] == '\r')
        n--;
    *len = strnlen(p, n);
    return lf + 1;
}

static bool field_split(const char *line, size_t len, field_t *f)
{
    const char *colon = memchr(line, ':', len);
    const char *value, *stop = line + len;

    if (colon == NULL)
        return false;
    value = colon + 1;
    while (value < stop && *value == ' ')
        value++;
    while (stop > value && (stop[-1] == ' ' || stop[-1] == '\t'))
        stop--;

    f->name = line;
    f->name_len = (size_t)(colon - line);
    f->value = value;
    f->value_len = (size_t)(stop - value);
    return true;
}

static bool text_is(const char *s, size_t len, const char *want)
{
    return len == strlen(want) && evutil_ascii_strncasecmp(s, want, len) == 0;
}

/* Whether evhttp reads a body for this request line's method, and
 * whether the request is HTTP/1.1 (the only one 100 Continue is for). */
static bool line_has_body(const char *line, size_t len, bool *http11)
{
    static const char *const methods[] = {
        "POST", "PUT", "PATCH", "GET", "DELETE", "OPTIONS", "CONNECT",
    };
    const char *space = memchr(line, ' ', len);
    size_t method_len = space != NULL ? (size_t)(space - line) : len;

    while (len > 0 && line[len - 1] == ' ')
        len--;
    *http11 = len > 9 && memcmp(line + len - 9, " HTTP/1.1", 9) == 0;

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (method_len == strlen(methods[i]) &&
            memcmp(line, methods[i], method_len) == 0)
            return true;
    }
    return false;
}

/* Collects the framing headers of the lines after the request line. */
static void framing_scan(const char *line, const char *end, framing_t *fr)
{
    bool after_framing = false;
    size_t len;
    field_t f;

    for (const char *next;; line = next) {
        next = line_next(line, end, &len);
        if (len == 0)
            return;
        if (*line == ' ' || *line == '\t') {
            fr->folded |= after_framing;
            continue;
        }
        if (!field_split(line, len, &f)) {
            fr->malformed = true;
            return;
        }

        after_framing = true;
        if (text_is(f.name, f.name_len, "Content-Length")) {
            fr->length = f;
            fr->n_length++;
        } else if (text_is(f.name, f.name_len, "Transfer-Encoding")) {
            fr->coding = f;
            fr->n_coding++;
        } else {
            after_framing = false;
            if (text_is(f.name, f.name_len, "Expect"))
                fr->expect = f;
        }
    }
}

/* A Content-Length value as evhttp reads it: strtoll, whole, not < 0. */
static bool length_parse(const field_t *f, uint64_t *length)
{
    char text[32];
    char *stop;
    long long n;

    if (f->value_len == 0 || f->value_len >= sizeof(text))
        return false;
    memcpy(text, f->value, f->value_len);
    text[f->value_len] = '\0';
    n = strtoll(text, &stop, 10);
    if (*stop != '\0' || n < 0)
        return false;
    *length = (uint64_t)n;
    return true;
}

/* Where the body of the request in block[0, len) ends, as evhttp sees
 * it. Anything evhttp refuses or reads differently across its patch
 * levels (both framings, repeats, other codings) is HEAD_UNCLEAR. */
static void head_classify(const char *block, size_t len, head_t *h)
{
    const char *end = block + len, *line;
    framing_t fr = {0};
    bool has_body, http11;
    size_t first_len;

    line = line_next(block, end, &first_len);
    has_body = line_has_body(block, first_len, &http11);
    framing_scan(line, end, &fr);

    memset(h, 0, sizeof(*h));
    h->expect_continue =
        http11 && fr.expect.value != NULL &&
        text_is(fr.expect.value, fr.expect.value_len, "100-continue");
    if (fr.malformed || fr.folded || fr.n_length > 1 || fr.n_coding > 1 ||
        (fr.n_length > 0 && fr.n_coding > 0))
        h->kind = HEAD_UNCLEAR;
    else if (!has_body)
        h->kind = HEAD_NO_BODY;
    else if (fr.n_coding > 0)
        h->kind = text_is(fr.coding.value, fr.coding.value_len, "chunked")
                      ? HEAD_CHUNKED
                      : HEAD_UNCLEAR;
    else if (fr.n_length == 0)
        h->kind = HEAD_NO_BODY;
    else if (!length_parse(&fr.length, &h->length))
        h->kind = HEAD_UNCLEAR;
    else
        h->kind = h->length > 0 ? HEAD_LENGTH : HEAD_NO_BODY;
}

/* ---- The stream ------------------------------------------------------- */

int bodylimit_reject_request(const char *reject_path, char *out, size_t outlen)
{
    if (reject_path == NULL || reject_path[0] != '/' ||
        strlen(reject_path) > REJECT_PATH_MAX)
        return -EINVAL;
    for (const char *p = reject_path; *p != '\0'; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return -EINVAL;
    }
    return snprintf(out, outlen,
                    "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                    "Connection: close\r\n\r\n",
                    reject_path);
}

void bodylimit_stream_init(bodylimit_stream_t *st, size_t max_body,
                           const char *reject)
{
    memset(st, 0, sizeof(*st));
    st->max_body = max_body;
    st->reject = reject;
    st->reject_len = strlen(reject);
    st->mode = BODYLIMIT_HEAD;
}

static int stream_pass(bodylimit_stream_t *st, struct evbuffer *in,
                       struct evbuffer *out)
{
    evbuffer_add_buffer(out, in);
    st->mode = BODYLIMIT_PASS;
    return STEP_AGAIN;
}

static int stream_refuse(bodylimit_stream_t *st, struct evbuffer *in,
                         struct evbuffer *out)
{
    evbuffer_drain(in, evbuffer_get_length(in));
    evbuffer_add(out, st->reject, st->reject_len);
    st->mode = BODYLIMIT_REJECT;
    return STEP_AGAIN;
}

/* Acts on a whole header block of hlen bytes at the front of in. */
static int head_release(bodylimit_stream_t *st, struct evbuffer *in,
                        struct evbuffer *out, size_t hlen, const head_t *h)
{
    size_t len = evbuffer_get_length(in), body;

    switch (h->kind) {
    case HEAD_NO_BODY:
        evbuffer_remove_buffer(in, out, hlen);
        return STEP_AGAIN;
    case HEAD_LENGTH:
        if (h->length > st->max_body)
            return stream_refuse(st, in, out);
        /* One move for block and body: whole chains move without copy. */
        body = len - hlen < h->length ? len - hlen : (size_t)h->length;
        evbuffer_remove_buffer(in, out, hlen + body);
        st->left = h->length - body;
        st->mode = st->left > 0 ? BODYLIMIT_BODY : BODYLIMIT_HEAD;
        return STEP_AGAIN;
    case HEAD_CHUNKED:
        st->mode = BODYLIMIT_CHUNK_SIZE;
        st->head_len = st->pos = hlen;
        st->framing = 0;
        st->total = 0;
        st->want_continue = h->expect_continue;
        return STEP_AGAIN;
    case HEAD_UNCLEAR:
    default:
        return stream_pass(st, in, out);
    }
}

static int step_head(bodylimit_stream_t *st, struct evbuffer *in,
                     struct evbuffer *out)
{
    size_t len = evbuffer_get_length(in), end = 0;
    const char *block;
    head_t h;
    int found;

    if (len == 0)
        return STEP_WAIT;
    found = head_find(st, in, len, &block, &end);
    if (found == 0 && len < BODYLIMIT_HEAD_MAX)
        return STEP_WAIT;
    if (found <= 0)
        return stream_pass(st, in, out);

    head_classify(block, end, &h);
    st->scan = 0;
    return head_release(st, in, out, end, &h);
}

static int step_body(bodylimit_stream_t *st, struct evbuffer *in,
                     struct evbuffer *out)
{
    size_t len = evbuffer_get_length(in);
    size_t take = len < st->left ? len : (size_t)st->left;

    evbuffer_remove_buffer(in, out, take);
    st->left -= take;
    if (st->left > 0)
        return STEP_WAIT;
    st->mode = BODYLIMIT_HEAD;
    return STEP_AGAIN;
}

/* Finds the held line starting at pos. 1: found, *raw its length before
 * the LF, *next where the following line starts; 0: not whole yet; -1:
 * longer than max. */
static int held_line(struct evbuffer *in, size_t pos, size_t max, size_t *raw,
                     size_t *next)
{
    size_t len = evbuffer_get_length(in);
    size_t span = len - pos > max + 1 ? max + 1 : len - pos;
    struct evbuffer_ptr start, stop, lf;

    if (span == 0)
        return 0;
    evbuffer_ptr_set(in, &start, pos, EVBUFFER_PTR_SET);
    evbuffer_ptr_set(in, &stop, pos + span, EVBUFFER_PTR_SET);
    lf = evbuffer_search_range(in, "\n", 1, &start, &stop);
    if (lf.pos < 0)
        return len - pos > max ? -1 : 0;
    *raw = (size_t)lf.pos - pos;
    *next = (size_t)lf.pos + 1;
    return 1;
}

static void held_copy(struct evbuffer *in, size_t pos, char *out, size_t n)
{
    struct evbuffer_ptr at;

    evbuffer_ptr_set(in, &at, pos, EVBUFFER_PTR_SET);
    evbuffer_copyout_from(in, &at, out, n);
}

/* Counts bytes of chunked framing; false once they pass what a body
 * within the limit plausibly needs, bounding what one request can hold. */
static bool framing_add(bodylimit_stream_t *st, size_t n)
{
    st->framing += n;
    return st->framing <= BODYLIMIT_HEAD_MAX ||
           st->framing - BODYLIMIT_HEAD_MAX <= st->max_body;
}

static int step_chunk_size(bodylimit_stream_t *st, struct evbuffer *in,
                           struct evbuffer *out)
{
    char line[CHUNK_LINE_MAX + 1];
    size_t raw = 0, next = 0;
    long long size;
    char *stop;
    int found = held_line(in, st->pos, CHUNK_LINE_MAX, &raw, &next);

    if (found == 0)
        return STEP_WAIT;
    if (found < 0 || !framing_add(st, next - st->pos))
        return stream_pass(st, in, out);
    held_copy(in, st->pos, line, raw);
    if (raw > 0 && line[raw - 1] == '\r')
        raw--;
    line[raw] = '\0';
    st->pos = next;

    /* evhttp skips empty lines here, and reads the size with strtoll. */
    if (line[0] == '\0')
        return STEP_AGAIN;
    size = strtoll(line, &stop, 16);
    if ((*stop != '\0' && *stop != ' ') || size < 0)
        return stream_pass(st, in, out);
    if ((uint64_t)size > st->max_body - st->total)
        return stream_refuse(st, in, out);

    st->total += (uint64_t)size;
    st->left = (uint64_t)size;
    st->trailer = st->pos;
    st->mode = size > 0 ? BODYLIMIT_CHUNK_DATA : BODYLIMIT_CHUNK_TRAILER;
    return STEP_AGAIN;
}

static int step_chunk_data(bodylimit_stream_t *st, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in) - st->pos;
    size_t take = avail < st->left ? avail : (size_t)st->left;

    st->pos += take;
    st->left -= take;
    if (st->left > 0)
        return STEP_WAIT;
    st->mode = BODYLIMIT_CHUNK_SIZE;
    return STEP_AGAIN;
}

static int step_chunk_trailer(bodylimit_stream_t *st, struct evbuffer *in,
                              struct evbuffer *out)
{
    size_t raw = 0, next = 0;
    char first = '\0';
    int found = held_line(in, st->pos, BODYLIMIT_HEAD_MAX, &raw, &next);

    if (found == 0 &&
        evbuffer_get_length(in) - st->trailer <= BODYLIMIT_HEAD_MAX)
        return STEP_WAIT;
    if (found <= 0 || next - st->trailer > BODYLIMIT_HEAD_MAX)
        return stream_pass(st, in, out);
    if (raw > 0)
        held_copy(in, st->pos, &first, 1);

    /* An empty line ends the trailers (for evhttp, so does a NUL). */
    if (raw == 0 || first == '\0' || (raw == 1 && first == '\r')) {
        evbuffer_remove_buffer(in, out, next);
        st->mode = BODYLIMIT_HEAD;
        return STEP_AGAIN;
    }
    st->pos = next;
    return STEP_AGAIN;
}

static int stream_step(bodylimit_stream_t *st, struct evbuffer *in,
                       struct evbuffer *out)
{
    switch (st->mode) {
    case BODYLIMIT_HEAD:
        return step_head(st, in, out);
    case BODYLIMIT_BODY:
        return step_body(st, in, out);
    case BODYLIMIT_CHUNK_SIZE:
        return step_chunk_size(st, in, out);
    case BODYLIMIT_CHUNK_DATA:
        return step_chunk_data(st, in);
    case BODYLIMIT_CHUNK_TRAILER:
        return step_chunk_trailer(st, in, out);
    case BODYLIMIT_PASS:
        evbuffer_add_buffer(out, in);
        return STEP_WAIT;
    case BODYLIMIT_REJECT:
    default:
        evbuffer_drain(in, evbuffer_get_length(in));
        return STEP_WAIT;
    }
}

static bool mode_holds(bodylimit_mode_t mode)
{
    return mode == BODYLIMIT_CHUNK_SIZE || mode == BODYLIMIT_CHUNK_DATA ||
           mode == BODYLIMIT_CHUNK_TRAILER;
}

unsigned bodylimit_stream_feed(bodylimit_stream_t *st, struct evbuffer *in,
                               struct evbuffer *out)
{
    unsigned flags = 0;

    if (evbuffer_get_length(in) > st->held)
        flags |= BODYLIMIT_PROGRESS;
    while (stream_step(st, in, out) == STEP_AGAIN)
        continue;

    /* Only a caller still waiting to send its body needs the interim
     * answer; one already sending it does not. */
    if (st->want_continue) {
        if (mode_holds(st->mode) && evbuffer_get_length(in) == st->head_len)
            flags |= BODYLIMIT_CONTINUE;
        st->want_continue = false;
    }
    st->held = evbuffer_get_length(in);
    return flags;
}

/* ---- Draining refused sockets ----------------------------------------- */

static void drain_end(drain_t *dr)
{
    if (dr->prev != NULL)
        dr->prev->next = dr->next;
    else
        dr->conf->draining = dr->next;
    if (dr->next != NULL)
        dr->next->prev = dr->prev;

    event_free(dr->ev);
    evutil_closesocket(dr->fd);
    free(dr);
}

static void drain_read(evutil_socket_t fd, short what, void *arg)
{
    drain_t *dr = arg;
    struct timeval now;
    char sink[16384];

    if (what & EV_TIMEOUT) {
        drain_end(dr);
        return;
    }
    for (int i = 0; i < DRAIN_READS; i++) {
        ssize_t n = read(fd, sink, sizeof(sink));

        if (n > 0)
            continue;
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        drain_end(dr); /* the caller closed, or the socket failed */
        return;
    }
    event_base_gettimeofday_cached(dr->base, &now);
    if (evutil_timercmp(&now, &dr->deadline, >))
        drain_end(dr);
}

/*
 * Reads and drops what a refused caller still sends, through a second
 * descriptor of its socket, until the caller closes, goes quiet, or time
 * runs out. It starts at the refusal, while the loop surely runs (not
 * when the filter is finalized, which may happen inside event_base_free),
 * and keeps the socket open after evhttp has shut it down and closed it.
 */
static void drain_start(bodylimit_conf_t *conf, struct event_base *base,
                        evutil_socket_t fd)
{
    const struct timeval idle = {DRAIN_IDLE_SEC, 0};
    const struct timeval total = {DRAIN_TOTAL_SEC, 0};
    struct timeval now;
    drain_t *dr;
    int copy = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);

    if (copy < 0)
        return; /* out of descriptors: the socket just closes with evhttp */
    dr = calloc(1, sizeof(*dr));
    if (dr == NULL)
        die_oom();
    dr->ev = event_new(base, copy, EV_READ | EV_PERSIST, drain_read, dr);
    if (dr->ev == NULL)
        die_oom();
    dr->conf = conf;
    dr->base = base;
    dr->fd = copy;
    event_base_gettimeofday_cached(base, &now);
    evutil_timeradd(&now, &total, &dr->deadline);

    dr->next = conf->draining;
    if (dr->next != NULL)
        dr->next->prev = dr;
    conf->draining = dr;
    event_add(dr->ev, &idle);
}

/* ---- Connections ------------------------------------------------------ */

/* Writes the filter's output straight to the socket. evhttp learns that
 * its bytes went out (its write callback) only once all are in the
 * kernel, and of a failed write as it would from a socket bufferevent. */
static void conn_flush(evutil_socket_t fd, short what, void *arg)
{
    conn_t *conn = arg;
    struct bufferevent *bev = conn->bev;
    struct evbuffer *out = bufferevent_get_output(bev);

    while (evbuffer_get_length(out) > 0) {
        int n = evbuffer_write(out, fd);

        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
            event_add(conn->flush, NULL);
            return;
        }
        bufferevent_trigger_event(bev, BEV_EVENT_ERROR | BEV_EVENT_WRITING, 0);
        return;
    }

    /* Re-enabling restarts evhttp's write timeout, as progress does on a
     * socket. The callback may free the connection: touch nothing after. */
    if (bufferevent_get_enabled(bev) & EV_WRITE) {
        bufferevent_enable(bev, EV_WRITE);
        bufferevent_trigger(bev, EV_WRITE, 0);
    }
}

static void conn_output_added(struct evbuffer *buf,
                              const struct evbuffer_cb_info *info, void *arg)
{
    conn_t *conn = arg;
    evutil_socket_t fd;

    if (info->n_added == 0)
        return;
    if (conn->flush == NULL) {
        fd = bufferevent_getfd(conn->bev);
        if (fd < 0)
            return;
        conn->flush = event_new(bufferevent_get_base(conn->bev), fd, EV_WRITE,
                                conn_flush, conn);
        if (conn->flush == NULL)
            die_oom();
    }

    /* Run the write from the loop, after evhttp has finished queueing the
     * reply and set up the callback it expects. */
    if (!event_pending(conn->flush, EV_WRITE, NULL))
        event_active(conn->flush, EV_WRITE, 1);
}

/*
 * Sends 100 Continue for a held chunked request (evhttp would send it only
 * once it sees the request, which we release only when the body is whole).
 * Safe only while evhttp is waiting for a request with nothing in flight:
 * reading (a read callback set and reading on), every released byte taken,
 * nothing queued to send. Otherwise the caller sends its body unprompted
 * after its own timeout.
 */
static void conn_send_continue(conn_t *conn, struct evbuffer *released)
{
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    bufferevent_data_cb readcb = NULL;

    bufferevent_getcb(conn->bev, &readcb, NULL, NULL, NULL);
    if (readcb == NULL || !(bufferevent_get_enabled(conn->bev) & EV_READ) ||
        evbuffer_get_length(released) > 0 || evbuffer_get_length(out) > 0)
        return;
    evbuffer_add(out, CONTINUE_LINE, strlen(CONTINUE_LINE));
}

static enum bufferevent_filter_result
conn_read(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
          enum bufferevent_flush_mode mode, void *arg)
{
    conn_t *conn = arg;
    bool refused = conn->stream.mode == BODYLIMIT_REJECT;
    unsigned flags = bodylimit_stream_feed(&conn->stream, src, dst);

    if (flags & BODYLIMIT_CONTINUE)
        conn_send_continue(conn, dst);
    if (!refused && conn->stream.mode == BODYLIMIT_REJECT)
        drain_start(conn->conf, bufferevent_get_base(conn->bev),
                    bufferevent_getfd(conn->bev));

    /* BEV_OK only for new bytes: it restarts evhttp's read timeout, and
     * the filter calls again while bytes we hold are left in src. */
    return (flags & BODYLIMIT_PROGRESS) ? BEV_OK : BEV_NEED_MORE;
}

/* The filter's own output path stays idle: conn_flush does the writing. */
static enum bufferevent_filter_result
conn_write(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
           enum bufferevent_flush_mode mode, void *arg)
{
    return BEV_NEED_MORE;
}

/* Runs when libevent finalizes the filter evhttp freed. */
static void conn_free(void *arg)
{
    conn_t *conn = arg;

    evbuffer_remove_cb_entry(bufferevent_get_output(conn->bev),
                             conn->on_output);
    if (conn->flush != NULL)
        event_free(conn->flush);
    free(conn);
}

/* evhttp's bevcb: the filter over a socket bufferevent whose descriptor
 * evhttp sets next (bufferevent_setfd reaches it through the filter). */
static struct bufferevent *conn_new(struct event_base *base, void *arg)
{
    conn_t *conn = calloc(1, sizeof(*conn));
    struct bufferevent *sock;

    if (conn == NULL)
        die_oom();
    conn->conf = arg;
    bodylimit_stream_init(&conn->stream, conn->conf->max_body,
                          conn->conf->reject);

    sock = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (sock == NULL)
        die_oom();
    conn->bev = bufferevent_filter_new(sock, conn_read, conn_write,
                                       BEV_OPT_CLOSE_ON_FREE, conn_free, conn);
    if (conn->bev == NULL)
        die_oom();
    bufferevent_disable(sock, EV_WRITE); /* it never writes */

    conn->on_output = evbuffer_add_cb(bufferevent_get_output(conn->bev),
                                      conn_output_added, conn);
    if (conn->on_output == NULL)
        die_oom();
    return conn->bev;
}

int bodylimit_install(struct evhttp *http, struct event_base *base,
                      size_t max_body, const char *reject_path)
{
    int len = bodylimit_reject_request(reject_path, NULL, 0);
    bodylimit_conf_t *conf;

    if (http == NULL || base == NULL || len < 0)
        return -EINVAL;
    conf = calloc(1, sizeof(*conf) + (size_t)len + 1);
    if (conf == NULL)
        die_oom();
    bodylimit_reject_request(reject_path, conf->reject, (size_t)len + 1);
    conf->max_body = max_body;
    conf->next = installed;
    installed = conf;

    evhttp_set_max_body_size(http, max_body > (size_t)EV_SSIZE_MAX
                                       ? EV_SSIZE_MAX
                                       : (ev_ssize_t)max_body);
    evhttp_set_bevcb(http, conn_new, conf);
    return 0;
}
