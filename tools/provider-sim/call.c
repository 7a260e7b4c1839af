/*
 * Delivers one chat completion on the simulator's clock: a plain reply
 * at ttft + tokens * per_token, or a paced SSE stream, bent by the
 * requested fault, and torn down safely when the client leaves first.
 */
#include "sim_call.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>

#include "sim_server.h"
#include "sim_util.h"

static const char *const fault_names[] = {
    [FAULT_NONE] = NULL,
    [FAULT_429] = "429",
    [FAULT_500] = "500",
    [FAULT_503] = "503",
    [FAULT_STALL] = "stall",
    [FAULT_CUT] = "cut",
    [FAULT_MALFORMED] = "malformed",
    [FAULT_MIDSTREAM] = "midstream-error",
};

#define NFAULTS (sizeof(fault_names) / sizeof(fault_names[0]))

/* Content chunks a midstream-error stream sends before its error. */
#define MIDSTREAM_CHUNKS 3

const char *fault_name(enum sim_fault fault)
{
    if ((size_t)fault >= NFAULTS)
        return NULL;
    return fault_names[fault];
}

int fault_parse(const char *name, size_t len, enum sim_fault *fault)
{
    for (size_t i = 1; i < NFAULTS; i++) {
        if (strlen(fault_names[i]) == len &&
            memcmp(fault_names[i], name, len) == 0) {
            *fault = (enum sim_fault)i;
            return 0;
        }
    }
    return -EINVAL;
}

static void call_fire(void *arg);
static void call_closed(struct evhttp_connection *evcon, void *arg);
static void call_watch(evutil_socket_t fd, short what, void *arg);

struct call *call_new(struct sim *sim, struct evhttp_request *req)
{
    struct call *call = util_xcalloc(1, sizeof(*call));

    call->sim = sim;
    call->req = req;
    call->evcon = evhttp_request_get_connection(req);
    call->out = evbuffer_new();
    if (call->out == NULL) {
        fprintf(stderr, "provider-sim: out of memory (evbuffer)\n");
        abort();
    }
    vclock_timer_init(&call->timer, &sim->clock, call_fire, call);

    call->next = sim->calls;
    if (sim->calls != NULL)
        sim->calls->prev = call;
    sim->calls = call;
    return call;
}

size_t call_count(const struct sim *sim)
{
    size_t n = 0;

    for (const struct call *c = sim->calls; c != NULL; c = c->next)
        n++;
    return n;
}

static void call_free(struct call *call)
{
    struct sim *sim = call->sim;

    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        sim->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;

    vclock_timer_cancel(&call->timer);
    if (call->watch != NULL)
        event_free(call->watch);
    evbuffer_free(call->out);
    answer_free(&call->answer);
    free(call);
}

static bool is_error_fault(enum sim_fault fault)
{
    return fault == FAULT_429 || fault == FAULT_500 || fault == FAULT_503;
}

static void put(struct json_object *obj, const char *key,
                struct json_object *value)
{
    json_object_object_add(obj, key, value);
}

static struct json_object *string_or_null(const char *text)
{
    return text ? json_object_new_string(text) : NULL;
}

static const char *replay_word(enum answer_replay replay)
{
    if (replay == ANSWER_REPLAY_HIT)
        return "hit";
    if (replay == ANSWER_REPLAY_MISS)
        return "miss";
    return NULL;
}

/* One /_sim/usage record for what this call sent. */
static void record(struct call *call, bool usage_sent, bool client_gone)
{
    struct json_object *rec = json_object_new_object();
    const struct answer *a = &call->answer;

    put(rec, "id", call->refused ? NULL : string_or_null(a->id));
    put(rec, "model", string_or_null(a->model));
    put(rec, "stream", json_object_new_boolean(call->stream));
    put(rec, "usage", usage_sent ? answer_usage_json(a) : NULL);
    put(rec, "fault", string_or_null(fault_name(call->fault)));
    put(rec, "replay", string_or_null(replay_word(a->replay)));
    put(rec, "client_gone", json_object_new_boolean(client_gone));
    journal_push(&call->sim->answers, rec);
}

/* Stop hearing about the connection before we let go of the request. */
static void detach(struct call *call)
{
    if (call->evcon != NULL)
        evhttp_connection_set_closecb(call->evcon, NULL, NULL);
    if (call->watch != NULL) {
        event_free(call->watch);
        call->watch = NULL;
    }
}

static void finish(struct call *call, bool usage_sent)
{
    record(call, usage_sent, false);
    call_free(call);
}

static void add_header(struct call *call, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(call->req), name,
                      value);
}

static void add_common_headers(struct call *call, const char *type)
{
    const char *replay = replay_word(call->answer.replay);

    add_header(call, "Content-Type", type);
    add_header(call, "x-request-id", call->answer.request_id);
    if (replay != NULL)
        add_header(call, "x-sim-replay", replay);
}

