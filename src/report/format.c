/*
 * Prints a report: an aligned table for people, CSV and JSON for tools.
 * CSV and JSON carry money exactly (12 decimals and integer picodollars);
 * the table rounds it to 6 decimals and says so. Rates are exact ratios
 * of counts, written with 4 decimals (half to even).
 */
#include "report/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CELL_MAX 160

static const char *const dim_headings[] = {"TASK",  "MODEL", "TEAM", "KEY",
                                           "OWNER", "HOUR",  "DAY"};

/* Unpriced outcomes are counted apart and never in spend. */
typedef enum metric_kind {
    METRIC_COUNT,    /* always present */
    METRIC_USD,      /* spend as a decimal string */
    METRIC_PICO,     /* spend as an integer */
    METRIC_COST_USD, /* cost per useful outcome, or n/a */
    METRIC_COST_PICO,
    METRIC_MS,  /* a percentile, or n/a */
    METRIC_RATE /* value / den with 4 decimals, or n/a */
} metric_kind_t;

typedef struct metric {
    const char *name;    /* CSV and JSON */
    const char *heading; /* table; NULL to leave out */
    metric_kind_t kind;
    size_t offset;  /* of the value in report_row_t */
    size_t present; /* of its bool, for optional values */
    size_t den;     /* METRIC_RATE: of the denominator */
} metric_t;

#define AT(field) offsetof(report_row_t, field)

static const metric_t metrics[] = {
    {"outcomes", "OUTCOMES", METRIC_COUNT, AT(outcomes), 0, 0},
    {"attempts", "ATTEMPTS", METRIC_COUNT, AT(attempts), 0, 0},
    {"errors", "ERRORS", METRIC_COUNT, AT(errors), 0, 0},
    {"input_tokens", "INPUT", METRIC_COUNT, AT(input_tokens), 0, 0},
    {"cached_tokens", "CACHED", METRIC_COUNT, AT(cached_tokens), 0, 0},
    {"output_tokens", "OUTPUT", METRIC_COUNT, AT(output_tokens), 0, 0},
    {"reasoning_tokens", "REASONING", METRIC_COUNT, AT(reasoning_tokens), 0, 0},
    {"spend_usd", "SPEND_USD", METRIC_USD, AT(spend), AT(has_spend), 0},
    {"spend_pico", NULL, METRIC_PICO, AT(spend), AT(has_spend), 0},
    {"unpriced", "UNPRICED", METRIC_COUNT, AT(unpriced), 0, 0},
    {"unpriced_tokens", NULL, METRIC_COUNT, AT(unpriced_tokens), 0, 0},
    {"estimated", NULL, METRIC_COUNT, AT(estimated), 0, 0},
    {"estimate_usd", NULL, METRIC_USD, AT(estimate), 0, 0},
    {"estimate_pico", NULL, METRIC_PICO, AT(estimate), 0, 0},
    {"useful", "USEFUL", METRIC_COUNT, AT(useful), 0, 0},
    {"cost_per_useful_usd", "USD/USEFUL", METRIC_COST_USD, AT(cost_per_useful),
     AT(has_cost_per_useful), 0},
    {"cost_per_useful_pico", NULL, METRIC_COST_PICO, AT(cost_per_useful),
     AT(has_cost_per_useful), 0},
    {"latency_p50_ms", "P50_MS", METRIC_MS, AT(latency_p50_ms), AT(has_latency),
     0},
    {"latency_p95_ms", "P95_MS", METRIC_MS, AT(latency_p95_ms), AT(has_latency),
     0},
    {"ttfb_p50_ms", "TTFB_P50_MS", METRIC_MS, AT(ttfb_p50_ms), AT(has_ttfb), 0},
    {"checks_passed", NULL, METRIC_COUNT, AT(checks_passed), 0, 0},
    {"feedback", NULL, METRIC_COUNT, AT(feedback), 0, 0},
    {"feedback_negative", NULL, METRIC_COUNT, AT(feedback_negative), 0, 0},
    {"extra_attempts", NULL, METRIC_COUNT, AT(extra_attempts), 0, 0},
    {"repeats", NULL, METRIC_COUNT, AT(repeats), 0, 0},
    {"retry_spend_pico", NULL, METRIC_PICO, AT(retry_spend), 0, 0},
    {"trimmed_tokens", NULL, METRIC_COUNT, AT(trimmed_tokens), AT(has_trim), 0},
    {"trim_saved_usd", NULL, METRIC_USD, AT(trim_saved), AT(has_trim), 0},
    {"cache_hits", NULL, METRIC_COUNT, AT(cache_hits), AT(has_cache_hits), 0},
    {"check_pass_rate", "PASS", METRIC_RATE, AT(checks_passed), 0,
     AT(outcomes)},
    {"feedback_rate", "FEEDBACK", METRIC_RATE, AT(feedback), 0, AT(outcomes)},
    {"rework_rate", "REWORK", METRIC_RATE, AT(rework), 0, AT(outcomes)},
    {"retry_spend_usd", "RETRY_USD", METRIC_USD, AT(retry_spend), 0, 0},
};

