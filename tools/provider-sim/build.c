/*
 * Builds answers for every surface from a checked request: the text
 * (default, replayed, or a tool call's input), the usage counts from
 * the token rule bent by the sim: directives, and the ids.
 */
#include "sim_build.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "sim_replay.h"
#include "sim_server.h"
#include "sim_tokens.h"
#include "sim_util.h"

#define JSON_MAX_DEPTH 64
#define FAULT_MARKER "sim:fault="

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int build_parse_body(struct evhttp_request *req, struct json_object **out)
{
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(input);
    const char *data = len ? (const char *)evbuffer_pullup(input, -1) : "";
    struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    struct json_object *obj;
    size_t end;

    json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                    JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                    JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, data, (int)len);
    end = json_tokener_get_parse_end(tok);
    if (json_tokener_get_error(tok) != json_tokener_success)
        obj = NULL;
    json_tokener_free(tok);

    while (obj != NULL && end < len && is_blank(data[end]))
        end++;
    if (obj == NULL || end != len ||
        !json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        return -EINVAL;
    }
    *out = obj;
    return 0;
}

static bool has_role(struct json_object *msg, const char *role)
{
    struct json_object *value;

    return json_object_object_get_ex(msg, "role", &value) &&
           json_object_is_type(value, json_type_string) &&
           strcmp(json_object_get_string(value), role) == 0;
}

void build_directives(struct ask *ask)
{
    directives_parse(ask->last_user, ask->last_user_len, &ask->dir);
}

void build_last_user(struct ask *ask)
{
    int64_t nontext;

    for (size_t i = ask->nmessages; i-- > 0;) {
        struct json_object *msg = json_object_array_get_idx(ask->messages, i);

        if (has_role(msg, "user")) {
            ask->last_user =
                tokens_message_text(msg, &ask->last_user_len, &nontext);
            build_directives(ask);
            return;
        }
    }
    ask->last_user = util_xstrndup("", 0);
    ask->last_user_len = 0;
    build_directives(ask);
}

static size_t fault_name_len(const char *name, const char *end)
{
    const char *p = name;

    while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
        p++;
    return (size_t)(p - name);
}

int build_pick_fault(struct evhttp_request *req, struct ask *ask,
                     const char **name, size_t *len)
{
    struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    const char *end = ask->last_user + ask->last_user_len;
    const char *hit;

    *name = evhttp_find_header(headers, "x-sim-fault");
    if (*name != NULL) {
        *len = strlen(*name);
    } else {
        hit = memmem(ask->last_user, ask->last_user_len, FAULT_MARKER,
                     strlen(FAULT_MARKER));
        if (hit == NULL)
            return 0;
        *name = hit + strlen(FAULT_MARKER);
        *len = fault_name_len(*name, end);
    }
    return fault_parse(*name, *len, &ask->fault);
}

/* Hash of everything but the last message, per model. */
static uint64_t prefix_hash(const struct ask *ask)
{
    uint64_t hash =
        util_hash(UTIL_FNV_SEED, ask->model, strlen(ask->model) + 1);

    for (size_t i = 0; i + 1 < ask->nmessages; i++) {
        struct json_object *msg = json_object_array_get_idx(ask->messages, i);
        size_t len;
        const char *json =
            json_object_to_json_string_length(msg, SERVER_JSON_FLAGS, &len);

        hash = util_hash(hash, json, len);
        hash = util_hash(hash, "\n", 1);
    }
    return hash;
}

/*
 * OpenAI caches prompt prefixes of 1024 tokens or more in 128-token
 * blocks; a repeat of the same prefix on the same model reads them.
 */
static int64_t prefix_cached(struct sim *sim, const struct ask *ask)
{
    int64_t prefix_tokens;
    uint64_t hash;
    bool seen;

    if (!ask->prefix_cache || ask->nmessages < 2)
        return 0;

    prefix_tokens = tokens_prompt(ask->messages, ask->nmessages - 1);
    hash = prefix_hash(ask);
    seen = util_set_has(&sim->prompt_cache, hash);
    util_set_add(&sim->prompt_cache, hash);

    if (!seen || prefix_tokens < SIM_CACHE_MIN_TOKENS)
        return 0;
    return prefix_tokens / SIM_CACHE_BLOCK * SIM_CACHE_BLOCK;
}

static char *format_fingerprint(const char *model)
{
    uint64_t hash = util_hash(UTIL_FNV_SEED, model, strlen(model));
    char buf[32];

    snprintf(buf, sizeof(buf), "fp_%010llx",
             (unsigned long long)(hash & UINT64_C(0xffffffffff)));
    return util_xstrndup(buf, strlen(buf));
}

char *build_id(const char *prefix, uint64_t n, bool hex)
{
    char buf[96];

    if (hex) {
        uint64_t state = n;
        uint64_t a = util_mix(&state), b = util_mix(&state);

        snprintf(buf, sizeof(buf), "%.48s%016llx%016llx", prefix,
                 (unsigned long long)a, (unsigned long long)b);
    } else {
        snprintf(buf, sizeof(buf), "%.48s%llu", prefix, (unsigned long long)n);
    }
    return util_xstrndup(buf, strlen(buf));
}

static char *answer_text(struct sim *sim, const struct ask *ask,
                         struct answer *answer, size_t *len)
{
    const char *recorded = NULL;

