/*
 * Builds the simulator's answers: deterministic default text, stream
 * chunk boundaries, token counts, and the normalized usage record the
 * introspection journal keeps for every surface.
 */
#include "sim_answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_tokens.h"
#include "sim_util.h"

#define WORDS_MARKER "sim:words="

static const char *const word_list[] = {
    "the",     "a",       "model",  "answer",  "token",  "gateway", "cost",
    "price",   "request", "stream", "cache",   "budget", "ledger",  "quick",
    "brown",   "fox",     "jumps",  "over",    "lazy",   "dog",     "and",
    "then",    "every",   "call",   "is",      "priced", "exactly", "in",
    "integer", "units",   "which",  "never",   "drift",  "while",   "tests",
    "check",   "each",    "value",  "against", "known",  "vectors", "so",
    "we",      "can",     "trust",  "what",    "it",     "reports", "today",
    "river",   "stone",   "light",  "green",   "paper",  "signal",  "window",
    "market",  "eleven",  "north",  "simple",  "useful", "outcome", "rework",
    "tier",
};

#define NWORDS (sizeof(word_list) / sizeof(word_list[0]))

/* N from "sim:words=N" in the text, or -1 when there is no such marker. */
static long words_marker(const char *text, size_t len)
{
    size_t mlen = strlen(WORDS_MARKER);
    const char *hit = memmem(text, len, WORDS_MARKER, mlen);
    const char *p, *end = text + len;
    long n = 0;

    if (hit == NULL)
        return -1;

    p = hit + mlen;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (n <= ANSWER_MAX_WORDS)
            n = n * 10 + (*p - '0');
    }
    return n > ANSWER_MAX_WORDS ? ANSWER_MAX_WORDS : n;
}

char *answer_default_text(const char *last_user, size_t last_len,
                          const char *model, size_t *len)
{
    uint64_t hash = util_hash(UTIL_FNV_SEED, model, strlen(model) + 1);
    uint64_t state;
    long count, marker;
    size_t cap, used = 0;
    char *text;

    hash = util_hash(hash, last_user, last_len);
    state = hash;
    marker = words_marker(last_user, last_len);
    count = marker >= 0 ? marker : 8 + (long)(hash % 40);

    cap = (size_t)count * 8 + 1;
    text = util_xmalloc(cap);
    for (long i = 0; i < count; i++) {
        const char *word = word_list[util_mix(&state) % NWORDS];
        size_t wlen = strlen(word);

        if (used + wlen + 2 > cap) {
            cap = cap * 2 + wlen + 2;
            text = util_xrealloc(text, cap);
        }
        if (i > 0)
            text[used++] = ' ';
        memcpy(text + used, word, wlen);
        used += wlen;
    }
    text[used] = '\0';
    *len = used;
    return text;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/*
 * A chunk is a word with the whitespace before it; whitespace after the
 * last word joins the last chunk, so the chunks always rebuild the text.
 */
static void split_chunks(struct answer *answer)
{
    const char *text = answer->text;
    size_t len = answer->text_len, i = 0, n = 0;

    answer->chunk_ends = util_xmalloc((len + 1) * sizeof(size_t));
    while (i < len) {
        while (i < len && is_blank(text[i]))
            i++;
        if (i == len && n > 0) {
            answer->chunk_ends[n - 1] = len;
            break;
        }
        while (i < len && !is_blank(text[i]))
            i++;
        answer->chunk_ends[n++] = i;
    }
    answer->nchunks = n;
}

void answer_set_text(struct answer *answer, char *text, size_t len,
                     int64_t limit, bool reasoning)
{
    size_t kept = len;

    if (limit >= 0)
        kept = tokens_truncate(text, len, limit);
    answer->truncated = kept < len;
    text[kept] = '\0';

    answer->text = text;
    answer->text_len = kept;
    split_chunks(answer);

    answer->answer_tokens = tokens_count(text, kept);
    answer->reasoning_tokens = reasoning ? 2 * answer->answer_tokens : 0;
}

void answer_free(struct answer *answer)
{
    free(answer->id);
    free(answer->request_id);
    free(answer->model);
    free(answer->fingerprint);
    free(answer->text);
    free(answer->chunk_ends);
    free(answer->tool_name);
    free(answer->tool_id);
    memset(answer, 0, sizeof(*answer));
}

int64_t answer_pieces_upto(const struct answer *answer, size_t nchunks)
{
    size_t end;

    if (nchunks == 0)
        return 0;
    if (nchunks > answer->nchunks)
        nchunks = answer->nchunks;
    end = answer->chunk_ends[nchunks - 1];
    return tokens_count(answer->text, end);
}

int64_t answer_cache_writes(const struct answer *answer)
{
    return answer->cache_write_tokens + answer->cache_write_1h_tokens;
}

static void put(struct json_object *obj, const char *key,
                struct json_object *value)
{
    json_object_object_add(obj, key, value);
}

/* The tier a reader finds on the wire, in usage_t's words. */
static const char *normalized_tier(const struct answer *answer,
                                   enum surface surface)
{
    const char *tier = answer->service_tier;

    if (surface == SURFACE_GEMINI || surface == SURFACE_EMBEDDINGS ||
        surface == SURFACE_AZURE_EMBEDDINGS)
        return "standard";
    if (tier[0] == '\0' || strcmp(tier, "default") == 0 ||
        strcmp(tier, "auto") == 0)
        return "standard";
    return tier;
}

/* Which counts each surface puts on the wire at all. */
static bool reports_writes(enum surface surface)
{
    return surface == SURFACE_CHAT || surface == SURFACE_AZURE ||
           surface == SURFACE_RESPONSES || surface == SURFACE_MESSAGES;
}

static bool reports_searches(enum surface surface)
{
    return surface == SURFACE_RESPONSES || surface == SURFACE_MESSAGES;
}

struct json_object *answer_normalized_json(const struct answer *answer,
                                           enum surface surface, int64_t output)
{
    struct json_object *obj = json_object_new_object();
    bool anthropic = surface == SURFACE_MESSAGES;
    int64_t writes = reports_writes(surface) ? answer_cache_writes(answer) : 0;
    int64_t writes_1h = anthropic && !answer->no_cache_split
                            ? answer->cache_write_1h_tokens
                            : 0;
    int64_t searches = reports_searches(surface) ? answer->web_searches : 0;

    put(obj, "input_tokens", json_object_new_int64(answer->prompt_tokens));
    put(obj, "cached_tokens", json_object_new_int64(answer->cached_tokens));
    put(obj, "cache_write_tokens", json_object_new_int64(writes));
    put(obj, "cache_write_1h_tokens", json_object_new_int64(writes_1h));
    put(obj, "output_tokens", json_object_new_int64(output));
    put(obj, "reasoning_tokens",
        json_object_new_int64(answer->reasoning_tokens));
    put(obj, "web_searches", json_object_new_int64(searches));
    put(obj, "service_tier",
        json_object_new_string(normalized_tier(answer, surface)));
    put(obj, "geo", json_object_new_string(anthropic ? answer->geo : ""));
    return obj;
}
