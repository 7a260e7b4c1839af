/*
 * Loads the policy replay applies. A plain Tollgate config loads through
 * config_load; a file with a `replay:` section adds routes (with checks
 * and escalation for evaluation sets), trimming, a cache and a cap, and
 * may name the config it extends with `config:`.
 */
#include "audit/cli.h"
#include "audit/internal.h"
#include "audit/policy.h"
#include "audit/tasks.h"
#include "http/gateway.h"

#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <stdlib.h>
#include <string.h>

static int line_of(struct fy_node *node)
{
    struct fy_token *tok = node ? fy_node_get_scalar_token(node) : NULL;
    const struct fy_mark *mark = tok ? fy_token_start_mark(tok) : NULL;

    return mark ? mark->line + 1 : 0;
}

static void complain(policy_t *p, FILE *errout, struct fy_node *node,
                     const char *msg, const char *what, int *errors)
{
    fprintf(errout, "%s:%d: %s%s%s\n", p->path, line_of(node), msg,
            what ? " " : "", what ? what : "");
    *errors += 1;
}

/* A copy of a scalar in the policy's own text buffer. */
static const char *keep(policy_t *p, struct fy_node *node)
{
    size_t len = 0;
    const char *s =
        node && fy_node_is_scalar(node) ? fy_node_get_scalar(node, &len) : NULL;
    char *out;

    if (s == NULL || p->text_len + len + 1 > sizeof(p->text))
        return NULL;
    out = p->text + p->text_len;
    memcpy(out, s, len);
    out[len] = '\0';
    p->text_len += len + 1;
    return out;
}

static int parse_check(route_rule_t *r, const char *s)
{
    r->check_name = s;
    if (strcmp(s, "numeric-answer") == 0)
        r->check = CHECK_NUMERIC;
    else if (strcmp(s, "nonempty") == 0)
        r->check = CHECK_NONEMPTY;
    else if (strcmp(s, "no-refusal") == 0)
        r->check = CHECK_NO_REFUSAL;
    else if (strncmp(s, "min-chars:", 10) == 0 && isdigit((unsigned char)s[10]))
        r->check = CHECK_MIN_CHARS, r->check_arg = atoll(s + 10);
    else
        return -EINVAL;
    return 0;
}

static void route_field(policy_t *p, route_rule_t *r, const char *key,
                        struct fy_node *v, FILE *errout, int *errors)
{
    const char *s = keep(p, v);

    if (s == NULL)
        complain(p, errout, v, "route value must be text:", key, errors);
    else if (strcmp(key, "from") == 0)
        r->from = s;
    else if (strcmp(key, "workflow") == 0)
        r->workflow = s;
    else if (strcmp(key, "to") == 0)
        r->to = s;
    else if (strcmp(key, "escalate") == 0)
        r->escalate = s;
    else if (strcmp(key, "check") == 0) {
        if (parse_check(r, s) < 0)
            complain(p, errout, v,
                     "unknown check (numeric-answer, nonempty,"
                     " no-refusal, min-chars:N):",
                     s, errors);
    } else
        complain(p, errout, v,
                 "unknown route key (from, workflow, to, "
                 "check, escalate):",
                 key, errors);
}

static void load_routes(policy_t *p, struct fy_node *seq, FILE *errout,
                        int *errors)
{
    void *iter = NULL;
    struct fy_node *item;

    if (!fy_node_is_sequence(seq)) {
        complain(p, errout, seq, "routes must be a list", NULL, errors);
        return;
    }
    while ((item = fy_node_sequence_iterate(seq, &iter)) != NULL) {
        route_rule_t *r = &p->routes[p->n_routes];
        void *it = NULL;
        struct fy_node_pair *pair;

        if (p->n_routes == POLICY_MAX_ROUTES || !fy_node_is_mapping(item)) {
            complain(p, errout, item, "too many routes, or not a mapping", NULL,
                     errors);
            return;
        }
        p->n_routes++;
        while ((pair = fy_node_mapping_iterate(item, &it)) != NULL)
            route_field(p, r, fy_node_get_scalar0(fy_node_pair_key(pair)),
                        fy_node_pair_value(pair), errout, errors);
        if (r->to == NULL)
            complain(p, errout, item, "a route needs `to`", NULL, errors);
    }
}

