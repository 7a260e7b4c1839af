/*
 * The state of one model call, shared by the files of the proxy: chat.c
 * runs its life, request.c reads and rewrites what the caller sent.
 * Internal to src/proxy.
 */
#ifndef TOLLGATE_PROXY_CALL_H
#define TOLLGATE_PROXY_CALL_H

#include "config/config.h"
#include "http/gateway.h"
#include "budget/budget.h"
#include "budget/ratelimit.h"
#include "ledger/ledger.h"
#include "proxy/translate.h"
#include "proxy/chat.h"
#include "upstream/sse.h"
#include "upstream/upstream.h"
#include "upstream/usage.h"
#include "util/arena.h"
#include "util/clock.h"

#include <stdbool.h>
#include <stdio.h>

struct evhttp_request;
struct event;
struct json_object;

typedef struct chat_call {
    gateway_t *gw;
    struct evhttp_request *req;
    surface_t surface;
    bool translate; /* OpenAI chat caller, Anthropic provider */
    arena_t *arena;
    struct chat_call *prev, *next;
    const cfg_model_t *model;
    ledger_outcome_t *rec;
    ledger_attempt_t *att;
    const char *body;
    size_t body_len;
    bool stream;
    bool caller_wants_usage;
    upstream_call_t *up;
    int up_status;
    char content_type[128];
    char retry_after[32];
    char request_id[128];
    buf_t resp;
    sse_parser_t sse;
    bool sse_mode;
    bool reply_started;
    bool client_gone;
    bool unreachable; /* the request never reached the provider */
    bool too_large;   /* the answer passed max_response_bytes */
    bool saw_content;
    bool stream_error;
    bool paused; /* upstream paused: the caller reads slowly */
    char resp_model[128];
    int64_t t0_mono;
    clock_timer_t *first_byte_timer;
    clock_timer_t *total_timer;
    struct event *hangup_watch; /* the caller's socket while we wait */

    /* The answer, read in the provider's dialect (answer.c). */
    bool gemini;
    usage_anthropic_stream_t anth;
    usage_responses_stream_t responses;
    translate_stream_t ts;
    buf_t tout;             /* translated bytes for the caller */
    const char *reply_body; /* a plain answer as the caller gets it */
    size_t reply_len;
    int64_t est_out; /* estimated tokens of the text that passed */

    /* The policy stage (policy.c). */
    int64_t max_tokens; /* the caller's output cap; 0 when none */
    int64_t max_sent;   /* the cap sent upstream; 0 when none */
    int64_t est_tokens; /* input estimate + max_sent, for TPM */
    pico_t worst;       /* worst-case cost of one attempt */
    bool budgeted;      /* a hard budget applies to the caller */
    ratelimit_ticket_t ticket;
    budget_reservation_t res;
    int res_budgets;        /* budgets the settled hold covered */
    struct policy_job *job; /* an approval check in flight, or NULL */
    void (*after_policy)(struct chat_call *call); /* when it may go */

    /* Routing between attempts (router.c). */
    struct route_task *rt; /* the task's route, or NULL */
    int tier;              /* index in the route, -1 outside it */
    int retries;           /* retries of the current model */
    int reasks;
    int64_t delay_ms; /* before the next attempt */
    const cfg_model_t *visited[LEDGER_MAX_ATTEMPTS];
    int n_visited;
    const char *orig_body; /* the request as it is sent next */
    size_t orig_len;
    const char *base_body; /* the caller's request, after trimming */
    size_t base_len;
    int64_t est_in_tokens; /* the request's input, estimated */
    bool overflow;         /* no model's window takes the prompt */
    buf_t text;            /* the answer's text, for checks */
    char finish_reason[32];
    char check_failures[256];
    bool buffering; /* a stream held until its checks pass */
    buf_t held;     /* the held stream's bytes */
    clock_timer_t *backoff_timer;
    struct event *kick;      /* starts the next attempt on a fresh turn */
    const char *next_reason; /* the next attempt's ledger reason */
    int64_t att_t0;          /* when the attempt was sent, monotonic */
    char rework_key[65];     /* the asked thing, for linking repeats */
} chat_call_t;

static inline void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* Ends the call with an error answer (nothing was sent to the caller
 * yet), in the caller's format. */
void call_fail(chat_call_t *call, int status, const char *type,
               const char *code, const char *param, const char *message);

/* Parses the body once; answers 400 and returns NULL when it is not a
 * JSON object. The caller puts the result. */
struct json_object *request_parse(chat_call_t *call, const char *body,
                                  size_t len);

/* Validates the request for the call's surface and fills the record's
 * task, requested model and stream flag; returns false after answering. */
bool request_read(chat_call_t *call, struct json_object *obj,
                  const cfg_key_t *key);

/* Builds call->body: the caller's bytes with the model id swapped for the
 * provider's and, when streaming, usage asked for. Returns 0 or a
 * negative errno code. */
int request_build_body(chat_call_t *call, const char *body, size_t len);

/* An OpenAI chat request rewritten for an Anthropic model into
 * call->body. Returns 0, or -EINVAL after answering 400. */
int request_translate(chat_call_t *call, struct json_object *obj);

/* Appends the failed answer and a message naming what failed to the
 * caller's messages (call->orig_body is replaced). 0 or -errno. */
int request_reask(chat_call_t *call, const char *answer, size_t len,
                  const char *failures);

/* Checks that the model's provider serves the call's surface and sets
 * call->translate; returns false after answering 400 when it does not. */
bool request_check_route(chat_call_t *call);

/* Fills the URL, key and headers of the upstream request for the call's
 * surface and provider kind (strings live in the call's arena). */
void request_upstream(chat_call_t *call, upstream_request_t *rq);

/* The price the call's model is held and reported at before the
 * provider answers (config price, price entry, upstream id, name). */
const price_t *call_price(const chat_call_t *call);
/* The same for another model of the call's route, at the call's time. */
const price_t *model_price(const chat_call_t *call, const cfg_model_t *m);

/* Sets up the answer state once the route is known. */
void answer_init(chat_call_t *call);
void answer_free(chat_call_t *call);

/* One upstream SSE event: reads what it says and gives the bytes the
 * caller should see (the event itself, its translation, or nothing). */
int answer_stream_event(chat_call_t *call, const sse_event_t *ev,
                        const char **out, size_t *out_len);

/* The stream has ended: puts its usage and model into the attempt.
 * Returns false when it ended before its provider's last event. */
bool answer_stream_end(chat_call_t *call);

/* The event that tells a streaming caller the stream failed. */
char *answer_stream_error(chat_call_t *call, const char *code,
                          const char *message);

/* A plain answer (obj parsed from call->resp): reads usage and model,
 * sets call->reply_body for the caller (translated when the route
 * translates) and returns the status the caller gets. */
int answer_plain(chat_call_t *call, struct json_object *obj, int status);

/* Fills in usage the provider never sent, marked estimated. */
void answer_estimate(chat_call_t *call);

#endif
