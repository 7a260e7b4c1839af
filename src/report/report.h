/*
 * `tollgate report`: spend, tokens, quality, rework and cost per useful
 * outcome per group of outcomes, read from the ledger (read-only, so it
 * works while the gateway writes), printed as a table, CSV, JSON or one
 * self-contained HTML page; this period against the previous one; and the
 * four leaks with what each costs. docs/report.md has every figure.
 */
#ifndef TOLLGATE_REPORT_H
#define TOLLGATE_REPORT_H

#include <stdio.h>

#include "util/common.h"

struct config;
struct price_table;

/* What a report can group by; the names are those of --by. hour and day
 * are UTC buckets of started_ms. */
typedef enum report_dim {
    REPORT_BY_TASK = 0,
    REPORT_BY_MODEL,
    REPORT_BY_TEAM,
    REPORT_BY_KEY,
    REPORT_BY_OWNER,
    REPORT_BY_HOUR,
    REPORT_BY_DAY
} report_dim_t;

#define REPORT_MAX_DIMS 7

/* "task", "model", "team", "key" (the key's name), "owner", "hour" or
 * "day". */
const char *report_dim_name(report_dim_t dim);

typedef enum report_format {
    REPORT_TABLE = 0,
    REPORT_CSV,
    REPORT_JSON,
    REPORT_HTML
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
    bool compare;   /* also the previous period of the same length */
    bool leaks;     /* the four leaks instead of the groups */
    bool trims;     /* context trimming by task instead of the groups */
    bool no_rollup; /* scan every row; exact percentiles */
    /* Prices for the context leak's dollars (input price per model); NULL
     * uses the built-in table. Borrowed. */
    const struct config *config;
    const struct price_table *prices;
    const char *config_path; /* --config: load config and prices */
    const char *out_path;    /* --out for html; NULL: stdout */
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
    bool has_spend;            /* false when every outcome's cost is unknown */
    pico_t spend;              /* sum over priced outcomes */
    int64_t priced;            /* outcomes whose cost is known (priced) */
    int64_t unpriced;          /* cost unknown: unpriced, usage_missing,
                                  invalid_usage or estimated */
    int64_t unpriced_tokens;   /* input + output tokens of those */
    int64_t estimated;         /* outcomes whose usage Tollgate counted */
    pico_t estimate;           /* their estimated cost, apart from spend */
    int64_t checks_passed;     /* final attempt passed (outcomes.useful) */
    int64_t feedback;          /* outcomes with any feedback */
    int64_t feedback_negative; /* outcomes some caller called not useful */
    int64_t useful;            /* checks passed and no negative feedback */
    int64_t useful_known;      /* useful outcomes whose cost is known */
    pico_t not_useful_spend;   /* spend of priced outcomes not useful */
    bool has_cost_per_useful;  /* false when useful_known is 0 */
    pico_t cost_per_useful;    /* spend / useful_known, half-even */
    int64_t extra_attempts;    /* attempts beyond the first */
    int64_t rework;            /* extra_attempts + repeats */
    int64_t repeats;           /* outcomes that repeat an earlier ask */
    pico_t repeat_spend;       /* spend of those that passed their checks */
    pico_t retry_spend;        /* priced attempts whose reason is not "first" */
    pico_t retry_spend_not_useful; /* of which in outcomes not useful */
    bool has_trim;                 /* the ledger records context trimming */
    int64_t trimmed_tokens;
    pico_t trim_saved;
    bool has_cache_hits; /* the ledger records gateway cache hits */
    int64_t cache_hits;
    bool has_latency;
    int64_t latency_p50_ms; /* nearest rank */
    int64_t latency_p95_ms;
    bool has_ttfb; /* false when no outcome had a first byte */
    int64_t ttfb_p50_ms;
    bool has_input_p50;
    int64_t input_p50;    /* input tokens per outcome, nearest-rank median */
    bool approximate;     /* percentiles from rollup histograms (<= 3.2%) */
    int64_t excess_input; /* context leak: tokens above 2x the median */
    struct report_row *previous; /* --compare: same keys, last period */
} report_row_t;

