/*
 * Replay on evaluation sets: every item holds each model's answer with
 * its label, so a policy's quality is read, not guessed. Tokens come
 * from the text (estimated; MMLU has none for answers: one token each).
 *
 * --compare prints what RouteLLM reports: the share of strong-model
 * calls needed to reach 95% of the strong model's quality, and the cost
 * saved there against always-strong. Quality is a sum of integer labels
 * Q; "reaches" is 100 * Q >= 95 * S. Random routing sends k of N items to
 * the strong model (expected quality W + k/N (S - W)); the oracle sends
 * the items with the largest label gain first; a Tollgate policy runs as
 * written and, when short of 95%, escalates a random share of the items
 * it kept cheap (expected values, exact in picodollars up to one
 * rounding).
 */
#include "audit/replay.h"
#include "audit/tasks.h"
#include "util/arena.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* One item seen by the comparison: labels and costs of both models. */
typedef struct pair {
    int64_t qs, qw;
    pico_t cs, cw;
    bool escalated; /* the policy's own run */
} pair_t;

typedef struct run {
    const char *name;
    int64_t strong_calls; /* answers taken from the escalation model */
    int64_t escalations;
    int64_t unchecked; /* no text for the check: kept */
    int64_t quality;
    pico_t spend;
} run_t;

static const eval_answer_t *answer(const eval_item_t *item, const char *m)
{
    for (int i = 0; i < item->n_answers; i++)
        if (strcmp(item->answers[i].model, m) == 0)
            return &item->answers[i];
    return NULL;
}

/* Price of one answer; false when the model has no price. */
static bool answer_cost(const policy_t *p, const char *model,
                        const eval_item_t *item, const eval_answer_t *a,
                        pico_t *cost)
{
    usage_t u = {.present = true, .estimated = true};
    cost_t c;

    u.input_tokens = item->input_tokens;
    u.output_tokens = a->output_tokens;
    c = billing_cost(policy_price(p, model, 0), &u);
    *cost = c.total;
    return c.status == COST_ESTIMATED || c.status == COST_PRICED;
}

/* Runs the policy's route on one item. */
static int run_item(const policy_t *p, const route_rule_t *rule,
                    const eval_item_t *item, run_t *run, pair_t *pair)
{
    const eval_answer_t *a, *b = NULL;
    pico_t ca, cb = 0;

    a = answer(item, policy_answer_model(p, rule->to));
    if (rule->escalate != NULL)
        b = answer(item, policy_answer_model(p, rule->escalate));
    if (a == NULL || (rule->escalate != NULL && b == NULL) ||
        !answer_cost(p, rule->to, item, a, &ca) ||
        (b != NULL && !answer_cost(p, rule->escalate, item, b, &cb)))
        return -ENOENT;
    pair->qw = a->quality;
    pair->cw = ca;
    pair->qs = b != NULL ? b->quality : a->quality;
    pair->cs = b != NULL ? cb : ca;
    run->spend += ca;
    if (rule->check != CHECK_NONE && a->text == NULL)
        run->unchecked++;
    if (b != NULL && rule->check != CHECK_NONE && a->text != NULL &&
        !policy_check(rule, a->text, a->text_len)) {
        pair->escalated = true;
        run->escalations++;
        run->strong_calls++;
        run->spend += cb;
        run->quality += b->quality;
        return 0;
    }
    run->quality += a->quality;
    return 0;
}

static const char *usd(pico_t v, char *out, size_t n)
{
    return pico_format_usd(v, out, n);
}

/* "12.3" for num/den as a percentage, or "n/a". */
static const char *pct(int64_t num, int64_t den, char *out, size_t n)
{
    int64_t tenths = den > 0 ? audit_scale(1000, num, den) : -1;

    if (tenths < 0)
        snprintf(out, n, "n/a");
    else
        snprintf(out, n, "%" PRId64 ".%" PRId64, tenths / 10, tenths % 10);
    return out;
}

/* The mean label, 3 decimals: accuracy, MT-Bench score or win rate. */
static const char *mean(int64_t q, int64_t items, int64_t scale, char *out,
                        size_t n)
{
    int64_t m = items > 0 ? audit_scale(1000, q, items * scale) : 0;

    snprintf(out, n, "%" PRId64 ".%03" PRId64, m / 1000, m % 1000);
    return out;
}

static void print_run(const run_t *run, size_t n, int64_t scale, FILE *out)
{
    char a[48], b[48], c[48];

    fprintf(out, "%-60.60s %8s %9s %20s\n", run->name,
            pct(run->strong_calls, (int64_t)n, a, sizeof(a)),
            mean(run->quality, (int64_t)n, scale, b, sizeof(b)),
            usd(run->spend, c, sizeof(c)));
}

