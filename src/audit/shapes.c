/*
 * One JSON record into one call: chat logs (request, response, time) in
 * OpenAI, Anthropic and Responses shapes, Batch API output lines and
 * LiteLLM spend-log rows. Usage is read with the gateway's own readers.
 */
#include "audit/internal.h"
#include "upstream/usage.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_KEEP 4       /* turns a trimmed context keeps */
#define CACHE_MIN_BYTES 1024 /* the smallest prompt a provider caches */

static struct json_object *get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;

    if (o == NULL || !json_object_is_type(o, json_type_object))
        return NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *str(struct json_object *o, const char *key)
{
    struct json_object *v = get(o, key);

    return json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                    : NULL;
}

/* The first string among keys of o. */
static const char *first_str(struct json_object *o, const char *const *keys)
{
    for (; *keys != NULL; keys++) {
        const char *s = str(o, *keys);
        if (s != NULL && *s != '\0')
            return s;
    }
    return NULL;
}

shape_t shape_of(struct json_object *obj)
{
    const char *object = str(obj, "object");

    if (obj == NULL || !json_object_is_type(obj, json_type_object))
        return SHAPE_NONE;
    if (object != NULL &&
        (strcmp(object, "page") == 0 || strcmp(object, "bucket") == 0 ||
         strncmp(object, "organization.", 13) == 0))
        return SHAPE_USAGE_PAGE;
    if (get(obj, "request_id") != NULL &&
        (get(obj, "spend") != NULL || get(obj, "call_type") != NULL))
        return SHAPE_LITELLM;
    if (get(obj, "conversations") != NULL)
        return SHAPE_SHAREGPT;
    if (get(obj, "question_id") != NULL && get(obj, "judge") != NULL)
        return SHAPE_MT_BENCH;
    if (get(obj, "generator_2") != NULL && get(obj, "preference") != NULL)
        return SHAPE_ALPACA;
    if (get(obj, "custom_id") != NULL)
        return SHAPE_BATCH;
    if (get(obj, "request") != NULL || get(obj, "response") != NULL ||
        get(obj, "usage") != NULL || get(obj, "usageMetadata") != NULL)
        return SHAPE_CHAT_LOG;
    return SHAPE_NONE;
}

audit_format_t shape_format(shape_t shape)
{
    switch (shape) {
    case SHAPE_USAGE_PAGE:
        return AUDIT_FMT_USAGE_API;
    case SHAPE_LITELLM:
        return AUDIT_FMT_LITELLM;
    case SHAPE_SHAREGPT:
        return AUDIT_FMT_SHAREGPT;
    case SHAPE_MT_BENCH:
        return AUDIT_FMT_MT_BENCH;
    case SHAPE_ALPACA:
        return AUDIT_FMT_ALPACA;
    case SHAPE_NONE:
        return AUDIT_FMT_UNKNOWN;
    default:
        return AUDIT_FMT_JSONL;
    }
}

/* Calls fn on each piece of text in a content value: a string, or an
 * array of parts with "text" (OpenAI, Anthropic, Responses input_text). */
typedef void text_fn(void *arg, const char *text, size_t len);

static void content_text(struct json_object *content, text_fn *fn, void *arg)
{
    size_t n;

    if (json_object_is_type(content, json_type_string)) {
        fn(arg, json_object_get_string(content),
           (size_t)json_object_get_string_len(content));
        return;
    }
    if (!json_object_is_type(content, json_type_array))
        return;
    n = json_object_array_length(content);
    for (size_t i = 0; i < n; i++) {
        struct json_object *part = json_object_array_get_idx(content, i);
        struct json_object *text = get(part, "text");
        if (text == NULL)
            text = get(part, "content");
        if (json_object_is_type(text, json_type_string))
            fn(arg, json_object_get_string(text),
               (size_t)json_object_get_string_len(text));
    }
}

/* What the prompt walk gathers. */
typedef struct prompt_walk {
    bool estimate; /* count tokens: only when something needs them */
    int64_t tokens;
    uint64_t hash;
    const char *text; /* the first piece of the current message */
    size_t text_len;
} prompt_walk_t;

static void walk_piece(void *arg, const char *text, size_t len)
{
    prompt_walk_t *w = arg;

    if (w->estimate)
        w->tokens += usage_estimate_tokens(text, len);
    w->hash = audit_hash(w->hash, text, len);
    if (w->text == NULL) {
        w->text = text;
        w->text_len = len;
    }
}

