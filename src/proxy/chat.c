/*
 * One chat completion from arrival to ledger row. A call owns an arena
 * for everything it allocates; it is freed in call_finish(), the single
 * place every path ends, which also writes the ledger record.
 *
 * Streaming: the upstream SSE is split into events and each is forwarded
 * as soon as it is whole, so the caller sees tokens as they arrive. The
 * usage chunk Tollgate asked for on the caller's behalf is held back.
 */
#include "proxy/chat.h"
#include "proxy/call.h"
#include "proxy/policy.h"
#include "proxy/router.h"
#include "feedback/feedback.h"
#include "feedback/rework.h"
#include "metrics/metrics.h"

#include "auth/auth.h"
#include "upstream/openai.h"
#include "upstream/sse.h"
#include "util/clock.h"
#include "util/jsonedit.h"
#include "util/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SSE_EVENT_CAP (4 * 1024 * 1024)
/* A stream pauses its provider while more than this waits to be written
 * to a slow caller, and resumes once it has all gone out. */
#define STREAM_BACKLOG_MAX (256 * 1024)

static void on_client_close(struct evhttp_connection *conn, void *arg);

/* The ledger's endpoint column, by surface. */
static const char *const surface_names[] = {"chat.completions", "messages",
                                            "responses", "embeddings"};

static chat_call_t *call_new(gateway_t *gw, struct evhttp_request *req,
                             const cfg_key_t *key, surface_t surface)
{
    arena_t *arena = arena_new(16384);
    chat_call_t *call = arena_alloc(arena, sizeof(*call));
    ledger_outcome_t *rec;

    memset(call, 0, sizeof(*call));
    call->gw = gw;
    call->req = req;
    call->surface = surface;
    call->arena = arena;
    call->t0_mono = clock_mono_ms();
    buf_init(&call->resp, gw->config->max_response_bytes);
    buf_init(&call->text, gw->config->max_response_bytes);
    buf_init(&call->held, gw->config->max_response_bytes);
    sse_init(&call->sse, SSE_EVENT_CAP);

    rec = call->rec = arena_alloc(arena, sizeof(*rec));
    memset(rec, 0, sizeof(*rec));
    gateway_make_outcome_id(rec->id);
    rec->started_ms = clock_now_ms();
    rec->ttfb_ms = -1;
    rec->cost_status = COST_NONE;
    copy_str(rec->endpoint, sizeof(rec->endpoint), surface_names[surface]);
    copy_str(rec->key_id, sizeof(rec->key_id), key->name);
    copy_str(rec->team, sizeof(rec->team), key->team);
    copy_str(rec->owner, sizeof(rec->owner), key->owner);

    call->next = gw->calls;
    if (gw->calls != NULL)
        gw->calls->prev = call;
    gw->calls = call;
    gw->in_flight++;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req),
                                  on_client_close, call);
    /* While the call runs, the idle timeout must outlast it. */
    evhttp_connection_set_timeout(evhttp_request_get_connection(req),
                                  (int)(gw->config->total_timeout_ms / 1000) +
                                      60);
    return call;
}

/* Prices the attempt: the config's own price first, then its named
 * price entry, then the model the provider reported (a dated snapshot has
 * its own price), then the upstream id, then the configured name. */
static void price_attempt(chat_call_t *call)
{
    ledger_attempt_t *att = call->att;
    const price_t *price = NULL;
    const char *names[4] = {call->model->price_entry, call->resp_model,
                            call->model->upstream, call->model->name};
    cost_t cost;

    if (call->model->has_price)
        price = &call->model->price;
    for (int i = 0; price == NULL && i < 4; i++)
        if (names[i] != NULL && names[i][0] != '\0')
            price = billing_lookup_at(call->gw->prices, names[i],
                                      call->rec->started_ms / 1000);
    if (call->resp_model[0] != '\0')
        copy_str(att->upstream_model, sizeof(att->upstream_model),
                 call->resp_model);
    if (!att->usage.present && !call->unreachable &&
        (att->http_status == 200 || att->http_status == 0))
        answer_estimate(call);
    /* Usage Tollgate counted itself prices as COST_ESTIMATED. */
    cost = billing_cost(price, &att->usage);
    att->cost_status = cost.status;
    att->cost = cost.status == COST_PRICED ? cost.total : 0;
    att->cost_estimate = cost.status == COST_ESTIMATED ? cost.total : 0;
    att->cost_flags = cost.flags;
    if (price != NULL)
        billing_origin_format(price, att->price_source,
                              sizeof(att->price_source));
    if (call->gw->policy != NULL)
        policy_settle(call);
    if (cost.flags & COST_FLAG_TIER_FALLBACK)
        LOG(LOG_INFO, call->rec->id,
            "priced the %s tier by rule: the price entry lists no rates "
            "for it",
            service_tier_name(att->usage.service_tier));
}