    if (sim->replay != NULL) {
        recorded = replay_find(sim->replay, ask->model, ask->last_user,
                               ask->last_user_len, len);
        answer->replay = recorded ? ANSWER_REPLAY_HIT : ANSWER_REPLAY_MISS;
    }
    if (recorded != NULL)
        return util_xstrndup(recorded, *len);
    return answer_default_text(ask->last_user, ask->last_user_len, ask->model,
                               len);
}

/* A tool call's input: {"query": <the default text>}. */
static char *tool_input(const struct ask *ask, size_t *len)
{
    size_t text_len;
    char *text = answer_default_text(ask->last_user, ask->last_user_len,
                                     ask->model, &text_len);
    struct json_object *input = json_object_new_object();
    const char *json;
    char *copy;

    json_object_object_add(input, "query",
                           json_object_new_string_len(text, (int)text_len));
    json = json_object_to_json_string_length(
        input, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE, len);
    copy = util_xstrndup(json, *len);
    json_object_put(input);
    free(text);
    return copy;
}

/*
 * The visible text. Reasoning sits inside the output limit: a forced
 * count leaves limit - N for the text; the implicit rule (2 reasoning
 * tokens per text token) leaves a third. A tool call is never cut.
 */
static void build_text(struct sim *sim, const struct ask *ask,
                       struct answer *answer, uint64_t n)
{
    bool implicit = sim_is_reasoning(sim, ask->model);
    int64_t forced = ask->dir.reasoning;
    int64_t limit = ask->limit;
    size_t len;
    char *text;

    if (ask->no_output) {
        text = util_xstrndup("", 0);
        len = 0;
    } else if (ask->tool != NULL) {
        text = tool_input(ask, &len);
        answer->tool_name = util_xstrndup(ask->tool, strlen(ask->tool));
        answer->tool_id = build_id("toolu_", n, true);
        limit = -1;
    } else {
        text = answer_text(sim, ask, answer, &len);
    }

    if (forced >= 0 && limit >= 0)
        limit = limit > forced ? limit - forced : 0;
    else if (forced < 0 && implicit && limit >= 0)
        limit /= 3;
    answer_set_text(answer, text, len, limit, implicit && forced < 0);
    if (forced >= 0)
        answer->reasoning_tokens = forced;
}

static int64_t at_least_zero(int64_t n)
{
    return n > 0 ? n : 0;
}

/* Input counts: sim:input forces the uncached part; reads and writes
 * come on top of it, else out of the counted prompt. */
static void build_counts(struct sim *sim, const struct ask *ask,
                         struct answer *answer)
{
    const struct directives *dir = &ask->dir;
    int64_t counted = ask->counted >= 0
                          ? ask->counted
                          : tokens_prompt(ask->messages, ask->nmessages);
    int64_t read = prefix_cached(sim, ask);
    int64_t writes, uncached;

    if (dir->cache_read >= 0)
        read = dir->cache_read;
    answer->cached_tokens = read;
    answer->cache_write_tokens = at_least_zero(dir->cache_write);
    answer->cache_write_1h_tokens = at_least_zero(dir->cache_write_1h);
    writes = answer_cache_writes(answer);

    uncached =
        dir->input >= 0 ? dir->input : at_least_zero(counted - read - writes);
    answer->prompt_tokens = uncached + read + writes;
    answer->web_searches = at_least_zero(dir->web_search);
    snprintf(answer->service_tier, sizeof(answer->service_tier), "%s",
             dir->service_tier);
    snprintf(answer->geo, sizeof(answer->geo), "%s", dir->geo);
    answer->delta_full = dir->delta_full;
    answer->no_cache_split = dir->no_cache_split;
}

static void build_answer(struct sim *sim, const struct ask *ask,
                         struct answer *answer, const char *id_prefix,
                         bool hex_id)
{
    uint64_t n = ++sim->next_id;

    answer->serial = n;
    answer->id = build_id(id_prefix, n, hex_id);
    answer->request_id = build_id("req_", n, true);
    answer->model = util_xstrndup(ask->answer_model, strlen(ask->answer_model));
    answer->fingerprint = format_fingerprint(ask->answer_model);
    answer->created = sim_created(sim);

    build_text(sim, ask, answer, n);
    build_counts(sim, ask, answer);
}

struct call *build_call(struct sim *sim, struct evhttp_request *req,
                        const struct ask *ask, const struct call_ops *ops,
                        const char *id_prefix, bool hex_id)
{
    struct call *call = call_new(sim, req, ops);

    call->fault = ask->fault;
    call->stream = ask->stream;
    sim_latency_for(sim, ask->model, &call->ttft_ms, &call->per_token_ms);

    /* Refused calls get ids and a record but no answer or cache entry. */
    if (fault_refuses(ask->fault, ask->stream)) {
        uint64_t n = ++sim->next_id;

        call->answer.serial = n;
        call->answer.model =
            util_xstrndup(ask->answer_model, strlen(ask->answer_model));
        call->answer.request_id = build_id("req_", n, true);
    } else {
        build_answer(sim, ask, &call->answer, id_prefix, hex_id);
    }
    return call;
}

void ask_free(struct ask *ask)
{
    free(ask->last_user);
    ask->last_user = NULL;
}
