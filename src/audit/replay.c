/*
 * `tollgate replay --policy FILE FILES...`: logged calls run again
 * through a policy (routes, trimming, an exact cache, a per-key daily
 * cap), spend and volume would-be next to actual. The same usage is
 * priced at the routed model: tokens are assumed to stay as logged.
 * Evaluation sets go to replay_eval.c, where quality comes from labels.
 */
#include "audit/cli.h"
#include "audit/replay.h"
#include "util/arena.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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
    recent_t *cache;
    int64_t calls, dropped, cached, trimmed_tokens, rerouted;
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

static void replay_call(log_replay_t *r, const audit_call_t *call)
{
    const route_rule_t *rule =
        policy_route(r->policy, call->model, call->label);
    const char *to = rule != NULL ? rule->to : call->model;
    usage_t u = call->usage;
    model_line_t *m;
    pico_t cost;

    actual(r, call, line_of(r, call->model), &cost);
    r->rerouted += rule != NULL && strcmp(to, call->model) != 0;
    if (r->policy->cache && call->request_hash != 0 && call->count == 1 &&
        recent_seen(r->cache, call->request_hash, call->at, NULL)) {
        r->cached++;
        return;
    }
    trim(r, &u);
    if (rule == NULL && r->policy->max_input_tokens == 0 && call->has_cost &&
        !call->cost_fallback) {
        /* Nothing changes this call: keep the source's own figure. */
    } else if (!cost_at(r->policy, to, call->at, &u, &cost)) {
        r->would_unpriced += call->count;
        cost = 0;
    }
    if (over_cap(r, call, cost)) {
        r->dropped += call->count;
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
            ", \"would_unpriced\": %" PRId64 ", \"quality\": null}\n",
            r->calls, r->calls - r->dropped - r->cached, r->spend,
            usd(r->spend, a, sizeof(a)), r->would_spend,
            usd(r->would_spend, b, sizeof(b)), r->rerouted, r->cached,
            r->dropped, r->trimmed_tokens, r->unpriced, r->would_unpriced);
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
    free(r.cache);
    return failed ? -EIO : 0;
}

static void replay_usage(FILE *out)
{
    fputs("usage: tollgate replay --policy FILE FILE... [--format "
          "table|json]\n"
          "       [--compare] [--model MODEL] [--prices FILE]...\n"
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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    replay_args_t args = {0};
    policy_t policy;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "P:f:m:p:ch", longopts, NULL)) != -1) {
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
        else
            goto usage;
    }
    if (args.policy == NULL || optind >= argc)
        goto usage;
    if (policy_load(&policy, args.policy, stderr) < 0)
        return 1;
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
