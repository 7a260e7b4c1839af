/*
 * Routing between attempts. Each task with a route gets its checks,
 * start rules, retry policy and retry budget compiled once at start; the
 * learned pass rates live in memory and are saved through the worker.
 */
#include "proxy/router.h"

#include "billing/billing.h"
#include "proxy/call.h"
#include "tokens/tokens.h"
#include "util/log.h"
#include "util/worker.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records between two saves of the pass rates. */
#define FLUSH_EVERY 64

static const char *const step_reasons[] = {"first", "retry",    "fallback",
                                           "reask", "escalate", "context"};

const char *route_step_reason(route_step_t step)
{
    return step_reasons[step];
}

static uint64_t next_rand(router_t *r)
{
    /* xorshift64*: jitter and exploration need spread, not secrecy. */
    r->rnd ^= r->rnd >> 12;
    r->rnd ^= r->rnd << 25;
    r->rnd ^= r->rnd >> 27;
    return r->rnd * UINT64_C(2685821657736338717);
}

static int compile_task(route_task_t *rt, const cfg_task_t *t, char *err,
                        size_t errlen)
{
    char why[256] = "";
    route_stats_opts_t opts;
    int rc = 0;

    rt->cfg = t;
    /* Each task keeps its own counts, with its own minimum sample. */
    route_stats_opts_init(&opts);
    opts.min_samples = t->min_samples;
    if (opts.max_samples <= opts.min_samples)
        opts.max_samples = opts.min_samples * 2;
    if (route_stats_new(&opts, &rt->stats) < 0)
        die_oom();
    retry_policy_init(&rt->retry);
    rt->retry.max_retries = t->retry_max;
    rt->retry.base_ms = t->retry_base_ms;
    rt->retry.cap_ms = t->retry_max_ms;
    /* A quiet task may still make its configured retries. */
    retry_budget_init(&rt->budget, 60, 1000,
                      (int)(t->retry_budget_share * 1000 + 0.5),
                      t->retry_max > 1 ? t->retry_max : 1);
    if (t->checks != NULL)
        rc = checks_parse_json(t->checks, &rt->checks, why, sizeof(why));
    if (rc == 0 && t->start_rules != NULL)
        rc = route_rules_parse_json(t->start_rules, 0, &rt->rules, why,
                                    sizeof(why));
    if (rc == 0 && t->context != NULL) {
        rt->has_context = true;
        rc = context_policy_parse(t->context, &rt->context, why, sizeof(why));
    }
    if (rc == 0 && rt->rules != NULL &&
        route_rules_max_tier(rt->rules) >= (int)t->n_route)
        snprintf(why, sizeof(why),
                 "a start rule names a tier past the "
                 "route's %zu models",
                 t->n_route),
            rc = -EINVAL;
    if (rc < 0)
        snprintf(err, errlen, "task '%s' (line %d): %s", t->name, t->line, why);
    return rc;
}

/* The saved rows of one task go into that task's table. */
static void merge_task_rows(route_task_t *rt, const route_stats_rows_t *all)
{
    route_stats_rows_t mine = {0};

    mine.rows = calloc(all->n ? all->n : 1, sizeof(*mine.rows));
    if (mine.rows == NULL)
        die_oom();
    for (size_t i = 0; i < all->n; i++)
        if (strcmp(all->rows[i].task, rt->cfg->name) == 0)
            mine.rows[mine.n++] = all->rows[i];
    route_stats_merge(rt->stats, &mine);
    route_stats_rows_free(&mine);
}

int router_open(gateway_t *gw, char *err, size_t errlen)
{
    const config_t *cfg = gw->config;
    router_t *r = calloc(1, sizeof(*r));
    route_stats_rows_t rows = {0};
    int rc;

    if (r == NULL)
        die_oom();
    gw->router = r;
    r->rnd = (uint64_t)clock_now_ms() | 1;
    r->tasks = calloc(cfg->n_tasks ? cfg->n_tasks : 1, sizeof(*r->tasks));
    if (r->tasks == NULL)
        die_oom();
    for (size_t i = 0; i < cfg->n_tasks; i++, r->n_tasks++)
        if ((rc = compile_task(&r->tasks[i], &cfg->tasks[i], err, errlen)))
            return rc;
    /* Exact counts for trimming need the rank files; without them the
     * trimmer estimates and says so. */
    for (size_t i = 0; i < r->n_tasks; i++)
        if (r->tasks[i].has_context && r->enc[0] == NULL) {
            if (tokens_load(TOKENS_O200K, NULL, &r->enc[0]) < 0 ||
                tokens_load(TOKENS_CL100K, NULL, &r->enc[1]) < 0)
                log_warn("context trimming: no token rank files found; "
                         "counts are estimates (scripts/"
                         "fetch-tokenizer-data.sh installs them)");
        }
    rc = route_stats_load(cfg->ledger_path, &rows, err, errlen);
    for (size_t i = 0; rc == 0 && i < r->n_tasks; i++)
        merge_task_rows(&r->tasks[i], &rows);
    route_stats_rows_free(&rows);
    return rc;
}

