/*
 * `tollgate replay --policy FILE FILES...`: logged calls run again
 * through a policy (routes, trimming, an exact cache, a per-key daily
 * cap), spend and volume would-be next to actual. The same usage is
 * priced at the routed model: tokens are assumed to stay as logged.
 * Evaluation sets go to replay_eval.c, where quality comes from labels.
 */
#include "audit/cli.h"
#include "audit/replay.h"
#include "audit/tasks.h"
#include "context/context.h"
#include "util/arena.h"

#include <errno.h>
#include <json-c/json.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPLAY_MAP_MAX 100000

/* Spend of one model, actual or would-be. */
typedef struct model_line {
    char name[AUDIT_NAME_MAX];
    int64_t calls, would_calls;
    pico_t spend, would_spend;
} model_line_t;

typedef struct log_replay {
    const policy_t *policy;
    amap_t models;   /* model_line_t, by model name */
    amap_t key_days; /* pico_t would-be spend of one key on one day */
    amap_t budgets;  /* pico_t would-be spend of one budget's period */
    recent_t *cache;
    audit_reader_t *reader; /* the file being read, for request text */
    int64_t calls, dropped, cached, trimmed_tokens, rerouted;
    int64_t task_calls, unchecked, over_budget, context_tokens;
    pico_t context_saved;
    int64_t unpriced, would_unpriced;
    pico_t spend, would_spend;
} log_replay_t;

static model_line_t *line_of(log_replay_t *r, const char *model)
{
    model_line_t *m = amap_get(
        &r->models, audit_hash(AUDIT_HASH_SEED, model, strlen(model)), true);

    if (m != NULL && m->name[0] == '\0')
        audit_copy(m->name, sizeof(m->name), model[0] ? model : "(none)");
    return m;
}

/* The cost of usage at a model, and whether it could be priced. */
static bool cost_at(const policy_t *p, const char *model, int64_t at,
                    const usage_t *u, pico_t *cost)
{
    cost_t c = billing_cost(policy_price(p, model, at), u);

    *cost = c.total;
    return c.status == COST_PRICED || c.status == COST_ESTIMATED;
}

/* Trimming keeps the last max_input_tokens of input. */
static void trim(log_replay_t *r, usage_t *u)
{
    int64_t max = r->policy->max_input_tokens;

    if (max <= 0 || u->input_tokens <= max)
        return;
    r->trimmed_tokens += u->input_tokens - max;
    u->input_tokens = max;
    if (u->cached_tokens > max)
        u->cached_tokens = max;
    if (u->cache_write_tokens > max - u->cached_tokens)
        u->cache_write_tokens = max - u->cached_tokens;
    if (u->cache_write_1h_tokens > u->cache_write_tokens)
        u->cache_write_1h_tokens = u->cache_write_tokens;
    u->audio_in_tokens = 0;
}

/* True when the call's key is past its daily cap with this call. */
static bool over_cap(log_replay_t *r, const audit_call_t *call, pico_t cost)
{
    int64_t day = call->at / 86400;
    uint64_t h = audit_hash(AUDIT_HASH_SEED, call->key, strlen(call->key));
    pico_t *spent;

    if (!r->policy->has_cap)
        return false;
    h = audit_hash(audit_hash(h, call->owner, strlen(call->owner)), &day,
                   sizeof(day));
    spent = amap_get(&r->key_days, h, true);
    if (spent == NULL || *spent + cost > r->policy->cap_per_key_day)
        return true;
    *spent += cost;
    return false;
}

/* Which period of a budget a time falls in (UTC): day, Monday week,
 * month, or one for `total`. */
static int64_t period_of(const char *period, int64_t at)
{
    time_t t = (time_t)at;
    struct tm tm;

    if (strcmp(period, "day") == 0)
        return at / 86400;
    if (strcmp(period, "week") == 0)
        return (at / 86400 + 3) / 7;
    if (strcmp(period, "month") == 0 && gmtime_r(&t, &tm) != NULL)
        return (int64_t)tm.tm_year * 12 + tm.tm_mon;
    return 0;
}

static bool budget_applies(const cfg_budget_t *b, const audit_call_t *call,
                           const char *task)
{
    if (b->hard < 0)
        return false;
    if (strcmp(b->scope, "key") == 0)
        return strcmp(b->name, call->key) == 0;
    if (strcmp(b->scope, "team") == 0)
        return strcmp(b->name, call->team) == 0;
    if (strcmp(b->scope, "task") == 0)
        return task != NULL && strcmp(b->name, task) == 0;
    return strcmp(b->scope, "global") == 0;
}