static int64_t message_walk(prompt_walk_t *w, struct json_object *content)
{
    int64_t before = w->tokens;

    w->text = NULL;
    w->text_len = 0;
    content_text(content, walk_piece, w);
    return w->tokens - before;
}

static bool is_system(const char *role)
{
    return role != NULL &&
           (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0);
}

/* The texts that name the workflow, found while walking. */
typedef struct prompt_marks {
    const char *system, *first, *last;
    size_t system_len, first_len, last_len;
} prompt_marks_t;

static void walk_messages(audit_call_t *call, struct json_object *messages,
                          prompt_walk_t *w, prompt_marks_t *m)
{
    size_t n = json_object_array_length(messages);
    size_t others = 0, seen = 0;

    for (size_t i = 0; i < n; i++)
        others +=
            !is_system(str(json_object_array_get_idx(messages, i), "role"));
    for (size_t i = 0; i < n; i++) {
        struct json_object *msg = json_object_array_get_idx(messages, i);
        const char *role = str(msg, "role");
        int64_t t = message_walk(w, get(msg, "content"));

        call->n_messages++;
        if (is_system(role)) {
            call->prefix_est += t;
            if (m->system == NULL) {
                m->system = w->text;
                m->system_len = w->text_len;
            }
            continue;
        }
        if (++seen + HISTORY_KEEP <= others)
            call->history_est += t;
        if (role != NULL && strcmp(role, "user") == 0 && w->text != NULL) {
            if (m->first == NULL) {
                m->first = w->text;
                m->first_len = w->text_len;
            }
            m->last = w->text;
            m->last_len = w->text_len;
        }
    }
}

/* Bytes of system text; tokens never outnumber bytes, so a shorter one
 * cannot reach the prompt-cache minimum. */
static size_t system_bytes(struct json_object *request)
{
    struct json_object *messages = get(request, "messages");
    struct json_object *system = get(request, "system");
    size_t n = 0, k;

    if (system == NULL)
        system = get(request, "instructions");
    if (json_object_is_type(system, json_type_string))
        n += (size_t)json_object_get_string_len(system);
    else if (system != NULL)
        n += CACHE_MIN_BYTES;
    if (!json_object_is_type(messages, json_type_array))
        return n;
    k = json_object_array_length(messages);
    for (size_t i = 0; i < k; i++) {
        struct json_object *m = json_object_array_get_idx(messages, i);
        struct json_object *c = get(m, "content");
        if (is_system(str(m, "role")))
            n += json_object_is_type(c, json_type_string)
                     ? (size_t)json_object_get_string_len(c)
                     : CACHE_MIN_BYTES;
    }
    return n;
}

static bool needs_estimate(struct json_object *request)
{
    struct json_object *messages = get(request, "messages");
    struct json_object *input = get(request, "input");
    size_t n = json_object_is_type(messages, json_type_array)
                   ? json_object_array_length(messages)
               : json_object_is_type(input, json_type_array)
                   ? json_object_array_length(input)
                   : 0;

    return n > HISTORY_KEEP + 1 || system_bytes(request) >= CACHE_MIN_BYTES;
}

void shape_messages(audit_call_t *call, struct json_object *request,
                    bool estimate)
{
    prompt_walk_t w = {estimate || needs_estimate(request), 0, AUDIT_HASH_SEED,
                       NULL, 0};
    prompt_marks_t m = {0};
    struct json_object *messages = get(request, "messages");
    struct json_object *input = get(request, "input");
    struct json_object *system = get(request, "system");

    if (system == NULL)
        system = get(request, "instructions");
    if (system != NULL) {
        call->prefix_est += message_walk(&w, system);
        m.system = w.text;
        m.system_len = w.text_len;
    }
    if (json_object_is_type(messages, json_type_array))
        walk_messages(call, messages, &w, &m);
    else if (json_object_is_type(input, json_type_array))
        walk_messages(call, input, &w, &m);
    else if (json_object_is_type(input, json_type_string)) {
        message_walk(&w, input);
        m.first = m.last = w.text;
        m.first_len = m.last_len = w.text_len;
        call->n_messages++;
    }
    call->prompt_est = w.tokens;
    call->request_hash = audit_hash(w.hash, call->model, strlen(call->model));
    audit_set_workflow(call, m.system, m.system_len, m.first, m.first_len,
                       m.last, m.last_len);
}

static void count_piece(void *arg, const char *text, size_t len)
{
    *(int64_t *)arg += usage_estimate_tokens(text, len);
}