static void send_error_fault(struct call *call)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(call->req);

    call->refused = true;
    evhttp_add_header(headers, "x-request-id", call->answer.request_id);
    if (call->fault == FAULT_429) {
        evhttp_add_header(headers, "retry-after", "7");
        evhttp_add_header(headers, "x-ratelimit-limit-requests", "500");
        evhttp_add_header(headers, "x-ratelimit-remaining-requests", "0");
        evhttp_add_header(headers, "x-ratelimit-reset-requests", "7s");
        evhttp_add_header(headers, "x-ratelimit-limit-tokens", "30000");
        evhttp_add_header(headers, "x-ratelimit-remaining-tokens", "0");
        evhttp_add_header(headers, "x-ratelimit-reset-tokens", "7s");
        server_send_error(call->req, 429, "requests",
                          "Rate limit reached for requests (simulated). "
                          "Please try again in 7s.",
                          NULL, "rate_limit_exceeded");
    } else if (call->fault == FAULT_503) {
        server_send_error(call->req, 503, "service_unavailable_error",
                          "The server is overloaded or not ready yet "
                          "(simulated).",
                          NULL, "server_is_overloaded");
    } else {
        server_send_error(call->req, 500, "server_error",
                          "The server had an error while processing your "
                          "request. Sorry about that! (simulated)",
                          NULL, NULL);
    }
}

static const char *completion_json(struct call *call, struct json_object **obj,
                                   size_t *len)
{
    *obj = answer_completion_json(&call->answer);
    return json_object_to_json_string_length(*obj, SERVER_JSON_FLAGS, len);
}

/* Closes the socket under the pending reply so the client sees it end
 * early: no more body, no final chunk, no [DONE]. */
static void cut_flushed(struct evhttp_connection *evcon, void *arg)
{
    struct call *call = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);

    detach(call);
    shutdown(bufferevent_getfd(bev), SHUT_RDWR);
    evhttp_send_reply_end(call->req);
    finish(call, false);
}

static void send_plain_cut(struct call *call)
{
    struct json_object *obj;
    size_t len;
    const char *json = completion_json(call, &obj, &len);
    char length[32];

    snprintf(length, sizeof(length), "%zu", len);
    add_common_headers(call, "application/json");
    add_header(call, "Content-Length", length);
    add_header(call, "Connection", "close");
    evhttp_send_reply_start(call->req, 200, "OK");

    evbuffer_add(call->out, json, len / 2);
    evhttp_send_reply_chunk_with_cb(call->req, call->out, cut_flushed, call);
    json_object_put(obj);
}

static void send_plain(struct call *call)
{
    struct json_object *obj;
    size_t len;
    const char *json;

    if (call->fault == FAULT_CUT) {
        send_plain_cut(call);
        return;
    }

    json = completion_json(call, &obj, &len);
    if (call->fault == FAULT_MALFORMED)
        len /= 2;
    add_common_headers(call, "application/json");
    evbuffer_add(call->out, json, len);
    json_object_put(obj);

    detach(call);
    evhttp_send_reply(call->req, 200, "OK", call->out);
    finish(call, call->fault != FAULT_MALFORMED);
}

static void send_event(struct call *call, struct json_object *obj,
                       bool cut_after)
{
    size_t len;
    const char *json =
        json_object_to_json_string_length(obj, SERVER_JSON_FLAGS, &len);

    evbuffer_add(call->out, "data: ", 6);
    evbuffer_add(call->out, json, len);
    evbuffer_add(call->out, "\n\n", 2);
    json_object_put(obj);

    if (cut_after)
        evhttp_send_reply_chunk_with_cb(call->req, call->out, cut_flushed,
                                        call);
    else
        evhttp_send_reply_chunk(call->req, call->out);
}

static void send_chunk(struct call *call, enum answer_chunk kind, size_t index,
                       bool cut_after)
{
    send_event(
        call,
        answer_chunk_json(&call->answer, kind, index, call->include_usage),
        cut_after);
}

static void send_stream_end(struct call *call)
{
    send_chunk(call, ANSWER_CHUNK_FINISH, 0, false);
    if (call->include_usage)
        send_chunk(call, ANSWER_CHUNK_USAGE, 0, false);

    evbuffer_add(call->out, "data: [DONE]\n\n", 14);
    evhttp_send_reply_chunk(call->req, call->out);
    detach(call);
    evhttp_send_reply_end(call->req);
    finish(call, call->include_usage);
}

static void send_midstream_error(struct call *call)
{
    struct json_object *obj = json_object_new_object();

    json_object_object_add(
        obj, "error",
        server_error_json("server_error",
                          "The server had an error while processing your "
                          "request. Sorry about that! (simulated)",
                          NULL, NULL));
    send_event(call, obj, false);
    detach(call);
    evhttp_send_reply_end(call->req);
    finish(call, false);
}