static pico_t *budget_spent(log_replay_t *r, size_t i, int64_t at)
{
    const cfg_budget_t *b = &r->policy->config->budgets[i];
    int64_t period = period_of(b->period, at);
    uint64_t h = audit_hash(AUDIT_HASH_SEED, &i, sizeof(i));

    return amap_get(&r->budgets, audit_hash(h, &period, sizeof(period)), true);
}

/* True when a hard budget of the config is past its limit with this
 * call; otherwise the call is charged to every budget it falls under. */
static bool over_budget(log_replay_t *r, const audit_call_t *call,
                        const char *task, pico_t cost)
{
    const config_t *cfg = r->policy->config;
    size_t n = cfg != NULL ? cfg->n_budgets : 0;
    pico_t *spent;

    for (size_t i = 0; i < n; i++) {
        if (!budget_applies(&cfg->budgets[i], call, task))
            continue;
        spent = budget_spent(r, i, call->at);
        if (spent == NULL || *spent + cost > cfg->budgets[i].hard)
            return true;
    }
    for (size_t i = 0; i < n; i++)
        if (budget_applies(&cfg->budgets[i], call, task) &&
            (spent = budget_spent(r, i, call->at)) != NULL)
            *spent += cost;
    return false;
}

/* The logged request of the current record (a chat log's `request`),
 * as a tree owned by the caller; NULL when the record has none. */
static struct json_object *logged_request(log_replay_t *r)
{
    size_t len;
    const char *text = audit_reader_record(r->reader, &len);
    struct json_tokener *tok;
    struct json_object *obj, *req = NULL;

    if (text == NULL || len == 0 || (tok = json_tokener_new()) == NULL)
        return NULL;
    obj = json_tokener_parse_ex(tok, text, (int)len);
    json_tokener_free(tok);
    if (obj != NULL && json_object_object_get_ex(obj, "request", &req) &&
        json_object_is_type(req, json_type_object))
        json_object_get(req);
    else
        req = NULL;
    json_object_put(obj);
    return req;
}

/* A task's context policy on the logged request: input tokens removed
 * (counted and priced at the routed model). */
static void task_trim(log_replay_t *r, const task_policy_t *task,
                      const audit_call_t *call, const char *to, usage_t *u)
{
    struct json_object *req;
    int64_t removed;

    if (!task_policy_has_context(task) || call->count != 1 ||
        (req = logged_request(r)) == NULL)
        return;
    removed = task_policy_trim(task, req, policy_answer_model(r->policy, to));
    json_object_put(req);
    if (removed > u->input_tokens - u->cached_tokens)
        removed = u->input_tokens - u->cached_tokens;
    if (removed <= 0)
        return;
    u->input_tokens -= removed;
    r->context_tokens += removed;
    r->context_saved +=
        context_saved_pico(policy_price(r->policy, to, call->at), removed);
}

static void actual(log_replay_t *r, const audit_call_t *call, model_line_t *m,
                   pico_t *cost)
{
    bool known = call->has_cost && !call->cost_fallback;

    *cost = call->cost;
    if (!known)
        known = cost_at(r->policy, call->model, call->at, &call->usage, cost);
    if (!known && call->has_cost)
        known = true, *cost = call->cost;
    r->calls += call->count;
    if (m != NULL)
        m->calls += call->count;
    if (!known) {
        r->unpriced += call->count;
        *cost = 0;
        return;
    }
    r->spend += *cost;
    if (m != NULL)
        m->spend += *cost;
}

/* The routed model: a task's cheapest tier, a replay route, or as it
 * was. Logs hold no answer text, so a task's checks cannot run. */
static const char *route_to(log_replay_t *r, const audit_call_t *call,
                            const task_policy_t *task,
                            const route_rule_t **rule)
{
    const char *to;

    *rule =
        task != NULL ? NULL : policy_route(r->policy, call->model, call->label);
    if (task == NULL)
        return *rule != NULL ? (*rule)->to : call->model;
    to = task_policy_cfg(task)->route[0];
    r->task_calls += call->count;
    r->unchecked += task_policy_cfg(task)->checks != NULL ? call->count : 0;
    r->rerouted += strcmp(to, call->model) != 0 &&
                   strcmp(policy_answer_model(r->policy, to), call->model) != 0;
    return to;
}

