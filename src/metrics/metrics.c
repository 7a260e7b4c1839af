/*
 * The counters behind /metrics and their text rendering.
 *
 * Label cardinality is bounded by admission, not by ranking: the first
 * METRICS_LABEL_VALUES distinct values of each label get their own series
 * and later ones are counted as "other". A true top-N would move a value
 * out of "other" when it grew, and "other" would then go down, which a
 * Prometheus counter must never do. Series (task, model, team) live in a
 * small open-addressing table capped at METRICS_MAX_SERIES; past the cap
 * every new combination lands in the all-"other" series.
 *
 * Ledger lag is the age of the oldest record not yet committed. The
 * final step calls metrics_observe() right where it appends the record,
 * so the n-th observation is the n-th record; a ring of observation
 * times then gives the time of record written + 1.
 */
#include "metrics/metrics.h"

#include "util/arena.h"
#include "util/clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX 64
#define N_BUCKETS 11
#define LAG_RING 4096

/* Latency buckets in ms; the exposition writes them in seconds. */
static const int64_t bucket_ms[N_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000};

typedef enum dim { DIM_TASK = 0, DIM_MODEL, DIM_TEAM, N_DIMS } dim_t;

static const char *const dim_names[N_DIMS] = {"task", "model", "team"};

typedef struct series {
    bool used;
    int label[N_DIMS]; /* index into values[dim], or -1 for "other" */
    int64_t calls, errors, useful, unpriced;
    int64_t input_tokens, cached_tokens, output_tokens;
    pico_t spend;
    int64_t latency_count, latency_sum_ms;
    int64_t buckets[N_BUCKETS]; /* cumulative at render, plain here */
} series_t;

typedef struct provider_errors {
    char name[LABEL_MAX];
    int64_t errors;
    int64_t attempts;
} provider_errors_t;

struct metrics {
    int label_cap;
    char (*values[N_DIMS])[LABEL_MAX];
    int n_values[N_DIMS];
    series_t *series; /* METRICS_MAX_SERIES * 2 slots */
    size_t n_series;
    provider_errors_t providers[METRICS_MAX_PROVIDERS];
    int n_providers;
    int64_t observed;
    int64_t lag_ring[LAG_RING]; /* mono ms of observation n % LAG_RING */
};

metrics_t *metrics_new(int label_values)
{
    metrics_t *m = calloc(1, sizeof(*m));

    if (m == NULL)
        die_oom();
    m->label_cap = label_values > 0 ? label_values : METRICS_LABEL_VALUES;
    for (int d = 0; d < N_DIMS; d++) {
        m->values[d] = calloc((size_t)m->label_cap, LABEL_MAX);
        if (m->values[d] == NULL)
            die_oom();
    }
    m->series = calloc(METRICS_MAX_SERIES * 2, sizeof(series_t));
    if (m->series == NULL)
        die_oom();
    return m;
}

void metrics_free(metrics_t *m)
{
    if (m == NULL)
        return;
    for (int d = 0; d < N_DIMS; d++)
        free(m->values[d]);
    free(m->series);
    free(m);
}

/* The label index of value, admitting it while there is room; -1 is
 * "other". */
static int label_index(metrics_t *m, dim_t d, const char *value)
{
    for (int i = 0; i < m->n_values[d]; i++)
        if (strncmp(m->values[d][i], value, LABEL_MAX - 1) == 0)
            return i;
    if (m->n_values[d] == m->label_cap)
        return -1;
    snprintf(m->values[d][m->n_values[d]], LABEL_MAX, "%s", value);
    return m->n_values[d]++;
}

static size_t series_hash(const int label[N_DIMS])
{
    uint64_t h = 1469598103934665603ULL;

    for (int d = 0; d < N_DIMS; d++)
        h = (h ^ (uint64_t)(label[d] + 1)) * 1099511628211ULL;
    return (size_t)h;
}