/* Always one model: quality and spend of its answers to every item. */
static int baseline(const policy_t *p, const eval_set_t *set, const char *model,
                    bool strong, run_t *run)
{
    const char *name = policy_answer_model(p, model);

    for (size_t i = 0; i < set->n_items; i++) {
        const eval_answer_t *a = answer(&set->items[i], name);
        pico_t c;
        if (a == NULL || !answer_cost(p, model, &set->items[i], a, &c))
            return -ENOENT;
        run->quality += a->quality;
        run->spend += c;
        run->strong_calls += strong;
    }
    return 0;
}

typedef struct point {
    bool reached;
    int64_t strong; /* strong calls, numerator over `of` */
    int64_t of;
    pico_t cost;
} point_t;

static int64_t ceil_div(__int128 a, __int128 b)
{
    return (int64_t)(a <= 0 ? 0 : (a + b - 1) / b);
}

/* Random routing: the fewest k of n for expected quality >= 95% S. */
static point_t random_point(const pair_t *pairs, size_t n)
{
    int64_t s = 0, w = 0;
    pico_t cs = 0, cw = 0;
    point_t pt = {.of = (int64_t)n};

    for (size_t i = 0; i < n; i++) {
        s += pairs[i].qs, w += pairs[i].qw;
        cs += pairs[i].cs, cw += pairs[i].cw;
    }
    if (100 * w >= 95 * s) {
        pt.reached = true;
        pt.cost = cw;
        return pt;
    }
    if (s <= w)
        return pt;
    pt.reached = true;
    pt.strong =
        ceil_div((__int128)n * (95 * s - 100 * w), (__int128)100 * (s - w));
    pt.cost = cw + audit_scale(cs - cw, pt.strong, (int64_t)n);
    return pt;
}

static int cmp_gain(const void *x, const void *y)
{
    const pair_t *a = x, *b = y;
    int64_t ga = a->qs - a->qw, gb = b->qs - b->qw;

    if (ga != gb)
        return ga > gb ? -1 : 1;
    return (a->cs - a->cw) < (b->cs - b->cw)
               ? -1
               : (a->cs - a->cw) > (b->cs - b->cw);
}

/* The oracle: largest label gains first, until 95% of S. */
static point_t oracle_point(const pair_t *pairs, size_t n)
{
    pair_t *sorted = malloc((n + 1) * sizeof(*sorted));
    int64_t s = 0, q = 0;
    point_t pt = {.of = (int64_t)n};

    if (sorted == NULL)
        die_oom();
    memcpy(sorted, pairs, n * sizeof(*sorted));
    for (size_t i = 0; i < n; i++) {
        s += pairs[i].qs, q += pairs[i].qw;
        pt.cost += pairs[i].cw;
    }
    qsort(sorted, n, sizeof(*sorted), cmp_gain);
    for (size_t i = 0; i <= n; i++) {
        if (100 * q >= 95 * s) {
            pt.reached = true;
            break;
        }
        if (i == n || sorted[i].qs <= sorted[i].qw)
            break;
        q += sorted[i].qs - sorted[i].qw;
        pt.cost += sorted[i].cs - sorted[i].cw;
        pt.strong++;
    }
    free(sorted);
    return pt;
}

/* The policy as run, topped up by random escalation of the rest. */
static point_t policy_point(const pair_t *pairs, size_t n, const run_t *run)
{
    int64_t s = 0, gain = 0, kept = 0;
    pico_t extra = 0;
    point_t pt = {
        .of = (int64_t)n, .cost = run->spend, .strong = run->strong_calls};

    for (size_t i = 0; i < n; i++) {
        s += pairs[i].qs;
        if (pairs[i].escalated)
            continue;
        kept++;
        gain += pairs[i].qs - pairs[i].qw;
        extra += pairs[i].cs;
    }
    if (100 * run->quality >= 95 * s) {
        pt.reached = true;
        return pt;
    }
    if (gain <= 0)
        return pt;
    int64_t j = ceil_div((__int128)kept * (95 * s - 100 * run->quality),
                         (__int128)100 * gain);
    if (j > kept)
        return pt;
    pt.reached = true;
    pt.strong += j;
    pt.cost += audit_scale(extra, j, kept);
    return pt;
}

static void print_point(const char *name, point_t pt, pico_t strong_cost,
                        FILE *out)
{
    char a[48], b[48], c[48];

    if (!pt.reached) {
        fprintf(out, "%-60.60s %12s %12s %20s\n", name, "not reached", "-",
                "-");
        return;
    }
    fprintf(out, "%-60.60s %11s%% %11s%% %20s\n", name,
            pct(pt.strong, pt.of, a, sizeof(a)),
            pct(strong_cost - pt.cost, strong_cost, b, sizeof(b)),
            usd(pt.cost, c, sizeof(c)));
}

