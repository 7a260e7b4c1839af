/*
 * Delivers one answer on the simulator's clock: a plain reply at
 * ttft + tokens * per_token, or a paced SSE stream of the surface's
 * planned steps, bent by the requested fault, and torn down safely when
 * the client leaves first.
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
    [FAULT_529] = "529",
    [FAULT_SPENDCAP] = "spendcap",
    [FAULT_413] = "413",
    [FAULT_FAILED] = "failed",
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

static bool is_midstream(enum sim_fault fault)
{
    return fault == FAULT_MIDSTREAM || fault == FAULT_FAILED;
}

bool fault_refuses(enum sim_fault fault, bool stream)
{
    switch (fault) {
    case FAULT_429:
    case FAULT_500:
    case FAULT_503:
    case FAULT_529:
    case FAULT_SPENDCAP:
    case FAULT_413:
        return true;
    default:
        return is_midstream(fault) && !stream;
    }
}

static void call_fire(void *arg);
static void call_closed(struct evhttp_connection *evcon, void *arg);
static void call_watch(evutil_socket_t fd, short what, void *arg);

struct call *call_new(struct sim *sim, struct evhttp_request *req,
                      const struct call_ops *ops)
{
    struct call *call = util_xcalloc(1, sizeof(*call));

    call->sim = sim;
    call->ops = ops;
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

void call_plan_add(struct call *call, int kind, size_t index, int64_t group)
{
    struct call_step *step;

    /* Grow by doubling: a plan has a few steps per content chunk. */
    if ((call->nsteps & (call->nsteps - 1)) == 0) {
        size_t cap = call->nsteps ? 2 * call->nsteps : 2;

        call->steps = util_xrealloc(call->steps, cap * sizeof(*step));
    }
    step = &call->steps[call->nsteps++];
    step->kind = kind;
    step->index = index;
    step->group = group;
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
    json_object_put(call->payload);
    free(call->steps);
    free(call);
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

/* Output the usage sent covers: all of it, or what a failed stream
 * got out before it failed. */
static int64_t output_sent(const struct call *call)
{
    const struct answer *a = &call->answer;
    int64_t pieces = a->answer_tokens;

    if (is_midstream(call->fault) && call->stream)
        pieces = answer_pieces_upto(a, call_chunks_before_fault(call));
    return pieces + a->reasoning_tokens;
}

/* One /_sim/usage record for what this call sent. */
static void record(struct call *call, bool usage_sent, bool client_gone)
{
    struct json_object *rec = json_object_new_object();
    const struct answer *a = &call->answer;
    enum surface surface = call->ops->surface;

    put(rec, "id", call->refused ? NULL : string_or_null(a->id));
    put(rec, "surface", json_object_new_string(surface_name(surface)));
    put(rec, "model", string_or_null(a->model));
    put(rec, "stream", json_object_new_boolean(call->stream));
    put(rec, "usage", usage_sent ? call->ops->usage_json(call) : NULL);
    put(rec, "normalized",
        usage_sent ? answer_normalized_json(a, surface, output_sent(call))
                   : NULL);
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
    call->ops->add_headers(call);
    if (replay != NULL)
        add_header(call, "x-sim-replay", replay);
}

static const char *plain_text(struct call *call, struct json_object **obj,
                              size_t *len)
{
    *obj = call->ops->plain_json(call);
    return json_object_to_json_string_length(*obj, SERVER_JSON_FLAGS, len);
}

/* Closes the socket under the pending reply so the client sees it end
 * early: no more body, no final chunk, no end event. */
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
    const char *json = plain_text(call, &obj, &len);
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

    json = plain_text(call, &obj, &len);
    if (call->fault == FAULT_MALFORMED)
        len /= 2;
    add_common_headers(call, "application/json");
    evbuffer_add(call->out, json, len);
    json_object_put(obj);

    detach(call);
    evhttp_send_reply(call->req, 200, "OK", call->out);
    finish(call, call->fault != FAULT_MALFORMED);
}