int router_check(const config_t *cfg, FILE *out)
{
    int bad = 0;

    for (size_t i = 0; i < cfg->n_tasks; i++) {
        route_task_t rt;
        char err[512];

        memset(&rt, 0, sizeof(rt));
        if (compile_task(&rt, &cfg->tasks[i], err, sizeof(err)) < 0) {
            fprintf(out, "%s: %s\n", cfg->path, err);
            bad++;
        }
        checks_free(rt.checks);
        route_rules_free(rt.rules);
        route_stats_free(rt.stats);
    }
    return bad;
}

void router_close(gateway_t *gw)
{
    router_t *r = gw->router;

    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_tasks; i++) {
        checks_free(r->tasks[i].checks);
        route_rules_free(r->tasks[i].rules);
        route_stats_free(r->tasks[i].stats);
    }
    free(r->tasks);
    tokens_free(r->enc[0]);
    tokens_free(r->enc[1]);
    free(r);
    gw->router = NULL;
}

void router_flush(gateway_t *gw)
{
    for (size_t i = 0;
         gw->router != NULL && gw->worker != NULL && i < gw->router->n_tasks;
         i++)
        route_stats_flush(gw->router->tasks[i].stats, gw->worker,
                          gw->config->ledger_path);
}

static route_task_t *task_route(gateway_t *gw, const char *task)
{
    router_t *r = gw->router;

    for (size_t i = 0; r != NULL && i < r->n_tasks; i++)
        if (strcmp(r->tasks[i].cfg->name, task) == 0)
            return &r->tasks[i];
    return NULL;
}

static bool serves(const chat_call_t *call, const cfg_model_t *m);

static bool visited(const chat_call_t *call, const cfg_model_t *m)
{
    for (int i = 0; i < call->n_visited; i++)
        if (call->visited[i] == m)
            return true;
    return false;
}

static void visit(chat_call_t *call, const cfg_model_t *m)
{
    if (!visited(call, m) && call->n_visited < LEDGER_MAX_ATTEMPTS)
        call->visited[call->n_visited++] = m;
}

static int64_t window_of(const chat_call_t *call, const cfg_model_t *m)
{
    const price_t *p = model_price(call, m);

    return p != NULL ? p->max_input_tokens : 0;
}

/* The first tier from `from` whose window takes `tokens`, or -1. */
static int tier_that_fits(chat_call_t *call, int from, int64_t tokens)
{
    const cfg_task_t *t = call->rt->cfg;

    for (size_t i = (size_t)from; i < t->n_route; i++) {
        const cfg_model_t *m = config_find_model(call->gw->config, t->route[i]);
        int64_t w = m ? window_of(call, m) : 0;

        if (m != NULL && (w == 0 || w >= tokens))
            return (int)i;
    }
    return -1;
}

static int start_tier(chat_call_t *call, struct json_object *obj,
                      int64_t tokens)
{
    const cfg_task_t *t = call->rt->cfg;
    route_features_t f;

    if (t->route_auto)
        return route_auto_pick(call->rt->stats, t->name, t->route, t->n_route,
                               t->target_pass_rate, t->explore_share,
                               next_rand(call->gw->router), NULL);
    if (call->rt->rules == NULL || route_features_from_request(obj, &f) < 0)
        return 0;
    f.input_tokens = tokens;
    f.key = call->rec->key_id;
    f.team = call->rec->team;
    return route_rules_pick(call->rt->rules, &f, NULL);
}

/* The route index of the model the caller asked for (honour), or of
 * the route's model of the same tier (map); -1 when none. */
static int requested_tier(chat_call_t *call, bool by_tier)
{
    const cfg_task_t *t = call->rt->cfg;

    for (size_t i = 0; i < t->n_route; i++) {
        const cfg_model_t *m = config_find_model(call->gw->config, t->route[i]);

        if (m == call->model || (by_tier && m->tier == call->model->tier))
            return (int)i;
    }
    return -1;
}

