/*
 * bench/context: replays the ShareGPT sample turn by turn, each request
 * carrying the whole history so far as a chat client resends it, through
 * each trimming policy, and prints input tokens, tokens and dollars saved
 * per turn, and the share of trims the risk check flags.
 * Usage: context_bench [MODEL]   (default gpt-4o; reads $TOLLGATE_SHARED)
 */
#include "billing/billing.h"
#include "context/context.h"
#include "tokens/tokens.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAMPLE "/data/sharegpt-1k-sample/sharegpt_1000_conversations.jsonl"

typedef struct bench_policy {
    const char *name;
    const char *json; /* as a task's context: subtree would say */
    context_policy_t policy;
    int64_t turns, trimmed, flagged, over, not_idempotent, invalid;
    int64_t before, after, ns;
    pico_t saved;
} bench_policy_t;

static bench_policy_t policies[] = {
    {.name = "none", .json = "{}"},
    {.name = "keep-last-4", .json = "{\"keep_last_turns\":4}"},
    {.name = "keep-last-2", .json = "{\"keep_last_turns\":2}"},
    {.name = "repeats+docs",
     .json = "{\"drop_repeated_instructions\":true,\"drop_resent_documents\":"
             "true}"},
    {.name = "tool rules",
     .json =
         "{\"tool_result_max_age_turns\":2,\"tool_output_max_tokens\":1000}"},
    {.name = "budget-1000", .json = "{\"budget_tokens\":1000}"},
    {.name = "budget-2000", .json = "{\"budget_tokens\":2000}"},
    {.name = "budget-1000+prefix-1024",
     .json = "{\"budget_tokens\":1000,\"openai_cached_prefix_tokens\":1024}"},
    {.name = "all: last-6+rules+2000",
     .json = "{\"keep_last_turns\":6,\"drop_repeated_instructions\":true,"
             "\"drop_resent_documents\":true,\"tool_result_max_age_turns\":2,"
             "\"tool_output_max_tokens\":1000,\"budget_tokens\":2000}"},
};
#define N_POLICIES (sizeof(policies) / sizeof(policies[0]))