static void load_task_maps(policy_t *p, struct fy_node *map, FILE *errout,
                           int *errors)
{
    void *iter = NULL;
    struct fy_node_pair *pair;

    if (!fy_node_is_mapping(map)) {
        complain(p, errout, map, "workflow_tasks must map workflow to task",
                 NULL, errors);
        return;
    }
    while ((pair = fy_node_mapping_iterate(map, &iter)) != NULL) {
        task_map_t *m = &p->task_maps[p->n_task_maps];
        if (p->n_task_maps == POLICY_MAX_ROUTES) {
            complain(p, errout, map, "too many workflow_tasks", NULL, errors);
            return;
        }
        m->workflow = keep(p, fy_node_pair_key(pair));
        m->task = keep(p, fy_node_pair_value(pair));
        if (m->workflow == NULL || m->task == NULL)
            complain(p, errout, fy_node_pair_key(pair),
                     "workflow_tasks entries must be text", NULL, errors);
        else
            p->n_task_maps++;
    }
}

static void replay_field(policy_t *p, const char *key, struct fy_node *v,
                         FILE *errout, int *errors)
{
    bool tree =
        strcmp(key, "routes") == 0 || strcmp(key, "workflow_tasks") == 0;
    const char *s = tree ? NULL : keep(p, v);

    if (strcmp(key, "routes") == 0)
        load_routes(p, v, errout, errors);
    else if (strcmp(key, "workflow_tasks") == 0)
        load_task_maps(p, v, errout, errors);
    else if (s != NULL && strcmp(key, "cap_per_key_day_usd") == 0) {
        p->has_cap = true;
        if (audit_parse_usd(s, strlen(s), &p->cap_per_key_day) < 0)
            complain(p, errout, v, "cap must be decimal USD text:", s, errors);
    } else if (s != NULL && strcmp(key, "max_input_tokens") == 0)
        p->max_input_tokens = atoll(s);
    else if (s != NULL && strcmp(key, "cache") == 0)
        p->cache = strcmp(s, "true") == 0 || strcmp(s, "exact") == 0;
    else
        complain(p, errout, v,
                 "unknown replay key (routes, workflow_tasks, "
                 "cap_per_key_day_usd, max_input_tokens, cache):",
                 key, errors);
}

/* The config a replay file names, relative to the replay file. */
static int load_named_config(policy_t *p, struct fy_node *v, FILE *errout)
{
    const char *name = keep(p, v);
    const char *slash = strrchr(p->path, '/');
    char path[1024];
    int n_errors = 0;

    if (name == NULL)
        return -EINVAL;
    if (name[0] == '/' || slash == NULL)
        snprintf(path, sizeof(path), "%s", name);
    else
        snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - p->path), p->path,
                 name);
    p->config = config_load(path, errout, &n_errors);
    return p->config == NULL ? -EINVAL : 0;
}

static int load_replay_file(policy_t *p, struct fy_node *root, FILE *errout)
{
    struct fy_node *replay =
        fy_node_mapping_lookup_by_string(root, "replay", FY_NT);
    struct fy_node *cfg =
        fy_node_mapping_lookup_by_string(root, "config", FY_NT);
    void *iter = NULL;
    struct fy_node_pair *pair;
    int errors = 0;

    if (cfg != NULL && load_named_config(p, cfg, errout) < 0)
        errors++;
    if (!fy_node_is_mapping(replay)) {
        complain(p, errout, replay, "replay must be a mapping", NULL, &errors);
        return -EINVAL;
    }
    while ((pair = fy_node_mapping_iterate(replay, &iter)) != NULL)
        replay_field(p, fy_node_get_scalar0(fy_node_pair_key(pair)),
                     fy_node_pair_value(pair), errout, &errors);
    return errors > 0 ? -EINVAL : 0;
}

/* The config's tasks, compiled as the gateway compiles them. */
static int load_tasks(policy_t *p, FILE *errout)
{
    if (p->config == NULL || p->config->n_tasks == 0)
        return 0;
    if ((p->tasks = calloc(1, sizeof(*p->tasks))) == NULL)
        die_oom();
    return task_set_compile(p->tasks, p->config, errout);
}

static int load_prices(policy_t *p, FILE *errout)
{
    if (p->config == NULL) {
        p->prices = billing_table_new();
        return 0;
    }
    p->prices = gateway_load_prices(p->config, errout);
    return p->prices == NULL ? -EINVAL : 0;
}

