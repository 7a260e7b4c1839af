/*
 * Budgets in integer picodollars per key, team, task and the whole
 * gateway, each over a calendar period, with a soft and a hard limit. The
 * policy stage reserves an attempt's worst-case cost before it is sent,
 * and settles or releases the reservation when the attempt ends.
 *
 * Threading: the book is used from the event loop only and takes no lock.
 * budget_rebuild() runs once at start, before the loop serves calls.
 */
#ifndef TOLLGATE_BUDGET_H
#define TOLLGATE_BUDGET_H

#include "billing/billing.h"
#include "budget/period.h"
#include "budget/scope.h"
#include "util/common.h"

/* A limit that is not set. */
#define BUDGET_NO_LIMIT INT64_C(-1)

/* At most one budget per scope, name and period, so a call is held
 * against at most this many. */
#define BUDGET_MAX_HOLDS (BUDGET_SCOPE_COUNT * BUDGET_PERIOD_COUNT)

typedef struct budget_spec {
    budget_scope_t scope;
    const char *name; /* key name, team, task; "" or NULL for global */
    budget_period_t period;
    pico_t hard; /* BUDGET_NO_LIMIT or >= 0 */
    pico_t soft; /* BUDGET_NO_LIMIT or >= 0 */
} budget_spec_t;

/* A budget as it stands in its current period. */
typedef struct budget_status {
    budget_scope_t scope;
    char name[BUDGET_NAME_SIZE];
    budget_period_t period;
    pico_t hard, soft;
    pico_t spent;               /* settled in the current period */
    pico_t held;                /* reserved by attempts in flight */
    int64_t start_ms, reset_ms; /* BUDGET_TIME_MIN/MAX for total */
} budget_status_t;

/* Why a reservation was refused: the budget, its state, and what the call
 * needed. Enough for the 429 message; holds no key secret. */
typedef struct budget_refusal {
    budget_status_t budget;
    pico_t amount;
} budget_refusal_t;

struct budget;

/*
 * One attempt's hold on every budget that applies to its caller. The
 * caller owns the struct (it lives in the attempt's state) and must end
 * every successful reservation with exactly one budget_settle() or
 * budget_release(); both are no-ops on a reservation already ended.
 */
typedef struct budget_reservation {
    bool active;
    pico_t amount;
    int n;
    struct budget *budgets[BUDGET_MAX_HOLDS];
    int64_t period_start[BUDGET_MAX_HOLDS]; /* period it was made in */
} budget_reservation_t;

/* What settling did, for the log line, response header and webhook. */
typedef struct budget_settlement {
    bool over_hold; /* actual cost exceeded the reservation */
    pico_t over_by; /* actual - amount when over_hold */
    int n_soft;     /* budgets whose soft limit this settle crossed */
    budget_status_t soft[BUDGET_MAX_HOLDS];
} budget_settlement_t;

typedef struct budget_book budget_book_t;

/* An empty book whose periods follow tz (NULL: UTC). tz is borrowed and
 * must outlive the book. Owned by the caller; aborts on out of memory. */
budget_book_t *budget_book_new(const budget_tz_t *tz);
void budget_book_free(budget_book_t *book);

/*
 * Adds a budget. Returns 0, -EEXIST for a second budget with the same
 * scope, name and period, -EINVAL for a negative limit or a name on the
 * global scope, -ENAMETOOLONG for a name past BUDGET_NAME_SIZE. Budgets
 * are never removed while the book lives (reservations point at them).
 */
int budget_add(budget_book_t *book, const budget_spec_t *spec);

/*
 * Holds amount against every budget that applies to who, all or none:
 * for each, spent + held + amount <= hard. Returns 0 with res active;
 * -EDQUOT when a budget refuses (res inactive, *refusal names the first
 * refusing budget, most specific scope first, and nothing is held);
 * -EINVAL for a negative amount. No budget applying is success with an
 * empty hold. refusal may be NULL. res is overwritten: it must not hold
 * an active reservation.
 */
int budget_reserve(budget_book_t *book, const budget_who_t *who, pico_t amount,
                   int64_t now_ms, budget_reservation_t *res,
                   budget_refusal_t *refusal);

/*
 * Ends a reservation with the attempt's real cost: the hold is dropped
 * and actual is added to the spent of each budget whose period is still
 * the one the hold was made in (a cost that ends after a reset belongs to
 * the period it started in, as budget_rebuild() counts it). actual above
 * the hold still counts, and is reported in *out. Soft limits crossed
 * (spent >= soft, first time in the period) are listed in *out, which may
 * be NULL. When the cost is unknown (usage missing), settle with
 * res->amount, the bound.
 */
