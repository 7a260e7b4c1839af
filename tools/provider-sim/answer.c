/*
 * Builds the simulator's answers: deterministic default text, stream
 * chunk boundaries, token counts and the OpenAI JSON shapes.
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
    memset(answer, 0, sizeof(*answer));
}

static void put(struct json_object *obj, const char *key,
                struct json_object *value)
{
    json_object_object_add(obj, key, value);
}

static struct json_object *int_json(int64_t value)
{
    return json_object_new_int64(value);
}

struct json_object *answer_usage_json(const struct answer *answer)
{
    int64_t completion = answer->answer_tokens + answer->reasoning_tokens;
    struct json_object *usage = json_object_new_object();
    struct json_object *prompt_details = json_object_new_object();
    struct json_object *completion_details = json_object_new_object();

    put(usage, "prompt_tokens", int_json(answer->prompt_tokens));
    put(usage, "completion_tokens", int_json(completion));
    put(usage, "total_tokens", int_json(answer->prompt_tokens + completion));

    put(prompt_details, "cached_tokens", int_json(answer->cached_tokens));
    put(prompt_details, "audio_tokens", int_json(0));
    put(usage, "prompt_tokens_details", prompt_details);

    put(completion_details, "reasoning_tokens",
        int_json(answer->reasoning_tokens));
    put(completion_details, "audio_tokens", int_json(0));
    put(completion_details, "accepted_prediction_tokens", int_json(0));
    put(completion_details, "rejected_prediction_tokens", int_json(0));
    put(usage, "completion_tokens_details", completion_details);
    return usage;
}

static const char *finish_reason(const struct answer *answer)
{
    return answer->truncated ? "length" : "stop";
}

static struct json_object *head_json(const struct answer *answer,
                                     const char *object)
{
    struct json_object *obj = json_object_new_object();

    put(obj, "id", json_object_new_string(answer->id));
    put(obj, "object", json_object_new_string(object));
    put(obj, "created", int_json(answer->created));
    put(obj, "model", json_object_new_string(answer->model));
    return obj;
}

struct json_object *answer_completion_json(const struct answer *answer)
{
    struct json_object *obj = head_json(answer, "chat.completion");
    struct json_object *choices = json_object_new_array();
    struct json_object *choice = json_object_new_object();
    struct json_object *message = json_object_new_object();

    put(message, "role", json_object_new_string("assistant"));
    put(message, "content",
        json_object_new_string_len(answer->text, (int)answer->text_len));
    put(message, "refusal", NULL);
    put(message, "annotations", json_object_new_array());

    put(choice, "index", int_json(0));
    put(choice, "message", message);
    put(choice, "logprobs", NULL);
    put(choice, "finish_reason", json_object_new_string(finish_reason(answer)));
    json_object_array_add(choices, choice);

    put(obj, "choices", choices);
    put(obj, "usage", answer_usage_json(answer));
    put(obj, "service_tier", json_object_new_string("default"));
    put(obj, "system_fingerprint", json_object_new_string(answer->fingerprint));
    return obj;
}

static struct json_object *chunk_delta(const struct answer *answer,
                                       enum answer_chunk kind, size_t index)
{
    struct json_object *delta = json_object_new_object();
    size_t start, end;

    if (kind == ANSWER_CHUNK_ROLE) {
        put(delta, "role", json_object_new_string("assistant"));
        put(delta, "content", json_object_new_string(""));
        put(delta, "refusal", NULL);
    } else if (kind == ANSWER_CHUNK_CONTENT) {
        start = index == 0 ? 0 : answer->chunk_ends[index - 1];
        end = answer->chunk_ends[index];
        put(delta, "content",
            json_object_new_string_len(answer->text + start,
                                       (int)(end - start)));
    }
    return delta;
}

static struct json_object *chunk_choices(const struct answer *answer,
                                         enum answer_chunk kind, size_t index)
{
    struct json_object *choices = json_object_new_array();
    struct json_object *choice;
    const char *finish = NULL;

    if (kind == ANSWER_CHUNK_USAGE)
        return choices;

    if (kind == ANSWER_CHUNK_FINISH)
        finish = finish_reason(answer);

    choice = json_object_new_object();
    put(choice, "index", int_json(0));
    put(choice, "delta", chunk_delta(answer, kind, index));
    put(choice, "logprobs", NULL);
    put(choice, "finish_reason",
        finish ? json_object_new_string(finish) : NULL);
    json_object_array_add(choices, choice);
    return choices;
}

struct json_object *answer_chunk_json(const struct answer *answer,
                                      enum answer_chunk kind, size_t index,
                                      bool with_usage)
{
    struct json_object *obj = head_json(answer, "chat.completion.chunk");

    put(obj, "service_tier", json_object_new_string("default"));
    put(obj, "system_fingerprint", json_object_new_string(answer->fingerprint));
    put(obj, "choices", chunk_choices(answer, kind, index));

    if (kind == ANSWER_CHUNK_USAGE)
        put(obj, "usage", answer_usage_json(answer));
    else if (with_usage)
        put(obj, "usage", NULL);
    return obj;
}
