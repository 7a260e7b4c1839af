/*
 * Body limit: a filter between each caller's socket and evhttp that turns
 * an over-limit request into a short stand-in request the gateway answers
 * in OpenAI's error shape, instead of evhttp's own HTML 413 page.
 */
#ifndef TOLLGATE_BODYLIMIT_H
#define TOLLGATE_BODYLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct evhttp;
struct event_base;

/*
 * Makes evhttp hand over-limit requests to the application instead of
 * answering them itself: such a request reaches the server's callbacks as
 * "POST <reject_path>" with no body and "Connection: close", so the
 * application can answer 413 in its own format. Installs a bevcb on http
 * and sets evhttp's own max body size to max_body as a backstop. max_body
 * is the limit in bytes. reject_path must start with '/' and hold no
 * space or control byte. Returns 0, or -EINVAL for a bad argument.
 *
 * Every connection of http then reads through the filter: requests within
 * the limit reach evhttp byte for byte (a chunked one only once its body
 * is whole). After a refusal the rest of that connection's input is
 * dropped, and its socket is drained (until the caller closes, is silent
 * for 5 s, or 30 s pass) so that the caller reads the 413 rather than a
 * reset when evhttp closes it. The settings live until the process exits
 * (evhttp has no hook to say when it is freed); call it once per evhttp,
 * from the loop's thread, before the loop runs. The process must ignore
 * SIGPIPE, as it must for evhttp anyway.
 */
int bodylimit_install(struct evhttp *http, struct event_base *base,
                      size_t max_body, const char *reject_path);

/*
 * The byte-stream rewriter behind bodylimit_install, a pure function of
 * the bytes fed to it (tests drive it without sockets).
 */

/* A header block longer than this passes unchecked; evhttp judges it. */
#define BODYLIMIT_HEAD_MAX (64 * 1024)

typedef enum bodylimit_mode {
    BODYLIMIT_HEAD,          /* reading a request line and headers */
    BODYLIMIT_BODY,          /* passing a Content-Length body along */
    BODYLIMIT_CHUNK_SIZE,    /* holding a chunked request: at a size line */
    BODYLIMIT_CHUNK_DATA,    /* holding a chunked request: in a chunk */
    BODYLIMIT_CHUNK_TRAILER, /* holding a chunked request: in trailers */
    BODYLIMIT_PASS,          /* framing not understood: all bytes pass */
    BODYLIMIT_REJECT         /* over the limit: all later bytes dropped */
} bodylimit_mode_t;

typedef struct bodylimit_stream {
    size_t max_body;
    const char *reject; /* the stand-in request; the caller keeps it */
    size_t reject_len;
    bodylimit_mode_t mode;
    size_t held;        /* bytes left in the input after the last feed */
    size_t scan;        /* HEAD: bytes searched for the block's end */
    size_t head_len;    /* CHUNK_*: the held request's header block */
    size_t pos;         /* CHUNK_*: how far the held request is parsed */
    size_t framing;     /* CHUNK_*: size lines and line ends so far */
    size_t trailer;     /* CHUNK_TRAILER: where the trailers start */
    uint64_t left;      /* BODY, CHUNK_DATA: bytes still to come */
    uint64_t total;     /* CHUNK_*: chunk data so far */
    bool want_continue; /* the held request expects 100 Continue */
} bodylimit_stream_t;

/* Flags bodylimit_stream_feed returns. */
#define BODYLIMIT_PROGRESS 1u /* new input arrived since the last feed */
#define BODYLIMIT_CONTINUE 2u /* a held request waits for 100 Continue */

/*
 * Writes the stand-in request for reject_path into out (NUL-terminated)
 * when outlen is large enough. Returns its length, as snprintf does, or
 * -EINVAL when reject_path is not a plain absolute path.
 */
int bodylimit_reject_request(const char *reject_path, char *out, size_t outlen);

/* Starts a stream for one connection. reject must outlive the stream. */
void bodylimit_stream_init(bodylimit_stream_t *st, size_t max_body,
                           const char *reject);

/*
 * Feeds the connection's input: in holds every byte not yet taken, new
 * bytes appended at its end. Takes what it can from the front of in and
 * appends to out the bytes evhttp should see; a request that must be
 * held (a chunked one until it ends, a header block until it is whole)
 * stays at the front of in for the next call. Never fails: input it
 * cannot frame switches the stream to BODYLIMIT_PASS.
 */
unsigned bodylimit_stream_feed(bodylimit_stream_t *st, struct evbuffer *in,
                               struct evbuffer *out);

#endif