static void usage_add(usage_t *sum, const usage_t *u)
{
    if (!u->present)
        return;
    sum->present = true;
    sum->input_tokens += u->input_tokens;
    sum->cached_tokens += u->cached_tokens;
    sum->cache_write_tokens += u->cache_write_tokens;
    sum->audio_in_tokens += u->audio_in_tokens;
    sum->output_tokens += u->output_tokens;
    sum->reasoning_tokens += u->reasoning_tokens;
    sum->audio_out_tokens += u->audio_out_tokens;
    sum->cache_write_1h_tokens += u->cache_write_1h_tokens;
    sum->web_searches += u->web_searches;
    sum->estimated |= u->estimated;
}

/* Rolls the attempts up into the outcome. An outcome is priced only when
 * every attempt that reached a provider was priced. */
static void outcome_total(ledger_outcome_t *rec)
{
    rec->cost = 0;
    rec->cost_estimate = 0;
    rec->cost_status = COST_NONE;
    memset(&rec->usage, 0, sizeof(rec->usage));
    for (int i = 0; i < rec->n_attempts; i++) {
        ledger_attempt_t *a = &rec->attempts[i];

        usage_add(&rec->usage, &a->usage);
        if (a->cost_status == COST_ESTIMATED)
            rec->cost_estimate += a->cost_estimate;
        if (a->cost_status == COST_NONE)
            continue;
        if (a->cost_status == COST_PRICED) {
            rec->cost += a->cost;
            if (rec->cost_status == COST_NONE)
                rec->cost_status = COST_PRICED;
        } else {
            rec->cost_status = a->cost_status;
        }
    }
}

static void log_outcome(const ledger_outcome_t *rec)
{
    char usd[40];

    if (log_level < LOG_INFO)
        return;
    if (rec->cost_status == COST_PRICED)
        pico_format_usd(rec->cost, usd, sizeof(usd));
    else
        copy_str(usd, sizeof(usd), cost_status_name(rec->cost_status));
    LOG(LOG_INFO, rec->id,
        "outcome key=%s task=%s model=%s status=%d error=%s stream=%d "
        "in=%lld cached=%lld out=%lld cost=%s latency_ms=%lld",
        rec->key_id, rec->task, rec->model[0] ? rec->model : "-",
        rec->http_status, rec->error_type[0] ? rec->error_type : "-",
        rec->streamed, (long long)rec->usage.input_tokens,
        (long long)rec->usage.cached_tokens,
        (long long)rec->usage.output_tokens, usd, (long long)rec->latency_ms);
}

/* A request the provider received and answered with no usage (a cut
 * stream, a timeout, a drain) may well be billed: never free. Its usage
 * is estimated and priced as such. Only a provider's error status or no
 * contact at all costs nothing. */
static void settle_attempt(chat_call_t *call)
{
    ledger_attempt_t *att = call->att;

    if (att == NULL || att->cost_status != COST_NONE || call->unreachable ||
        !(att->http_status == 200 || att->http_status == 0))
        return;
    /* A stream the caller left: what its provider reported so far (an
     * Anthropic message_start's exact input) counts. */
    if (call->reply_started)
        answer_stream_end(call);
    price_attempt(call);
}

static void stop_hangup_watch(chat_call_t *call)
{
    if (call->hangup_watch != NULL) {
        event_free(call->hangup_watch);
        call->hangup_watch = NULL;
    }
}

/* The one exit of every call: record, unlink, free. */
static void call_finish(chat_call_t *call)
{
    gateway_t *gw = call->gw;
    ledger_outcome_t *rec = call->rec;
    if (call->up != NULL) {
        upstream_cancel(call->up);
        call->up = NULL;
    }
    clock_timer_free(call->first_byte_timer);
    clock_timer_free(call->total_timer);
    clock_timer_free(call->backoff_timer);
    if (call->kick != NULL)
        event_free(call->kick);
    stop_hangup_watch(call);
    settle_attempt(call);
    if (call->att != NULL && call->att->error_type[0] == '\0')
        copy_str(call->att->error_type, sizeof(call->att->error_type),
                 rec->error_type);
    if (call->att != NULL)
        call->att->latency_ms = clock_mono_ms() - call->att_t0;
    rec->latency_ms = clock_mono_ms() - call->t0_mono;
    outcome_total(rec);
    policy_finish(call);
    /* One observation per ledger record: the lag gauge pairs them. */
    metrics_observe(metrics_of(gw), rec);
    rework_observe(gw, rec, call->rework_key);
    ledger_append(gw->ledger, rec);
    log_outcome(rec);

    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        gw->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    buf_free(&call->resp);
    buf_free(&call->text);
    buf_free(&call->held);
    sse_free(&call->sse);
    answer_free(call);
    arena_free(call->arena);
    gateway_call_done(gw);
}