void call_sse(struct evbuffer *out, const char *name, struct json_object *obj)
{
    size_t len;
    const char *json =
        json_object_to_json_string_length(obj, SERVER_JSON_FLAGS, &len);

    if (name != NULL)
        evbuffer_add_printf(out, "event: %s\n", name);
    evbuffer_add(out, "data: ", 6);
    evbuffer_add(out, json, len);
    evbuffer_add(out, "\n\n", 2);
    json_object_put(obj);
}

size_t call_chunks_before_fault(const struct call *call)
{
    size_t n = call->answer.nchunks;

    if (call->fault == FAULT_CUT)
        return n / 2;
    if (is_midstream(call->fault))
        return n < 2 * MIDSTREAM_CHUNKS ? n / 2 : MIDSTREAM_CHUNKS;
    return n;
}

/* True when step i is the first one a cut or mid-stream fault stops. */
static bool stopped_at(const struct call *call, size_t i)
{
    if (call->fault != FAULT_CUT && !is_midstream(call->fault))
        return false;
    if (i >= call->nsteps)
        return true;
    return call->steps[i].group >= (int64_t)call_chunks_before_fault(call);
}

/* Content chunk k is due at ttft + k * per_token; the end goes with the
 * last chunk, the events before the content with the first. */
static uint64_t step_due(const struct call *call, size_t i)
{
    size_t n = call->answer.nchunks;
    size_t last = n > 0 ? n - 1 : 0;
    int64_t group = i < call->nsteps ? call->steps[i].group : (int64_t)n;
    size_t k = group < 0 ? 0 : (size_t)group;

    if (k > last)
        k = last;
    return call->start_ms + call->ttft_ms + (uint64_t)k * call->per_token_ms;
}

static void end_stream(struct call *call, bool usage_sent)
{
    evhttp_send_reply_chunk(call->req, call->out);
    detach(call);
    evhttp_send_reply_end(call->req);
    finish(call, usage_sent);
}

static void start_stream(struct call *call)
{
    add_common_headers(call, "text/event-stream; charset=utf-8");
    add_header(call, "Cache-Control", "no-cache");
    evhttp_send_reply_start(call->req, 200, "OK");
    call->started = true;
}

/* Sends one step; the last step before a cut carries the cut with it. */
static void send_step(struct call *call)
{
    size_t i = call->next_step++;

    call->ops->render(call, i, call->out);
    if (call->fault == FAULT_CUT && stopped_at(call, call->next_step))
        evhttp_send_reply_chunk_with_cb(call->req, call->out, cut_flushed,
                                        call);
    else
        evhttp_send_reply_chunk(call->req, call->out);
}

/*
 * Sends every stream step due by now. Returns false once the call is
 * finished and freed; a cut call stays pending until its flush.
 */
static bool stream_step(struct call *call, uint64_t now)
{
    for (;;) {
        size_t i = call->next_step;

        if (call->fault == FAULT_CUT && i > 0 && stopped_at(call, i))
            return true;
        if (is_midstream(call->fault) && stopped_at(call, i)) {
            end_stream(call, call->ops->stream_error(call, call->out));
            return false;
        }
        if (i >= call->nsteps) {
            end_stream(call, call->ops->stream_has_usage(call));
            return false;
        }
        if (now < step_due(call, i)) {
            vclock_timer_arm(&call->timer, step_due(call, i));
            return true;
        }
        send_step(call);
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
        if (now < step_due(call, 0)) {
            vclock_timer_arm(&call->timer, step_due(call, 0));
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
    if (fault_refuses(call->fault, call->stream)) {
        call->refused = true;
        call->ops->refuse(call);
        finish(call, false);
        return;
    }

    if (call->stream)
        call->ops->plan(call);
    call->start_ms = vclock_now(&call->sim->clock);
    if (call->fault == FAULT_STALL)
        call->start_ms += call->sim->cfg.stall_ms;

    /* Most calls finish at once; only pending ones pay for a watcher. */
    if (call->evcon != NULL)
        evhttp_connection_set_closecb(call->evcon, call_closed, call);
    if (call_step(call) && call->evcon != NULL)
        watch_client(call);
}
