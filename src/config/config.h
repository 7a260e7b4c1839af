/*
 * The YAML config: listen address, ledger, limits, timeouts, providers,
 * models, keys and price sources. Read once at start; every string lives
 * in the config's own arena until config_free().
 */
#ifndef TOLLGATE_CONFIG_H
#define TOLLGATE_CONFIG_H

#include "billing/billing.h"
#include "util/arena.h"

#include <stdbool.h>
#include <stdio.h>

/* How a provider is spoken to. */
typedef enum provider_kind {
    PROVIDER_OPENAI = 0,     /* api.openai.com and servers that copy it */
    PROVIDER_AZURE = 1,      /* /openai/deployments/{upstream}/..., api-key */
    PROVIDER_GEMINI = 2,     /* Gemini's OpenAI-compatible endpoint */
    PROVIDER_ANTHROPIC = 3   /* /v1/messages, x-api-key */
} provider_kind_t;

typedef struct cfg_provider {
    const char *name;
    const char *kind; /* openai, openai-compatible, azure, gemini,
                         anthropic */
    provider_kind_t type;
    const char *api_version; /* azure: api-version; anthropic: the
                                anthropic-version header */
    const char *base_url;    /* without a trailing slash */
    const char *api_key_env; /* NULL: send no key (local servers) */
    const char *api_key;     /* resolved at load; NULL if none */
    int line;
} cfg_provider_t;

typedef struct cfg_model {
    const char *name; /* what callers ask for */
    const cfg_provider_t *provider;
    const char *provider_name;
    const char *upstream; /* the provider's model id */
    int tier;
    const char *price_entry; /* price-table entry to use; NULL: by name */
    int64_t max_tokens;      /* output cap set when a request has none */
    bool has_price;          /* prices given in the config win */
    price_t price;
    int line;
} cfg_model_t;

typedef struct cfg_key {
    const char *name;
    unsigned char sha256[32];
    bool has_hash;
    const char *team;
    const char *owner;
    const char *default_task;
    int line;
} cfg_key_t;

/* A budget: `scope` key, team, task or global; `period` day, week, month
 * or total; limits in picodollars, -1 when not set. */
typedef struct cfg_budget {
    const char *scope;
    const char *name; /* "" for global */
    const char *period;
    pico_t hard;
    pico_t soft;
    /* Step down before refusing: from `step_percent` of the hard limit,
     * calls of this scope move to `step_model` and/or have max_tokens cut
     * to `step_max_tokens` (0 when unset). */
    int step_percent;
    const char *step_model;
    int64_t step_max_tokens;
    int line;
} cfg_budget_t;

typedef struct cfg_ratelimit {
    const char *scope;
    const char *name;
    int64_t rpm, tpm, concurrent; /* 0: no limit of that kind */
    int line;
} cfg_ratelimit_t;

/* An approval rule: a call that matches every condition set is held for
 * approval. Unset: cost_over -1, min_tier -1, budget_percent -1. */
typedef struct cfg_approval_rule {
    const char *name;
    pico_t cost_over;     /* worst-case cost of the call above this */
    const char *task;     /* NULL: any task */
    int min_tier;         /* the routed model's tier at least this */
    int budget_percent;   /* a budget of budget_scope past this share */
    const char *budget_scope;
    const char *approvers; /* who can approve, for the message */
    int line;
} cfg_approval_rule_t;

struct json_object;

/*
 * A task's route and checks (issue 5) and context policy. YAML subtrees
 * the route and context modules compile themselves are kept as JSON
 * (owned by the config): start_rules, checks, context.
 */
typedef struct cfg_task {
    const char *name;
    const char **route; /* model names, cheapest tier first */
    size_t n_route;
    bool route_auto;         /* route: auto: learned thresholds */
    double target_pass_rate; /* auto: the pass rate to meet */
    double explore_share;    /* auto: share sent to other tiers */
    int min_samples;         /* auto: samples before a rate counts */
    struct json_object *start_rules;
    struct json_object *checks;
    const char *requested_model; /* "honour", "map" or "override" */
    const char *on_check_fail;   /* "escalate" or "reask" */
    const char *reask_message;
    int max_attempts;
    const char *stream_checks; /* "buffer" or "after" */
    const char **fallbacks;    /* error chain; NULL: the next tiers */
    size_t n_fallbacks;
    int retry_max;
    int64_t retry_base_ms, retry_max_ms;
    double retry_budget_share;
    struct json_object *context;
    int line;
} cfg_task_t;

typedef struct config {
    arena_t *arena;
    const char *path;
    const char *listen_host;
    int listen_port;
    const char *ledger_path;
    size_t ledger_queue;
    size_t max_body_bytes;
    size_t max_response_bytes;
    int64_t connect_timeout_ms;
    int64_t first_byte_timeout_ms;
    int64_t total_timeout_ms;
    int64_t drain_timeout_ms;
    int64_t client_timeout_ms; /* idle or slow caller connections */
    const char *admin_key_env;
    const char *admin_key; /* resolved; NULL when unset */
    const char *log_level;
    const char **price_files;
    size_t n_price_files;
    cfg_provider_t *providers;
    size_t n_providers;
    cfg_model_t *models;
    size_t n_models;
    cfg_key_t *keys;
    size_t n_keys;
    const char *budget_timezone; /* IANA name; NULL: UTC */
    const char *webhook_url;     /* soft limits are POSTed here */
    int64_t default_max_tokens;  /* output cap when nothing else sets one */
    cfg_budget_t *budgets;
    size_t n_budgets;
    cfg_ratelimit_t *ratelimits;
    size_t n_ratelimits;
    cfg_approval_rule_t *approval_rules;
    size_t n_approval_rules;
    cfg_task_t *tasks;
    size_t n_tasks;
    struct json_object **owned_json; /* freed with the config */
    size_t n_owned_json;
    const char **alias_names; /* price aliases: name -> target */
    const char **alias_targets;
    size_t n_aliases;
} config_t;

/*
 * Reads and validates the file. Every problem found is printed to errout
 * as "FILE:LINE: message", and the count returned through *n_errors; the
 * config is returned only when there were none (NULL otherwise). Relative
 * paths are taken from the config file's directory; "${VAR}" and
 * "${VAR:-default}" in paths are expanded from the environment.
 */
config_t *config_load(const char *path, FILE *errout, int *n_errors);

/* Commands that never call a provider (check, keys, approve, report,
 * prices) load with this: a provider key's unset variable leaves the
 * key NULL instead of failing. */
#define CONFIG_SECRETS_OPTIONAL 0x1u
config_t *config_load_opts(const char *path, FILE *errout, int *n_errors,
                           unsigned flags);
void config_free(config_t *config);

const cfg_model_t *config_find_model(const config_t *config, const char *name);
/* The task's route and policy, or NULL when the task has none. */
const cfg_task_t *config_find_task(const config_t *config, const char *name);
/* The key whose SHA-256 matches the digest, or NULL. Constant-time per
 * comparison. */
const cfg_key_t *config_find_key(const config_t *config,
                                 const unsigned char digest[32]);

/* SHA-256 of a secret as 64 lowercase hex characters plus NUL. */
void config_hash_secret(const char *secret, size_t len, char hex[65]);

#endif