/* Estimated tokens of an answer's text, in any of the response shapes. */
static int64_t answer_tokens(struct json_object *resp)
{
    int64_t n = 0;
    struct json_object *choices = get(resp, "choices");
    struct json_object *output = get(resp, "output");
    size_t k;

    if (json_object_is_type(choices, json_type_array)) {
        k = json_object_array_length(choices);
        for (size_t i = 0; i < k; i++) {
            struct json_object *c = json_object_array_get_idx(choices, i);
            content_text(get(get(c, "message"), "content"), count_piece, &n);
        }
    }
    content_text(get(resp, "content"), count_piece, &n);
    if (json_object_is_type(output, json_type_array)) {
        k = json_object_array_length(output);
        for (size_t i = 0; i < k; i++)
            content_text(get(json_object_array_get_idx(output, i), "content"),
                         count_piece, &n);
    }
    return n;
}

/* Usage of a response in whichever provider shape it has. */
static int response_usage(struct json_object *resp, usage_t *usage)
{
    const char *type = str(resp, "type");
    const char *object = str(resp, "object");

    if (type != NULL && strcmp(type, "message") == 0)
        return usage_read_anthropic(resp, usage);
    if (object != NULL && strcmp(object, "response") == 0)
        return usage_read_responses(resp, usage);
    if (get(resp, "usageMetadata") != NULL)
        return usage_read_gemini(resp, usage);
    if (object != NULL && strcmp(object, "list") == 0)
        return usage_read_embeddings(resp, usage);
    return usage_read_chat(resp, usage);
}

void shape_estimate_usage(audit_call_t *call)
{
    memset(&call->usage, 0, sizeof(call->usage));
    call->usage.present = true;
    call->usage.estimated = true;
    call->usage.input_tokens = call->prompt_est;
    call->usage.output_tokens = call->answer_est;
}

/* Who and when, from the line's own fields or the request's. */
static void chat_identity(audit_call_t *call, struct json_object *line,
                          struct json_object *req, struct json_object *resp)
{
    static const char *const owner_keys[] = {"owner", "user", "team", "user_id",
                                             NULL};
    static const char *const key_keys[] = {
        "key", "api_key", "api_key_id", "project", "project_id", NULL};
    struct json_object *meta = get(req, "metadata");
    const char *owner = first_str(line, owner_keys);
    const char *key = first_str(line, key_keys);

    if (owner == NULL)
        owner = first_str(get(line, "metadata"), owner_keys);
    if (owner == NULL)
        owner = first_str(meta, owner_keys);
    if (owner == NULL)
        owner = str(req, "user");
    audit_copy(call->owner, sizeof(call->owner), owner);
    audit_copy(call->key, sizeof(call->key), key);
    call->at = shape_time(get(line, "timestamp"));
    if (call->at == 0)
        call->at = shape_time(get(line, "created_at"));
    if (call->at == 0)
        call->at = shape_time(get(line, "time"));
    if (call->at == 0)
        call->at = shape_time(get(resp, "created"));
    if (call->at == 0)
        call->at = shape_time(get(resp, "created_at"));
}

/* Usage read, or estimated when the answer carries none. */
static int chat_usage(audit_call_t *call, struct json_object *resp, char *why)
{
    int rc = resp == NULL ? -ENOENT : response_usage(resp, &call->usage);

    if (rc == -ENOENT || (rc == 0 && !call->usage.present)) {
        call->answer_est = answer_tokens(resp);
        shape_estimate_usage(call);
        return 1;
    }
    if (rc < 0) {
        snprintf(why, 64, "usage that breaks its own rules");
        return -EINVAL;
    }
    return 1;
}

/* A request the provider refused: nothing billed, so a known $0. */
static void failed_call(audit_call_t *call)
{
    memset(&call->usage, 0, sizeof(call->usage));
    call->usage.present = true;
    call->has_cost = true;
    call->cost = 0;
}

int shape_chat_answer(audit_call_t *call, struct json_object *resp, bool failed,
                      char *why)
{
    call->failed = failed || get(resp, "error") != NULL;
    if (call->failed && get(resp, "usage") == NULL) {
        failed_call(call);
        return 1;
    }
    return chat_usage(call, resp, why);
}

static int chat_log(struct json_object *obj, audit_call_t *call, char *why)
{
    struct json_object *req = get(obj, "request");
    struct json_object *resp = get(obj, "response");
    struct json_object *status = get(obj, "status_code");
    const char *model;

    if (req == NULL && resp == NULL)
        resp = obj;
    if (resp != NULL && !json_object_is_type(resp, json_type_object))
        resp = NULL;
    model = str(resp, "model");
    audit_copy(call->model, sizeof(call->model),
               model != NULL ? model : str(req, "model"));
    chat_identity(call, obj, req, resp);
    shape_messages(call, req,
                   get(resp, "usage") == NULL &&
                       get(resp, "usageMetadata") == NULL);
    return shape_chat_answer(
        call, resp, status != NULL && json_object_get_int(status) >= 400, why);
}

