/*
 * Rate limits per key, team, task (and the whole gateway): requests per
 * minute, tokens per minute and calls in flight. The policy stage admits
 * a call before anything else is done for it, and settles the ticket when
 * the call ends.
 *
 * Windows: a minute is 60 one-second slots on the injected clock
 * (clock_now_ms()). A request or token admitted at time t counts until
 * the start of the 60th second after floor(t / 1000 s): at most one
 * second less than a true sliding minute, never more. The arithmetic is
 * exact: a test can name the millisecond a slot frees.
 *
 * Threading: event loop only, no locks. ratelimit_rebuild() runs once at
 * start, before serving.
 */
#ifndef TOLLGATE_BUDGET_RATELIMIT_H
#define TOLLGATE_BUDGET_RATELIMIT_H

#include "budget/scope.h"

#include <stdbool.h>
#include <stdint.h>

#define RATELIMIT_WINDOW_S 60

/* Limits of one scope and name; 0 means no limit of that kind. */
typedef struct ratelimit_spec {
    budget_scope_t scope;
    const char *name;   /* "" or NULL for global */
    int64_t rpm;        /* requests per minute */
    int64_t tpm;        /* tokens per minute */
    int64_t concurrent; /* calls in flight */
} ratelimit_spec_t;

typedef enum ratelimit_kind {
    RATELIMIT_REQUESTS = 0,
    RATELIMIT_TOKENS = 1,
    RATELIMIT_CONCURRENT = 2
} ratelimit_kind_t;

/* Why a call was refused, for the 429 and its retry-after header. */
typedef struct ratelimit_refusal {
    ratelimit_kind_t kind;
    budget_scope_t scope;
    char name[BUDGET_NAME_SIZE];
    int64_t limit;
    int64_t used;  /* in the window, or in flight */
    int64_t asked; /* 1 request, or the call's tokens */
    /* Whole seconds until the call would fit, >= 1. A concurrency limit
     * cannot know when a call ends and says 1. */
    int64_t retry_after_s;
    bool never; /* the call alone is over the limit: retrying is futile */
} ratelimit_refusal_t;

/*
 * The x-ratelimit-* values (OpenAI's names), from the tightest limit of
 * each kind that applies: limit, what remains after this call, and the
 * milliseconds until the window is empty again. -1 when no limit of that
 * kind applies (send no header then).
 */
typedef struct ratelimit_headers {
    int64_t limit_requests, remaining_requests, reset_requests_ms;
    int64_t limit_tokens, remaining_tokens, reset_tokens_ms;
} ratelimit_headers_t;

struct ratelimit_entry;

/* A call's admission: the caller owns it (in the call's state) and ends
 * an admitted one with exactly one ratelimit_settle() or
 * ratelimit_refund(); both are no-ops once it has ended. */
typedef struct ratelimit_ticket {
    bool active;
    int n;
    struct ratelimit_entry *entries[BUDGET_SCOPE_COUNT];
    int64_t second; /* the slot it was charged to */
    int64_t tokens; /* what it was charged */
} ratelimit_ticket_t;

typedef struct ratelimit ratelimit_t;

/* An empty limiter. Owned by the caller; aborts on out of memory. */
ratelimit_t *ratelimit_new(void);
void ratelimit_free(ratelimit_t *rl);

/*
 * Sets the limits of one scope and name, keeping its window and calls in
 * flight if it had limits before. Returns 0, -EINVAL for a negative
 * limit or a name on the global scope, -ENAMETOOLONG.
 */
int ratelimit_set(ratelimit_t *rl, const ratelimit_spec_t *spec);

/*
 * Admits one call of who that may use `tokens` tokens (the caller's
 * estimate of input text tokens, images counted by their own rule and
 * never by their base64 length, plus the max_tokens that will be sent).
 * Every limit that applies must have room; then the call takes one
 * request, `tokens` tokens and one slot in flight from each. Returns 0
 * with the ticket active; -EAGAIN when refused: nothing is taken from
 * any limit, and *refusal names the limit with the longest wait.
 * *headers (may be NULL) is filled either way. refusal may be NULL.
 */
int ratelimit_admit(ratelimit_t *rl, const budget_who_t *who, int64_t tokens,
                    int64_t now_ms, ratelimit_ticket_t *ticket,
                    ratelimit_refusal_t *refusal, ratelimit_headers_t *headers);

/*
 * Ends an admitted call: frees its slot in flight and corrects its tokens
 * to actual_tokens (the provider's input plus output over all attempts),
 * in the slot it was charged to while that slot is still in the window.
 * actual_tokens < 0 keeps the estimate (no usage arrived).
 */
void ratelimit_settle(ratelimit_t *rl, ratelimit_ticket_t *ticket,
                      int64_t actual_tokens, int64_t now_ms);

/* Ends an admitted call that a later stage refused (budget, approval)
 * before it was sent: gives back its request, tokens and slot. */
void ratelimit_refund(ratelimit_t *rl, ratelimit_ticket_t *ticket,
                      int64_t now_ms);

/* The header values for who at now_ms without admitting anything. */
void ratelimit_peek(ratelimit_t *rl, const budget_who_t *who, int64_t now_ms,
                    ratelimit_headers_t *headers);

/* Charges one past request of who, made at at_ms with `tokens` tokens, to
 * the windows it still falls in at now_ms. For rebuilding from history. */
void ratelimit_record(ratelimit_t *rl, const budget_who_t *who, int64_t at_ms,
                      int64_t tokens, int64_t now_ms);

/*
 * Rebuilds the windows from the ledger file: each outcome of the last
 * minute that reached a provider (n_attempts > 0) is one request with its
 * input plus output tokens, at its start time. Calls in flight are not
 * rebuilt (none survive a restart). Opens its own read-only connection;
 * call once at start, before serving. Returns 0, or -EIO with a message
 * in err. A file without the ledger's tables rebuilds to nothing.
 */
int ratelimit_rebuild(ratelimit_t *rl, const char *ledger_path, int64_t now_ms,
                      char *err, size_t errlen);

/* A duration as OpenAI writes x-ratelimit-reset-*: "0s", "250ms", "1s",
 * "59.5s", "6m0s". Returns out. */
char *ratelimit_format_reset(int64_t ms, char *out, size_t outlen);

#endif