int policy_load(policy_t *p, const char *path, FILE *errout)
{
    struct fy_document *doc;
    struct fy_node *root;
    int n_errors = 0, rc = 0;

    memset(p, 0, sizeof(*p));
    snprintf(p->path, sizeof(p->path), "%s", path);
    doc = fy_document_build_from_file(NULL, path);
    root = doc ? fy_document_root(doc) : NULL;
    if (root == NULL || !fy_node_is_mapping(root)) {
        fprintf(errout, "%s: not a YAML mapping\n", path);
        fy_document_destroy(doc);
        return -EINVAL;
    }
    if (fy_node_mapping_lookup_by_string(root, "replay", FY_NT) != NULL)
        rc = load_replay_file(p, root, errout);
    else if ((p->config = config_load(path, errout, &n_errors)) == NULL)
        rc = -EINVAL;
    fy_document_destroy(doc);
    if (rc == 0)
        rc = load_prices(p, errout);
    if (rc == 0)
        rc = load_tasks(p, errout);
    return rc;
}

void policy_free(policy_t *p)
{
    if (p->tasks != NULL) {
        task_set_free(p->tasks);
        free(p->tasks);
    }
    if (p->prices != NULL)
        billing_table_free(p->prices);
    if (p->config != NULL)
        config_free(p->config);
    memset(p, 0, sizeof(*p));
}

static const cfg_model_t *configured(const policy_t *p, const char *model)
{
    if (p->config == NULL)
        return NULL;
    for (size_t i = 0; i < p->config->n_models; i++) {
        const cfg_model_t *m = &p->config->models[i];
        if (strcmp(m->name, model) == 0 ||
            (m->upstream != NULL && strcmp(m->upstream, model) == 0))
            return m;
    }
    return NULL;
}

const price_t *policy_price(const policy_t *p, const char *model, int64_t at)
{
    const cfg_model_t *m = configured(p, model);
    const price_t *price = NULL;

    if (m != NULL && m->has_price)
        return &m->price;
    if (m != NULL && m->price_entry != NULL)
        price = billing_lookup_at(p->prices, m->price_entry, at);
    if (price == NULL && m != NULL && m->upstream != NULL)
        price = billing_lookup_at(p->prices, m->upstream, at);
    return price != NULL ? price : billing_lookup_at(p->prices, model, at);
}

const char *policy_answer_model(const policy_t *p, const char *model)
{
    const cfg_model_t *m = configured(p, model);

    return m != NULL && m->upstream != NULL ? m->upstream : model;
}

const route_rule_t *policy_route(const policy_t *p, const char *model,
                                 const char *label)
{
    for (int i = 0; i < p->n_routes; i++) {
        const route_rule_t *r = &p->routes[i];
        if (r->from != NULL && strcmp(r->from, "*") != 0 &&
            strcmp(r->from, model) != 0 &&
            strcmp(policy_answer_model(p, r->from), model) != 0)
            continue;
        if (r->workflow != NULL && strstr(label, r->workflow) == NULL)
            continue;
        return r;
    }
    return NULL;
}

const char *policy_task_name(const policy_t *p, const audit_call_t *call)
{
    if (call->task[0] != '\0')
        return call->task;
    for (int i = 0; i < p->n_task_maps; i++)
        if (strstr(call->label, p->task_maps[i].workflow) != NULL)
            return p->task_maps[i].task;
    return p->default_task;
}

/* The last line of text with something other than white space. */
static const char *last_line(const char *text, size_t len, size_t *n)
{
    size_t end = len, start;

    while (end > 0 && isspace((unsigned char)text[end - 1]))
        end--;
    start = end;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    *n = end - start;
    return text + start;
}

static bool has_digit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isdigit((unsigned char)s[i]))
            return true;
    return false;
}

static bool refuses(const char *text, size_t len)
{
    static const char *const openings[] = {
        "I'm sorry", "I am sorry", "I cannot", "I can't", "As an AI", NULL};

    while (len > 0 && isspace((unsigned char)*text))
        text++, len--;
    for (int i = 0; openings[i] != NULL; i++)
        if (len >= strlen(openings[i]) &&
            strncmp(text, openings[i], strlen(openings[i])) == 0)
            return true;
    return false;
}

bool policy_check(const route_rule_t *rule, const char *text, size_t len)
{
    size_t n;
    const char *line;

    switch (rule->check) {
    case CHECK_NUMERIC:
        line = last_line(text, len, &n);
        return has_digit(line, n);
    case CHECK_NONEMPTY:
        last_line(text, len, &n);
        return n > 0;
    case CHECK_NO_REFUSAL:
        return !refuses(text, len);
    case CHECK_MIN_CHARS:
        return (int64_t)len >= rule->check_arg;
    default:
        return true;
    }
}
