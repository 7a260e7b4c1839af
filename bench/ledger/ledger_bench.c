/*
 * bench/ledger: how fast the ledger writer commits outcomes into SQLite,
 * and how long the event loop's side (admit + append) takes per record.
 * Prints figures; asserts nothing. Usage: ledger_bench [N] [DIR]
 */
#include "ledger/ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fill(ledger_outcome_t *out, int64_t i, int64_t start_ms)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "out_%012" PRIx64 "%012" PRIx64,
             (uint64_t)start_ms, (uint64_t)i);
    out->started_ms = start_ms;
    snprintf(out->endpoint, sizeof(out->endpoint), "chat.completions");
    snprintf(out->key_id, sizeof(out->key_id), "bench");
    snprintf(out->team, sizeof(out->team), "team-%" PRId64, i % 7);
    snprintf(out->task, sizeof(out->task), "task-%" PRId64, i % 13);
    snprintf(out->model, sizeof(out->model), "gpt-4o-mini");
    snprintf(out->requested_model, sizeof(out->requested_model), "gpt-4o-mini");
    out->http_status = 200;
    out->useful = true;
    out->usage.present = true;
    out->usage.input_tokens = 1000 + i % 100;
    out->usage.output_tokens = 200;
    out->cost_status = COST_PRICED;
    out->cost = 270000000;
    out->n_attempts = 1;
    out->attempts[0].attempt_no = 1;
    snprintf(out->attempts[0].reason, sizeof(out->attempts[0].reason), "first");
    out->attempts[0].usage = out->usage;
    out->attempts[0].cost_status = COST_PRICED;
    out->attempts[0].cost = out->cost;
    out->attempts[0].http_status = 200;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? atoll(argv[1]) : 200000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    char path[512], err[600];
    ledger_t *ledger;
    ledger_outcome_t out;
    int64_t t0, t_done, worst = 0, refused = 0, append_ns = 0;

    snprintf(path, sizeof(path), "%s/ledger-bench-%d.db", dir, (int)getpid());
    ledger = ledger_open(path, 65536, err, sizeof(err));
    if (ledger == NULL) {
        fprintf(stderr, "ledger_bench: %s\n", err);
        return 1;
    }
    t0 = now_ns();
    for (int64_t i = 0; i < n; i++) {
        int64_t a, b;

        fill(&out, i, 1767225600000 + i / 1000);
        /* A full queue is the gateway's 503; here we wait for room. */
        while (ledger_admit(ledger) < 0)
            refused++;
        a = now_ns();
        ledger_append(ledger, &out);
        b = now_ns() - a;
        append_ns += b;
        if (b > worst)
            worst = b;
    }
    ledger_flush(ledger);
    t_done = now_ns();
    ledger_close(ledger);
    printf("ledger_bench: %" PRId64 " outcomes (1 attempt each) into %s\n", n,
           path);
    printf("  committed:  %.0f records/s (%.3f s)\n",
           (double)n * 1e9 / (double)(t_done - t0),
           (double)(t_done - t0) / 1e9);
    printf("  loop side:  ledger_append %.2f us on average, worst %.1f us; "
           "%" PRId64 " admits refused while the queue was full\n",
           (double)append_ns / 1e3 / (double)n, (double)worst / 1e3, refused);
    unlink(path);
    snprintf(err, sizeof(err), "%s-wal", path);
    unlink(err);
    snprintf(err, sizeof(err), "%s-shm", path);
    unlink(err);
    return 0;
}