/* Called before the last reply to the caller: after it, evhttp may free
 * the request, and the connection may serve another one. */
static void detach_client(chat_call_t *call)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(call->req);

    if (conn != NULL) {
        evhttp_connection_set_closecb(conn, NULL, NULL);
        evhttp_connection_set_timeout(
            conn, (int)((call->gw->config->client_timeout_ms + 999) / 1000));
    }
}

static void add_header(chat_call_t *call, const char *name, const char *value)
{
    evhttp_add_header(evhttp_request_get_output_headers(call->req), name,
                      value);
}

/* x-tollgate-cost-usd for a plain answer: the exact cost, "unpriced" when
 * the provider billed an amount we cannot know, 0 when nothing was billed
 * (refused here, or a provider error). */
static void add_cost_header(chat_call_t *call)
{
    const ledger_outcome_t *rec = call->rec;
    char usd[40];

    /* Every attempt so far: a cascade's earlier answers were billed. */
    outcome_total(call->rec);
    if (rec->cost_status == COST_NONE)
        pico_format_usd(0, usd, sizeof(usd));
    else if (rec->cost_status == COST_PRICED)
        pico_format_usd(rec->cost, usd, sizeof(usd));
    else if (rec->cost_status == COST_ESTIMATED)
        copy_str(usd, sizeof(usd), "estimated");
    else if (rec->cost_status == COST_UNPRICED)
        copy_str(usd, sizeof(usd), "unpriced");
    else
        copy_str(usd, sizeof(usd), "unknown"); /* billed, usage lost */
    add_header(call, "x-tollgate-cost-usd", usd);
    if (rec->cost_status == COST_ESTIMATED) {
        pico_format_usd(rec->cost_estimate + rec->cost, usd, sizeof(usd));
        add_header(call, "x-tollgate-cost-estimate-usd", usd);
    }
}

/* Ends the call with an error answer (nothing was sent yet). */
void call_fail(chat_call_t *call, int status, const char *type,
               const char *code, const char *param, const char *message)
{
    ledger_outcome_t *rec = call->rec;

    rec->http_status = status;
    copy_str(rec->error_type, sizeof(rec->error_type), code ? code : type);
    add_header(call, "x-tollgate-outcome", rec->id);
    settle_attempt(call);
    add_cost_header(call);
    detach_client(call);
    gateway_send_error(call->req, status, type, code, param, message);
    call_finish(call);
}

/* Bytes written to the caller but not yet sent. */
static size_t stream_backlog(chat_call_t *call)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(call->req);
    struct bufferevent *bev =
        conn ? evhttp_connection_get_bufferevent(conn) : NULL;

    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* evhttp calls this once what was written has gone out to the caller. */
static void on_caller_drained(struct evhttp_connection *conn, void *arg)
{
    chat_call_t *call = arg;

    if (call->paused && call->up != NULL) {
        call->paused = false;
        upstream_resume(call->up);
    }
}

static void stream_write(chat_call_t *call, const char *bytes, size_t len)
{
    struct evbuffer *out = evbuffer_new();

    if (out == NULL)
        die_oom();
    evbuffer_add(out, bytes, len);
    evhttp_send_reply_chunk_with_cb(call->req, out, on_caller_drained, call);
    evbuffer_free(out);
}

/* Ends a stream that had already started: tell the caller in the stream
 * itself, as OpenAI does, since the status line is long gone. */
static void stream_fail(chat_call_t *call, const char *code,
                        const char *message)
{
    char *event;

    /* What a cut stream reported is at most a lower bound. */
    answer_stream_end(call);
    answer_estimate(call);
    price_attempt(call);
    copy_str(call->rec->error_type, sizeof(call->rec->error_type), code);
    event = answer_stream_error(call, code, message);
    stream_write(call, event, strlen(event));
    detach_client(call);
    evhttp_send_reply_end(call->req);
    call_finish(call);
}

