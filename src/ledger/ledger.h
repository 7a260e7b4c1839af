/*
 * The ledger: one row per outcome and one per attempt, in SQLite (WAL).
 * The event loop hands finished records to a bounded queue; a writer
 * thread batches them into transactions, so the loop never waits on disk.
 *
 * No record is ever dropped: a call takes a slot with ledger_admit()
 * before it starts and gives it back with exactly one ledger_append() or
 * ledger_cancel(). When every slot is taken, ledger_admit() refuses and the
 * gateway answers 503 until the writer drains.
 */
#ifndef TOLLGATE_LEDGER_H
#define TOLLGATE_LEDGER_H

#include "util/common.h"

#define LEDGER_MAX_ATTEMPTS 8

/* PRAGMA user_version of the file; docs/ledger.md has the schema. */
#define LEDGER_SCHEMA_VERSION 2

/* Upper bound for queue_cap. Each slot is one ledger_outcome_t (about
 * 6 KB), allocated when the ledger opens. */
#define LEDGER_MAX_CAPACITY (1 << 20)

typedef struct ledger_attempt {
    int attempt_no;           /* 1-based */
    char reason[16];          /* "first", "retry", "fallback", ... */
    char model[128];          /* configured model name used */
    char upstream_model[128]; /* model id the provider reported */
    char provider[64];
    int http_status;     /* status the provider answered; 0 none */
    char error_type[48]; /* "" or e.g. "upstream_timeout" */
    usage_t usage;
    cost_status_t cost_status;
    pico_t cost;            /* meaningful when cost_status == COST_PRICED */
    pico_t cost_estimate;   /* meaningful when cost_status == COST_ESTIMATED */
    unsigned cost_flags;    /* billing's COST_FLAG_*: how it was priced */
    char checks[96];        /* "json=pass,schema=fail"; "" when none ran */
    bool budget_charged;    /* settled against at least one budget */
    pico_t budget_charge;   /* what it settled at (the hold if unknown) */
    char price_source[160]; /* which table and entry priced it */
    int64_t started_ms;     /* unix ms */
    int64_t latency_ms;
    int64_t ttfb_ms; /* -1 when no byte arrived */
} ledger_attempt_t;

typedef struct ledger_outcome {
    char id[40];        /* "out_" + 24 hex */
    int64_t started_ms; /* unix ms */
    char endpoint[32];  /* "chat.completions" */
    char key_id[64];    /* key name, never its secret */
    char team[64];
    char owner[64];
    char task[64];
    char requested_model[128];
    char model[128]; /* model of the final attempt, "" if none */
    int http_status; /* what the caller got */
    char error_type[48];
    bool streamed;
    bool useful;   /* 200 with a non-empty answer (for now) */
    usage_t usage; /* sum over attempts */
    cost_status_t cost_status;
    pico_t cost;          /* sum of priced attempts */
    pico_t cost_estimate; /* sum of estimated attempts */
    int64_t latency_ms;
    int64_t ttfb_ms;
    /* What the policy stage did: "step_down:model=...", "approved:ID by
     * NAME", "held:ID", "refused:budget"; "" when nothing. */
    char policy[128];
    /* Context trimming: input tokens before and after (0 when the task
     * trims nothing), dollars saved at the model's input price, and
     * whether the last user turn refers to what was removed. */
    int64_t trim_before;
    int64_t trim_after;
    pico_t trim_saved;
    bool trim_flagged;
    int n_attempts;
    ledger_attempt_t attempts[LEDGER_MAX_ATTEMPTS];
} ledger_outcome_t;

typedef struct ledger ledger_t;

/*
 * Opens (creating if needed) the SQLite file at path in WAL mode, creates
 * the schema, and starts the writer thread. queue_cap bounds admitted and
 * queued records together. Returns NULL with a message in err on failure.
 * The caller owns the ledger and closes it with ledger_close().
 */
ledger_t *ledger_open(const char *path, size_t queue_cap, char *err,
                      size_t errlen);

/* Takes a slot for one outcome. Returns 0, or -EBUSY when the queue is
 * full. Never blocks beyond a short mutex. */
int ledger_admit(ledger_t *ledger);

/* Gives a slot back unused (the call wrote nothing worth a row). */
void ledger_cancel(ledger_t *ledger);

/* Queues an outcome and its attempts, copying them, using the slot taken
 * by ledger_admit(). Never fails and never blocks beyond a short mutex. */
void ledger_append(ledger_t *ledger, const ledger_outcome_t *outcome);

typedef struct ledger_stats {
    size_t capacity;
    size_t admitted;  /* slots held by calls in flight */
    size_t queued;    /* records waiting for the writer */
    uint64_t written; /* records committed since open */
    uint64_t failed;  /* commits that failed and were retried */
    bool full;
} ledger_stats_t;

void ledger_get_stats(ledger_t *ledger, ledger_stats_t *stats);

/*
 * Blocks until every record appended before the call has been handled by
 * the writer (committed, or refused by the database and logged), so a
 * reader of the file then sees them. For tests and for draining; the event
 * loop never calls it.
 */
void ledger_flush(ledger_t *ledger);

/*
 * Blocks until every queued record is committed, then stops the writer
 * and closes the database. Calls still holding slots should have appended
 * or cancelled first. NULL is a no-op.
 */
void ledger_close(ledger_t *ledger);

#endif
