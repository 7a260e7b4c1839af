/*
 * The policy replay applies: a Tollgate config (models, prices, budgets)
 * plus the small replay-only section of routes, checks, trimming, cache
 * and a per-key daily cap (docs/audit.md describes the file).
 */
#ifndef TOLLGATE_AUDIT_POLICY_H
#define TOLLGATE_AUDIT_POLICY_H

#include "audit/audit.h"
#include "config/config.h"

#define POLICY_MAX_ROUTES 32

/* What a check asks of an answer's text. */
typedef enum check_kind {
    CHECK_NONE = 0,
    CHECK_NUMERIC,    /* a number on the answer's last non-blank line */
    CHECK_NONEMPTY,   /* some text that is not white space */
    CHECK_NO_REFUSAL, /* does not open with a refusal */
    CHECK_MIN_CHARS   /* at least check_arg characters */
} check_kind_t;

typedef struct route_rule {
    const char *from;     /* logged model, NULL or "*" for any */
    const char *workflow; /* substring of the workflow label, or NULL */
    const char *to;
    check_kind_t check;
    int64_t check_arg;
    const char *check_name;
    const char *escalate; /* NULL: no escalation */
} route_rule_t;

/* replay.workflow_tasks: calls of a workflow (label substring) run as
 * the config's task of that name. */
typedef struct task_map {
    const char *workflow;
    const char *task;
} task_map_t;

struct task_set;

typedef struct policy {
    config_t *config;       /* NULL when the file names none */
    struct task_set *tasks; /* the config's tasks compiled; NULL: none */
    task_map_t task_maps[POLICY_MAX_ROUTES];
    int n_task_maps;
    const char *default_task; /* --task NAME, or NULL */
    price_table_t *prices;
    route_rule_t routes[POLICY_MAX_ROUTES];
    int n_routes;
    bool has_cap;
    pico_t cap_per_key_day;
    int64_t max_input_tokens; /* 0: no trimming */
    bool cache;
    char path[512];
    char text[4096]; /* the rule strings, NUL-separated */
    size_t text_len;
} policy_t;

/*
 * Reads a policy file: a Tollgate config, or a file with a `replay:`
 * section and optionally `config: FILE`. Prices: built-ins, the config's
 * price files and aliases, then extra_prices. Returns 0, or -EINVAL with
 * each problem printed to errout as "FILE:LINE: message".
 */
int policy_load(policy_t *policy, const char *path, FILE *errout);
void policy_free(policy_t *policy);

/* The price of a model name as the policy knows it: a configured model's
 * own price or price entry first, then the table. NULL when unpriced. */
const price_t *policy_price(const policy_t *policy, const char *model,
                            int64_t at);

/* The name a model has in an evaluation set: a configured model's
 * upstream id, else the name itself. */
const char *policy_answer_model(const policy_t *policy, const char *model);

/* The first route whose from and workflow match, or NULL. */
const route_rule_t *policy_route(const policy_t *policy, const char *model,
                                 const char *label);

/*
 * The task a call runs as: the log's own task field, else the first
 * workflow_tasks entry whose workflow is in the call's label, else
 * default_task. NULL when none names one.
 */
const char *policy_task_name(const policy_t *policy, const audit_call_t *call);

/* Whether an answer passes a check (true for CHECK_NONE). */
bool policy_check(const route_rule_t *rule, const char *text, size_t len);

#endif