static void on_client_close(struct evhttp_connection *conn, void *arg)
{
    chat_call_t *call = arg;

    /* evhttp has detached the request; replying to it now frees it. */
    call->client_gone = true;
    copy_str(call->rec->error_type, sizeof(call->rec->error_type),
             "client_disconnected");
    call->rec->http_status = 499;
    if (call->reply_started)
        evhttp_send_reply_end(call->req);
    else
        evhttp_send_reply(call->req, 499, "Client Closed Request", NULL);
    call_finish(call);
}

/*
 * evhttp stops reading a connection while its reply is pending, so a
 * caller who hangs up during a plain call would go unnoticed until the
 * answer is written, and the provider would go on generating for nobody.
 * While the call waits, a peek at the socket tells EOF from data.
 */
static void on_hangup_readable(evutil_socket_t fd, short what, void *arg)
{
    chat_call_t *call = arg;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    stop_hangup_watch(call);
    if (n > 0)
        return; /* a pipelined request: evhttp reads it later */
    LOG(LOG_INFO, call->rec->id, "caller hung up; stopping the call");
    call->client_gone = true;
    copy_str(call->rec->error_type, sizeof(call->rec->error_type),
             "client_disconnected");
    call->rec->http_status = 499;
    detach_client(call);
    evhttp_send_reply(call->req, 499, "Client Closed Request", NULL);
    call_finish(call);
}

static void start_hangup_watch(chat_call_t *call)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(call->req);
    struct bufferevent *bev =
        conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;

    if (fd < 0 || call->hangup_watch != NULL)
        return;
    call->hangup_watch = event_new(call->gw->base, fd, EV_READ | EV_PERSIST,
                                   on_hangup_readable, call);
    if (call->hangup_watch == NULL)
        die_oom();
    event_add(call->hangup_watch, NULL);
}

static void start_stream_reply(chat_call_t *call)
{
    /* From here a write to a gone caller fails and evhttp says so. */
    stop_hangup_watch(call);
    add_header(call, "Content-Type", "text/event-stream");
    add_header(call, "Cache-Control", "no-cache");
    add_header(call, "x-tollgate-outcome", call->rec->id);
    /* Which configured model answered: after a cascade, not the one
     * asked for. */
    if (call->model != NULL)
        add_header(call, "x-tollgate-model", call->model->name);
    if (call->request_id[0] != '\0')
        add_header(call, "x-request-id", call->request_id);
    call->rec->http_status = 200;
    evhttp_send_reply_start(call->req, 200, "OK");
    call->reply_started = true;
}

static int on_sse_event(void *ctx, const sse_event_t *ev)
{
    chat_call_t *call = ctx;

    const char *out;
    size_t len;

    if (call->client_gone)
        return -1;
    answer_stream_event(call, ev, &out, &len);
    if (len > 0 && call->buffering) {
        if (buf_append(&call->held, out, len) < 0)
            return -1; /* past max_response_bytes: cut like a plain one */
    } else if (len > 0) {
        stream_write(call, out, len);
    }
    return 0;
}

static void on_up_headers(void *ctx, int status, const char *content_type,
                          const char *retry_after, const char *request_id)
{
    chat_call_t *call = ctx;

    call->up_status = status;
    call->att->http_status = status;
    copy_str(call->content_type, sizeof(call->content_type), content_type);
    copy_str(call->retry_after, sizeof(call->retry_after), retry_after);
    copy_str(call->request_id, sizeof(call->request_id), request_id);
    call->sse_mode = call->stream && status == 200 &&
                     strncmp(content_type, "text/event-stream", 17) == 0;
}

static int on_up_data(void *ctx, const char *data, size_t len)
{
    chat_call_t *call = ctx;

    if (call->client_gone)
        return -1;
    if (call->rec->ttfb_ms < 0) {
        call->rec->ttfb_ms = clock_mono_ms() - call->t0_mono;
        call->att->ttfb_ms = call->rec->ttfb_ms;
        clock_timer_cancel(call->first_byte_timer);
    }
    if (!call->sse_mode) {
        if (buf_append(&call->resp, data, len) < 0) {
            call->too_large = true;
            return -1;
        }
        return 0;
    }
    if (!call->reply_started && !call->buffering)
        start_stream_reply(call);
    /* A caller reading slower than the provider writes: hold the bytes in
     * curl and pause the transfer instead of buffering them here. */
    if (stream_backlog(call) > STREAM_BACKLOG_MAX) {
        call->paused = true;
        return UPSTREAM_PAUSE;
    }
    return sse_feed(&call->sse, data, len, on_sse_event, call) < 0 ? -1 : 0;
}