#define N_METRICS (sizeof(metrics) / sizeof(metrics[0]))

static int64_t metric_value(const report_row_t *row, const metric_t *m)
{
    return *(const int64_t *)((const char *)row + m->offset);
}

static bool metric_present(const report_row_t *row, const metric_t *m)
{
    if (m->present == 0)
        return true;
    return *(const bool *)((const char *)row + m->present);
}

static bool metric_is_usd(const metric_t *m)
{
    return m->kind == METRIC_USD || m->kind == METRIC_COST_USD;
}

/* Dollars rounded half away from zero to 6 decimals, for the table. */
static void format_usd_short(pico_t pico, char *out, size_t len)
{
    uint64_t mag = pico < 0 ? (uint64_t)(-(pico + 1)) + 1 : (uint64_t)pico;
    uint64_t micro = (mag + 500000) / 1000000;

    snprintf(out, len, "%s%" PRIu64 ".%06" PRIu64, pico < 0 ? "-" : "",
             micro / 1000000, micro % 1000000);
}

/* A metric as text: exact money for CSV, rounded for the table. */
static void metric_text(const report_row_t *row, const metric_t *m, bool exact,
                        char *out, size_t len)
{
    int64_t value = metric_value(row, m);

    if (!metric_present(row, m))
        snprintf(out, len, "n/a");
    else if (m->kind == METRIC_RATE)
        format_rate(value, *(const int64_t *)((const char *)row + m->den), out,
                    len);
    else if (metric_is_usd(m) && exact)
        pico_format_usd(value, out, len);
    else if (metric_is_usd(m))
        format_usd_short(value, out, len);
    else
        snprintf(out, len, "%" PRId64, value);
}

void report_format_time(int64_t ms, char *out, size_t len)
{
    int64_t frac = ((ms % 1000) + 1000) % 1000;
    time_t secs = (time_t)((ms - frac) / 1000);
    struct tm tm;
    size_t n;

    gmtime_r(&secs, &tm);
    n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac != 0)
        snprintf(out + n, len - n, ".%03" PRId64 "Z", frac);
    else
        snprintf(out + n, len - n, "Z");
}

void format_rate(int64_t num, int64_t den, char *out, size_t len)
{
    int64_t ten_thousandths;

    if (den == 0) {
        snprintf(out, len, "n/a");
        return;
    }
    ten_thousandths = divide_half_even(num * 10000, den);
    snprintf(out, len, "%s%lld.%04lld", ten_thousandths < 0 ? "-" : "",
             llabs(ten_thousandths) / 10000, llabs(ten_thousandths) % 10000);
}

/* ---- table ---- */

