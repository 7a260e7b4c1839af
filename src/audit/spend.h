/*
 * Inside the audit: the groups spend is added to, the per-workflow leak
 * figures, and the steps spend.c, leaks.c and output.c share.
 */
#ifndef TOLLGATE_AUDIT_SPEND_H
#define TOLLGATE_AUDIT_SPEND_H

#include "audit/internal.h"

#define RETRY_WINDOW 60       /* seconds: a repeat sooner is a retry */
#define ROUTE_MIN_CALLS 20    /* a templated workflow repeats */
#define SHORT_ANSWER 100      /* mean output tokens of a short answer */
#define CACHE_MIN_PREFIX 1024 /* providers cache prompts from this size */
#define OUTLIER_FACTOR 3
#define OUTLIER_MIN_DAYS 3

/* Spend of one group: owner, model, week, workflow, or the total. */
typedef struct agg {
    char name[AUDIT_NAME_MAX];
    int64_t calls;
    int64_t input_tokens;
    int64_t output_tokens;
    pico_t spend;     /* exact */
    pico_t estimated; /* priced from usage we counted */
    int64_t estimated_calls;
    int64_t unpriced; /* calls with no price and no cost */
} agg_t;

typedef struct workflow {
    agg_t agg;
    char owner[AUDIT_NAME_MAX];
    bool several_owners;
    int64_t answer_tokens;
    int64_t retries, duplicates;
    pico_t leak_prefix, leak_history, leak_retries, leak_duplicates;
    pico_t leak_routing, leak_outliers;
    int64_t days, outlier_days;
} workflow_t;

/* A workflow's calls on one model, with the same usage priced at the
 * provider's cheaper tier (routing leak). */
typedef struct wf_model {
    uint64_t workflow;
    char model[AUDIT_NAME_MAX];
    char cheaper[AUDIT_NAME_MAX];
    int64_t calls;
    pico_t spend;
    pico_t cheaper_spend;
} wf_model_t;

typedef struct wf_day {
    uint64_t workflow;
    int64_t day;
    int64_t calls;
    pico_t spend;
} wf_day_t;

typedef struct priced {
    const price_t *price;
    bool known;
    bool estimated;
    pico_t cost;
} priced_t;

typedef struct audit_source {
    char path[256];
    audit_read_stats_t stats;
} audit_source_t;

#define PRICE_MEMO 64
typedef struct price_memo {
    uint64_t hash;
    int64_t day;
    char model[AUDIT_NAME_MAX];
    const price_t *price;
} price_memo_t;

struct audit {
    price_memo_t memo[PRICE_MEMO];
    const price_table_t *table;
    audit_opts_t opts;
    amap_t owners, models, weeks, workflows, wf_models, wf_days;
    agg_t other_owner, other_model, other_week;
    workflow_t other_wf;
    agg_t total;
    int64_t records;
    recent_t *retry;
    recent_t *dups;
    audit_source_t *sources;
    size_t n_sources;
    audit_totals_t totals;
    bool finished;
};

void audit_leak_retry(audit_t *a, workflow_t *w, const audit_call_t *call,
                      const priced_t *p);
void audit_leak_context(audit_t *a, workflow_t *w, const audit_call_t *call,
                        const priced_t *p);
void audit_leak_routing(audit_t *a, const audit_call_t *call,
                        const priced_t *p);
void audit_leak_volume(audit_t *a, const audit_call_t *call, const priced_t *p);

/* The JSON form of a finished audit (json_out.c). Returns 0 or -EIO. */
int audit_write_json(const audit_t *a, FILE *out);

/* That JSON as a tree, owned by the caller (json_object_put). */
struct json_object *audit_to_json(const audit_t *a);

/* The audit as one self-contained HTML page (html_out.c): the tables of
 * the JSON form, money as its exact USD strings. Returns 0 or -EIO. */
int audit_write_html(const audit_t *a, FILE *out);

/* The groups of a map plus its overflow by spend, then name; the array
 * is the caller's to free. */
const agg_t **audit_ranked(const amap_t *map, const agg_t *other, size_t *n);

#endif
