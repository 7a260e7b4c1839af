/*
 * `tollgate report`: spend, tokens, errors, cost per useful outcome and
 * latency per group of outcomes, read from the ledger (read-only, so it
 * works while the gateway writes) and printed as a table, CSV or JSON.
 */
#ifndef TOLLGATE_REPORT_H
#define TOLLGATE_REPORT_H

#include <stdio.h>

#include "util/common.h"

/* What a report can group by; the names are those of --by. */
typedef enum report_dim {
    REPORT_BY_TASK = 0,
    REPORT_BY_MODEL,
    REPORT_BY_TEAM,
    REPORT_BY_KEY,
    REPORT_BY_OWNER
} report_dim_t;

#define REPORT_MAX_DIMS 5

/* "task", "model", "team", "key" (the key's name) or "owner". */
const char *report_dim_name(report_dim_t dim);

typedef enum report_format {
    REPORT_TABLE = 0,
    REPORT_CSV,
    REPORT_JSON
} report_format_t;

typedef struct report_opts {
    const char *ledger_path;
    report_dim_t by[REPORT_MAX_DIMS];
    int n_by; /* 1 to REPORT_MAX_DIMS */
    bool has_since;
    int64_t since_ms; /* unix ms, inclusive */
    bool has_until;
    int64_t until_ms; /* unix ms, exclusive */
    report_format_t format;
    int64_t now_ms; /* "now" for relative times */
} report_opts_t;

/* One group of outcomes, or the total. Sums are over outcomes whose
 * started_ms falls in the window. */
typedef struct report_row {
    char *keys[REPORT_MAX_DIMS]; /* values of the --by columns */
    int64_t outcomes;
    int64_t attempts;
    int64_t errors; /* not 200, or a 200 that broke (error_type set) */
    int64_t input_tokens;
    int64_t cached_tokens;
    int64_t output_tokens;
    int64_t reasoning_tokens;
    bool has_spend;   /* false when every outcome's cost is unknown */
    pico_t spend;     /* sum over priced outcomes */
    int64_t unpriced; /* cost unknown: unpriced, usage_missing,
                         invalid_usage or estimated */
    int64_t unpriced_tokens; /* input + output tokens of those */
    int64_t estimated;       /* outcomes whose usage Tollgate counted */
    pico_t estimate;         /* their estimated cost, apart from spend */
    int64_t useful;
    int64_t useful_known;     /* useful outcomes whose cost is known */
    bool has_cost_per_useful; /* false when useful_known is 0 */
    pico_t cost_per_useful;   /* spend / useful_known, half-even */
    bool has_latency;
    int64_t latency_p50_ms; /* nearest rank */
    int64_t latency_p95_ms;
    bool has_ttfb; /* false when no outcome had a first byte */
    int64_t ttfb_p50_ms;
} report_row_t;

typedef struct report {
    report_opts_t opts;
    report_row_t *rows; /* sorted by keys */
    size_t n_rows;
    report_row_t total;
} report_t;

/*
 * Parses a time of the command line into unix ms: ISO 8601 in UTC
 * ("2026-11-01", "2026-11-01T09:00Z", "2026-11-01T09:00:00Z", or with a
 * "+02:00" offset in place of Z) or a span back from now_ms ("30m", "24h",
 * "7d"; also "s" and "w"). Returns 0 or -EINVAL.
 */
int report_parse_time(const char *text, int64_t now_ms, int64_t *out_ms);

/*
 * Fills opts from argv (argv[0] is "report"), taking now_ms for relative
 * times. Returns 0, 1 when --help was asked (usage goes to out), or
 * -EINVAL with a message a person can act on in err.
 */
int report_parse_args(int argc, char **argv, int64_t now_ms,
                      report_opts_t *opts, FILE *out, char *err, size_t errlen);

/*
 * Reads the ledger at opts->ledger_path read-only, in one snapshot, and
 * fills report. Returns 0 or a negative code with a message in err. The
 * caller frees the report with report_free() either way.
 */
int report_query(const report_opts_t *opts, report_t *report, char *err,
                 size_t errlen);
void report_free(report_t *report);

/* Writes the report in opts.format. Returns 0 or -EIO. */
int report_write(const report_t *report, FILE *out);

/* Query and write in one step. Returns 0 or a negative code with a
 * message in err. */
int report_run(const report_opts_t *opts, FILE *out, char *err, size_t errlen);

/* The `tollgate report` command: returns the exit code, 0 on success, 1
 * when the ledger cannot be read, 2 on a usage error (said on stderr). */
int report_main(int argc, char **argv);

#endif
