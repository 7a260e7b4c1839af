/*
 * Routing of a call among its task's tiers: the starting model (rules on
 * request features, or learned pass rates with `route: auto`), the checks
 * run on each answer, and what follows an attempt that failed: a retry
 * of the same model after backoff, a fallback to the next model, a
 * re-ask or an escalation when a check failed, or a model with a larger
 * window when the prompt did not fit. Runs on the loop.
 */
#ifndef TOLLGATE_ROUTER_H
#define TOLLGATE_ROUTER_H

#include "context/context.h"
#include "http/gateway.h"
#include "route/checks.h"
#include "route/retry.h"
#include "route/rules.h"
#include "route/stats.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

struct chat_call;
struct json_object;

/* A task's compiled route. */
typedef struct route_task {
    const cfg_task_t *cfg;
    checks_t *checks;     /* NULL: no checks */
    route_rules_t *rules; /* NULL: start at tier 0 */
    retry_policy_t retry;
    retry_budget_t budget; /* retries as a share of calls */
    route_stats_t *stats;  /* pass counts per tier, learned */
    bool has_context;      /* the task trims context */
    context_policy_t context;
} route_task_t;

typedef struct router {
    route_task_t *tasks;
    size_t n_tasks;
    route_stats_t *stats;
    int unsaved;                    /* records since the last save */
    struct tokens_encoding *enc[2]; /* o200k, cl100k; NULL: estimate */
    uint64_t rnd; /* xorshift state for jitter and exploration */
} router_t;

/* Compiles every task and loads the learned pass rates from the ledger
 * file (blocking, at start). 0, or a negative code with err set. */
int router_open(gateway_t *gw, char *err, size_t errlen);
void router_close(gateway_t *gw);

/* Compiles every task of cfg as router_open would (checks, start rules,
 * context policy), printing each problem to out; returns how many tasks
 * failed. For `tollgate check`. */
int router_check(const config_t *cfg, FILE *out);

/* Saves changed pass rates through the worker (at drain and now and
 * then). */
void router_flush(gateway_t *gw);

/* What follows an attempt. */
typedef enum route_step {
    STEP_DONE = 0, /* answer the caller with this attempt */
    STEP_RETRY,    /* the same model again, after call->delay_ms */
    STEP_FALLBACK, /* the next model of the chain */
    STEP_REASK,    /* the same model, told why its answer failed */
    STEP_ESCALATE, /* the next tier, after a failed check */
    STEP_BIGGER    /* a model with a larger context window */
} route_step_t;

/* "first", "retry", "fallback", "reask", "escalate", "context". */
const char *route_step_reason(route_step_t step);

/*
 * Picks the call's task route and starting model before the policy
 * stage (may replace call->model; the requested model is honoured,
 * mapped or overridden as the task says). obj is the parsed request.
 */
void route_start(struct chat_call *call, struct json_object *obj);

/* Runs the task's checks on the answer text gathered for the attempt;
 * records the verdicts on the attempt and in the pass rates. Returns
 * true when they passed (or there are none). */
bool route_check(struct chat_call *call);

/*
 * After an attempt that failed (status 0 for no answer, else the
 * provider's; body its error text or NULL) or whose checks failed
 * (check_failed): the next step, with call->model and call->delay_ms
 * set for it. STEP_DONE when nothing more may be tried.
 */
route_step_t route_next(struct chat_call *call, int status, const char *body,
                        bool check_failed);

/* Trims the request's context by its task's policy (a no-op for tasks
 * without one): *obj and call->orig_body are replaced by the trimmed
 * request, and the counts go into the outcome. */
void route_trim(struct chat_call *call, struct json_object **obj);

/* Caller feedback on an outcome answered by model on task. */
void route_feedback(gateway_t *gw, const char *task, const char *model,
                    bool useful);

#endif