typedef struct growth {
    int64_t full_chars, new_chars, full_tokens, new_tokens, user_turns;
} growth_t;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Code points, as the data set's README counts characters. */
static int64_t chars(const char *s)
{
    int64_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static json_object *message_new(const char *role, const char *text)
{
    json_object *msg = json_object_new_object();

    json_object_object_add(msg, "role", json_object_new_string(role));
    json_object_object_add(msg, "content", json_object_new_string(text));
    return msg;
}

static const char *role_of(const char *from)
{
    if (strcmp(from, "human") == 0)
        return "user";
    if (strcmp(from, "gpt") == 0)
        return "assistant";
    return "system";
}

/* The request a client sends when the user speaks at index LAST. */
static json_object *request_new(const char *model, json_object *msgs,
                                size_t last)
{
    json_object *req = json_object_new_object();
    json_object *arr = json_object_new_array();

    for (size_t i = 0; i <= last; i++)
        json_object_array_add(
            arr, json_object_get(json_object_array_get_idx(msgs, i)));
    json_object_object_add(req, "model", json_object_new_string(model));
    json_object_object_add(req, "messages", arr);
    return req;
}

static const char *role_at(json_object *msgs, size_t i)
{
    json_object *role = NULL;

    json_object_object_get_ex(json_object_array_get_idx(msgs, i), "role",
                              &role);
    return role != NULL ? json_object_get_string(role) : "";
}

static size_t systems(json_object *msgs)
{
    size_t n = 0;

    for (size_t i = 0; i < json_object_array_length(msgs); i++)
        n += strcmp(role_at(msgs, i), "system") == 0;
    return n;
}

/* A lost question or system prompt: the last message is not the user's
 * any more, or a system message went. */
static bool output_valid(json_object *out, json_object *in)
{
    json_object *a, *b;
    size_t na;

    if (!json_object_object_get_ex(out, "messages", &a) ||
        !json_object_object_get_ex(in, "messages", &b))
        return false;
    na = json_object_array_length(a);
    return na > 0 && strcmp(role_at(a, na - 1), "user") == 0 &&
           systems(a) == systems(b);
}

/* CONTEXT_BENCH_SHOW=<policy name>: prints that policy's flagged trims. */
static void flagged_show(const bench_policy_t *bp, json_object *req,
                         const context_result_t *r)
{
    const char *want = getenv("CONTEXT_BENCH_SHOW");
    json_object *msgs, *content;
    size_t n;

    if (want == NULL || strcmp(want, bp->name) != 0 || !r->risk)
        return;
    json_object_object_get_ex(req, "messages", &msgs);
    n = json_object_array_length(msgs);
    json_object_object_get_ex(json_object_array_get_idx(msgs, n - 1), "content",
                              &content);
    printf("--- flagged (%" PRId64 " -> %" PRId64 "):", r->tokens_before,
           r->tokens_after);
    for (size_t i = 0; i < r->n_risk_words; i++)
        printf(" %s", r->risk_words[i]);
    printf("\n%.300s\n", json_object_get_string(content));
}

static void trim_one(bench_policy_t *bp, json_object *req,
                     const tokens_encoding_t *enc, const char *model,
                     const price_t *price)
{
    arena_t *arena = arena_new(1 << 16);
    context_result_t r, again;
    int64_t t0 = now_ns();
    json_object *out;

    context_trim(arena, CONTEXT_OPENAI_CHAT, req, &bp->policy, enc, model, &r);
    bp->ns += now_ns() - t0;
    bp->turns++;
    bp->before += r.tokens_before;
    bp->after += r.tokens_after;
    bp->over += r.over_budget;
    if (r.changed) {
        bp->trimmed++;
        bp->flagged += r.risk;
        flagged_show(bp, req, &r);
        bp->saved +=
            context_saved_pico(price, r.tokens_before - r.tokens_after);
        out = json_tokener_parse(r.body);
        context_trim(arena, CONTEXT_OPENAI_CHAT, out, &bp->policy, enc, model,
                     &again);
        bp->not_idempotent += again.changed;
        bp->invalid += !output_valid(out, req);
        json_object_put(out);
    }
    arena_free(arena);
}

static void conversation_replay(json_object *row, const tokens_encoding_t *enc,
                                const char *model, const price_t *price,
                                growth_t *g)
{
    json_object *conv, *req, *msgs = json_object_new_array();
    int64_t history = 0;

    json_object_object_get_ex(row, "conversations", &conv);
    for (size_t i = 0; i < json_object_array_length(conv); i++) {
        json_object *m = json_object_array_get_idx(conv, i), *f, *v;
        const char *from, *text;

        json_object_object_get_ex(m, "from", &f);
        json_object_object_get_ex(m, "value", &v);
        from = json_object_get_string(f);
        text = json_object_get_string(v);
        json_object_array_add(msgs, message_new(role_of(from), text));
        history += chars(text);
        if (strcmp(from, "human") != 0)
            continue;
        g->user_turns++;
        g->full_chars += history;
        g->new_chars += chars(text);
        if (enc != NULL)
            g->new_tokens += tokens_count(enc, text, strlen(text));
        req = request_new(model, msgs, i);
        for (size_t p = 0; p < N_POLICIES; p++)
            trim_one(&policies[p], req, enc, model, price);
        json_object_put(req);
    }
    g->full_tokens = policies[0].before;
    json_object_put(msgs);
}

static void money(char *out, size_t len, pico_t pico)
{
    /* dollars with six decimals, from integers only */
    int64_t micro = pico / 1000000;

    snprintf(out, len, "$%" PRId64 ".%06" PRId64, micro / 1000000,
             micro % 1000000);
}

static double share(int64_t part, int64_t whole)
{
    return whole > 0 ? 100.0 * (double)part / (double)whole : 0.0;
}

static void table_print(const char *model, const price_t *price, bool exact)
{
    printf("\nmodel %s, input $%.2f per million tokens (%s); counts %s\n",
           model, (double)price->input / 1e6, price->source,
           exact ? "exact (o200k_base)" : "estimated (no rank file)");
    printf("%-24s %8s %10s %10s %12s %8s %8s %6s %6s %8s\n", "policy",
           "trimmed", "in tok/turn", "saved/turn", "saved $/1k", "flagged",
           "over", "idem", "bad", "us/trim");
    for (size_t p = 0; p < N_POLICIES; p++) {
        bench_policy_t *bp = &policies[p];
        char dollars[32];

        money(dollars, sizeof(dollars), bp->saved * 1000 / bp->turns);
        printf("%-24s %7.1f%% %10.1f %10.1f %12s %7.1f%% %7.1f%% %6" PRId64
               " %6" PRId64 " %8.1f\n",
               bp->name, share(bp->trimmed, bp->turns),
               (double)bp->after / (double)bp->turns,
               (double)(bp->before - bp->after) / (double)bp->turns, dollars,
               share(bp->flagged, bp->trimmed), share(bp->over, bp->turns),
               bp->not_idempotent, bp->invalid,
               (double)bp->ns / 1e3 / (double)bp->turns);
    }
    printf("\ntrimmed: requests changed; flagged: share of trimmed "
           "requests whose last user turn names removed text; over: still "
           "over the budget after trimming; idem: re-trims that changed "
           "something (must be 0); bad: outputs that lost the last user "
           "turn (must be 0)\n");
}

static void growth_print(const growth_t *g)
{
    printf("replay check: %" PRId64 " user turns; whole history vs new text "
           "alone: %.2fx in characters (README: 10.6x), %.2fx in tokens "
           "(messages plus chat overhead vs the new message's text)\n",
           g->user_turns, (double)g->full_chars / (double)g->new_chars,
           g->new_tokens > 0 ? (double)g->full_tokens / (double)g->new_tokens
                             : 0.0);
}

static int policies_parse(void)
{
    char err[256];

    for (size_t p = 0; p < N_POLICIES; p++) {
        json_object *obj = json_tokener_parse(policies[p].json);
        int rc =
            context_policy_parse(obj, &policies[p].policy, err, sizeof(err));

        json_object_put(obj);
        if (rc != 0) {
            fprintf(stderr, "context_bench: %s: %s\n", policies[p].name, err);
            return rc;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = argc > 1 ? argv[1] : "gpt-4o";
    const char *shared = getenv("TOLLGATE_SHARED");
    char path[4096];
    price_table_t *table = billing_table_new();
    const price_t *price = billing_lookup(table, model);
    tokens_encoding_t *enc = NULL;
    tokens_kind_t kind;
    growth_t g = {0};
    FILE *f;
    char *line = NULL;
    size_t cap = 0;

    snprintf(path, sizeof(path), "%s" SAMPLE, shared ? shared : "../shared");
    if ((f = fopen(path, "r")) == NULL || price == NULL ||
        policies_parse() != 0) {
        printf("SKIP bench/context: %s missing or %s unpriced\n", path, model);
        return 0;
    }
    tokens_model_kind(model, &kind);
    if (tokens_load(kind, NULL, &enc) != 0)
        enc = NULL;
    while (getline(&line, &cap, f) > 0) {
        json_object *row = json_tokener_parse(line);

        if (row == NULL)
            continue;
        conversation_replay(row, enc, model, price, &g);
        json_object_put(row);
    }
    growth_print(&g);
    table_print(model, price, enc != NULL);
    free(line);
    fclose(f);
    tokens_free(enc);
    billing_table_free(table);
    return 0;
}
