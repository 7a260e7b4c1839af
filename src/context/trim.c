/*
 * context_trim: how the rules are ordered and how a request is rebuilt.
 *
 * The request is read into messages grouped in turns (a user message and
 * what follows it up to the next one). Structural rules drop whole turns,
 * which keeps every tool call with its results, since a turn never starts
 * with a tool result. Content rules replace texts inside the turns that
 * stay. Order: old turns first (keep_last_turns), then the content rules
 * on what is left, then the budget drops the oldest remaining turns until
 * the request fits. Content decisions are recomputed after each budget
 * drop because a text removed as a repeat must come back when its earlier
 * copy goes. Nothing before the frozen index (system prompt, cached
 * prefix) and nothing in the last turn is ever dropped. Counting is done
 * once per message; edits adjust those counts by the tokens of the texts
 * they replace, so before - after is exactly the sum of what each rule
 * removed.
 */
#include "context/context_int.h"

#include <errno.h>
#include <string.h>

static int64_t scaled(const convo_t *c, int64_t raw)
{
    return (raw * c->percent + 99) / 100;
}

/* A message's tokens after this pass's edits. */
static int64_t msg_now(const convo_t *c, size_t i)
{
    int64_t total = c->m[i].raw;

    for (size_t k = 0; k < c->n_pieces; k++) {
        const piece_t *p = &c->pieces[k];

        if (p->msg == (int)i && p->rule != NO_RULE)
            total += p->new_tokens - p->tokens;
    }
    return total;
}

static int64_t total_now(const convo_t *c)
{
    int64_t total = c->fixed;

    for (size_t i = 0; i < c->n; i++)
        if (c->m[i].dropped == NO_RULE)
            total += msg_now(c, i);
    return total;
}

static bool kept(const convo_t *c, size_t i)
{
    return c->m[i].dropped == NO_RULE;
}

/* Whether dropping turn K leaves a request the provider accepts: for
 * Anthropic, the first message a user's and roles still alternating. */
static bool turn_droppable(const convo_t *c, size_t k)
{
    size_t a = c->turn_start[k], b = c->turn_start[k + 1];
    size_t prev = a, next = b;

    if (k < c->first_turn || k + 1 >= c->n_turns || !kept(c, a))
        return false;
    if (c->surface != CONTEXT_ANTHROPIC)
        return true;
    while (prev > 0 && !kept(c, prev - 1))
        prev--;
    while (next < c->n && !kept(c, next))
        next++;
    if (next == c->n)
        return false;
    if (prev == 0)
        return c->m[next].role == ROLE_USER;
    return c->m[prev - 1].role != c->m[next].role;
}

static int64_t turn_drop(convo_t *c, size_t k, int rule)
{
    int64_t tokens = 0;

    for (size_t i = c->turn_start[k]; i < c->turn_start[k + 1]; i++) {
        if (c->policy->keep_system && c->m[i].role == ROLE_SYSTEM)
            continue;
        tokens += msg_now(c, i);
        c->m[i].dropped = rule;
    }
    return tokens;
}

static void old_turns_drop(convo_t *c)
{
    int keep = c->policy->keep_last_turns;

    if (keep <= 0 || c->n_turns <= (size_t)keep)
        return;
    for (size_t k = c->first_turn; k < c->n_turns - (size_t)keep; k++)
        if (turn_droppable(c, k))
            turn_drop(c, k, CONTEXT_RULE_OLD_TURNS);
}

/* Drops the oldest turns that cover the excess, then replans; repeats
 * while the request is over and a turn can still go. */
static void budget_drop(convo_t *c)
{
    int64_t budget = c->policy->budget_tokens;

    if (budget <= 0)
        return;
    for (;;) {
        int64_t raw = total_now(c);
        int64_t need = raw - budget * 100 / c->percent;
        bool dropped = false;

        if (scaled(c, raw) <= budget)
            return;
        for (size_t k = c->first_turn; k + 1 < c->n_turns && need > 0; k++) {
            if (!turn_droppable(c, k))
                continue;
            need -= turn_drop(c, k, CONTEXT_RULE_BUDGET);
            dropped = true;
        }
        if (!dropped)
            return;
        ctx_rules_plan(c);
    }
}

/* Scaled estimates round each total up, as tokens_estimate does; the
 * rounding left over goes to the rule that removed most, so that before -
 * after is still the sum of what each rule removed. */