static void print_compare(const pair_t *pairs, size_t n, const run_t *strong,
                          const run_t *weak, const run_t *policy, FILE *out)
{
    point_t all_strong = {true, (int64_t)n, (int64_t)n, strong->spend};
    point_t all_weak = {100 * weak->quality >= 95 * strong->quality, 0,
                        (int64_t)n, weak->spend};

    fprintf(out, "\n%-60s %12s %12s %20s\n",
            "AT 95% OF THE STRONG MODEL'S QUALITY", "STRONG_CALLS",
            "COST_SAVED", "SPEND_USD");
    print_point("always-strong", all_strong, strong->spend, out);
    print_point("always-cheap", all_weak, strong->spend, out);
    print_point("random", random_point(pairs, n), strong->spend, out);
    print_point("oracle", oracle_point(pairs, n), strong->spend, out);
    print_point(policy->name, policy_point(pairs, n, policy), strong->spend,
                out);
}

static void print_header(const eval_set_t *set, FILE *out)
{
    fprintf(out,
            "replay of %s: %zu items (%" PRId64 " malformed), quality "
            "from the set's labels (%s)\n",
            audit_format_name(set->format), set->n_items, set->malformed,
            set->format == AUDIT_FMT_MT_BENCH ? "mean judge score, 1-10"
            : set->format == AUDIT_FMT_ALPACA
                ? "win rate against gpt4_1106_preview, ties half"
                : "accuracy");
    fputs("tokens are estimated from the text (usage_estimate_tokens); ", out);
    if (set->output_guessed)
        fputs("the set has no answer text, so each answer is counted as "
              "1 output token (the letter)\n",
              out);
    else
        fputs("answers' output tokens from their text\n", out);
}