/* One of the four leaks. */
typedef struct report_leak {
    const char *kind; /* "routing", "context", "retries", "volume" */
    bool has_amount;  /* false when the dollars cannot be known */
    pico_t amount;
    int64_t outcomes; /* outcomes the figure is about */
    int64_t tokens;   /* tokens, for the context leak */
    char *change;     /* the concrete change, one sentence or two */
    char *method;     /* how the figure was computed */
    char *detail;     /* the largest contributors */
} report_leak_t;

#define REPORT_N_LEAKS 4

typedef struct report {
    report_opts_t opts;
    report_row_t *rows; /* sorted by keys */
    size_t n_rows;
    report_row_t total;
    bool has_previous; /* --compare ran */
    int64_t previous_since_ms, previous_until_ms;
    report_row_t previous_total;
    bool used_rollup;        /* some figures came from the hourly rollup */
    int64_t rollup_outcomes; /* outcomes counted from rollup rows */
    bool has_leaks;
    report_leak_t leaks[REPORT_N_LEAKS];
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
 * fills report: the groups, the total, and with opts->compare the
 * previous period (the window must then have a start). Full hours the
 * hourly rollup covers are read from it (see report_rollup_refresh).
 * Returns 0 or a negative code with a message in err. The caller frees
 * the report with report_free() either way.
 */
int report_query(const report_opts_t *opts, report_t *report, char *err,
                 size_t errlen);

/* `--trims`: context trimming by task (trims, tokens in and sent,
 * dollars saved, flagged share) in opts' format. 0 or -EIO with err. */
int report_trims(const report_opts_t *opts, FILE *out, char *err,
                 size_t errlen);

/* Computes the four leaks over opts' window into report->leaks (and the
 * groups by task and model into report). Same contract as
 * report_query(). */
int report_query_leaks(const report_opts_t *opts, report_t *report, char *err,
                       size_t errlen);
void report_free(report_t *report);

/* Writes the report in opts.format. Returns 0 or -EIO. */
int report_write(const report_t *report, FILE *out);

/* The whole report as a JSON object (the --format json document); caller
 * puts it. */
struct json_object *report_to_json(const report_t *report);

/*
 * The dashboard's data: the report by task and model with --compare when
 * the window has a start, spend and cost per useful outcome per day (or
 * per hour for windows under three days) by task and by model, rework
 * rate per bucket, and the leaks. Returns a JSON object the caller puts,
 * or NULL with a message in err.
 */
struct json_object *report_dashboard_data(const report_opts_t *opts, char *err,
                                          size_t errlen);

/*
 * Writes one self-contained HTML page showing data (from
 * report_dashboard_data, plus anything the caller added, such as
 * budgets), with the dashboard bundle inlined. Returns 0, -ENOENT when
 * the bundle is not built (err says how to build it), or -EIO.
 */
int report_write_html(struct json_object *data, FILE *out, char *err,
                      size_t errlen);

/* Where the dashboard bundle is: $TOLLGATE_DASHBOARD_DIR, else
 * build/dashboard next to the binary or one level up from it. Writes the
 * directory into dir; returns 0 or -ENOENT. */
int report_bundle_dir(char *dir, size_t len);

/*
 * Brings the hourly rollup up to date with a read-write connection of
 * its own, in transactions of at most 20,000 outcomes so the gateway's
 * writer never waits long: every outcome row not yet in it is added to
 * its hour and groups. Only rows up to the last committed one are taken,
 * so it is exact whatever order rows arrive in. Returns the rows added,
 * or a negative code with a message in err.
 */
int64_t report_rollup_refresh(const char *ledger_path, char *err,
                              size_t errlen);

/* report_rollup_refresh() when at least min_new outcome rows are not in
 * the rollup yet; quiet when the file cannot be written (a reader's copy).
 * Returns the rows added, 0, or a negative code. */
int64_t report_rollup_maybe(const char *ledger_path, int64_t min_new);

/* Query and write in one step. Returns 0 or a negative code with a
 * message in err. */
int report_run(const report_opts_t *opts, FILE *out, char *err, size_t errlen);

/* The `tollgate report` command: returns the exit code, 0 on success, 1
 * when the ledger cannot be read, 2 on a usage error (said on stderr). */
int report_main(int argc, char **argv);

#endif