void route_start(chat_call_t *call, struct json_object *obj)
{
    const char *how;
    int64_t tokens;
    int tier, fit;

    call->rt = task_route(call->gw, call->rec->task);
    call->tier = -1;
    /* An embedding is not an answer to route or check: the caller's
     * model serves it. */
    if (call->surface == SURFACE_EMBEDDINGS)
        call->rt = NULL;
    if (call->rt == NULL || call->rt->cfg->n_route == 0) {
        visit(call, call->model);
        return;
    }
    retry_budget_note_call(&call->rt->budget, clock_mono_ms());
    how = call->rt->cfg->requested_model ? call->rt->cfg->requested_model
                                         : "override";
    tokens = usage_estimate_tokens(call->orig_body, call->orig_len);
    call->est_in_tokens = tokens;
    tier = strcmp(how, "override") == 0
               ? -1
               : requested_tier(call, strcmp(how, "map") == 0);
    if (tier < 0 && strcmp(how, "honour") == 0) {
        visit(call, call->model); /* a model outside the route, as asked */
        return;
    }
    if (tier < 0)
        tier = start_tier(call, obj, tokens);
    /* A prompt predicted not to fit starts where it fits, on a model
     * that speaks the caller's surface. */
    fit = tier_that_fits(call, tier, tokens);
    if (fit > tier)
        tier = fit;
    while ((size_t)tier + 1 < call->rt->cfg->n_route &&
           !serves(call, config_find_model(call->gw->config,
                                           call->rt->cfg->route[tier])))
        tier++;
    call->tier = tier;
    call->model =
        config_find_model(call->gw->config, call->rt->cfg->route[tier]);
    visit(call, call->model);
}

bool route_check(chat_call_t *call)
{
    checks_result_t res;
    route_task_t *rt = call->rt;

    if (rt == NULL || rt->checks == NULL || !checks_any(rt->checks))
        return true;
    checks_run(rt->checks, call->text.data ? call->text.data : "",
               call->text.len,
               call->finish_reason[0] ? call->finish_reason : NULL, &res);
    checks_summary(&res, call->att->checks, sizeof(call->att->checks));
    checks_failures(&res, call->check_failures, sizeof(call->check_failures));
    if (route_stats_record(rt->stats, rt->cfg->name, call->model->name,
                           res.passed, clock_now_ms()) == 0 &&
        ++call->gw->router->unsaved >= FLUSH_EVERY) {
        call->gw->router->unsaved = 0;
        router_flush(call->gw);
    }
    return res.passed;
}

/* The next model of the chain not tried yet: the task's fallbacks, else
 * the tiers above the current one. */
/* Whether a model's provider speaks the caller's surface (chat reaches
 * every kind, translated for Anthropic). */
static bool serves(const chat_call_t *call, const cfg_model_t *m)
{
    provider_kind_t kind = m->provider->type;

    switch (call->surface) {
    case SURFACE_MESSAGES:
        return kind == PROVIDER_ANTHROPIC;
    case SURFACE_RESPONSES:
        return kind == PROVIDER_OPENAI;
    case SURFACE_EMBEDDINGS:
        return kind != PROVIDER_ANTHROPIC;
    default:
        return true;
    }
}

/* A model worth trying: not tried yet, speaks the caller's surface, and
 * its window (when known) takes the prompt. */
static bool candidate(chat_call_t *call, const cfg_model_t *m)
{
    int64_t w;

    if (m == NULL || visited(call, m) || !serves(call, m))
        return false;
    w = window_of(call, m);
    return w == 0 || w >= call->est_in_tokens;
}

/* The next tier up the route that can take the call: an escalation. */
static const cfg_model_t *next_tier(chat_call_t *call)
{
    const cfg_task_t *t = call->rt->cfg;

    for (size_t i = (size_t)(call->tier + 1); i < t->n_route; i++) {
        const cfg_model_t *m = config_find_model(call->gw->config, t->route[i]);

        if (candidate(call, m)) {
            call->tier = (int)i;
            return m;
        }
    }
    return NULL;
}

/* After a provider error: the task's fallbacks first, then the tiers
 * above. */
static const cfg_model_t *next_model(chat_call_t *call)
{
    const cfg_task_t *t = call->rt->cfg;
    const config_t *cfg = call->gw->config;

    for (size_t i = 0; i < t->n_fallbacks; i++) {
        const cfg_model_t *m = config_find_model(cfg, t->fallbacks[i]);

        if (candidate(call, m))
            return m;
    }
    for (size_t i = (size_t)(call->tier + 1); i < t->n_route; i++) {
        const cfg_model_t *m = config_find_model(cfg, t->route[i]);

        if (candidate(call, m)) {
            call->tier = (int)i;
            return m;
        }
    }
    return NULL;
}

static route_step_t go(chat_call_t *call, const cfg_model_t *m,
                       route_step_t step)
{
    if (m == NULL)
        return STEP_DONE;
    /* Another model owes nothing to this one's retry-after or backoff. */
    call->delay_ms = 0;
    call->model = m;
    call->retries = 0;
    visit(call, m);
    return step;
}

static route_step_t after_check(chat_call_t *call)
{
    const cfg_task_t *t = call->rt->cfg;

    if (t->on_check_fail != NULL && strcmp(t->on_check_fail, "reask") == 0 &&
        call->reasks < 1 && call->surface != SURFACE_RESPONSES &&
        call->surface != SURFACE_EMBEDDINGS) {
        call->reasks++;
        return STEP_REASK;
    }
    call->reasks = 0;
    return go(call, next_tier(call), STEP_ESCALATE);
}