static series_t *find_series(metrics_t *m, int label[N_DIMS])
{
    size_t mask = METRICS_MAX_SERIES * 2 - 1;
    size_t s = series_hash(label) & mask;

    for (;; s = (s + 1) & mask) {
        series_t *x = &m->series[s];

        if (x->used && memcmp(x->label, label, sizeof(x->label)) == 0)
            return x;
        if (x->used)
            continue;
        /* Full: everything new goes to the all-"other" series, which
         * always has room because it is made before the cap is hit. */
        if (m->n_series + 1 >= METRICS_MAX_SERIES &&
            !(label[0] == -1 && label[1] == -1 && label[2] == -1)) {
            int other[N_DIMS] = {-1, -1, -1};

            return find_series(m, other);
        }
        x->used = true;
        memcpy(x->label, label, sizeof(x->label));
        m->n_series++;
        return x;
    }
}

static provider_errors_t *find_provider(metrics_t *m, const char *name)
{
    for (int i = 0; i < m->n_providers; i++)
        if (strncmp(m->providers[i].name, name, LABEL_MAX - 1) == 0)
            return &m->providers[i];
    if (m->n_providers == METRICS_MAX_PROVIDERS)
        return NULL;
    snprintf(m->providers[m->n_providers].name, LABEL_MAX, "%s", name);
    return &m->providers[m->n_providers++];
}

static void observe_attempts(metrics_t *m, const ledger_outcome_t *rec)
{
    int n = rec->n_attempts < LEDGER_MAX_ATTEMPTS ? rec->n_attempts
                                                  : LEDGER_MAX_ATTEMPTS;

    for (int i = 0; i < n; i++) {
        const ledger_attempt_t *a = &rec->attempts[i];
        provider_errors_t *p = find_provider(m, a->provider);

        if (p == NULL)
            continue;
        p->attempts++;
        p->errors += a->http_status != 200 || a->error_type[0] != '\0';
    }
}

static void observe_latency(series_t *s, int64_t ms)
{
    s->latency_count++;
    s->latency_sum_ms += ms;
    for (int b = 0; b < N_BUCKETS; b++) {
        if (ms <= bucket_ms[b]) {
            s->buckets[b]++;
            break;
        }
    }
}

void metrics_observe(metrics_t *m, const ledger_outcome_t *rec)
{
    int label[N_DIMS] = {label_index(m, DIM_TASK, rec->task),
                         label_index(m, DIM_MODEL, rec->model),
                         label_index(m, DIM_TEAM, rec->team)};
    series_t *s = find_series(m, label);

    s->calls++;
    s->errors += rec->http_status != 200 || rec->error_type[0] != '\0';
    s->useful += rec->useful;
    s->input_tokens += rec->usage.input_tokens;
    s->cached_tokens += rec->usage.cached_tokens;
    s->output_tokens += rec->usage.output_tokens;
    if (rec->cost_status == COST_PRICED)
        s->spend += rec->cost;
    else if (rec->cost_status != COST_NONE)
        s->unpriced++;
    observe_latency(s, rec->latency_ms);
    observe_attempts(m, rec);

    m->lag_ring[m->observed % LAG_RING] = clock_mono_ms();
    m->observed++;
}

/* ---- rendering ---- */

/* A label value with \, " and newline escaped as the format asks. */
static void put_escaped(FILE *out, const char *value)
{
    for (; *value != '\0'; value++) {
        if (*value == '\\' || *value == '"')
            fputc('\\', out);
        if (*value == '\n')
            fputs("\\n", out);
        else
            fputc(*value, out);
    }
}

static const char *label_text(const metrics_t *m, dim_t d, int index)
{
    return index < 0 ? "other" : m->values[d][index];
}

static void put_labels(FILE *out, const metrics_t *m, const series_t *s,
                       const char *extra)
{
    fputc('{', out);
    for (int d = 0; d < N_DIMS; d++) {
        fprintf(out, "%s%s=\"", d ? "," : "", dim_names[d]);
        put_escaped(out, label_text(m, (dim_t)d, s->label[d]));
        fputc('"', out);
    }
    if (extra != NULL)
        fprintf(out, ",%s", extra);
    fputc('}', out);
}

