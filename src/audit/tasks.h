/*
 * The gateway's own tasks as replay applies them: each task's route,
 * its checks and context policy compiled once, the cascade of attempts
 * the gateway would make, and its budgets' hard limits as caps.
 */
#ifndef TOLLGATE_AUDIT_TASKS_H
#define TOLLGATE_AUDIT_TASKS_H

#include "audit/audit.h"
#include "config/config.h"

#include <stdio.h>

/* The gateway keeps at most this many attempts of one call. */
#define TASK_MAX_ATTEMPTS 8

typedef struct task_policy task_policy_t;

/* Every task of a config, compiled. */
typedef struct task_set {
    task_policy_t *tasks;
    size_t n;
} task_set_t;

/*
 * Compiles the tasks of cfg into set (zeroed first). Returns 0, or
 * -EINVAL with each bad checks or context subtree printed to errout as
 * "FILE:LINE: task NAME: reason".
 */
int task_set_compile(task_set_t *set, const config_t *cfg, FILE *errout);
void task_set_free(task_set_t *set);

/* The compiled task of that name with a route of its own, or NULL. */
const task_policy_t *task_set_find(const task_set_t *set, const char *name);

/* The one task with a route when the config has exactly one, or NULL. */
const task_policy_t *task_set_only(const task_set_t *set);

const cfg_task_t *task_policy_cfg(const task_policy_t *task);

/* The attempts the gateway makes on one call: route tier of each. */
typedef struct task_cascade {
    int tier[TASK_MAX_ATTEMPTS];
    int n_attempts;
    int escalations; /* moves to a higher tier after a failed check */
    bool unchecked;  /* an answer had no text: kept unchecked */
} task_cascade_t;

/* The answer text of route tier `tier` (NULL when there is none). */
typedef const char *task_text_fn(void *arg, int tier, size_t *len);

/*
 * Runs the gateway's cascade: the first tier's answer is checked; on a
 * failure the task re-asks once (on_check_fail: reask, same answer
 * assumed) and escalates to the next tier, within max_attempts (at most
 * TASK_MAX_ATTEMPTS). An answer without text is kept, as unchecked.
 */
void task_policy_cascade(const task_policy_t *task, task_text_fn *text_of,
                         void *arg, task_cascade_t *out);

/*
 * Trims a logged chat request by the task's context policy. Returns the
 * input tokens it would remove (estimated), 0 when the task has no
 * context policy or the request no messages
 * (request is left unchanged).
 */
struct json_object;
int64_t task_policy_trim(const task_policy_t *task, struct json_object *request,
                         const char *model);

/* True when the task has a context policy. */
bool task_policy_has_context(const task_policy_t *task);

#endif
