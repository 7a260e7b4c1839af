/*
 * The `tollgate report` command line: parses its arguments and times,
 * brings the daily rollup up to date, then hands the options to
 * report_query() (or the leaks, or the HTML page) and report_write().
 */
#include "report/report.h"

#include "config/config.h"
#include "http/gateway.h"

#include <json-c/json.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS_PER_MINUTE INT64_C(60000)
#define MS_PER_DAY INT64_C(86400000)

static const char usage_text[] =
    "usage: tollgate report --ledger FILE [--by DIMS] [--since TIME]\n"
    "                       [--until TIME] [--format table|csv|json|html]\n"
    "                       [--compare] [--leaks] [--trims] [--no-rollup]\n"
    "                       [--config FILE] [--out FILE]\n"
    "  DIMS  comma list of task, model, team, key, owner, hour, day"
    " (default task,model)\n"
    "  TIME  2026-11-01, 2026-11-01T09:00Z, 2026-11-01T09:00:00+02:00,\n"
    "        or a span back from now: 30m, 24h, 7d\n"
    "  --since is inclusive, --until exclusive; both in UTC.\n"
    "  --compare    also the period of the same length before --since\n"
    "  --leaks      the four leaks in dollars, with a change for each\n"
    "  --trims      context trimming by task: saved, and the share flagged\n"
    "  --no-rollup  scan every outcome (exact percentiles; slower)\n"
    "  --config     prices of the gateway's models, for the leaks\n"
    "  --out        where --format html writes (default stdout)\n";

static const char *const dim_names[] = {"task",  "model", "team", "key",
                                        "owner", "hour",  "day"};

static const char *const flags[] = {
    "--ledger", "--by", "--format", "--since", "--until", "--config", "--out"};
static const char *const switches[] = {"--compare", "--leaks", "--no-rollup",
                                       "--trims"};
#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Reads exactly n decimal digits. */
static bool read_digits(const char *s, int n, int *out)
{
    int value = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        value = value * 10 + (s[i] - '0');
    }
    *out = value;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Parses "Z" or "+HH:MM" / "-HH:MM" at the end of a time of day. */
static int parse_zone(const char *s, int64_t *offset_ms)
{
    int hh, mm;

    if (strcmp(s, "Z") == 0) {
        *offset_ms = 0;
        return 0;
    }
    if ((s[0] != '+' && s[0] != '-') || !read_digits(s + 1, 2, &hh) ||
        s[3] != ':' || !read_digits(s + 4, 2, &mm) || s[6] != '\0' || hh > 23 ||
        mm > 59)
        return -EINVAL;
    *offset_ms = (hh * 60 + mm) * MS_PER_MINUTE;
    if (s[0] == '-')
        *offset_ms = -*offset_ms;
    return 0;
}

/* "HH:MM" or "HH:MM:SS", then the zone. */
static int parse_clock(const char *s, int64_t *ms)
{
    int hh, mm, ss = 0;
    int64_t offset;

    if (!read_digits(s, 2, &hh) || s[2] != ':' || !read_digits(s + 3, 2, &mm))
        return -EINVAL;
    s += 5;
    if (*s == ':') {
        if (!read_digits(s + 1, 2, &ss))
            return -EINVAL;
        s += 3;
    }
    if (hh > 23 || mm > 59 || ss > 59 || parse_zone(s, &offset) < 0)
        return -EINVAL;
    *ms = ((int64_t)hh * 3600 + mm * 60 + ss) * 1000 - offset;
    return 0;
}

static int parse_iso(const char *text, int64_t *out_ms)
{
    int y, m, d;
    int64_t clock_ms = 0;

    if (!read_digits(text, 4, &y) || text[4] != '-' ||
        !read_digits(text + 5, 2, &m) || text[7] != '-' ||
        !read_digits(text + 8, 2, &d))
        return -EINVAL;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -EINVAL;

    if (text[10] == 'T') {
        if (parse_clock(text + 11, &clock_ms) < 0)
            return -EINVAL;
    } else if (text[10] != '\0') {
        return -EINVAL;
    }
    *out_ms = days_from_civil(y, m, d) * MS_PER_DAY + clock_ms;
    return 0;
}

static int parse_span(const char *text, int64_t now_ms, int64_t *out_ms)
{
    int64_t count = 0, unit;
    const char *p = text;

    /* Nine digits of weeks are far beyond any ledger and cannot
     * overflow below. */
    for (; *p >= '0' && *p <= '9'; p++) {
        if (p - text >= 9)
            return -EINVAL;
        count = count * 10 + (*p - '0');
    }
    if (p == text || p[0] == '\0' || p[1] != '\0')
        return -EINVAL;
    switch (*p) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = MS_PER_MINUTE;
        break;
    case 'h':
        unit = 60 * MS_PER_MINUTE;
        break;
    case 'd':
        unit = MS_PER_DAY;
        break;
    case 'w':
        unit = 7 * MS_PER_DAY;
        break;
    default:
        return -EINVAL;
    }
    *out_ms = now_ms - count * unit;
    return 0;
}