static void put_head(FILE *out, const char *name, const char *type,
                     const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef enum field {
    F_CALLS,
    F_ERRORS,
    F_USEFUL,
    F_UNPRICED,
    F_INPUT,
    F_CACHED,
    F_OUTPUT
} field_t;

static int64_t field_value(const series_t *s, field_t f)
{
    switch (f) {
    case F_CALLS:
        return s->calls;
    case F_ERRORS:
        return s->errors;
    case F_USEFUL:
        return s->useful;
    case F_UNPRICED:
        return s->unpriced;
    case F_INPUT:
        return s->input_tokens;
    case F_CACHED:
        return s->cached_tokens;
    default:
        return s->output_tokens;
    }
}

static const struct {
    const char *name;
    field_t field;
    const char *help;
} counters[] = {
    {"tollgate_calls_total", F_CALLS, "Outcomes (calls from callers)."},
    {"tollgate_errors_total", F_ERRORS,
     "Outcomes the caller did not get a good 200 for."},
    {"tollgate_useful_total", F_USEFUL,
     "Outcomes whose final attempt passed its checks."},
    {"tollgate_unpriced_total", F_UNPRICED,
     "Outcomes whose exact cost is unknown (not counted as $0)."},
    {"tollgate_input_tokens_total", F_INPUT, "Input tokens."},
    {"tollgate_cached_tokens_total", F_CACHED,
     "Input tokens read from the provider's prompt cache."},
    {"tollgate_output_tokens_total", F_OUTPUT, "Output tokens."},
};

#define N_COUNTERS (sizeof(counters) / sizeof(counters[0]))

static void render_counters(const metrics_t *m, FILE *out)
{
    size_t n_slots = METRICS_MAX_SERIES * 2;

    for (size_t c = 0; c < N_COUNTERS; c++) {
        put_head(out, counters[c].name, "counter", counters[c].help);
        for (size_t i = 0; i < n_slots; i++) {
            if (!m->series[i].used)
                continue;
            fputs(counters[c].name, out);
            put_labels(out, m, &m->series[i], NULL);
            fprintf(out, " %" PRId64 "\n",
                    field_value(&m->series[i], counters[c].field));
        }
    }
}

static void render_spend(const metrics_t *m, FILE *out)
{
    char usd[40];

    put_head(out, "tollgate_spend_usd_total", "counter",
             "Spend of priced outcomes in USD, exact to the picodollar.");
    for (size_t i = 0; i < METRICS_MAX_SERIES * 2; i++) {
        if (!m->series[i].used)
            continue;
        fputs("tollgate_spend_usd_total", out);
        put_labels(out, m, &m->series[i], NULL);
        fprintf(out, " %s\n",
                pico_format_usd(m->series[i].spend, usd, sizeof(usd)));
    }
}

/* Milliseconds as exact decimal seconds. */
static void put_seconds(FILE *out, int64_t ms)
{
    fprintf(out, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
}

static void render_one_histogram(const metrics_t *m, const series_t *s,
                                 FILE *out)
{
    const char *name = "tollgate_call_duration_seconds";
    char le[48];
    int64_t cumulative = 0;

    for (int b = 0; b < N_BUCKETS; b++) {
        cumulative += s->buckets[b];
        snprintf(le, sizeof(le), "le=\"%" PRId64 ".%03" PRId64 "\"",
                 bucket_ms[b] / 1000, bucket_ms[b] % 1000);
        fprintf(out, "%s_bucket", name);
        put_labels(out, m, s, le);
        fprintf(out, " %" PRId64 "\n", cumulative);
    }
    fprintf(out, "%s_bucket", name);
    put_labels(out, m, s, "le=\"+Inf\"");
    fprintf(out, " %" PRId64 "\n%s_sum", s->latency_count, name);
    put_labels(out, m, s, NULL);
    fputc(' ', out);
    put_seconds(out, s->latency_sum_ms);
    fprintf(out, "\n%s_count", name);
    put_labels(out, m, s, NULL);
    fprintf(out, " %" PRId64 "\n", s->latency_count);
}

static void render_histograms(const metrics_t *m, FILE *out)
{
    put_head(out, "tollgate_call_duration_seconds", "histogram",
             "From request received until the call finished.");
    for (size_t i = 0; i < METRICS_MAX_SERIES * 2; i++)
        if (m->series[i].used)
            render_one_histogram(m, &m->series[i], out);
}

static void render_providers(const metrics_t *m, FILE *out)
{
    put_head(out, "tollgate_upstream_attempts_total", "counter",
             "Attempts sent to each provider.");
    for (int i = 0; i < m->n_providers; i++) {
        fputs("tollgate_upstream_attempts_total{provider=\"", out);
        put_escaped(out, m->providers[i].name);
        fprintf(out, "\"} %" PRId64 "\n", m->providers[i].attempts);
    }
    put_head(out, "tollgate_upstream_errors_total", "counter",
             "Attempts a provider failed (not a 200, or cut).");
    for (int i = 0; i < m->n_providers; i++) {
        fputs("tollgate_upstream_errors_total{provider=\"", out);
        put_escaped(out, m->providers[i].name);
        fprintf(out, "\"} %" PRId64 "\n", m->providers[i].errors);
    }
}

/* Age of the oldest record appended but not committed, in ms. */
static int64_t ledger_lag_ms(const metrics_t *m, const metrics_health_t *h)
{
    int64_t oldest = (int64_t)h->ledger.written;

    if (oldest >= m->observed)
        return 0;
    /* Past the ring the oldest time is gone: the oldest kept is a lower
     * bound. */
    if (m->observed - oldest > LAG_RING)
        oldest = m->observed - LAG_RING;
    return h->now_mono_ms - m->lag_ring[oldest % LAG_RING];
}

static void gauge(FILE *out, const char *name, const char *help, int64_t value)
{
    put_head(out, name, "gauge", help);
    fprintf(out, "%s %" PRId64 "\n", name, value);
}

static void render_health(const metrics_t *m, const metrics_health_t *h,
                          FILE *out)
{
    gauge(out, "tollgate_calls_in_flight", "Calls being served now.",
          (int64_t)h->calls_in_flight);
    gauge(out, "tollgate_draining", "1 while the gateway drains to stop.",
          h->draining);
    if (!h->has_ledger)
        return;
    gauge(out, "tollgate_ledger_queue_depth",
          "Records appended and not yet committed.", (int64_t)h->ledger.queued);
    gauge(out, "tollgate_ledger_slots_admitted",
          "Ledger slots held by calls in flight.", (int64_t)h->ledger.admitted);
    gauge(out, "tollgate_ledger_capacity", "Ledger queue bound.",
          (int64_t)h->ledger.capacity);
    gauge(out, "tollgate_ledger_full", "1 while new calls are refused.",
          h->ledger.full);
    put_head(out, "tollgate_ledger_lag_seconds", "gauge",
             "Age of the oldest record not yet committed.");
    fputs("tollgate_ledger_lag_seconds ", out);
    put_seconds(out, ledger_lag_ms(m, h));
    fputc('\n', out);
    put_head(out, "tollgate_ledger_written_total", "counter",
             "Records committed since start.");
    fprintf(out, "tollgate_ledger_written_total %" PRIu64 "\n",
            h->ledger.written);
    put_head(out, "tollgate_ledger_failed_commits_total", "counter",
             "Commits that failed and were retried.");
    fprintf(out, "tollgate_ledger_failed_commits_total %" PRIu64 "\n",
            h->ledger.failed);
}

int metrics_render(const metrics_t *m, const metrics_health_t *health,
                   FILE *out)
{
    render_counters(m, out);
    render_spend(m, out);
    render_histograms(m, out);
    render_providers(m, out);
    render_health(m, health, out);
    return ferror(out) ? -EIO : 0;
}
