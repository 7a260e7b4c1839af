/*
 * /metrics in Prometheus' text format: calls, tokens, spend, errors and
 * latency per task, model and team, budget use, and the gateway's own
 * health (ledger queue, calls in flight, upstream errors by provider).
 * Counters are fed by metrics_observe() in each call's final step; all of
 * it runs on the loop, so nothing here takes a lock.
 */
#ifndef TOLLGATE_METRICS_H
#define TOLLGATE_METRICS_H

#include "http/gateway.h"
#include "ledger/ledger.h"

#include <stdint.h>
#include <stdio.h>

struct evhttp_request;

/* Distinct values kept per label (task, model, team); later ones are
 * counted under "other". Label sets (task, model, team) are capped too. */
#define METRICS_LABEL_VALUES 16
#define METRICS_MAX_SERIES 1024
#define METRICS_MAX_PROVIDERS 64

typedef struct metrics metrics_t;

/* Empty counters; label_values 0 means METRICS_LABEL_VALUES. Owned by the
 * caller. Aborts on out of memory. */
metrics_t *metrics_new(int label_values);
void metrics_free(metrics_t *m);

/*
 * Counts one finished outcome: a call, its tokens, its spend (priced
 * outcomes only; unknown costs are counted apart, never as $0), an error
 * when it was not a 200, its latency, and each attempt that failed
 * against its provider. Copies nothing it keeps but label text.
 */
void metrics_observe(metrics_t *m, const ledger_outcome_t *rec);

/* The gateway's health at render time. */
typedef struct metrics_health {
    ledger_stats_t ledger;
    bool has_ledger;
    size_t calls_in_flight;
    bool draining;
    int64_t now_mono_ms;
} metrics_health_t;

/*
 * Writes every metric in the text exposition format (version 0.0.4):
 * HELP and TYPE lines, then samples, labels escaped. Money is written
 * from integer picodollars as exact decimal text. Returns 0 or -EIO.
 */
int metrics_render(const metrics_t *m, const metrics_health_t *health,
                   FILE *out);

/* The process' metrics for the gateway, made on first use and kept for
 * the life of the process: what the final step passes to
 * metrics_observe(). */
metrics_t *metrics_of(gateway_t *gw);

/* GET /metrics: the admin key as a bearer token, then the rendering of
 * metrics_of(gw) with the gateway's health and budgets. */
void metrics_handle(gateway_t *gw, struct evhttp_request *req);

#endif