const char *report_dim_name(report_dim_t dim)
{
    return dim >= 0 && dim < REPORT_MAX_DIMS ? dim_names[dim] : "unknown";
}

int report_parse_time(const char *text, int64_t now_ms, int64_t *out_ms)
{
    if (strlen(text) >= 10 && text[4] == '-')
        return parse_iso(text, out_ms);
    return parse_span(text, now_ms, out_ms);
}

static int parse_dim(const char *name, size_t len, report_dim_t *dim)
{
    for (int i = 0; i < REPORT_MAX_DIMS; i++) {
        if (strlen(dim_names[i]) == len &&
            strncmp(dim_names[i], name, len) == 0) {
            *dim = (report_dim_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

static int parse_by(const char *list, report_opts_t *opts, char *err,
                    size_t errlen)
{
    const char *p = list;

    opts->n_by = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        report_dim_t dim;

        if (parse_dim(p, len, &dim) < 0)
            return fail(err, errlen,
                        "--by %s: '%.*s' is not one of task, model, "
                        "team, key, owner, hour, day",
                        list, (int)len, p);
        for (int i = 0; i < opts->n_by; i++)
            if (opts->by[i] == dim)
                return fail(err, errlen, "--by %s: '%s' appears twice", list,
                            dim_names[dim]);
        opts->by[opts->n_by++] = dim;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

static int parse_format(const char *name, report_opts_t *opts, char *err,
                        size_t errlen)
{
    if (strcmp(name, "table") == 0)
        opts->format = REPORT_TABLE;
    else if (strcmp(name, "csv") == 0)
        opts->format = REPORT_CSV;
    else if (strcmp(name, "json") == 0)
        opts->format = REPORT_JSON;
    else if (strcmp(name, "html") == 0)
        opts->format = REPORT_HTML;
    else
        return fail(err, errlen, "--format %s: use table, csv, json or html",
                    name);
    return 0;
}

static int parse_bound(const char *flag, const char *text, int64_t now_ms,
                       bool *has, int64_t *ms, char *err, size_t errlen)
{
    if (report_parse_time(text, now_ms, ms) < 0)
        return fail(err, errlen,
                    "%s %s: not a time; use 2026-11-01, "
                    "2026-11-01T09:00Z or a span such as 24h or 7d",
                    flag, text);
    *has = true;
    return 0;
}

/* Splits "--flag=value" or "--flag value"; *value is NULL when absent. */
static const char *flag_value(const char *arg, const char *flag, int argc,
                              char **argv, int *i, bool *matched)
{
    size_t len = strlen(flag);

    *matched = false;
    if (strncmp(arg, flag, len) != 0)
        return NULL;
    if (arg[len] == '=') {
        *matched = true;
        return arg + len + 1;
    }
    if (arg[len] != '\0')
        return NULL;
    *matched = true;
    return *i + 1 < argc ? argv[++*i] : NULL;
}

/* Returns the index in flags of the flag at argv[*i], or -1. */
static int match_flag(int argc, char **argv, int *i, const char **value)
{
    bool matched;

    for (size_t f = 0; f < N_FLAGS; f++) {
        *value = flag_value(argv[*i], flags[f], argc, argv, i, &matched);
        if (matched)
            return (int)f;
    }
    return -1;
}

static int parse_one(const char *flag, const char *value, int64_t now_ms,
                     report_opts_t *opts, char *err, size_t errlen)
{
    if (value == NULL)
        return fail(err, errlen, "%s needs a value", flag);
    if (strcmp(flag, "--ledger") == 0) {
        opts->ledger_path = value;
        return 0;
    }
    if (strcmp(flag, "--by") == 0)
        return parse_by(value, opts, err, errlen);
    if (strcmp(flag, "--format") == 0)
        return parse_format(value, opts, err, errlen);
    if (strcmp(flag, "--config") == 0) {
        opts->config_path = value;
        return 0;
    }
    if (strcmp(flag, "--out") == 0) {
        opts->out_path = value;
        return 0;
    }
    if (strcmp(flag, "--since") == 0)
        return parse_bound(flag, value, now_ms, &opts->has_since,
                           &opts->since_ms, err, errlen);
    return parse_bound(flag, value, now_ms, &opts->has_until, &opts->until_ms,
                       err, errlen);
}

static bool parse_switch(const char *arg, report_opts_t *opts)
{
    bool *const targets[] = {&opts->compare, &opts->leaks, &opts->no_rollup,
                             &opts->trims};

    for (size_t i = 0; i < sizeof(switches) / sizeof(switches[0]); i++) {
        if (strcmp(arg, switches[i]) == 0) {
            *targets[i] = true;
            return true;
        }
    }
    return false;
}

static int check_opts(const report_opts_t *opts, char *err, size_t errlen)
{
    if (opts->ledger_path == NULL || opts->ledger_path[0] == '\0')
        return fail(err, errlen, "--ledger FILE is required");
    if (opts->has_since && opts->has_until && opts->since_ms >= opts->until_ms)
        return fail(err, errlen, "--since must be before --until");
    if (opts->compare && !opts->has_since)
        return fail(err, errlen,
                    "--compare needs --since: the previous "
                    "period is the same length before it");
    if (opts->leaks && opts->format == REPORT_HTML)
        return fail(err, errlen,
                    "--format html always shows the leaks; "
                    "leave out --leaks");
    return 0;
}

int report_parse_args(int argc, char **argv, int64_t now_ms,
                      report_opts_t *opts, FILE *out, char *err, size_t errlen)
{
    memset(opts, 0, sizeof(*opts));
    opts->by[0] = REPORT_BY_TASK;
    opts->by[1] = REPORT_BY_MODEL;
    opts->n_by = 2;
    opts->now_ms = now_ms;

    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int f;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, out);
            return 1;
        }
        if (parse_switch(argv[i], opts))
            continue;
        f = match_flag(argc, argv, &i, &value);
        if (f < 0)
            return fail(err, errlen, "unknown argument '%s'", argv[i]);
        if (parse_one(flags[f], value, now_ms, opts, err, errlen) < 0)
            return -EINVAL;
    }
    return check_opts(opts, err, errlen);
}

static int run_html(const report_opts_t *opts, FILE *out, char *err,
                    size_t errlen)
{
    json_object *data = report_dashboard_data(opts, err, errlen);
    int rc;

    if (data == NULL)
        return -EIO;
    rc = report_write_html(data, out, err, errlen);
    json_object_put(data);
    return rc;
}

int report_run(const report_opts_t *opts, FILE *out, char *err, size_t errlen)
{
    report_t report;
    int rc;

    if (opts->format == REPORT_HTML)
        return run_html(opts, out, err, errlen);
    if (opts->trims)
        return report_trims(opts, out, err, errlen);
    if (opts->leaks)
        rc = report_query_leaks(opts, &report, err, errlen);
    else
        rc = report_query(opts, &report, err, errlen);

    if (rc == 0) {
        rc = report_write(&report, out);
        if (rc < 0)
            snprintf(err, errlen, "cannot write the report: %s", strerror(-rc));
    }
    report_free(&report);
    return rc;
}

/* Rows the rollup may lag before a report takes them in: below this a
 * scan is fast anyway, and small ledgers keep exact percentiles. */
#define ROLLUP_MIN_NEW 50000

static int run_with(const report_opts_t *opts, char *err, size_t errlen)
{
    FILE *out = stdout;
    int rc;

    if (opts->out_path != NULL) {
        out = fopen(opts->out_path, "w");
        if (out == NULL) {
            snprintf(err, errlen, "cannot write %s: %s", opts->out_path,
                     strerror(errno));
            return -EIO;
        }
    }
    rc = report_run(opts, out, err, errlen);
    if (out != stdout && fclose(out) != 0 && rc == 0)
        rc = -EIO;
    return rc;
}

/* --config: the gateway's config and prices, for the leaks' dollars. */
static int load_prices(report_opts_t *opts, config_t **cfg,
                       price_table_t **prices)
{
    int n_errors = 0;

    if (opts->config_path == NULL)
        return 0;
    *cfg = config_load_opts(opts->config_path, stderr, &n_errors,
                            CONFIG_SECRETS_OPTIONAL);
    if (*cfg == NULL)
        return -EINVAL;
    *prices = gateway_load_prices(*cfg, stderr);
    if (*prices == NULL)
        return -EINVAL;
    opts->config = *cfg;
    opts->prices = *prices;
    return 0;
}

static int report_cli_run(report_opts_t *opts, char *err, size_t errlen)
{
    config_t *cfg = NULL;
    price_table_t *prices = NULL;
    int rc = 1;

    if (load_prices(opts, &cfg, &prices) < 0)
        goto out;
    if (!opts->no_rollup)
        report_rollup_maybe(opts->ledger_path, ROLLUP_MIN_NEW);
    rc = 0;
    if (run_with(opts, err, errlen) < 0) {
        fprintf(stderr, "tollgate report: %s\n", err);
        rc = 1;
    }
out:
    billing_table_free(prices);
    config_free(cfg);
    return rc;
}

int report_main(int argc, char **argv)
{
    struct timespec now;
    report_opts_t opts;
    char err[512] = "";
    int rc;

    clock_gettime(CLOCK_REALTIME, &now);
    rc = report_parse_args(argc, argv,
                           (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                           &opts, stdout, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "tollgate report: %s\n%s", err, usage_text);
        return 2;
    }

    return report_cli_run(&opts, err, sizeof(err));
}