/* Chunks the stream sends before its fault takes over. */
static size_t chunks_before_fault(const struct call *call)
{
    size_t n = call->answer.nchunks;

    if (call->fault == FAULT_CUT)
        return n / 2;
    if (call->fault == FAULT_MIDSTREAM)
        return n < 2 * MIDSTREAM_CHUNKS ? n / 2 : MIDSTREAM_CHUNKS;
    return n;
}

/* Content chunk k is due at ttft + k * per_token; the end goes with the
 * last chunk. */
static uint64_t chunk_due(const struct call *call, size_t k)
{
    size_t n = call->answer.nchunks;
    size_t last = n > 0 ? n - 1 : 0;

    if (k > last)
        k = last;
    return call->start_ms + call->ttft_ms + (uint64_t)k * call->per_token_ms;
}

static void start_stream(struct call *call)
{
    bool cut_now = call->fault == FAULT_CUT && chunks_before_fault(call) == 0;

    add_common_headers(call, "text/event-stream; charset=utf-8");
    add_header(call, "Cache-Control", "no-cache");
    evhttp_send_reply_start(call->req, 200, "OK");
    call->started = true;
    send_chunk(call, ANSWER_CHUNK_ROLE, 0, cut_now);
}

/*
 * Sends every stream event due by now. Returns false once the call is
 * finished and freed; a cut call stays pending until its flush.
 */
static bool stream_step(struct call *call, uint64_t now)
{
    size_t stop = chunks_before_fault(call);

    for (;;) {
        if (call->fault == FAULT_CUT && call->next_chunk >= stop)
            return true;
        if (call->next_chunk >= stop) {
            if (call->fault == FAULT_MIDSTREAM)
                send_midstream_error(call);
            else
                send_stream_end(call);
            return false;
        }
        if (now < chunk_due(call, call->next_chunk)) {
            vclock_timer_arm(&call->timer, chunk_due(call, call->next_chunk));
            return true;
        }
        send_chunk(call, ANSWER_CHUNK_CONTENT, call->next_chunk,
                   call->fault == FAULT_CUT && call->next_chunk + 1 >= stop);
        call->next_chunk++;
    }
}

static uint64_t plain_due(const struct call *call)
{
    const struct answer *a = &call->answer;
    uint64_t tokens = (uint64_t)(a->answer_tokens + a->reasoning_tokens);

    return call->start_ms + call->ttft_ms + tokens * call->per_token_ms;
}

/* Sends what is due; returns true while the call is still pending. */
static bool call_step(struct call *call)
{
    uint64_t now = vclock_now(&call->sim->clock);
    bool plain = !call->stream || call->fault == FAULT_MALFORMED;

    if (plain) {
        if (now >= plain_due(call)) {
            bool cut = call->fault == FAULT_CUT; /* send may free call */

            send_plain(call);
            return cut;
        }
        vclock_timer_arm(&call->timer, plain_due(call));
        return true;
    }

    if (!call->started) {
        if (now < chunk_due(call, 0)) {
            vclock_timer_arm(&call->timer, chunk_due(call, 0));
            return true;
        }
        start_stream(call);
    }
    return stream_step(call, now);
}

static void call_fire(void *arg)
{
    call_step(arg);
}

/*
 * evhttp stops reading once a request is in, so a client that hangs up
 * during a stall would go unnoticed until we write. A peek tells EOF
 * from a pipelined request; on EOF, freeing the connection runs
 * call_closed, which frees the call and this event with it.
 */
static void call_watch(evutil_socket_t fd, short what, void *arg)
{
    struct call *call = arg;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n > 0) {
        event_del(call->watch);
        return;
    }
    evhttp_connection_free(call->evcon);
}

static void watch_client(struct call *call)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(call->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;

    if (fd < 0)
        return;
    call->watch =
        event_new(call->sim->base, fd, EV_READ | EV_PERSIST, call_watch, call);
    if (call->watch != NULL)
        event_add(call->watch, NULL);
}

/*
 * The client left before the answer ended. When libevent has already
 * detached the request from the dying connection it is ours to free;
 * otherwise (server shutdown) the connection frees it.
 */
static void call_closed(struct evhttp_connection *evcon, void *arg)
{
    struct call *call = arg;

    if (evhttp_request_get_connection(call->req) == NULL)
        evhttp_request_free(call->req);
    call->evcon = NULL;

    record(call, false, true);
    call_free(call);
}

void call_begin(struct call *call)
{
    /* A plain call cannot fail mid-stream; it fails as a 500 instead. */
    if (is_error_fault(call->fault) ||
        (call->fault == FAULT_MIDSTREAM && !call->stream)) {
        send_error_fault(call);
        finish(call, false);
        return;
    }

    call->start_ms = vclock_now(&call->sim->clock);
    if (call->fault == FAULT_STALL)
        call->start_ms += call->sim->cfg.stall_ms;

    /* Most calls finish at once; only pending ones pay for a watcher. */
    if (call->evcon != NULL)
        evhttp_connection_set_closecb(call->evcon, call_closed, call);
    if (call_step(call) && call->evcon != NULL)
        watch_client(call);
}