static int load_set(eval_set_t *set, char **files, int n_files)
{
    char err[512];

    for (int i = 0; i < n_files; i++)
        if (eval_set_load(set, files[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "tollgate replay: %s: %s\n", files[i], err);
            return -EINVAL;
        }
    return set->n_items == 0 ? -ENOENT : 0;
}

static int run_policy(const policy_t *p, const route_rule_t *rule,
                      const eval_set_t *set, run_t *run, pair_t *pairs)
{
    for (size_t i = 0; i < set->n_items; i++)
        if (run_item(p, rule, &set->items[i], run, &pairs[i]) < 0) {
            fprintf(stderr,
                    "tollgate replay: item at line %" PRId64
                    " has no priced answer from %s%s%s\n",
                    set->items[i].line, rule->to, rule->escalate ? " or " : "",
                    rule->escalate ? rule->escalate : "");
            return -ENOENT;
        }
    return 0;
}

static void eval_print(const eval_set_t *set, const run_t *strong,
                       const run_t *weak, const run_t *policy,
                       const pair_t *pairs, bool compare, FILE *out)
{
    print_header(set, out);
    fprintf(out, "\n%-60s %8s %9s %20s\n", "POLICY", "STRONG%", "QUALITY",
            "SPEND_USD");
    print_run(strong, set->n_items, set->scale, out);
    print_run(weak, set->n_items, set->scale, out);
    print_run(policy, set->n_items, set->scale, out);
    fprintf(out,
            "policy escalated %" PRId64 " of %zu; %" PRId64
            " answers had no text to check and were kept\n",
            policy->escalations, set->n_items, policy->unchecked);
    if (compare)
        print_compare(pairs, set->n_items, strong, weak, policy, out);
}

static int eval_report(const policy_t *p, const route_rule_t *rule,
                       const eval_set_t *set, pair_t *pairs, bool compare,
                       FILE *out)
{
    char name[160];
    run_t strong = {.name = "always-strong"}, weak = {.name = "always-cheap"};
    run_t policy = {.name = name};
    const char *strong_model = rule->escalate ? rule->escalate : rule->to;

    snprintf(name, sizeof(name), "tollgate: %s%s%s%s%s", rule->to,
             rule->check_name ? ", check " : "",
             rule->check_name ? rule->check_name : "",
             rule->escalate ? " -> " : "",
             rule->escalate ? rule->escalate : "");
    if (run_policy(p, rule, set, &policy, pairs) < 0 ||
        baseline(p, set, strong_model, true, &strong) < 0 ||
        baseline(p, set, rule->to, false, &weak) < 0)
        return -ENOENT;
    eval_print(set, &strong, &weak, &policy, pairs, compare, out);
    return 0;
}

/* One item through a config task: the answers of its route's tiers. */
typedef struct tier_answers {
    const eval_answer_t *a[TASK_MAX_ATTEMPTS];
    pico_t cost[TASK_MAX_ATTEMPTS];
} tier_answers_t;

static const char *tier_text(void *arg, int tier, size_t *len)
{
    const tier_answers_t *ta = arg;

    *len = ta->a[tier]->text_len;
    return ta->a[tier]->text;
}

static int tier_load(const policy_t *p, const cfg_task_t *t,
                     const eval_item_t *item, tier_answers_t *ta)
{
    for (size_t i = 0; i < t->n_route && i < TASK_MAX_ATTEMPTS; i++) {
        ta->a[i] = answer(item, policy_answer_model(p, t->route[i]));
        if (ta->a[i] == NULL ||
            !answer_cost(p, t->route[i], item, ta->a[i], &ta->cost[i]))
            return -ENOENT;
    }
    return 0;
}

/* The gateway's cascade on one item: every attempt is paid for, the
 * last attempt's answer is the one kept. */
static int run_task_item(const policy_t *p, const task_policy_t *task,
                         const eval_item_t *item, run_t *run, pair_t *pair)
{
    const cfg_task_t *t = task_policy_cfg(task);
    size_t last =
        (t->n_route < TASK_MAX_ATTEMPTS ? t->n_route : TASK_MAX_ATTEMPTS) - 1;
    tier_answers_t ta;
    task_cascade_t c;
    int kept;

    if (tier_load(p, t, item, &ta) < 0)
        return -ENOENT;
    task_policy_cascade(task, tier_text, &ta, &c);
    for (int i = 0; i < c.n_attempts; i++)
        run->spend += ta.cost[c.tier[i]];
    kept = c.tier[c.n_attempts - 1];
    run->quality += ta.a[kept]->quality;
    run->strong_calls += kept > 0;
    run->escalations += c.escalations;
    run->unchecked += c.unchecked;
    pair->qw = ta.a[0]->quality, pair->cw = ta.cost[0];
    pair->qs = ta.a[last]->quality, pair->cs = ta.cost[last];
    pair->escalated = kept > 0;
    return 0;
}

static int eval_report_task(const policy_t *p, const task_policy_t *task,
                            const eval_set_t *set, pair_t *pairs, bool compare,
                            FILE *out)
{
    const cfg_task_t *t = task_policy_cfg(task);
    char name[160];
    run_t strong = {.name = "always-strong"}, weak = {.name = "always-cheap"};
    run_t policy = {.name = name};

    snprintf(name, sizeof(name), "tollgate task %s: %s .. %s, %zu tiers",
             t->name, t->route[0], t->route[t->n_route - 1], t->n_route);
    for (size_t i = 0; i < set->n_items; i++)
        if (run_task_item(p, task, &set->items[i], &policy, &pairs[i]) < 0) {
            fprintf(stderr,
                    "tollgate replay: item at line %" PRId64
                    " has no priced answer from every model of task %s\n",
                    set->items[i].line, t->name);
            return -ENOENT;
        }
    if (baseline(p, set, t->route[t->n_route - 1], true, &strong) < 0 ||
        baseline(p, set, t->route[0], false, &weak) < 0)
        return -ENOENT;
    eval_print(set, &strong, &weak, &policy, pairs, compare, out);
    return 0;
}

/* The config task an evaluation set runs as: --task, else the config's
 * only routed task when the replay section has no routes. */
static int eval_task(const policy_t *p, const task_policy_t **task)
{
    audit_call_t none = {0};
    const char *name = policy_task_name(p, &none);

    *task = NULL;
    if (name != NULL && (*task = task_set_find(p->tasks, name)) == NULL) {
        fprintf(stderr, "tollgate replay: no task %s with a route\n", name);
        return -EINVAL;
    }
    if (name == NULL && p->n_routes == 0)
        *task = task_set_only(p->tasks);
    return 0;
}

int replay_eval(const policy_t *policy, char **files, int n_files,
                const replay_args_t *args, FILE *out)
{
    eval_set_t set = {0};
    const route_rule_t *rule = policy_route(policy, "", "");
    const task_policy_t *task;
    pair_t *pairs = NULL;
    int rc;

    if (eval_task(policy, &task) < 0)
        return -EINVAL;
    if (rule == NULL && task == NULL) {
        fputs("tollgate replay: an evaluation set needs a route "
              "(replay.routes) naming the cheap model and its "
              "escalation, or a config task (--task NAME)\n",
              stderr);
        return -EINVAL;
    }
    rc = load_set(&set, files, n_files);
    if (rc == 0) {
        pairs = calloc(set.n_items, sizeof(*pairs));
        if (pairs == NULL)
            die_oom();
        rc = task != NULL
                 ? eval_report_task(policy, task, &set, pairs, args->compare,
                                    out)
                 : eval_report(policy, rule, &set, pairs, args->compare, out);
    }
    free(pairs);
    eval_set_free(&set);
    return rc;
}