static bool try_next(chat_call_t *call, int status, const char *body,
                     bool check_failed);
static void mark_failure(chat_call_t *call, int status, bool check_failed);

/* A held stream whose checks passed (or that may not be retried) goes
 * out to the caller as it came. */
static void flush_held(chat_call_t *call)
{
    start_stream_reply(call);
    if (call->held.len > 0)
        stream_write(call, call->held.data, call->held.len);
}

static void finish_stream(chat_call_t *call, int curl_code)
{
    bool whole = answer_stream_end(call);
    bool passed;

    if (curl_code != 0 || sse_pending(&call->sse) > 0 || !whole) {
        if (call->buffering && !call->reply_started) {
            /* Nothing went out yet: another model may still answer. */
            settle_attempt(call);
            if (try_next(call, 0, NULL, false))
                return;
            call->buffering = false;
            call_fail(call, 502, "upstream_error", "upstream_cut", NULL,
                      "the provider's stream ended before it was complete");
            return;
        }
        stream_fail(call, "upstream_cut",
                    "the provider's stream ended before it was complete");
        return;
    }
    if (call->stream_error)
        copy_str(call->rec->error_type, sizeof(call->rec->error_type),
                 "upstream_stream_error");
    price_attempt(call);
    passed = route_check(call);
    call->rec->useful = call->saw_content && !call->stream_error && passed;
    if (!passed)
        mark_failure(call, 200, true);
    if (!passed && call->buffering && try_next(call, 200, NULL, true))
        return;
    if (call->buffering)
        flush_held(call);
    detach_client(call);
    evhttp_send_reply_end(call->req);
    call_finish(call);
}

static void reply_plain(chat_call_t *call, int status)
{
    struct evbuffer *out = evbuffer_new();

    if (out == NULL)
        die_oom();
    add_header(call, "Content-Type", "application/json");
    add_header(call, "x-tollgate-outcome", call->rec->id);
    /* Which configured model answered: after a cascade, not the one
     * asked for. */
    if (call->model != NULL)
        add_header(call, "x-tollgate-model", call->model->name);
    add_cost_header(call);
    if (call->retry_after[0] != '\0')
        add_header(call, "retry-after", call->retry_after);
    if (call->request_id[0] != '\0')
        add_header(call, "x-request-id", call->request_id);
    evbuffer_add(out, call->reply_body, call->reply_len);
    call->rec->http_status = status;
    detach_client(call);
    evhttp_send_reply(call->req, status, NULL, out);
    evbuffer_free(out);
    call_finish(call);
}

/* A plain answer from the provider: price it and pass it on unchanged. */
static void finish_plain(chat_call_t *call)
{
    struct json_object *obj = NULL;
    int status = call->up_status;

    if (call->resp.len > 0)
        obj = json_tokener_parse(call->resp.data);
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        call->att->cost_status = COST_USAGE_MISSING;
        if (status == 200) {
            call_fail(call, 502, "upstream_error",
                      "upstream_malformed_response", NULL,
                      "the provider answered with a body that is not "
                      "valid JSON");
            return;
        }
        call->att->cost_status = COST_NONE;
        snprintf(call->rec->error_type, sizeof(call->rec->error_type),
                 "upstream_%d", status);
        call_fail(call, status, "upstream_error", "upstream_error", NULL,
                  "the provider answered with an error that is not JSON");
        return;
    }
    status = answer_plain(call, obj, status);
    json_object_put(obj);
    if (call->up_status == 200) {
        price_attempt(call);
        if (route_check(call)) {
            reply_plain(call, status);
            return;
        }
        call->rec->useful = false;
        if (!try_next(call, 200, NULL, true))
            reply_plain(call, status);
        return;
    }
    snprintf(call->rec->error_type, sizeof(call->rec->error_type),
             "upstream_%d", call->up_status);
    if (call->att->usage.present)
        price_attempt(call);
    if (try_next(call, call->up_status, call->resp.data, false))
        return;
    if (call->overflow)
        call_fail(call, 400, "invalid_request_error", "context_length_exceeded",
                  "messages",
                  "the prompt does not fit the context window of any model "
                  "this task may use");
    else
        reply_plain(call, status);
}

