/*
 * The gateway's tasks compiled for replay. Checks and context policies
 * are the gateway's own modules (route/checks.h, context/context.h), so
 * a replayed check fails exactly where the gateway's would; the cascade
 * mirrors route_next: re-ask once if asked to, then the next tier.
 */
#include "audit/tasks.h"
#include "context/context.h"
#include "route/checks.h"
#include "util/arena.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

struct task_policy {
    const cfg_task_t *cfg;
    checks_t *checks; /* NULL: no checks */
    bool has_context;
    context_policy_t context;
};

static int compile_one(task_policy_t *tp, const cfg_task_t *t,
                       const config_t *cfg, FILE *errout)
{
    char why[256];
    int rc = 0;

    tp->cfg = t;
    context_policy_default(&tp->context);
    if (t->checks != NULL)
        rc = checks_parse_json(t->checks, &tp->checks, why, sizeof(why));
    if (rc == 0 && t->context != NULL) {
        tp->has_context = true;
        rc = context_policy_parse(t->context, &tp->context, why, sizeof(why));
    }
    if (rc < 0)
        fprintf(errout, "%s:%d: task %s: %s\n", cfg->path ? cfg->path : "",
                t->line, t->name, why);
    return rc;
}

int task_set_compile(task_set_t *set, const config_t *cfg, FILE *errout)
{
    int rc = 0;

    memset(set, 0, sizeof(*set));
    if (cfg == NULL || cfg->n_tasks == 0)
        return 0;
    set->tasks = calloc(cfg->n_tasks, sizeof(*set->tasks));
    if (set->tasks == NULL)
        die_oom();
    set->n = cfg->n_tasks;
    for (size_t i = 0; i < cfg->n_tasks; i++)
        if (compile_one(&set->tasks[i], &cfg->tasks[i], cfg, errout) < 0)
            rc = -EINVAL;
    return rc;
}

void task_set_free(task_set_t *set)
{
    for (size_t i = 0; i < set->n; i++)
        checks_free(set->tasks[i].checks);
    free(set->tasks);
    memset(set, 0, sizeof(*set));
}

const task_policy_t *task_set_find(const task_set_t *set, const char *name)
{
    if (set == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->tasks[i].cfg->name, name) == 0 &&
            set->tasks[i].cfg->n_route > 0)
            return &set->tasks[i];
    return NULL;
}

const task_policy_t *task_set_only(const task_set_t *set)
{
    const task_policy_t *only = NULL;

    for (size_t i = 0; set != NULL && i < set->n; i++) {
        if (set->tasks[i].cfg->n_route == 0)
            continue;
        if (only != NULL)
            return NULL;
        only = &set->tasks[i];
    }
    return only;
}

const cfg_task_t *task_policy_cfg(const task_policy_t *task)
{
    return task->cfg;
}

bool task_policy_has_context(const task_policy_t *task)
{
    return task->has_context;
}

/* Whether one answer passes; *unchecked when there was no text. */
static bool passes(const task_policy_t *task, const char *text, size_t len,
                   bool *unchecked)
{
    checks_result_t res;

    if (task->checks == NULL || !checks_any(task->checks))
        return true;
    if (text == NULL) {
        *unchecked = true;
        return true;
    }
    return checks_run(task->checks, text, len, NULL, &res);
}

static void attempt(task_cascade_t *out, int tier)
{
    out->tier[out->n_attempts++] = tier;
}

void task_policy_cascade(const task_policy_t *task, task_text_fn *text_of,
                         void *arg, task_cascade_t *out)
{
    const cfg_task_t *t = task->cfg;
    bool reask = t->on_check_fail && strcmp(t->on_check_fail, "reask") == 0;
    int cap = t->max_attempts < TASK_MAX_ATTEMPTS ? t->max_attempts
                                                  : TASK_MAX_ATTEMPTS;
    int tier = 0;

    memset(out, 0, sizeof(*out));
    attempt(out, tier);
    for (;;) {
        size_t len = 0;
        const char *text = text_of(arg, tier, &len);

        if (passes(task, text, len, &out->unchecked))
            return;
        /* A re-ask of the same model is assumed to answer the same. */
        if (reask && out->n_attempts < cap)
            attempt(out, tier);
        if (out->n_attempts >= cap || tier + 1 >= (int)t->n_route)
            return;
        attempt(out, ++tier);
        out->escalations++;
    }
}

int64_t task_policy_trim(const task_policy_t *task, struct json_object *request,
                         const char *model)
{
    context_result_t res;
    arena_t *arena;
    int64_t removed = 0;

    if (!task->has_context || request == NULL)
        return 0;
    arena = arena_new(0);
    if (context_trim(arena, CONTEXT_OPENAI_CHAT, request, &task->context, NULL,
                     model, &res) == 0 &&
        res.changed)
        removed = res.tokens_before - res.tokens_after;
    arena_free(arena);
    return removed;
}
