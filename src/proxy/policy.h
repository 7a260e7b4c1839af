/*
 * The policy stage between routing and sending: rate limits per key, team
 * and task; budgets reserved at an attempt's worst-case cost before it is
 * sent and settled to its real cost after; stepping a call down to a
 * cheaper model or a lower max_tokens near a limit; and approval rules.
 * Everything here runs on the loop; the ledger rebuild at start is the
 * only disk work and happens before serving.
 */
#ifndef TOLLGATE_POLICY_H
#define TOLLGATE_POLICY_H

#include "budget/budget.h"
#include "budget/period.h"
#include "budget/ratelimit.h"
#include "http/gateway.h"

#include <stdbool.h>
#include <stddef.h>

struct approvals;
struct chat_call;

typedef struct policy {
    budget_tz_t *tz;
    budget_book_t *book;
    ratelimit_t *rl;
    struct approvals *approvals; /* used on the worker thread only */
    size_t n_budgets;
} policy_t;

/*
 * Builds the policy from the config and rebuilds its counters from the
 * ledger (so call after ledger_open, before serving). Returns 0, or a
 * negative code with a message in err.
 */
int policy_open(gateway_t *gw, char *err, size_t errlen);
void policy_close(gateway_t *gw);

/* After routing, before the body is built: whether a hard budget applies,
 * the output cap to send, and any step-down near a limit. */
void policy_prepare(struct chat_call *call);

/*
 * Rate limits, the worst-case bound, approval rules and the budget
 * reservation, in that order. Calls next(call) when the call may be sent
 * (at once, or after an approval check on the worker); otherwise answers
 * the caller with the reason (429 or 403) and ends the call.
 */
void policy_admit(struct chat_call *call, void (*next)(struct chat_call *));

/* Holds the worst case of the next attempt (a retry, fallback or
 * escalation, at call->model); false, without answering, when the budget
 * cannot take it. */
bool policy_next(struct chat_call *call);

/* Reserves the attempt's worst case; false after answering 429. */
bool policy_reserve(struct chat_call *call);

/* The attempt was priced: its reservation is settled to the real cost
 * (or released when nothing was billed). */
void policy_settle(struct chat_call *call);

/* The call ends: anything still held is released and its rate-limit
 * tokens are corrected to the real usage. */
void policy_finish(struct chat_call *call);

#endif