static void fail_transport(chat_call_t *call, int curl_code, const char *error)
{
    LOG(LOG_WARN, call->rec->id, "upstream %s: %s", call->model->provider->name,
        error);
    call->unreachable =
        upstream_code_unreachable(curl_code) && call->att->http_status == 0;
    if (!call->reply_started) {
        settle_attempt(call);
        if (try_next(call, 0, NULL, false))
            return;
    }
    if (call->reply_started) {
        stream_fail(call, "upstream_cut",
                    "the provider's connection dropped mid-stream");
    } else if (upstream_code_unreachable(curl_code)) {
        call_fail(call, 502, "upstream_error", "upstream_unreachable", NULL,
                  "the provider could not be reached");
    } else if (upstream_code_timeout(curl_code)) {
        call_fail(call, 504, "upstream_error", "upstream_timeout", NULL,
                  "the provider did not answer in time");
    } else if (call->too_large) {
        call_fail(call, 502, "upstream_error", "upstream_response_too_large",
                  NULL,
                  "the provider's answer is larger than "
                  "max_response_bytes");
    } else {
        call_fail(call, 502, "upstream_error", "upstream_dropped", NULL,
                  "the provider's connection dropped before the answer "
                  "was complete");
    }
}

static void on_up_done(void *ctx, int curl_code, const char *error)
{
    chat_call_t *call = ctx;

    call->up = NULL;
    if (call->client_gone)
        return;
    if (call->sse_mode && (call->reply_started || call->buffering))
        finish_stream(call, curl_code);
    else if (curl_code != 0)
        fail_transport(call, curl_code, error);
    else
        finish_plain(call);
}

static void on_timeout(void *arg)
{
    chat_call_t *call = arg;

    upstream_cancel(call->up);
    call->up = NULL;
    if (call->reply_started) {
        stream_fail(call, "upstream_timeout",
                    "the provider stopped sending before the stream was "
                    "complete");
        return;
    }
    copy_str(call->att->error_type, sizeof(call->att->error_type),
             "upstream_timeout");
    settle_attempt(call);
    if (try_next(call, 0, NULL, false))
        return;
    call_fail(call, 504, "upstream_error", "upstream_timeout", NULL,
              "the provider did not answer in time");
}

static void send_upstream(chat_call_t *call)
{
    const config_t *cfg = call->gw->config;
    const cfg_provider_t *prov = call->model->provider;
    upstream_request_t rq = {
        .body = call->body,
        .body_len = call->body_len,
        .connect_timeout_ms =
            clock_is_virtual() ? 0 : (long)cfg->connect_timeout_ms,
    };
    upstream_handlers_t h = {on_up_headers, on_up_data, on_up_done};
    ledger_attempt_t *att = &call->rec->attempts[call->rec->n_attempts++];

    request_upstream(call, &rq);
    call->att = att;
    call->att_t0 = clock_mono_ms();
    att->attempt_no = call->rec->n_attempts;
    copy_str(att->reason, sizeof(att->reason),
             call->next_reason ? call->next_reason : "first");
    copy_str(att->model, sizeof(att->model), call->model->name);
    copy_str(att->upstream_model, sizeof(att->upstream_model),
             call->model->upstream);
    copy_str(att->provider, sizeof(att->provider), prov->name);
    att->started_ms = clock_now_ms();
    att->ttfb_ms = -1;
    att->cost_status = COST_NONE;
    copy_str(call->rec->model, sizeof(call->rec->model), call->model->name);

    call->up = upstream_start(call->gw->upstream, &rq, &h, call);
    if (call->up == NULL) {
        call->unreachable = true;
        call_fail(call, 502, "upstream_error", "upstream_unreachable", NULL,
                  "the gateway could not start the upstream request");
        return;
    }
    call->first_byte_timer = clock_timer_new(on_timeout, call);
    call->total_timer = clock_timer_new(on_timeout, call);
    clock_timer_arm(call->first_byte_timer, cfg->first_byte_timeout_ms);
    clock_timer_arm(call->total_timer, cfg->total_timeout_ms);
    start_hangup_watch(call);
}

/* The state one attempt leaves behind, cleared for the next. */
static void reset_attempt(chat_call_t *call)
{
    stop_hangup_watch(call);
    clock_timer_free(call->first_byte_timer);
    clock_timer_free(call->total_timer);
    call->first_byte_timer = call->total_timer = NULL;
    call->up = NULL;
    buf_consume(&call->resp, call->resp.len);
    buf_consume(&call->text, call->text.len);
    buf_consume(&call->held, call->held.len);
    sse_free(&call->sse);
    sse_init(&call->sse, SSE_EVENT_CAP);
    answer_free(call);
    call->up_status = 0;
    call->content_type[0] = call->retry_after[0] = '\0';
    call->request_id[0] = call->resp_model[0] = '\0';
    call->finish_reason[0] = '\0';
    call->sse_mode = call->too_large = call->unreachable = false;
    call->saw_content = call->stream_error = call->paused = false;
    call->est_out = 0;
    call->rec->useful = false;
    call->rec->error_type[0] = '\0';
    call->rec->ttfb_ms = -1;
}