static route_step_t retry_same(chat_call_t *call)
{
    int64_t asked = -1;

    retry_after_pick(NULL, call->retry_after[0] ? call->retry_after : NULL,
                     clock_now_ms(), &asked);
    call->delay_ms = retry_delay_ms(&call->rt->retry, call->retries + 1, asked,
                                    next_rand(call->gw->router));
    if (call->delay_ms < 0 ||
        !retry_budget_take(&call->rt->budget, clock_mono_ms()))
        return STEP_DONE;
    call->retries++;
    return STEP_RETRY;
}

/* A larger window for a prompt that did not fit: the route's models and
 * fallbacks not tried, whose window is larger than this one's. */
static route_step_t bigger(chat_call_t *call)
{
    const cfg_task_t *t = call->rt->cfg;
    int64_t now = window_of(call, call->model);
    const config_t *cfg = call->gw->config;

    for (size_t i = 0; i < t->n_route + t->n_fallbacks; i++) {
        const char *name =
            i < t->n_route ? t->route[i] : t->fallbacks[i - t->n_route];
        const cfg_model_t *m = config_find_model(cfg, name);

        if (m != NULL && !visited(call, m) && serves(call, m) &&
            (window_of(call, m) == 0 || window_of(call, m) > now))
            return go(call, m, STEP_BIGGER);
    }
    return STEP_DONE;
}

route_step_t route_next(chat_call_t *call, int status, const char *body,
                        bool check_failed)
{
    int cap;
    retry_class_t cls;
    route_step_t step;

    call->delay_ms = 0;
    if (call->rt == NULL ||
        call->rt->cfg->n_route + call->rt->cfg->n_fallbacks == 0)
        return STEP_DONE;
    cap = call->rt->cfg->max_attempts < LEDGER_MAX_ATTEMPTS
              ? call->rt->cfg->max_attempts
              : LEDGER_MAX_ATTEMPTS;
    if (call->rec->n_attempts >= cap)
        return STEP_DONE;
    if (check_failed)
        return after_check(call);
    cls = retry_classify(call->model->provider->type, status, body);
    if (cls == RETRY_NEVER)
        return STEP_DONE;
    if (cls == RETRY_CONTEXT_OVERFLOW) {
        step = bigger(call);
        call->overflow = step == STEP_DONE;
        return step;
    }
    if (cls == RETRY_SAME && (step = retry_same(call)) != STEP_DONE)
        return step;
    return go(call, next_model(call), STEP_FALLBACK);
}

void route_feedback(gateway_t *gw, const char *task, const char *model,
                    bool useful)
{
    route_task_t *rt = task_route(gw, task);

    if (rt != NULL)
        route_stats_feedback(rt->stats, task, model, useful, clock_now_ms());
}

static const tokens_encoding_t *encoding_for(chat_call_t *call)
{
    tokens_kind_t kind;

    if (!tokens_model_kind(call->model->upstream, &kind))
        return NULL;
    return call->gw->router->enc[kind == TOKENS_O200K ? 0 : 1];
}

void route_trim(chat_call_t *call, struct json_object **obj)
{
    route_task_t *rt = task_route(call->gw, call->rec->task);
    ledger_outcome_t *rec = call->rec;
    context_result_t res;
    struct json_object *trimmed;

    if (rt == NULL || !rt->has_context ||
        (call->surface != SURFACE_CHAT && call->surface != SURFACE_MESSAGES))
        return;
    if (context_trim(call->arena,
                     call->surface == SURFACE_MESSAGES ? CONTEXT_ANTHROPIC
                                                       : CONTEXT_OPENAI_CHAT,
                     *obj, &rt->context, encoding_for(call),
                     call->model->upstream, &res) < 0)
        return;
    rec->trim_before = res.tokens_before;
    rec->trim_after = res.tokens_after;
    rec->trim_flagged = res.risk;
    if (!res.changed || (trimmed = json_tokener_parse(res.body)) == NULL)
        return;
    rec->trim_saved = context_saved_pico(call_price(call),
                                         res.tokens_before - res.tokens_after);
    if (res.risk)
        LOG(LOG_INFO, rec->id,
            "context trimmed %lld -> %lld tokens; the last user turn "
            "refers to removed text (\"%s\"%s)",
            (long long)res.tokens_before, (long long)res.tokens_after,
            res.n_risk_words ? res.risk_words[0] : "",
            res.n_risk_words > 1 ? ", ..." : "");
    json_object_put(*obj);
    *obj = trimmed;
    call->orig_body = res.body;
    call->orig_len = res.body_len;
}