/* Control bytes in a caller-chosen name could drive the terminal. */
static void sanitize(const char *in, char *out, size_t len)
{
    size_t i = 0;

    for (; *in != '\0' && i + 1 < len; in++, i++) {
        unsigned char c = (unsigned char)*in;

        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[i] = '\0';
    if (i == 0)
        snprintf(out, len, "-");
}

/* Width on screen: UTF-8 continuation bytes take no column. */
static size_t display_width(const char *s)
{
    size_t width = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            width++;
    return width;
}

static size_t table_columns(const report_t *report)
{
    size_t n = (size_t)report->opts.n_by;

    for (size_t m = 0; m < N_METRICS; m++)
        n += metrics[m].heading != NULL;
    return n;
}

/* The text of one cell; row NULL is the heading line. */
static void table_cell(const report_t *report, const report_row_t *row,
                       bool is_total, size_t col, char *out, size_t len)
{
    size_t n_by = (size_t)report->opts.n_by;

    if (col < n_by) {
        if (row == NULL)
            snprintf(out, len, "%s", dim_headings[report->opts.by[col]]);
        else if (is_total)
            snprintf(out, len, "%s", col == 0 ? "TOTAL" : "");
        else
            sanitize(row->keys[col], out, len);
        return;
    }
    col -= n_by;
    for (size_t m = 0; m < N_METRICS; m++) {
        if (metrics[m].heading == NULL)
            continue;
        if (col-- != 0)
            continue;
        if (row == NULL)
            snprintf(out, len, "%s", metrics[m].heading);
        else
            metric_text(row, &metrics[m], false, out, len);
        return;
    }
}

static void table_line(FILE *out, const report_t *report,
                       const report_row_t *row, bool is_total,
                       const size_t *widths, size_t n_cols)
{
    char cell[CELL_MAX];

    for (size_t c = 0; c < n_cols; c++) {
        size_t pad;
        bool left = c < (size_t)report->opts.n_by;

        table_cell(report, row, is_total, c, cell, sizeof(cell));
        pad = widths[c] - display_width(cell);
        if (!left)
            fprintf(out, "%*s", (int)pad, "");
        fputs(cell, out);
        if (left && c + 1 < n_cols)
            fprintf(out, "%*s", (int)pad, "");
        fputs(c + 1 < n_cols ? "  " : "\n", out);
    }
}

static void table_widths(const report_t *report, size_t *widths, size_t n_cols)
{
    char cell[CELL_MAX];

    for (size_t c = 0; c < n_cols; c++) {
        table_cell(report, NULL, false, c, cell, sizeof(cell));
        widths[c] = display_width(cell);
        for (size_t r = 0; r <= report->n_rows; r++) {
            bool is_total = r == report->n_rows;
            const report_row_t *row =
                is_total ? &report->total : &report->rows[r];
            size_t w;

            table_cell(report, row, is_total, c, cell, sizeof(cell));
            w = display_width(cell);
            widths[c] = w > widths[c] ? w : widths[c];
        }
    }
}

static void table_header(FILE *out, const report_t *report)
{
    const report_opts_t *opts = &report->opts;
    char since[40], until[40];
    char path[CELL_MAX];

    report_format_time(opts->since_ms, since, sizeof(since));
    report_format_time(opts->until_ms, until, sizeof(until));
    sanitize(opts->ledger_path, path, sizeof(path));
    fprintf(out, "ledger %s\n", path);

    if (opts->has_since && opts->has_until)
        fprintf(out, "window %s (inclusive) to %s (exclusive)\n", since, until);
    else if (opts->has_since)
        fprintf(out, "window from %s (inclusive), no end\n", since);
    else if (opts->has_until)
        fprintf(out, "window up to %s (exclusive), no start\n", until);
    else
        fputs("window: all outcomes\n", out);
    fputs("\n", out);
}

static void table_footer(FILE *out, const report_t *report)
{
    fputs("\n", out);
    char usd[40];

    if (report->total.unpriced > 0)
        fprintf(out,
                "Spend leaves out %" PRId64 " outcomes (%" PRId64
                " tokens) whose exact cost is unknown, not $0.\n",
                report->total.unpriced, report->total.unpriced_tokens);
    if (report->total.estimated > 0)
        fprintf(out,
                "Of those, %" PRId64 " lost their usage and were counted "
                "by Tollgate: about $%s.\n",
                report->total.estimated,
                pico_format_usd(report->total.estimate, usd, sizeof(usd)));
    if (report->used_rollup)
        fprintf(out,
                "%" PRId64 " outcomes came from the daily rollup; their "
                "percentiles are from histograms (within 3.2%%).\n",
                report->rollup_outcomes);
    fputs("Rates are of outcomes: PASS checks passed, FEEDBACK any "
          "feedback, REWORK (extra attempts + repeated asks).\n",
          out);
    fputs("Dollars are rounded to 6 decimals here; --format csv or json "
          "gives them exactly.\n",
          out);
}

static void table_body(const report_t *report, FILE *out)
{
    size_t n_cols = table_columns(report);
    size_t widths[REPORT_MAX_DIMS + N_METRICS];

    table_widths(report, widths, n_cols);
    table_line(out, report, NULL, false, widths, n_cols);
    for (size_t r = 0; r < report->n_rows; r++)
        table_line(out, report, &report->rows[r], false, widths, n_cols);
    table_line(out, report, &report->total, true, widths, n_cols);
}

/* The change of a money figure: "$a -> $b (+x.x%)". */
static void put_change(FILE *out, const char *what, bool has_before,
                       pico_t before, bool has_after, pico_t after)
{
    char a[40], b[40], pct[40] = "";

    if (!has_before || !has_after) {
        fprintf(out, "%s: n/a\n", what);
        return;
    }
    format_usd_short(before, a, sizeof(a));
    format_usd_short(after, b, sizeof(b));
    if (before != 0) {
        /* Truncated to a tenth of a percent; 128 bits, as spend in
         * picodollars times 1000 passes 64. */
        int64_t tenths = (int64_t)((__int128)(after - before) * 1000 / before);

        snprintf(pct, sizeof(pct), "%s%lld.%lld%%", tenths < 0 ? "-" : "+",
                 llabs(tenths) / 10, llabs(tenths) % 10);
        fprintf(out, "%s: $%s -> $%s (%s)\n", what, a, b, pct);
        return;
    }
    fprintf(out, "%s: $%s -> $%s\n", what, a, b);
}

/* The previous period as a table of its own, rows in the same order. */
static void table_previous(const report_t *report, FILE *out)
{
    report_t view = *report;
    char since[40], until[40];

    view.rows =
        calloc(report->n_rows ? report->n_rows : 1, sizeof(report_row_t));
    if (view.rows == NULL)
        abort();
    for (size_t r = 0; r < report->n_rows; r++) {
        view.rows[r] = *report->rows[r].previous;
        memcpy(view.rows[r].keys, report->rows[r].keys,
               sizeof(view.rows[r].keys));
    }
    view.total = report->previous_total;
    report_format_time(report->previous_since_ms, since, sizeof(since));
    report_format_time(report->previous_until_ms, until, sizeof(until));
    fprintf(out, "\nprevious period %s (inclusive) to %s (exclusive)\n\n",
            since, until);
    table_body(&view, out);
    fputs("\n", out);
    put_change(out, "spend", report->previous_total.has_spend,
               report->previous_total.spend, report->total.has_spend,
               report->total.spend);
    put_change(out, "cost per useful outcome",
               report->previous_total.has_cost_per_useful,
               report->previous_total.cost_per_useful,
               report->total.has_cost_per_useful,
               report->total.cost_per_useful);
    free(view.rows);
}

static int write_table(const report_t *report, FILE *out)
{
    table_header(out, report);
    if (report->has_leaks) {
        leaks_write_table(report, out);
        return 0;
    }
    table_body(report, out);
    if (report->has_previous)
        table_previous(report, out);
    table_footer(out, report);
    return 0;
}

/* ---- CSV ---- */

/*
 * RFC 4180 quoting. A task name is chosen by the caller, so a leading
 * = + - @ is defused with a quote mark, or a spreadsheet would run it as
 * a formula.
 */
static void csv_text(FILE *out, const char *text)
{
    bool formula = text[0] != '\0' && strchr("=+-@\t\r", text[0]) != NULL;
    bool quote = formula || strpbrk(text, ",\"\r\n") != NULL;

    if (!quote) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    if (formula)
        fputc('\'', out);
    for (; *text != '\0'; text++) {
        if (*text == '"')
            fputc('"', out);
        fputc(*text, out);
    }
    fputc('"', out);
}

/* --compare: the previous period's figures after the current ones. */
static void csv_previous(FILE *out, const report_t *report,
                         const report_row_t *row, bool is_total)
{
    const report_row_t *prev = NULL;
    char cell[CELL_MAX];

    if (row != NULL)
        prev = is_total ? &report->previous_total : row->previous;
    for (size_t m = 0; m < N_METRICS; m++) {
        if (row == NULL)
            fprintf(out, ",prev_%s", metrics[m].name);
        else {
            metric_text(prev, &metrics[m], true, cell, sizeof(cell));
            fprintf(out, ",%s", cell);
        }
    }
}

static void csv_line(FILE *out, const report_t *report, const report_row_t *row,
                     bool is_total)
{
    char cell[CELL_MAX];

    for (int i = 0; i < report->opts.n_by; i++) {
        if (i > 0)
            fputc(',', out);
        if (row == NULL)
            fputs(report_dim_name(report->opts.by[i]), out);
        else if (is_total)
            fputs(i == 0 ? "TOTAL" : "", out);
        else
            csv_text(out, row->keys[i]);
    }
    for (size_t m = 0; m < N_METRICS; m++) {
        if (row == NULL)
            snprintf(cell, sizeof(cell), "%s", metrics[m].name);
        else
            metric_text(row, &metrics[m], true, cell, sizeof(cell));
        fprintf(out, ",%s", cell);
    }
    if (report->has_previous)
        csv_previous(out, report, row, is_total);
    fputc('\n', out);
}

static void csv_leaks(const report_t *report, FILE *out)
{
    char money[40];

    fputs("leak,amount_usd,amount_pico,outcomes,tokens,change,method\n", out);
    for (int i = 0; i < REPORT_N_LEAKS; i++) {
        const report_leak_t *l = &report->leaks[i];

        fprintf(out, "%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",", l->kind,
                pico_format_usd(l->amount, money, sizeof(money)), l->amount,
                l->outcomes, l->tokens);
        csv_text(out, l->change);
        fputc(',', out);
        csv_text(out, l->method);
        fputc('\n', out);
    }
}

static int write_csv(const report_t *report, FILE *out)
{
    if (report->has_leaks) {
        csv_leaks(report, out);
        return 0;
    }
    csv_line(out, report, NULL, false);
    for (size_t r = 0; r < report->n_rows; r++)
        csv_line(out, report, &report->rows[r], false);
    csv_line(out, report, &report->total, true);
    return 0;
}

/* ---- JSON ---- */

static json_object *json_time(bool has, int64_t ms)
{
    char text[40];

    if (!has)
        return NULL;
    report_format_time(ms, text, sizeof(text));
    return json_object_new_string(text);
}

static json_object *json_window(const report_opts_t *opts)
{
    json_object *window = json_object_new_object();

    json_object_object_add(window, "since",
                           json_time(opts->has_since, opts->since_ms));
    json_object_object_add(window, "until",
                           json_time(opts->has_until, opts->until_ms));
    json_object_object_add(
        window, "since_ms",
        opts->has_since ? json_object_new_int64(opts->since_ms) : NULL);
    json_object_object_add(
        window, "until_ms",
        opts->has_until ? json_object_new_int64(opts->until_ms) : NULL);
    return window;
}

/* A rate as a JSON number whose text is the exact 4-decimal figure. */
static json_object *json_rate(const report_row_t *row, const metric_t *m)
{
    char text[40];

    metric_text(row, m, true, text, sizeof(text));
    if (strcmp(text, "n/a") == 0)
        return NULL;
    return json_object_new_double_s(strtod(text, NULL), text);
}

static json_object *json_row(const report_t *report, const report_row_t *row,
                             bool with_keys)
{
    json_object *obj = json_object_new_object();
    char usd[40];

    for (int i = 0; with_keys && i < report->opts.n_by; i++)
        json_object_object_add(obj, report_dim_name(report->opts.by[i]),
                               json_object_new_string(row->keys[i]));
    for (size_t m = 0; m < N_METRICS; m++) {
        const metric_t *metric = &metrics[m];
        json_object *value = NULL;

        if (metric_present(row, metric) && metric->kind == METRIC_RATE)
            value = json_rate(row, metric);
        else if (metric_present(row, metric) && metric_is_usd(metric))
            value = json_object_new_string(
                pico_format_usd(metric_value(row, metric), usd, sizeof(usd)));
        else if (metric_present(row, metric))
            value = json_object_new_int64(metric_value(row, metric));
        json_object_object_add(obj, metric->name, value);
    }
    if (row->previous != NULL)
        json_object_object_add(obj, "previous",
                               json_row(report, row->previous, false));
    return obj;
}

static json_object *json_span(int64_t since, int64_t until)
{
    json_object *window = json_object_new_object();

    json_object_object_add(window, "since", json_time(true, since));
    json_object_object_add(window, "until", json_time(true, until));
    json_object_object_add(window, "since_ms", json_object_new_int64(since));
    json_object_object_add(window, "until_ms", json_object_new_int64(until));
    return window;
}

static void json_extras(const report_t *report, json_object *root)
{
    if (report->has_previous) {
        json_object_object_add(
            root, "previous_window",
            json_span(report->previous_since_ms, report->previous_until_ms));
        json_object_object_add(
            root, "previous_total",
            json_row(report, &report->previous_total, false));
    }
    json_object_object_add(root, "rollup_outcomes",
                           json_object_new_int64(report->rollup_outcomes));
    json_object_object_add(root, "approximate_percentiles",
                           json_object_new_boolean(report->total.approximate));
    if (report->has_leaks)
        json_object_object_add(root, "leaks", leaks_to_json(report));
}

json_object *report_to_json(const report_t *report)
{
    json_object *root = json_object_new_object();
    json_object *group_by = json_object_new_array();
    json_object *rows = json_object_new_array();

    for (int i = 0; i < report->opts.n_by; i++)
        json_object_array_add(group_by, json_object_new_string(report_dim_name(
                                            report->opts.by[i])));
    for (size_t r = 0; r < report->n_rows; r++)
        json_object_array_add(rows, json_row(report, &report->rows[r], true));

    json_object_object_add(root, "window", json_window(&report->opts));
    json_object_object_add(root, "group_by", group_by);
    json_object_object_add(root, "rows", rows);
    json_object_object_add(root, "total",
                           json_row(report, &report->total, false));
    json_extras(report, root);
    return root;
}

static int write_json(const report_t *report, FILE *out)
{
    json_object *root = report_to_json(report);

    fprintf(out, "%s\n",
            json_object_to_json_string_ext(root,
                                           JSON_C_TO_STRING_PRETTY |
                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    return 0;
}

int report_write(const report_t *report, FILE *out)
{
    int rc;

    switch (report->opts.format) {
    case REPORT_CSV:
        rc = write_csv(report, out);
        break;
    case REPORT_JSON:
        rc = write_json(report, out);
        break;
    default:
        rc = write_table(report, out);
        break;
    }
    if (rc == 0 && (fflush(out) != 0 || ferror(out)))
        rc = -EIO;
    return rc;
}