static const struct timeval zero_tv = {0, 0};

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    send_upstream(arg);
}

static void on_backoff(void *arg)
{
    send_upstream(arg);
}

/* The caller's bytes are not NUL-terminated: parse with their length. */
static struct json_object *parse_len(const char *text, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *obj;

    if (tok == NULL)
        die_oom();
    obj = json_tokener_parse_ex(tok, text, (int)len);
    json_tokener_free(tok);
    return obj;
}

/* The next request body: the caller's, rebuilt for the new model, and
 * for a re-ask with the failed answer and the reason appended. */
static bool rebuild_body(chat_call_t *call, route_step_t step,
                         const char *answer, size_t answer_len)
{
    struct json_object *obj = NULL;
    int rc;

    if (step == STEP_REASK &&
        request_reask(call, answer, answer_len, call->check_failures) < 0)
        return false;
    if (!request_check_route(call))
        return false; /* answered */
    if (call->translate) {
        obj = parse_len(call->orig_body, call->orig_len);
        rc = obj ? request_translate(call, obj) : -EINVAL;
        json_object_put(obj);
        if (rc == -EINVAL && obj != NULL)
            return false; /* answered */
    } else {
        rc = request_build_body(call, call->orig_body, call->orig_len);
    }
    return rc == 0;
}

/* Why the attempt failed, on the attempt itself: the outcome's own
 * error_type is cleared for the next attempt. */
static void mark_failure(chat_call_t *call, int status, bool check_failed)
{
    ledger_attempt_t *att = call->att;

    if (att->error_type[0] != '\0')
        return;
    if (check_failed)
        copy_str(att->error_type, sizeof(att->error_type), "check_failed");
    else if (call->rec->error_type[0] != '\0')
        copy_str(att->error_type, sizeof(att->error_type),
                 call->rec->error_type);
    else if (status > 0)
        snprintf(att->error_type, sizeof(att->error_type), "upstream_%d",
                 status);
    else
        copy_str(att->error_type, sizeof(att->error_type),
                 call->unreachable ? "upstream_unreachable"
                                   : "upstream_dropped");
}

/*
 * Another attempt, when the router has one and the budget takes it:
 * returns true when it was started (now, or after a backoff), and false
 * when the caller must be answered with this attempt's result.
 */
static bool try_next(chat_call_t *call, int status, const char *body,
                     bool check_failed)
{
    const cfg_model_t *was = call->model;
    route_step_t step;
    const char *answer;
    size_t answer_len;

    if (call->client_gone || call->gw->draining)
        return false;
    mark_failure(call, status, check_failed);
    step = route_next(call, status, body, check_failed);
    if (step == STEP_DONE)
        return false;
    if (call->gw->policy != NULL && !policy_next(call)) {
        call->model = was;
        return false;
    }
    LOG(LOG_INFO, call->rec->id, "attempt %d %s: %s -> %s",
        call->rec->n_attempts, route_step_reason(step), was->name,
        call->model->name);
    call->att->latency_ms = clock_mono_ms() - call->att_t0;
    /* The re-ask quotes the failed answer, which the reset clears. */
    answer = arena_strndup(call->arena, call->text.data ? call->text.data : "",
                           call->text.len);
    answer_len = call->text.len;
    reset_attempt(call);
    /* Every step but a re-ask sends the caller's own (trimmed) request. */
    call->orig_body = call->base_body;
    call->orig_len = call->base_len;
    if (!rebuild_body(call, step, answer, answer_len)) {
        if (call->rec->http_status == 0)
            call_fail(call, 502, "upstream_error", "reroute_failed", NULL,
                      "the request could not be rebuilt for the next "
                      "model");
        return true;
    }
    answer_init(call);
    call->next_reason = route_step_reason(step);
    /* A caller who leaves during the wait ends the call at once. */
    start_hangup_watch(call);
    if (call->delay_ms > 0) {
        if (call->backoff_timer == NULL)
            call->backoff_timer = clock_timer_new(on_backoff, call);
        clock_timer_arm(call->backoff_timer, call->delay_ms);
    } else {
        /* Not from inside curl's callback: on the next loop turn. */
        if (call->kick == NULL)
            call->kick = evtimer_new(call->gw->base, on_kick, call);
        if (call->kick == NULL)
            die_oom();
        evtimer_add(call->kick, &zero_tv);
    }
    return true;
}