static void replay_call(log_replay_t *r, const audit_call_t *call)
{
    const char *task_name = policy_task_name(r->policy, call);
    const task_policy_t *task = task_set_find(r->policy->tasks, task_name);
    const route_rule_t *rule;
    const char *to = route_to(r, call, task, &rule);
    usage_t u = call->usage;
    int64_t trimmed;
    model_line_t *m;
    pico_t cost;

    actual(r, call, line_of(r, call->model), &cost);
    r->rerouted += rule != NULL && strcmp(to, call->model) != 0;
    if (r->policy->cache && call->request_hash != 0 && call->count == 1 &&
        recent_seen(r->cache, call->request_hash, call->at, NULL)) {
        r->cached++;
        return;
    }
    trimmed = r->context_tokens;
    if (task != NULL)
        task_trim(r, task, call, to, &u);
    trim(r, &u);
    if (rule == NULL && task == NULL && r->policy->max_input_tokens == 0 &&
        call->has_cost && !call->cost_fallback &&
        trimmed == r->context_tokens) {
        /* Nothing changes this call: keep the source's own figure. */
    } else if (!cost_at(r->policy, to, call->at, &u, &cost)) {
        r->would_unpriced += call->count;
        cost = 0;
    }
    if (over_cap(r, call, cost)) {
        r->dropped += call->count;
        return;
    }
    if (over_budget(r, call, task_name, cost)) {
        r->dropped += call->count;
        r->over_budget += call->count;
        return;
    }
    m = line_of(r, to);
    r->would_spend += cost;
    if (m != NULL) {
        m->would_calls += call->count;
        m->would_spend += cost;
    }
}

static const char *usd(pico_t v, char *out, size_t n)
{
    return pico_format_usd(v, out, n);
}

static void print_logs(const log_replay_t *r, FILE *out)
{
    char a[40], b[40];

    fprintf(out, "%-40s %10s %20s %10s %20s\n", "MODEL", "CALLS", "SPEND_USD",
            "WOULD", "WOULD_SPEND_USD");
    for (size_t i = 0; i < r->models.n; i++) {
        const model_line_t *m = amap_at(&r->models, i);
        fprintf(out, "%-40.40s %10" PRId64 " %20s %10" PRId64 " %20s\n",
                m->name, m->calls, usd(m->spend, a, sizeof(a)), m->would_calls,
                usd(m->would_spend, b, sizeof(b)));
    }
    fprintf(out, "%-40s %10" PRId64 " %20s %10" PRId64 " %20s\n", "total",
            r->calls, usd(r->spend, a, sizeof(a)),
            r->calls - r->dropped - r->cached,
            usd(r->would_spend, b, sizeof(b)));
    fprintf(out,
            "\nrerouted %" PRId64 ", answered from cache %" PRId64
            ", dropped by the daily cap %" PRId64
            ", input tokens trimmed %" PRId64 "\n",
            r->rerouted, r->cached, r->dropped, r->trimmed_tokens);
    fprintf(out,
            "unpriced: %" PRId64 " actual, %" PRId64 " would-be "
            "(left out of spend)\n",
            r->unpriced, r->would_unpriced);
    if (r->policy->tasks != NULL)
        fprintf(out,
                "tasks: %" PRId64 " calls ran as a config task (%" PRId64
                " with checks the logs cannot run: no answer text)"
                ", dropped by hard budgets %" PRId64
                ", context trimmed %" PRId64 " input tokens (%s saved)\n",
                r->task_calls, r->unchecked, r->over_budget, r->context_tokens,
                usd(r->context_saved, a, sizeof(a)));
    fputs("quality: n/a (logs carry no quality labels); tokens are "
          "assumed to stay as logged on the routed model\n",
          out);
}

static void print_logs_json(const log_replay_t *r, FILE *out)
{
    char a[40], b[40];

    fprintf(out,
            "{\"calls\": %" PRId64 ", \"would_calls\": %" PRId64
            ", \"spend_pico\": %" PRId64 ", \"spend_usd\": \"%s\""
            ", \"would_spend_pico\": %" PRId64
            ", \"would_spend_usd\": \"%s\", \"rerouted\": %" PRId64
            ", \"cached\": %" PRId64 ", \"dropped\": %" PRId64
            ", \"trimmed_tokens\": %" PRId64 ", \"unpriced\": %" PRId64
            ", \"would_unpriced\": %" PRId64 ", \"quality\": null",
            r->calls, r->calls - r->dropped - r->cached, r->spend,
            usd(r->spend, a, sizeof(a)), r->would_spend,
            usd(r->would_spend, b, sizeof(b)), r->rerouted, r->cached,
            r->dropped, r->trimmed_tokens, r->unpriced, r->would_unpriced);
    if (r->policy->tasks != NULL)
        fprintf(out,
                ", \"task_calls\": %" PRId64 ", \"unchecked\": %" PRId64
                ", \"over_budget\": %" PRId64 ", \"context_tokens\": %" PRId64
                ", \"context_saved_pico\": %" PRId64,
                r->task_calls, r->unchecked, r->over_budget, r->context_tokens,
                r->context_saved);
    fputs("}\n", out);
}