void budget_settle(budget_book_t *book, budget_reservation_t *res,
                   pico_t actual, int64_t now_ms, budget_settlement_t *out);

/* Ends a reservation that spent nothing (the attempt failed before the
 * provider billed it). */
void budget_release(budget_book_t *book, budget_reservation_t *res);

/* Statuses of the budgets that apply to who, most specific first; returns
 * how many were written (at most max). */
int budget_status(budget_book_t *book, const budget_who_t *who, int64_t now_ms,
                  budget_status_t *out, int max);

/* Number of budgets in the book, and the i-th in the order added, for
 * /admin/budgets. Returns 0 or -ENOENT past the end. */
size_t budget_count(const budget_book_t *book);
int budget_at(budget_book_t *book, size_t i, int64_t now_ms,
              budget_status_t *out);

/*
 * The 429 message for a refusal, e.g. "Budget exceeded: the monthly
 * budget of key 'alice' has $0.950000000000 spent and $0.000000000000
 * held of its $1.000000000000 limit; this call needs up to
 * $0.033000000000. It resets at 2027-01-01T00:00:00+01:00." Returns out.
 */
char *budget_refusal_message(const budget_refusal_t *refusal,
                             const budget_tz_t *tz, char *out, size_t outlen);

/*
 * Adds a cost made at at_ms (an attempt's start) to the spent of every
 * budget of who whose current period (at now_ms) contains at_ms, without
 * reporting soft limits: a soft limit it reaches is marked reported. For
 * rebuilding from history; calls use budget_reserve() and settle.
 */
void budget_record(budget_book_t *book, const budget_who_t *who, int64_t at_ms,
                   pico_t cost, int64_t now_ms);

/* The earliest start of any budget's current period at now_ms (now_ms
 * with no budgets, BUDGET_TIME_MIN with a total one). */
int64_t budget_earliest_start(budget_book_t *book, int64_t now_ms);

/*
 * Rebuilds spent in the current periods from the ledger file: every
 * attempt's cost (cost_pico, or cost_estimate_pico where the usage was
 * Tollgate's own count) at the attempt's start time, with its outcome's
 * key, team and task, through budget_record(). Opens its own read-only
 * connection. Call once on a fresh book at start, after ledger_open() (so
 * the schema is current) and before serving: it blocks on disk. Returns
 * 0, or -EIO with a message in err. A file without the ledger's tables
 * rebuilds to zero.
 */
int budget_rebuild(budget_book_t *book, const char *ledger_path, int64_t now_ms,
                   char *err, size_t errlen);

/*
 * Input tokens a request can bill at most. A BPE token is at least one
 * byte of the text it encodes and JSON never writes text shorter than it
 * is, so the request body's length bounds its text tokens. To that come
 * the tokens the provider adds: BUDGET_TOKENS_PER_MESSAGE per message,
 * BUDGET_TOKENS_PER_REQUEST per request (reply priming, a tool-use system
 * prompt), and BUDGET_TOKENS_PER_IMAGE per image part (an image given by
 * URL costs more tokens than its bytes). Saturates at INT64_MAX.
 */
#define BUDGET_TOKENS_PER_MESSAGE 8
#define BUDGET_TOKENS_PER_REQUEST 1024
#define BUDGET_TOKENS_PER_IMAGE 6400
int64_t budget_input_bound(size_t body_bytes, int64_t n_messages,
                           int64_t n_images);

/* What one attempt can use at most, for budget_worst_case(). */
typedef struct budget_bound {
    int64_t input_tokens;  /* budget_input_bound() of the body sent */
    int64_t output_tokens; /* max_tokens as sent upstream */
    int64_t web_searches;  /* billable searches it may make (the search
                              tool's max_uses); 0 without search tools */
} budget_bound_t;

/*
 * The worst-case cost of one attempt at price: every input token at the
 * dearest rate input could bill at (uncached, cache read or write, audio,
 * long-context twin when the bound passes the threshold, any service
 * tier), every output token at the dearest output rate, a geography
 * multiplier at its largest, plus per-request and per-search fees. A true
 * upper bound of billing_cost() for any usage within the bound. Returns 0
 * with *out set, -EINVAL for a negative count or a price with no input or
 * no output rate, -EOVERFLOW when the bound does not fit in an int64.
 */
int budget_worst_case(const price_t *price, const budget_bound_t *bound,
                      pico_t *out);

#endif