/* Batch output: {custom_id, response: {status_code, body}, error}. An
 * input line (method, url, body) has no answer yet: not a call. */
static int batch_line(struct json_object *obj, audit_call_t *call, char *why)
{
    struct json_object *resp = get(obj, "response");
    struct json_object *body = get(resp, "body");
    const char *id = str(obj, "custom_id");
    int rc;

    if (resp == NULL && get(obj, "body") != NULL)
        return 0;
    if (id == NULL) {
        snprintf(why, 64, "custom_id is not a string");
        return -EINVAL;
    }
    audit_copy(call->model, sizeof(call->model), str(body, "model"));
    call->at = shape_time(get(body, "created"));
    audit_set_workflow(call, NULL, 0, id, strlen(id), id, strlen(id));
    /* Each custom_id is one request: never a retry of another. */
    call->turn_hash = call->request_hash =
        audit_hash(AUDIT_HASH_SEED, id, strlen(id));
    call->failed = body == NULL || get(obj, "error") != NULL ||
                   json_object_get_int(get(resp, "status_code")) >= 400;
    if (call->failed) {
        failed_call(call);
        return 1;
    }
    rc = chat_usage(call, body, why);
    call->usage.service_tier = SERVICE_BATCH;
    return rc;
}

/* An integer count field, from a number or a numeric string. */
static int64_t count_of(struct json_object *o, const char *key)
{
    struct json_object *v = get(o, key);

    if (json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    if (json_object_is_type(v, json_type_string))
        return strtoll(json_object_get_string(v), NULL, 10);
    return 0;
}

/* The spend a LiteLLM row logged, kept as a fallback for unpriced models:
 * read from the number's own text, never through a double. */
static void litellm_spend(audit_call_t *call, struct json_object *spend)
{
    const char *text = json_object_get_string(spend);

    if (spend != NULL && text != NULL &&
        audit_parse_usd(text, strlen(text), &call->cost) == 0)
        call->has_cost = call->cost_fallback = true;
}

static void litellm_messages(audit_call_t *call, struct json_object *obj)
{
    struct json_object *messages = get(obj, "messages");
    struct json_object *parsed = NULL, *req;

    if (json_object_is_type(messages, json_type_string))
        messages = parsed =
            json_tokener_parse(json_object_get_string(messages));
    req = json_object_new_object();
    if (json_object_is_type(messages, json_type_array))
        json_object_object_add(req, "messages", json_object_get(messages));
    shape_messages(call, req, false);
    json_object_put(req);
    json_object_put(parsed);
}

static int litellm_row(struct json_object *obj, audit_call_t *call, char *why)
{
    static const char *const owner_keys[] = {"user", "end_user", "team_id",
                                             NULL};
    struct json_object *meta = get(obj, "metadata");
    const char *owner = first_str(obj, owner_keys);
    const char *key = str(meta, "user_api_key_alias");

    if (owner == NULL)
        owner = str(meta, "user_api_key_user_id");
    audit_copy(call->owner, sizeof(call->owner), owner);
    audit_copy(call->key, sizeof(call->key),
               key != NULL ? key : str(obj, "api_key"));
    audit_copy(call->model, sizeof(call->model), str(obj, "model"));
    call->at = shape_time(get(obj, "startTime"));
    litellm_messages(call, obj);
    if (call->prompt_est == 0)
        audit_copy(call->label, sizeof(call->label), "(no prompt text)");
    call->usage.present = true;
    call->usage.input_tokens = count_of(obj, "prompt_tokens");
    call->usage.output_tokens = count_of(obj, "completion_tokens");
    if (call->usage.input_tokens < 0 || call->usage.output_tokens < 0) {
        snprintf(why, 64, "negative token count");
        return -EINVAL;
    }
    litellm_spend(call, get(obj, "spend"));
    return 1;
}

int shape_call(shape_t shape, struct json_object *obj, audit_call_t *call,
               char *why)
{
    call->count = 1;
    switch (shape) {
    case SHAPE_CHAT_LOG:
        return chat_log(obj, call, why);
    case SHAPE_BATCH:
        return batch_line(obj, call, why);
    case SHAPE_LITELLM:
        return litellm_row(obj, call, why);
    default:
        snprintf(why, 64, "not a call of a known shape");
        return -EINVAL;
    }
}
