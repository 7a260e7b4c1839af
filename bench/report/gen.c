/*
 * bench/report: writes a ledger of N outcomes through the real ledger
 * writer, for timing `tollgate report`: 40 keys over 30 days, each key in
 * one of 6 teams and running 3 of 12 tasks, each task served by 2 of 5
 * models (as a routing config would); about 8% retried, 70% useful, 2%
 * unpriced; feedback on 2% and rework links on 3%.
 * Usage: report_gen N FILE
 */
#include "feedback/feedback.h"
#include "feedback/store.h"
#include "ledger/ledger.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define START_MS INT64_C(1790812800000) /* 2026-10-01T00:00:00Z */
#define SPAN_MS (INT64_C(30) * 86400000)

static const char *const tasks[] = {
    "ticket-triage", "contract-summary", "code-review", "sql-gen",
    "email-draft",   "translate",        "classify",    "extract",
    "chat-support",  "search-rerank",    "summarise",   "qa-bot"};
static const char *const models[] = {"gpt-4o-mini", "gpt-4o", "claude-haiku",
                                     "claude-sonnet", "o3"};
/* Per million tokens, in picodollars per token: input, output. */
static const int64_t price_in[] = {150000, 2500000, 800000, 3000000, 2000000};
static const int64_t price_out[] = {600000, 10000000, 4000000, 15000000,
                                    8000000};

static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_attempt(ledger_attempt_t *a, int no, int model, int64_t in,
                         int64_t out, bool ok, int64_t at_ms)
{
    memset(a, 0, sizeof(*a));
    a->attempt_no = no;
    snprintf(a->reason, sizeof(a->reason), "%s",
             no == 1 ? "first" : (no == 2 ? "retry" : "escalation"));
    snprintf(a->model, sizeof(a->model), "%s", models[model]);
    snprintf(a->provider, sizeof(a->provider), "%s",
             model >= 2 && model <= 3 ? "anthropic" : "openai");
    a->http_status = ok ? 200 : 500;
    a->usage.present = true;
    a->usage.input_tokens = in;
    a->usage.output_tokens = out;
    a->cost_status = COST_PRICED;
    a->cost = in * price_in[model] + out * price_out[model];
    a->started_ms = at_ms;
    a->latency_ms = 200 + (int64_t)(next() % 3000);
    a->ttfb_ms = 50;
}

static void fill(ledger_outcome_t *o, int64_t i, int64_t at_ms)
{
    int key = (int)(next() % 40);
    int task = (key * 5 + (int)(next() % 3)) % 12;
    int model = (task + (int)(next() % 2)) % 5;
    int tries = next() % 100 < 8 ? 2 + (int)(next() % 2) : 1;
    int64_t in = 200 + (int64_t)(next() % 4000), out = 50 + next() % 800;

    memset(o, 0, sizeof(*o));
    snprintf(o->id, sizeof(o->id), "out_%012" PRIx64 "%012" PRIx64,
             (uint64_t)at_ms, (uint64_t)i);
    o->started_ms = at_ms;
    snprintf(o->endpoint, sizeof(o->endpoint), "chat.completions");
    snprintf(o->key_id, sizeof(o->key_id), "key-%02d", key);
    snprintf(o->team, sizeof(o->team), "team-%d", key % 6);
    snprintf(o->owner, sizeof(o->owner), "owner-%02d@example.com", key % 20);
    snprintf(o->task, sizeof(o->task), "%s", tasks[task]);
    snprintf(o->model, sizeof(o->model), "%s", models[model]);
    snprintf(o->requested_model, sizeof(o->requested_model), "%s",
             models[model]);
    o->http_status = 200;
    o->useful = next() % 100 < 70;
    o->n_attempts = tries;
    o->cost_status = next() % 100 < 2 ? COST_UNPRICED : COST_PRICED;
    for (int a = 0; a < tries; a++) {
        fill_attempt(&o->attempts[a], a + 1, model, in, out, a == tries - 1,
                     at_ms);
        o->usage.input_tokens += in;
        o->usage.output_tokens += out;
        o->cost += o->attempts[a].cost;
    }
    o->usage.present = true;
    o->latency_ms = o->attempts[tries - 1].latency_ms;
    o->ttfb_ms = 50;
}

static int add_extras(const char *path, int64_t n)
{
    sqlite3 *db = store_open(path);
    char id[40], earlier[40];
    feedback_t fb;

    if (db == NULL)
        return -1;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int64_t i = 100; i < n; i += 50) {
        int64_t at = START_MS + i * SPAN_MS / n;

        memset(&fb, 0, sizeof(fb));
        snprintf(fb.outcome_id, sizeof(fb.outcome_id),
                 "out_%012" PRIx64 "%012" PRIx64, (uint64_t)at, (uint64_t)i);
        fb.useful = i % 150 != 0;
        feedback_store(db, &fb, NULL, FEEDBACK_FROM_API, at);
    }
    for (int64_t i = 100; i < n; i += 33) {
        int64_t at = START_MS + i * SPAN_MS / n;
        int64_t before = START_MS + (i - 1) * SPAN_MS / n;

        snprintf(id, sizeof(id), "out_%012" PRIx64 "%012" PRIx64, (uint64_t)at,
                 (uint64_t)i);
        snprintf(earlier, sizeof(earlier), "out_%012" PRIx64 "%012" PRIx64,
                 (uint64_t)before, (uint64_t)(i - 1));
        store_put_rework(db, id, earlier, at, "bench");
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 1000000;
    const char *path = argc > 2 ? argv[2] : "/tmp/report-bench.db";
    ledger_outcome_t out;
    char err[600];
    ledger_t *ledger = ledger_open(path, 65536, err, sizeof(err));

    if (ledger == NULL) {
        fprintf(stderr, "report_gen: %s\n", err);
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        fill(&out, i, START_MS + i * SPAN_MS / n);
        while (ledger_admit(ledger) < 0)
            continue;
        ledger_append(ledger, &out);
    }
    ledger_close(ledger);
    if (add_extras(path, n) < 0) {
        fprintf(stderr, "report_gen: cannot add feedback to %s\n", path);
        return 1;
    }
    printf("report_gen: %" PRId64 " outcomes in %s\n", n, path);
    return 0;
}