int replay_logs(const policy_t *policy, char **files, int n_files,
                const char *model, audit_output_t format, FILE *out)
{
    log_replay_t r = {.policy = policy};
    audit_call_t call;
    char err[512];
    int failed = 0, rc;

    amap_init(&r.models, sizeof(model_line_t), REPLAY_MAP_MAX);
    amap_init(&r.key_days, sizeof(pico_t), 4 * REPLAY_MAP_MAX);
    amap_init(&r.budgets, sizeof(pico_t), 4 * REPLAY_MAP_MAX);
    if ((r.cache = calloc(1, sizeof(recent_t))) == NULL)
        die_oom();
    for (int i = 0; i < n_files; i++) {
        audit_reader_t *rd = audit_reader_open(files[i], err, sizeof(err));
        if (rd == NULL) {
            fprintf(stderr, "tollgate replay: %s\n", err);
            failed = 1;
            continue;
        }
        if (model != NULL)
            audit_reader_set_model(rd, model);
        r.reader = rd;
        while ((rc = audit_reader_next(rd, &call)) == 1)
            replay_call(&r, &call);
        failed |= rc < 0;
        audit_reader_close(rd);
    }
    if (format == AUDIT_OUT_JSON)
        print_logs_json(&r, out);
    else
        print_logs(&r, out);
    amap_free(&r.models);
    amap_free(&r.key_days);
    amap_free(&r.budgets);
    free(r.cache);
    return failed ? -EIO : 0;
}

static void replay_usage(FILE *out)
{
    fputs("usage: tollgate replay --policy FILE FILE... [--format "
          "table|json]\n"
          "       [--compare] [--model MODEL] [--prices FILE]... "
          "[--task NAME]\n"
          "Logs: spend and volume would-be against actual. Evaluation sets "
          "(RouteLLM\n"
          "GSM8K/MMLU/MT-Bench, AlpacaEval 2): quality from their labels; "
          "--compare\n"
          "prints the strong-call share for 95% of the strong model's "
          "quality.\n",
          out);
}

static int is_eval_file(const char *path)
{
    char err[256];
    audit_reader_t *r = audit_reader_open(path, err, sizeof(err));
    audit_call_t call;
    int eval;

    if (r == NULL)
        return -EIO;
    if (audit_reader_format(r) == AUDIT_FMT_UNKNOWN)
        audit_reader_next(r, &call);
    eval = audit_format_is_eval(audit_reader_format(r));
    audit_reader_close(r);
    return eval;
}

int replay_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"policy", required_argument, NULL, 'P'},
        {"format", required_argument, NULL, 'f'},
        {"model", required_argument, NULL, 'm'},
        {"prices", required_argument, NULL, 'p'},
        {"compare", no_argument, NULL, 'c'},
        {"task", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    replay_args_t args = {0};
    policy_t policy;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "P:f:m:p:t:ch", longopts, NULL)) !=
           -1) {
        if (c == 'h') {
            replay_usage(stdout);
            return 0;
        }
        if (c == 'P')
            args.policy = optarg;
        else if (c == 'f' && audit_parse_format(optarg, &args.format) == 0)
            continue;
        else if (c == 'm')
            args.model = optarg;
        else if (c == 'p' && args.n_prices < REPLAY_MAX_PRICES)
            args.prices[args.n_prices++] = optarg;
        else if (c == 'c')
            args.compare = true;
        else if (c == 't')
            args.task = optarg;
        else
            goto usage;
    }
    if (args.policy == NULL || optind >= argc)
        goto usage;
    if (policy_load(&policy, args.policy, stderr) < 0)
        return 1;
    policy.default_task = args.task;
    for (int i = 0; i < args.n_prices; i++)
        if (audit_load_prices(policy.prices, args.prices[i]) < 0) {
            policy_free(&policy);
            return 1;
        }
    rc = is_eval_file(argv[optind]);
    if (rc > 0)
        rc = replay_eval(&policy, argv + optind, argc - optind, &args, stdout);
    else if (rc == 0)
        rc = replay_logs(&policy, argv + optind, argc - optind, args.model,
                         args.format, stdout);
    else
        fprintf(stderr, "tollgate replay: cannot read %s\n", argv[optind]);
    policy_free(&policy);
    return rc < 0 ? 1 : 0;
usage:
    replay_usage(stderr);
    return 2;
}
