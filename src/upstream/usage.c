/*
 * Usage readers for every provider shape, plain and streamed, and the
 * token estimate used when a provider's usage never arrives.
 *
 * Providers disagree on what a count contains: OpenAI and Gemini report
 * all input with cache as a subset, Anthropic reports three disjoint
 * input buckets, and Gemini reports thoughts apart from the output they
 * are billed as. Each reader turns its shape into OpenAI's meaning once,
 * here, so billing has one rule. Streams differ too: OpenAI Chat sends
 * usage once at the end, Responses on its terminal event, Anthropic
 * input at the start and cumulative output after, Gemini cumulative
 * usage on every chunk. No stream is ever summed; the latest value of a
 * field wins.
 */
#include "upstream/usage.h"

#include "upstream/openai.h"
#include "util/arena.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static struct json_object *member(struct json_object *obj, const char *key)
{
    struct json_object *v = NULL;

    if (obj != NULL && json_object_is_type(obj, json_type_object))
        json_object_object_get_ex(obj, key, &v);
    return v;
}

static bool is_object(struct json_object *obj)
{
    return obj != NULL && json_object_is_type(obj, json_type_object);
}

/* The member as a C string, or NULL when it is absent or not a string. */
static const char *member_string(struct json_object *obj, const char *key)
{
    struct json_object *v = member(obj, key);

    if (v == NULL || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void copy_string(char *dst, size_t size, const char *src)
{
    if (src != NULL)
        snprintf(dst, size, "%s", src);
}

/* Replaces *dst only when obj[key] is present and not null: the rule an
 * Anthropic message_delta needs, and the base of every other count. */
static int read_count_opt(struct json_object *obj, const char *key,
                          int64_t *dst)
{
    struct json_object *v = member(obj, key);
    int64_t n;

    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return -EINVAL;

    /* json-c saturates integers past int64, so the cap also catches
     * numbers it could not hold. */
    n = json_object_get_int64(v);
    if (n < 0 || n > USAGE_MAX_TOKENS)
        return -EINVAL;
    *dst = n;
    return 0;
}

int usage_read_count(struct json_object *obj, const char *key, int64_t *out)
{
    *out = 0;
    if (read_count_opt(obj, key, out) < 0) {
        *out = 0;
        return -EINVAL;
    }
    return 0;
}

/* A total the bill is made of: it must be there, and not null. */
static int read_total(struct json_object *obj, const char *key, int64_t *out)
{
    *out = 0;
    if (member(obj, key) == NULL)
        return -EINVAL;
    return usage_read_count(obj, key, out);
}

static int add_counts(int64_t a, int64_t b, int64_t *sum)
{
    /* Both are at most the cap, so the sum cannot overflow int64. */
    *sum = a + b;
    return *sum <= USAGE_MAX_TOKENS ? 0 : -EINVAL;
}

static int read_tier_opt(struct json_object *obj, const char *key,
                         service_tier_t *tier)
{
    struct json_object *v = member(obj, key);
    const char *name;

    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -EINVAL;
    name = json_object_get_string(v);

    /* "scale" and names not yet known price as standard: a wrong
     * discount is worse than a missed one. */
    if (strcmp(name, "flex") == 0)
        *tier = SERVICE_FLEX;
    else if (strcmp(name, "priority") == 0)
        *tier = SERVICE_PRIORITY;
    else if (strcmp(name, "batch") == 0)
        *tier = SERVICE_BATCH;
    else
        *tier = SERVICE_STANDARD;
    return 0;
}

int usage_read_tier(struct json_object *obj, const char *key,
                    service_tier_t *tier)
{
    *tier = SERVICE_STANDARD;
    return read_tier_opt(obj, key, tier);
}

static int read_geo_opt(struct json_object *obj, const char *key,
                        usage_t *usage)
{
    struct json_object *v = member(obj, key);
    const char *geo;

    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -EINVAL;
    geo = json_object_get_string(v);

    /* "global" is the default price; a name cut to fit would find the
     * wrong multiplier, so a long one is refused instead. */
    if (strcmp(geo, "global") == 0)
        geo = "";
    if (strlen(geo) >= sizeof(usage->geo))
        return -EINVAL;
    copy_string(usage->geo, sizeof(usage->geo), geo);
    return 0;
}

/* Ends a read: a failure leaves nothing half-filled behind. */
static int finish_read(usage_t *usage, int rc)
{
    if (rc < 0) {
        memset(usage, 0, sizeof(*usage));
        return rc;
    }
    usage->present = true;
    return 0;
}

/* The object's usage member, or why there is none to read. */
static int usage_member(struct json_object *answer, const char *key,
                        struct json_object **u)
{
    if (!is_object(answer))
        return -EINVAL;
    *u = member(answer, key);
    if (*u == NULL)
        return -ENOENT;
    return is_object(*u) ? 0 : -EINVAL;
}

int usage_read_chat(struct json_object *completion, usage_t *usage)
{
    struct json_object *u;
    service_tier_t tier;
    int rc;

    memset(usage, 0, sizeof(*usage));
    rc = usage_member(completion, "usage", &u);
    if (rc < 0)
        return rc;

    rc = openai_read_usage(u, usage);
    if (rc == 0)
        rc = usage_read_tier(completion, "service_tier", &tier);
    if (rc < 0)
        return finish_read(usage, rc);
    usage->service_tier = tier;
    return 0;
}

bool usage_fix_gemini_openai(usage_t *usage, int64_t total_tokens)
{
    int64_t gap;

    if (total_tokens < 0 || total_tokens > USAGE_MAX_TOKENS)
        return false;
    gap = total_tokens - usage->input_tokens - usage->output_tokens;
    if (gap <= 0)
        return false;

    /* The total is at most the cap, so output + gap is too. */
    usage->output_tokens += gap;
    if (usage->reasoning_tokens < gap)
        usage->reasoning_tokens = gap;
    return true;
}

int usage_read_gemini_openai(struct json_object *completion, usage_t *usage)
{
    int64_t total = -1;
    int rc;

    rc = usage_read_chat(completion, usage);
    if (rc < 0)
        return rc;

    if (read_count_opt(member(completion, "usage"), "total_tokens", &total) < 0)
        return finish_read(usage, -EINVAL);
    usage_fix_gemini_openai(usage, total);
    return 0;
}

/* Responses has no usage counter for searches: each web_search_call
 * item in output[] is one billable call. */
static int64_t count_web_searches(struct json_object *response)
{
    struct json_object *output = member(response, "output");
    int64_t n = 0;
    size_t len;

    if (output == NULL || !json_object_is_type(output, json_type_array))
        return 0;
    len = json_object_array_length(output);
    for (size_t i = 0; i < len; i++) {
        const char *type =
            member_string(json_object_array_get_idx(output, i), "type");

        if (type != NULL && strcmp(type, "web_search_call") == 0)
            n++;
    }
    return n;
}

int usage_read_responses(struct json_object *response, usage_t *usage)
{
    struct json_object *u, *in_d, *out_d;
    bool bad = false;
    int rc;

    memset(usage, 0, sizeof(*usage));
    rc = usage_member(response, "usage", &u);
    if (rc < 0)
        return rc;

    in_d = member(u, "input_tokens_details");
    out_d = member(u, "output_tokens_details");
    bad |= read_total(u, "input_tokens", &usage->input_tokens) < 0;
    bad |= read_total(u, "output_tokens", &usage->output_tokens) < 0;
    bad |= usage_read_count(in_d, "cached_tokens", &usage->cached_tokens) < 0;
    bad |= usage_read_count(in_d, "cache_write_tokens",
                            &usage->cache_write_tokens) < 0;
    bad |= usage_read_count(out_d, "reasoning_tokens",
                            &usage->reasoning_tokens) < 0;
    bad |= usage_read_tier(response, "service_tier", &usage->service_tier) < 0;
    if (bad)
        return finish_read(usage, -EINVAL);

    usage->web_searches = count_web_searches(response);
    return finish_read(usage, 0);
}

/*
 * Applies one Anthropic usage object onto usage, replacing each field
 * that is present and not null and keeping the others: a message_delta
 * repeats or grows counts, it never adds to them. uncached holds
 * Anthropic's own input_tokens so the total can be remade.
 */
static int anthropic_apply(struct json_object *u, usage_t *usage,
                           int64_t *uncached)
{
    struct json_object *creation = member(u, "cache_creation");
    struct json_object *details = member(u, "output_tokens_details");
    struct json_object *tools = member(u, "server_tool_use");
    int64_t input;
    bool bad = false;

    bad |= read_count_opt(u, "input_tokens", uncached) < 0;
    bad |= read_count_opt(u, "cache_creation_input_tokens",
                          &usage->cache_write_tokens) < 0;
    bad |=
        read_count_opt(u, "cache_read_input_tokens", &usage->cached_tokens) < 0;
    bad |= read_count_opt(creation, "ephemeral_1h_input_tokens",
                          &usage->cache_write_1h_tokens) < 0;
    bad |= read_count_opt(u, "output_tokens", &usage->output_tokens) < 0;
    bad |= read_count_opt(details, "thinking_tokens",
                          &usage->reasoning_tokens) < 0;
    bad |=
        read_count_opt(tools, "web_search_requests", &usage->web_searches) < 0;
    bad |= read_tier_opt(u, "service_tier", &usage->service_tier) < 0;
    bad |= read_geo_opt(u, "inference_geo", usage) < 0;
    if (bad)
        return -EINVAL;

    if (add_counts(*uncached, usage->cache_write_tokens, &input) < 0 ||
        add_counts(input, usage->cached_tokens, &input) < 0)
        return -EINVAL;
    usage->input_tokens = input;
    return 0;
}

/* A whole Anthropic usage object, as a message or message_start has. */
static int anthropic_read_whole(struct json_object *u, usage_t *usage,
                                int64_t *uncached)
{
    int rc;

    memset(usage, 0, sizeof(*usage));
    *uncached = 0;
    if (!is_object(u))
        return u == NULL ? -ENOENT : -EINVAL;

    /* Checked apart because anthropic_apply lets absent fields be. */
    if (read_total(u, "input_tokens", uncached) < 0 ||
        read_total(u, "output_tokens", &usage->output_tokens) < 0)
        return finish_read(usage, -EINVAL);
    rc = anthropic_apply(u, usage, uncached);
    return finish_read(usage, rc);
}

int usage_read_anthropic(struct json_object *message, usage_t *usage)
{
    int64_t uncached;

    if (!is_object(message)) {
        memset(usage, 0, sizeof(*usage));
        return -EINVAL;
    }
    return anthropic_read_whole(member(message, "usage"), usage, &uncached);
}

/* Sums the tokenCount of the entries of one modality ("AUDIO"). */
static int modality_tokens(struct json_object *details, const char *modality,
                           int64_t *out)
{
    size_t len;

    *out = 0;
    if (details == NULL)
        return 0;
    if (!json_object_is_type(details, json_type_array))
        return -EINVAL;
    len = json_object_array_length(details);
    for (size_t i = 0; i < len; i++) {
        struct json_object *entry = json_object_array_get_idx(details, i);
        const char *name = member_string(entry, "modality");
        int64_t n;

        if (name == NULL || strcmp(name, modality) != 0)
            continue;
        if (usage_read_count(entry, "tokenCount", &n) < 0 ||
            add_counts(*out, n, out) < 0)
            return -EINVAL;
    }
    return 0;
}

static int gemini_counts(struct json_object *meta, usage_t *usage)
{
    int64_t prompt, tool_prompt, candidates, thoughts;
    bool bad = false;

    bad |= read_total(meta, "promptTokenCount", &prompt) < 0;
    bad |= usage_read_count(meta, "toolUsePromptTokenCount", &tool_prompt) < 0;
    bad |= usage_read_count(meta, "cachedContentTokenCount",
                            &usage->cached_tokens) < 0;
    bad |= usage_read_count(meta, "candidatesTokenCount", &candidates) < 0;
    bad |= usage_read_count(meta, "thoughtsTokenCount", &thoughts) < 0;
    bad |= modality_tokens(member(meta, "promptTokensDetails"), "AUDIO",
                           &usage->audio_in_tokens) < 0;
    bad |= modality_tokens(member(meta, "candidatesTokensDetails"), "AUDIO",
                           &usage->audio_out_tokens) < 0;
    if (bad)
        return -EINVAL;

    usage->reasoning_tokens = thoughts;
    if (add_counts(prompt, tool_prompt, &usage->input_tokens) < 0 ||
        add_counts(candidates, thoughts, &usage->output_tokens) < 0)
        return -EINVAL;
    return 0;
}

int usage_read_gemini(struct json_object *response, usage_t *usage)
{
    struct json_object *meta;
    int rc;

    memset(usage, 0, sizeof(*usage));
    rc = usage_member(response, "usageMetadata", &meta);
    if (rc < 0)
        return rc;
    return finish_read(usage, gemini_counts(meta, usage));
}

int usage_read_embeddings(struct json_object *response, usage_t *usage)
{
    struct json_object *u;
    const char *key;
    int rc;

    memset(usage, 0, sizeof(*usage));
    rc = usage_member(response, "usage", &u);
    if (rc < 0)
        return rc;

    /* Embeddings have no output, so the total is the prompt. */
    key = member(u, "prompt_tokens") != NULL ? "prompt_tokens" : "total_tokens";
    rc = read_total(u, key, &usage->input_tokens);
    return finish_read(usage, rc);
}

/* One event's data as a JSON object, or NULL. Owned by the caller. */
static struct json_object *parse_event(const char *data, size_t len)
{
    struct json_tokener *tok;
    struct json_object *obj;

    if (data == NULL || len == 0 || len > INT32_MAX)
        return NULL;
    tok = json_tokener_new();
    if (tok == NULL)
        die_oom();
    obj = json_tokener_parse_ex(tok, data, (int)len);
    json_tokener_free(tok);
    if (obj != NULL && !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        obj = NULL;
    }
    return obj;
}

/* Last wins: a later usage replaces the kept one whole, and a broken one
 * leaves none, since the earlier count is no longer the latest. */
static int keep_last(usage_t *kept, bool *invalid, const usage_t *read, int rc)
{
    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        memset(kept, 0, sizeof(*kept));
        *invalid = true;
        return -EINVAL;
    }
    *kept = *read;
    *invalid = false;
    return 0;
}

/* The event's type: its data's "type", else the SSE event name. */
static const char *event_type(struct json_object *event, const char *name)
{
    const char *type = member_string(event, "type");

    if (type != NULL)
        return type;
    return name != NULL ? name : "";
}

void usage_chat_stream_init(usage_chat_stream_t *st, bool gemini_compat)
{
    memset(st, 0, sizeof(*st));
    st->gemini_compat = gemini_compat;
}

static bool is_done(const char *data, size_t len)
{
    while (len > 0 && (data[len - 1] == ' ' || data[len - 1] == '\r' ||
                       data[len - 1] == '\n'))
        len--;
    return len == 6 && memcmp(data, "[DONE]", 6) == 0;
}

int usage_chat_stream_feed(usage_chat_stream_t *st, const char *data,
                           size_t len)
{
    struct json_object *chunk;
    usage_t usage;
    int rc;

    if (data != NULL && is_done(data, len)) {
        st->done = true;
        return 0;
    }
    chunk = parse_event(data, len);
    if (chunk == NULL)
        return -EINVAL;

    if (member(chunk, "error") != NULL)
        st->error = true;
    if (st->gemini_compat)
        rc = usage_read_gemini_openai(chunk, &usage);
    else
        rc = usage_read_chat(chunk, &usage);
    rc = keep_last(&st->usage, &st->invalid, &usage, rc);
    json_object_put(chunk);
    return rc;
}

void usage_responses_stream_init(usage_responses_stream_t *st)
{
    memset(st, 0, sizeof(*st));
}

static usage_responses_end_t responses_end(const char *type)
{
    if (strcmp(type, "response.completed") == 0)
        return USAGE_RESPONSES_COMPLETED;
    if (strcmp(type, "response.incomplete") == 0)
        return USAGE_RESPONSES_INCOMPLETE;
    if (strcmp(type, "response.failed") == 0)
        return USAGE_RESPONSES_FAILED;
    return USAGE_RESPONSES_OPEN;
}

/* Whether an event must be parsed: most of a stream is text deltas, and
 * a named event that cannot end the stream is skipped unread. */
static bool responses_wants(const char *name)
{
    return name == NULL || name[0] == '\0' ||
           responses_end(name) != USAGE_RESPONSES_OPEN ||
           strcmp(name, "error") == 0;
}

static void responses_error(usage_responses_stream_t *st,
                            struct json_object *event)
{
    const char *code = member_string(event, "code");

    if (code == NULL)
        code = member_string(member(event, "error"), "code");
    st->error = true;
    copy_string(st->error_code, sizeof(st->error_code), code);
}

static int responses_terminal(usage_responses_stream_t *st,
                              struct json_object *event,
                              usage_responses_end_t end)
{
    struct json_object *response = member(event, "response");
    int rc;

    st->end = end;
    copy_string(st->model, sizeof(st->model), member_string(response, "model"));

    /* A failed response may carry no usage: that is missing, not 0. */
    rc = usage_read_responses(response, &st->usage);
    if (rc == -ENOENT)
        return 0;
    return rc < 0 ? -EINVAL : 0;
}

int usage_responses_stream_feed(usage_responses_stream_t *st, const char *name,
                                const char *data, size_t len)
{
    struct json_object *event;
    const char *type;
    int rc = 0;

    if (!responses_wants(name))
        return 0;
    event = parse_event(data, len);
    if (event == NULL)
        return -EINVAL;

    type = event_type(event, name);
    if (strcmp(type, "error") == 0)
        responses_error(st, event);
    else if (responses_end(type) != USAGE_RESPONSES_OPEN)
        rc = responses_terminal(st, event, responses_end(type));
    json_object_put(event);
    return rc;
}

void usage_anthropic_stream_init(usage_anthropic_stream_t *st)
{
    memset(st, 0, sizeof(*st));
}

static bool anthropic_wants(const char *name)
{
    return name == NULL || name[0] == '\0' ||
           strcmp(name, "message_start") == 0 ||
           strcmp(name, "message_delta") == 0 ||
           strcmp(name, "message_stop") == 0 || strcmp(name, "error") == 0;
}

/* Once a count was unreadable, later events cannot repair the fields it
 * would have set, so the stream's usage stays unknown. */
static int anthropic_invalid(usage_anthropic_stream_t *st)
{
    memset(&st->usage, 0, sizeof(st->usage));
    st->invalid = true;
    return -EINVAL;
}

static int anthropic_start(usage_anthropic_stream_t *st,
                           struct json_object *event)
{
    struct json_object *message = member(event, "message");
    int rc;

    copy_string(st->model, sizeof(st->model), member_string(message, "model"));
    rc = anthropic_read_whole(member(message, "usage"), &st->usage,
                              &st->uncached_input);
    if (rc < 0)
        return anthropic_invalid(st);
    st->started = true;
    if (st->invalid)
        memset(&st->usage, 0, sizeof(st->usage));
    return 0;
}

static int anthropic_delta(usage_anthropic_stream_t *st,
                           struct json_object *event)
{
    struct json_object *u = member(event, "usage");

    copy_string(st->stop_reason, sizeof(st->stop_reason),
                member_string(member(event, "delta"), "stop_reason"));
    if (u == NULL || st->invalid)
        return 0;
    if (!is_object(u) ||
        anthropic_apply(u, &st->usage, &st->uncached_input) < 0)
        return anthropic_invalid(st);

    /* Output alone, with no message_start, would price the input at 0. */
    st->usage.present = st->started;
    return 0;
}

static void anthropic_error(usage_anthropic_stream_t *st,
                            struct json_object *event)
{
    st->error = true;
    copy_string(st->error_type, sizeof(st->error_type),
                member_string(member(event, "error"), "type"));
}

int usage_anthropic_stream_feed(usage_anthropic_stream_t *st, const char *name,
                                const char *data, size_t len)
{
    struct json_object *event;
    const char *type;
    int rc = 0;

    if (!anthropic_wants(name))
        return 0;
    event = parse_event(data, len);
    if (event == NULL)
        return -EINVAL;

    type = event_type(event, name);
    if (strcmp(type, "message_start") == 0)
        rc = anthropic_start(st, event);
    else if (strcmp(type, "message_delta") == 0)
        rc = anthropic_delta(st, event);
    else if (strcmp(type, "message_stop") == 0)
        st->stopped = true;
    else if (strcmp(type, "error") == 0)
        anthropic_error(st, event);
    json_object_put(event);
    return rc;
}

void usage_gemini_stream_init(usage_gemini_stream_t *st)
{
    memset(st, 0, sizeof(*st));
}

static bool gemini_finished(struct json_object *chunk)
{
    struct json_object *candidates = member(chunk, "candidates");
    size_t len;

    if (candidates == NULL || !json_object_is_type(candidates, json_type_array))
        return false;
    len = json_object_array_length(candidates);
    for (size_t i = 0; i < len; i++)
        if (member_string(json_object_array_get_idx(candidates, i),
                          "finishReason") != NULL)
            return true;
    return false;
}

int usage_gemini_stream_feed(usage_gemini_stream_t *st, const char *data,
                             size_t len)
{
    struct json_object *chunk;
    usage_t usage;
    int rc;

    chunk = parse_event(data, len);
    if (chunk == NULL)
        return -EINVAL;

    if (member(chunk, "error") != NULL)
        st->error = true;
    if (gemini_finished(chunk))
        st->finished = true;
    copy_string(st->model, sizeof(st->model),
                member_string(chunk, "modelVersion"));
    rc = usage_read_gemini(chunk, &usage);
    rc = keep_last(&st->usage, &st->invalid, &usage, rc);
    json_object_put(chunk);
    return rc;
}

/*
 * The estimate. BPE tokenisers first cut text into pieces (a word with
 * its leading space, up to three digits, a run of punctuation, a run of
 * whitespace) and then merge bytes inside each piece; common English
 * words end as one token. So the estimate walks the same kinds of runs
 * and charges each by its length. Letters are weighed in UTF-8 bytes,
 * because a piece of a rarer script holds fewer bytes per token.
 */
enum glyph {
    GLYPH_SPACE,
    GLYPH_NEWLINE,
    GLYPH_LETTER,
    GLYPH_DIGIT,
    GLYPH_PUNCT,
    GLYPH_WIDE,   /* CJK, kana, Hangul: about a token each */
    GLYPH_ASTRAL, /* outside the BMP, mostly emoji: about two each */
    GLYPH_INVALID /* a byte that is not UTF-8 */
};

/*
 * Bytes of letters a word holds for its first token (fewer for a word
 * with a letter outside ASCII: the vocabularies are English-heavy), and
 * per token after that. Tuned against tiktoken's own counts (a Python
 * port of its BPE that matches all 82 golden vectors in
 * shared/data/tiktoken) on 628 ShareGPT messages, summed over each set:
 *   English prose (250, 34,146 tokens)  +8.8% o200k  +7.8% cl100k,
 *                                       each message -22% to +38%
 *   code (250, 104,848 tokens)          +17.1%       +18.2%
 *   European languages (116)            +7.2%        -6.5%
 *   non-Latin scripts (12)              +72.8%       -17.3%
 *   the 41 golden strings               +34.1%       +16.6%,
 *                                       each string from -53% (o200k)
 *                                       or -67% (cl100k) to +100%
 */
#define WORD_FIRST_BYTES 8
#define FOREIGN_FIRST_BYTES 2
#define WORD_BYTES_PER_TOKEN 4

typedef struct run {
    enum glyph glyph;
    int64_t weight; /* bytes for letters, characters otherwise */
    bool foreign;   /* a word with a letter outside ASCII */
} run_t;

/* One code point at p, or 0 when the bytes there are not UTF-8. */
static size_t decode_utf8(const unsigned char *p, size_t avail, uint32_t *cp)
{
    size_t n;
    uint32_t min;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2, min = 0x80, *cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3, min = 0x800, *cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4, min = 0x10000, *cp = p[0] & 0x07;
    else
        return 0;
    if (n > avail)
        return 0;

    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (p[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return n;
}

static enum glyph classify_ascii(uint32_t cp)
{
    if (cp == '\n' || cp == '\r')
        return GLYPH_NEWLINE;
    if (cp == ' ' || cp == '\t' || cp == '\v' || cp == '\f')
        return GLYPH_SPACE;
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
        return GLYPH_LETTER;
    if (cp >= '0' && cp <= '9')
        return GLYPH_DIGIT;
    return GLYPH_PUNCT;
}

static enum glyph classify(uint32_t cp)
{
    if (cp < 0x80)
        return classify_ascii(cp);
    if (cp == 0xa0 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x3000)
        return GLYPH_SPACE;
    if ((cp >= 0x2e80 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7af) ||
        (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xff00 && cp <= 0xffef))
        return GLYPH_WIDE;
    if (cp >= 0x10000)
        return GLYPH_ASTRAL;
    if ((cp >= 0xa1 && cp <= 0xbf) || cp == 0xd7 || cp == 0xf7 ||
        (cp >= 0x200b && cp <= 0x2bff) || (cp >= 0xfe00 && cp <= 0xfe0f))
        return GLYPH_PUNCT;
    return GLYPH_LETTER;
}

static int64_t ceil_div(int64_t n, int64_t d)
{
    return (n + d - 1) / d;
}

static int64_t run_tokens(const run_t *run)
{
    int64_t first;

    switch (run->glyph) {
    case GLYPH_LETTER:
        first = run->foreign ? FOREIGN_FIRST_BYTES : WORD_FIRST_BYTES;
        if (run->weight <= first)
            return 1;
        return 1 + ceil_div(run->weight - first, WORD_BYTES_PER_TOKEN);
    case GLYPH_DIGIT:
        return ceil_div(run->weight, 3);
    case GLYPH_PUNCT:
        return ceil_div(run->weight, 2);
    case GLYPH_SPACE:
        /* One space joins the word after it. */
        return run->weight > 1 ? 1 : 0;
    case GLYPH_NEWLINE:
        return 1;
    case GLYPH_ASTRAL:
        return 2 * run->weight;
    default:
        return run->weight;
    }
}

static bool is_apostrophe(uint32_t cp)
{
    return cp == '\'' || cp == 0x2019;
}

/* "it's" is two tokens, "it" and "'s": the apostrophe starts a word. */
static bool starts_suffix(const run_t *run, uint32_t cp,
                          const unsigned char *next, size_t avail)
{
    uint32_t after;

    if (run->glyph != GLYPH_LETTER || !is_apostrophe(cp) || avail == 0)
        return false;
    return decode_utf8(next, avail, &after) > 0 &&
           classify(after) == GLYPH_LETTER;
}

int64_t usage_estimate_tokens(const char *utf8, size_t len)
{
    const unsigned char *p = (const unsigned char *)utf8;
    const unsigned char *end = p + len;
    run_t run = {GLYPH_SPACE, 0, false};
    int64_t tokens = 0;

    while (p < end) {
        uint32_t cp = 0;
        size_t n = decode_utf8(p, (size_t)(end - p), &cp);
        enum glyph glyph = n == 0 ? GLYPH_INVALID : classify(cp);

        if (n == 0)
            n = 1;
        if (starts_suffix(&run, cp, p + n, (size_t)(end - p) - n)) {
            tokens += run_tokens(&run);
            run.weight = 0;
            run.foreign = false;
        } else if (glyph != run.glyph) {
            tokens += run.weight > 0 ? run_tokens(&run) : 0;
            run.glyph = glyph;
            run.weight = 0;
            run.foreign = false;
        }
        run.weight += glyph == GLYPH_LETTER ? (int64_t)n : 1;
        run.foreign |= glyph == GLYPH_LETTER && n > 1;
        p += n;
    }
    return tokens + (run.weight > 0 ? run_tokens(&run) : 0);
}

/* Passes obj[key] on when it is a non-empty string; 1 when it did. */
static int emit(struct json_object *obj, const char *key, usage_text_fn fn,
                void *ctx)
{
    struct json_object *v = member(obj, key);
    int len;

    if (v == NULL || !json_object_is_type(v, json_type_string))
        return 0;
    len = json_object_get_string_len(v);
    if (len <= 0)
        return 0;
    fn(ctx, json_object_get_string(v), (size_t)len);
    return 1;
}

static struct json_object *array_member(struct json_object *obj,
                                        const char *key)
{
    struct json_object *v = member(obj, key);

    if (v == NULL || !json_object_is_type(v, json_type_array))
        return NULL;
    return v;
}

static int tool_call_text(struct json_object *delta, usage_text_fn fn,
                          void *ctx)
{
    struct json_object *calls = array_member(delta, "tool_calls");
    size_t len = calls != NULL ? json_object_array_length(calls) : 0;
    int n = 0;

    for (size_t i = 0; i < len; i++) {
        struct json_object *call = json_object_array_get_idx(calls, i);

        n += emit(member(call, "function"), "arguments", fn, ctx);
    }
    return n;
}

static int chat_text(struct json_object *choices, usage_text_fn fn, void *ctx)
{
    size_t len = json_object_array_length(choices);
    int n = 0;

    for (size_t i = 0; i < len; i++) {
        struct json_object *delta =
            member(json_object_array_get_idx(choices, i), "delta");

        /* reasoning_content: DeepSeek and other compatible servers. */
        n += emit(delta, "content", fn, ctx);
        n += emit(delta, "refusal", fn, ctx);
        n += emit(delta, "reasoning_content", fn, ctx);
        n += tool_call_text(delta, fn, ctx);
    }
    return n;
}

static int gemini_text(struct json_object *candidates, usage_text_fn fn,
                       void *ctx)
{
    size_t len = json_object_array_length(candidates);
    int n = 0;

    for (size_t i = 0; i < len; i++) {
        struct json_object *content =
            member(json_object_array_get_idx(candidates, i), "content");
        struct json_object *parts = array_member(content, "parts");
        size_t count = parts != NULL ? json_object_array_length(parts) : 0;

        for (size_t j = 0; j < count; j++)
            n += emit(json_object_array_get_idx(parts, j), "text", fn, ctx);
    }
    return n;
}

/* Every Responses "*.delta" but audio carries generated text. */
static bool responses_text_delta(const char *type)
{
    size_t len = strlen(type);

    return strncmp(type, "response.", 9) == 0 && len > 15 &&
           strcmp(type + len - 6, ".delta") == 0 &&
           strcmp(type, "response.audio.delta") != 0;
}

int usage_event_text(struct json_object *event, usage_text_fn fn, void *ctx)
{
    const char *type = member_string(event, "type");
    struct json_object *list;
    int n = 0;

    if (type != NULL && strcmp(type, "content_block_delta") == 0) {
        struct json_object *delta = member(event, "delta");

        n += emit(delta, "text", fn, ctx);
        n += emit(delta, "thinking", fn, ctx);
        n += emit(delta, "partial_json", fn, ctx);
    } else if (type != NULL && responses_text_delta(type)) {
        n += emit(event, "delta", fn, ctx);
    } else if ((list = array_member(event, "choices")) != NULL) {
        n += chat_text(list, fn, ctx);
    } else if ((list = array_member(event, "candidates")) != NULL) {
        n += gemini_text(list, fn, ctx);
    }
    return n;
}

static void add_estimate(void *ctx, const char *text, size_t len)
{
    *(int64_t *)ctx += usage_estimate_tokens(text, len);
}

int64_t usage_estimate_event(const char *data, size_t len)
{
    struct json_object *event = parse_event(data, len);
    int64_t tokens = 0;

    if (event == NULL)
        return 0;
    usage_event_text(event, add_estimate, &tokens);
    json_object_put(event);
    return tokens;
}