static void removed_scale(const convo_t *c, const int64_t *raw,
                          context_result_t *out)
{
    int64_t left = out->tokens_before - out->tokens_after;
    int top = 0;

    for (int r = 0; r < CONTEXT_RULES; r++) {
        out->removed[r].tokens = raw[r] * c->percent / 100;
        left -= out->removed[r].tokens;
        top = raw[r] > raw[top] ? r : top;
        out->changed = out->changed || out->removed[r].items > 0;
    }
    out->removed[top].tokens += left;
}

static void result_count(const convo_t *c, context_result_t *out)
{
    int64_t raw_before = c->fixed, raw_gone = 0, raw[CONTEXT_RULES] = {0};

    for (size_t i = 0; i < c->n; i++) {
        raw_before += c->m[i].raw;
        if (kept(c, i))
            continue;
        raw[c->m[i].dropped] += c->m[i].raw;
        out->removed[c->m[i].dropped].items++;
        out->messages_dropped++;
    }
    for (size_t k = 0; k < c->n_pieces; k++) {
        const piece_t *p = &c->pieces[k];

        if (p->rule == NO_RULE || p->msg < 0 || !kept(c, (size_t)p->msg))
            continue;
        raw[p->rule] += p->tokens - p->new_tokens;
        out->removed[p->rule].items++;
    }
    for (int r = 0; r < CONTEXT_RULES; r++)
        raw_gone += raw[r];
    out->tokens_before = scaled(c, raw_before);
    out->tokens_after = scaled(c, raw_before - raw_gone);
    removed_scale(c, raw, out);
    out->estimated = c->estimated;
    out->over_budget = c->policy->budget_tokens > 0 &&
                       out->tokens_after > c->policy->budget_tokens;
}

static void piece_apply(const piece_t *p)
{
    json_object *repl =
        json_object_new_string_len(p->new_text, (int)p->new_len);

    if (p->as_block) {
        json_object *block = json_object_new_object();

        json_object_object_add(block, "type", json_object_new_string("text"));
        json_object_object_add(block, "text", repl);
        repl = block;
    }
    if (p->key != NULL)
        json_object_object_add(p->holder, p->key, repl);
    else
        json_object_array_put_idx(p->holder, p->index, repl);
}

/* Applies the edits to our copy and serialises it into the arena. */
static void body_build(convo_t *c, context_result_t *out)
{
    json_object *msgs = json_object_new_array();
    const char *text;

    for (size_t k = 0; k < c->n_pieces; k++) {
        const piece_t *p = &c->pieces[k];

        if (p->rule != NO_RULE && kept(c, (size_t)p->msg))
            piece_apply(p);
    }
    for (size_t i = 0; i < c->n; i++)
        if (kept(c, i))
            json_object_array_add(msgs, json_object_get(c->m[i].obj));
    json_object_object_add(c->root, "messages", msgs);
    text = json_object_to_json_string_ext(
        c->root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    out->body_len = strlen(text);
    out->body = arena_strndup(c->arena, text, out->body_len);
}

static bool policy_valid(const context_policy_t *p)
{
    return p->budget_tokens >= 0 && p->keep_last_turns >= 0 &&
           p->tool_result_age >= 0 && p->openai_prefix_tokens >= 0 &&
           (p->tool_output_max == 0 ||
            p->tool_output_max >= CONTEXT_TOOL_OUTPUT_MIN);
}

int context_trim(arena_t *arena, context_surface_t surface,
                 json_object *request, const context_policy_t *policy,
                 const tokens_encoding_t *enc, const char *model,
                 context_result_t *out)
{
    convo_t c = {.arena = arena,
                 .surface = surface,
                 .policy = policy,
                 .enc = enc,
                 .model = model == NULL ? "" : model};
    int rc = -EINVAL;

    memset(out, 0, sizeof(*out));
    if (!policy_valid(policy) ||
        !json_object_is_type(request, json_type_object) ||
        json_object_deep_copy(request, &c.root, NULL) != 0)
        return -EINVAL;
    rc = ctx_parse(&c);
    if (rc != 0)
        goto out_copy;
    ctx_count_request(&c);
    ctx_freeze(&c);

    old_turns_drop(&c);
    ctx_rules_plan(&c);
    budget_drop(&c);

    result_count(&c, out);
    if (out->changed) {
        ctx_risk_check(&c, out);
        body_build(&c, out);
    }
out_copy:
    json_object_put(c.root);
    return rc;
}