static bool route_call(chat_call_t *call, struct json_object **objp,
                       const char *body, size_t len)
{
    struct json_object *obj = *objp;
    int rc;

    call->model =
        config_find_model(call->gw->config, call->rec->requested_model);
    if (call->model == NULL) {
        call_fail(call, 404, "invalid_request_error", "model_not_found",
                  "model",
                  arena_printf(call->arena,
                               "the model '%.100s' is not "
                               "configured on this gateway",
                               call->rec->requested_model));
        return false;
    }
    if (call->gw->router != NULL)
        route_start(call, obj);
    call->buffering = call->stream && call->rt != NULL &&
                      call->rt->checks != NULL &&
                      checks_any(call->rt->checks) &&
                      (call->rt->cfg->stream_checks == NULL ||
                       strcmp(call->rt->cfg->stream_checks, "buffer") == 0);
    if (call->gw->policy != NULL)
        policy_prepare(call);
    if (call->gw->router != NULL) {
        route_trim(call, objp);
        obj = *objp;
        body = call->orig_body;
        len = call->orig_len;
    }
    call->base_body = call->orig_body;
    call->base_len = call->orig_len;
    if (!request_check_route(call))
        return false;
    rc = call->translate ? request_translate(call, obj)
                         : request_build_body(call, body, len);
    if (rc == -EINVAL && call->translate)
        return false; /* answered */
    if (rc < 0) {
        call_fail(call, 400, "invalid_request_error", "invalid_json", NULL,
                  "the request body could not be edited");
        return false;
    }
    answer_init(call);
    return true;
}

/* What the request says about earlier outcomes: the rework key of its
 * last user turn, and feedback on an earlier answer in its header (a
 * header that does not parse is ignored). */
static void note_caller(chat_call_t *call, const cfg_key_t *key,
                        struct json_object *obj)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(call->req);
    const char *value = evhttp_find_header(h, "x-tollgate-feedback");
    feedback_t fb;

    rework_key(key->name, call->rec->task, call->surface, obj,
               call->rework_key);
    if (value != NULL && feedback_from_header(value, &fb) == 0)
        feedback_submit(call->gw, key->name, false, FEEDBACK_FROM_HEADER, &fb,
                        NULL, NULL);
}

static void handle_request(chat_call_t *call, const cfg_key_t *key)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(call->req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    struct json_object *obj;
    bool ok;

    call->orig_body = body;
    call->orig_len = len;
    obj = request_parse(call, body, len);
    if (obj == NULL)
        return;
    ok = request_read(call, obj, key);
    if (ok)
        note_caller(call, key, obj);
    ok = ok && route_call(call, &obj, body, len);
    json_object_put(obj);
    if (ok && call->gw->policy != NULL)
        policy_admit(call, send_upstream);
    else if (ok)
        send_upstream(call);
}

/* Continues chat_handle() once auth has found the caller's key (or not);
 * it may run later, after the key ring reloaded from disk. */
static void on_caller(gateway_t *gw, struct evhttp_request *req,
                      const cfg_key_t *key, int why, void *arg)
{
    surface_t surface = (surface_t)(intptr_t)arg;
    chat_call_t *call;

    if (key == NULL) {
        auth_send_refusal(req, why, surface == SURFACE_MESSAGES);
        return;
    }
    if (ledger_admit(gw->ledger) < 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "retry-after",
                          "1");
        gateway_send_error(req, 503, "server_error", "ledger_full", NULL,
                           "the gateway's ledger is catching up; retry "
                           "shortly");
        return;
    }
    call = call_new(gw, req, key, surface);
    handle_request(call, key);
}

void chat_handle(gateway_t *gw, struct evhttp_request *req, surface_t surface)
{
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        gateway_send_error(req, 405, "invalid_request_error",
                           "method_not_allowed", NULL,
                           "use POST for this endpoint");
        return;
    }
    /* Anthropic's SDK sends its key as x-api-key. */
    auth_resolve(gw, req, surface == SURFACE_MESSAGES, on_caller,
                 (void *)(intptr_t)surface);
}

void chat_cut_all(gateway_t *gw)
{
    while (gw->calls != NULL) {
        chat_call_t *call = gw->calls;

        upstream_cancel(call->up);
        call->up = NULL;
        if (call->reply_started)
            stream_fail(call, "shutting_down", "the gateway is shutting down");
        else
            call_fail(call, 503, "server_error", "shutting_down", NULL,
                      "the gateway is shutting down");
    }
}
