/*
 * The gateway process: one libevent loop serving callers (evhttp) and
 * calling providers (curl multi), with the price table and the ledger.
 * Paths are dispatched here; each surface has its own handler.
 */
#ifndef TOLLGATE_GATEWAY_H
#define TOLLGATE_GATEWAY_H

#include "billing/billing.h"
#include "config/config.h"
#include "ledger/ledger.h"
#include "upstream/upstream.h"

#include <stdbool.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct evhttp_bound_socket;
struct chat_call;
struct policy;
struct worker;
struct keyring;
struct router;

typedef struct gateway {
    const config_t *config;
    price_table_t *prices;
    ledger_t *ledger;
    upstream_t *upstream;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *listener;
    struct chat_call *calls; /* calls in flight, a doubly-linked list */
    size_t in_flight;
    bool draining;
    bool test_clock;
    struct clock_timer *drain_timer;
    int bound_port;
    struct policy *policy;   /* budgets, rate limits, approval rules */
    struct worker *worker;   /* disk work off the loop (keys, approvals) */
    struct keyring *keyring; /* keys made at run time (admin API, CLI) */
    struct router *router;   /* task routes, checks, learned pass rates */
} gateway_t;

typedef struct gateway_opts {
    bool test_clock; /* --test-clock: time moves on request */
} gateway_opts_t;

/*
 * Loads prices, opens the ledger, binds the listener and runs the loop
 * until SIGTERM or SIGINT has drained every call. Returns a process exit
 * code, printing the reason for a failure to stderr.
 */
int gateway_serve(const config_t *config, const gateway_opts_t *opts);

/*
 * Loads the price table the config asks for (built-in, then each file,
 * then config overrides). Prints problems to errout. NULL on failure.
 */
price_table_t *gateway_load_prices(const config_t *config, FILE *errout);

/* True when the request came to /v1/messages: its errors take
 * Anthropic's shape. */
bool gateway_is_anthropic_path(struct evhttp_request *req);

/* Answers with an error in OpenAI's shape, or Anthropic's on
 * /v1/messages. param and code may be NULL. */
void gateway_send_error(struct evhttp_request *req, int status,
                        const char *type, const char *code, const char *param,
                        const char *message);

/* A new outcome id: "out_" + 24 hex digits, time-ordered. */
void gateway_make_outcome_id(char out[40]);

/* Called by a call when it has finished and freed itself. */
void gateway_call_done(gateway_t *gw);

#endif
