/*
 * The common chat-log line ({timestamp, owner, key, request, response})
 * read without building a tree of its request: members are found in the
 * line's own bytes and only the small response goes through json-c.
 */
#include "audit/internal.h"
#include "upstream/usage.h"
#include "util/jsonedit.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every shape this path does not know exactly is handed back (-EAGAIN)
 * to the json-c reader, so the two give the same call for every line:
 * escapes in a text the audit reads, members that change the shape, a
 * line json-c might parse differently (not RFC 8259, or too deep).
 */
#define FAST_MAX_MESSAGES 64
#define FAST_MAX_DEPTH 31 /* json-c's tokener stops at 32 */
#define HISTORY_KEEP 4
#define CACHE_MIN_BYTES 1024

typedef struct scan {
    const char *t;
    size_t len;
    bool bad;    /* the line needs json-c */
    int deepest; /* nesting seen inside a member's value */
} scan_t;

typedef struct member {
    const char *key;
    json_span_t val;
    bool found;
} member_t;

/* One past the closing quote of the string at p. A quote after an odd
 * run of backslashes is escaped. escaped (when not NULL) tells whether
 * the text holds any escape, which this path leaves to json-c. */
static size_t string_end(const scan_t *s, size_t p, bool *escaped)
{
    size_t from = p + 1;

    for (;;) {
        const char *q = memchr(s->t + from, '"', s->len - from);
        size_t at, slashes = 0;

        if (q == NULL)
            return s->len;
        at = (size_t)(q - s->t);
        while (at - slashes > p + 1 && s->t[at - slashes - 1] == '\\')
            slashes++;
        if (slashes % 2 == 0) {
            if (escaped != NULL &&
                memchr(s->t + p + 1, '\\', at - p - 1) != NULL)
                *escaped = true;
            return at + 1;
        }
        from = at + 1;
    }
}

/* One past the value at p; the text is already known to be valid. */
static size_t value_end(scan_t *s, size_t p)
{
    int depth = 0;

    do {
        char c = s->t[p];

        if (c == '"') {
            p = string_end(s, p, NULL);
            continue;
        }
        depth += (c == '{' || c == '[') - (c == '}' || c == ']');
        s->deepest = depth > s->deepest ? depth : s->deepest;
        p++;
        while (depth == 0 && p < s->len &&
               strchr(",}] \t\r\n", s->t[p]) == NULL)
            p++;
    } while (depth > 0 && p < s->len);
    return p;
}

static member_t *wanted(member_t *want, const char *key, size_t len)
{
    for (; want->key != NULL; want++)
        if (want->key[0] == key[0] && strncmp(want->key, key, len) == 0 &&
            want->key[len] == '\0')
            return want;
    return NULL;
}

/* The members of the object at obj named in want (the last of a name
 * wins, as in json-c). strict: any other name needs json-c. */
static void members(scan_t *s, size_t obj, member_t *want, bool strict)
{
    size_t p = jsonedit_skip_ws(s->t, s->len, obj + 1);

    while (!s->bad && p < s->len && s->t[p] == '"') {
        bool escaped = false;
        size_t kend = string_end(s, p, &escaped);
        member_t *m = wanted(want, s->t + p + 1, kend - p - 2);
        size_t v = jsonedit_skip_ws(s->t, s->len, kend);

        v = jsonedit_skip_ws(s->t, s->len, v + 1); /* past ':' */
        p = value_end(s, v);
        if (escaped || (m == NULL && strict))
            s->bad = true;
        if (m != NULL) {
            m->val = (json_span_t){v, p};
            m->found = true;
        }
        p = jsonedit_skip_ws(s->t, s->len, p);
        p = jsonedit_skip_ws(s->t, s->len, p + (p < s->len && s->t[p] == ','));
    }
}

static member_t *member(member_t *want, const char *key)
{
    return wanted(want, key, strlen(key));
}

/* The text of a string member without escapes; false for no string. */
static bool text_of(scan_t *s, const member_t *m, const char **text,
                    size_t *len)
{
    bool escaped = false;

    if (m == NULL || !m->found || s->t[m->val.start] != '"')
        return false;
    string_end(s, m->val.start, &escaped);
    s->bad |= escaped;
    *text = s->t + m->val.start + 1;
    *len = m->val.end - m->val.start - 2;
    return !escaped;
}

/* audit_copy of a text that is not NUL-terminated. */
static void copy_text(char *dst, size_t dstlen, const char *text, size_t len)
{
    char buf[AUDIT_NAME_MAX + 1];
    size_t n = len < dstlen ? len : dstlen;

    memcpy(buf, text, n);
    buf[n] = '\0';
    audit_copy(dst, dstlen, buf);
}

/* The first non-empty string among keys, as first_str in shapes.c. */
static void first_text(scan_t *s, member_t *want, const char *const *keys,
                       char *dst, size_t dstlen)
{
    const char *text;
    size_t len;

    for (; *keys != NULL; keys++)
        if (text_of(s, member(want, *keys), &text, &len) && len > 0) {
            copy_text(dst, dstlen, text, len);
            return;
        }
}

/* shape_time of a member: whole numbers and texts; the rest is 0, but a
 * fraction or exponent goes to json-c. */
static int64_t time_of(scan_t *s, const member_t *m)
{
    const char *text, *p;
    size_t len;
    int64_t v;

    if (text_of(s, m, &text, &len))
        return shape_time_text(text, len);
    if (!m->found)
        return 0;
    p = s->t + m->val.start;
    len = m->val.end - m->val.start;
    if (*p != '-' && (*p < '0' || *p > '9'))
        return 0;
    for (size_t i = *p == '-'; i < len; i++)
        if (p[i] < '0' || p[i] > '9' || i >= 18)
            s->bad = true;
    v = s->bad ? 0 : strtoll(p, NULL, 10);
    return v > INT64_C(100000000000) ? v / 1000 : v;
}

typedef struct message {
    const char *role, *text;
    size_t role_len, len;
} message_t;

static bool role_is(const message_t *m, const char *role)
{
    return m->role_len == strlen(role) &&
           memcmp(m->role, role, m->role_len) == 0;
}

static bool is_system(const message_t *m)
{
    return role_is(m, "system") || role_is(m, "developer");
}

/* The messages array at p: each an object with string role and content. */
static size_t read_messages(scan_t *s, size_t p, message_t *out)
{
    size_t n = 0;

    p = jsonedit_skip_ws(s->t, s->len, p + 1);
    while (!s->bad && p < s->len && s->t[p] == '{') {
        member_t want[] = {{"role", {0, 0}, false},
                           {"content", {0, 0}, false},
                           {NULL, {0, 0}, false}};

        members(s, p, want, false);
        if (n == FAST_MAX_MESSAGES ||
            !text_of(s, &want[0], &out[n].role, &out[n].role_len) ||
            !text_of(s, &want[1], &out[n].text, &out[n].len)) {
            s->bad = true;
            break;
        }
        n++;
        p = jsonedit_skip_ws(s->t, s->len, value_end(s, p));
        p = jsonedit_skip_ws(s->t, s->len, p + (p < s->len && s->t[p] == ','));
    }
    if (p >= s->len || s->t[p] != ']')
        s->bad = true;
    return n;
}

/* What needs_estimate in shapes.c decides for messages alone. */
static bool needs_estimate(const message_t *msgs, size_t n)
{
    size_t bytes = 0;

    for (size_t i = 0; i < n; i++)
        bytes += is_system(&msgs[i]) ? msgs[i].len : 0;
    return n > HISTORY_KEEP + 1 || bytes >= CACHE_MIN_BYTES;
}

/* walk_messages and shape_messages of shapes.c, for string contents. */
static void walk(audit_call_t *call, const message_t *msgs, size_t n,
                 bool estimate)
{
    const message_t *sys = NULL, *first = NULL, *last = NULL;
    uint64_t hash = AUDIT_HASH_SEED;
    size_t others = 0, seen = 0;

    estimate = estimate || needs_estimate(msgs, n);
    for (size_t i = 0; i < n; i++)
        others += !is_system(&msgs[i]);
    for (size_t i = 0; i < n; i++) {
        const message_t *m = &msgs[i];
        int64_t t = estimate ? usage_estimate_tokens(m->text, m->len) : 0;

        hash = audit_hash(hash, m->text, m->len);
        call->prompt_est += t;
        call->n_messages++;
        if (is_system(m)) {
            call->prefix_est += t;
            sys = sys == NULL ? m : sys;
            continue;
        }
        if (++seen + HISTORY_KEEP <= others)
            call->history_est += t;
        if (role_is(m, "user")) {
            first = first == NULL ? m : first;
            last = m;
        }
    }
    call->request_hash = audit_hash(hash, call->model, strlen(call->model));
    audit_set_workflow(call, sys ? sys->text : NULL, sys ? sys->len : 0,
                       first ? first->text : NULL, first ? first->len : 0,
                       last ? last->text : NULL, last ? last->len : 0);
}

/* The request's model and messages; the members that change how
 * shapes.c reads a request need json-c. */
static void read_request(scan_t *s, size_t req, bool resp_model,
                         audit_call_t *call, message_t *msgs, size_t *n)
{
    member_t want[] = {
        {"model", {0, 0}, false},  {"messages", {0, 0}, false},
        {"system", {0, 0}, false}, {"instructions", {0, 0}, false},
        {"input", {0, 0}, false},  {"metadata", {0, 0}, false},
        {"user", {0, 0}, false},   {NULL, {0, 0}, false}};
    const char *text;
    size_t len;

    members(s, req, want, false);
    for (int i = 2; i <= 6; i++)
        s->bad |= want[i].found;
    if (!want[1].found || s->t[want[1].val.start] != '[')
        s->bad = true;
    if (s->bad)
        return;
    if (!resp_model && text_of(s, &want[0], &text, &len))
        copy_text(call->model, sizeof(call->model), text, len);
    *n = read_messages(s, want[1].val.start, msgs);
}

/* A member's value parsed by json-c, added to obj. */
static void add_parsed(scan_t *s, struct json_object *obj, const member_t *m,
                       struct json_tokener *tok)
{
    struct json_object *v;

    json_tokener_reset(tok);
    v = json_tokener_parse_ex(tok, s->t + m->val.start,
                              (int)(m->val.end - m->val.start));
    if (json_tokener_get_error(tok) != json_tokener_success)
        s->bad = true;
    json_object_object_add(obj, m->key, v);
}

/*
 * The members of a chat completion that usage_read_chat reads, as a
 * small tree: answers in other shapes, with an error, or without usage
 * (whose answer text is then counted) go to json-c.
 */
static struct json_object *read_response(scan_t *s, size_t obj, member_t *want,
                                         struct json_tokener *tok)
{
    struct json_object *resp;
    const char *object;
    size_t len;

    members(s, obj, want, false);
    if (text_of(s, &want[1], &object, &len) &&
        ((len == 8 && memcmp(object, "response", 8) == 0) ||
         (len == 4 && memcmp(object, "list", 4) == 0)))
        s->bad = true;
    if (want[2].found || want[3].found || want[4].found || !want[5].found ||
        s->t[want[5].val.start] != '{' || s->bad)
        return NULL;
    resp = json_object_new_object();
    add_parsed(s, resp, &want[5], tok);
    if (want[6].found)
        add_parsed(s, resp, &want[6], tok);
    return resp;
}

/* When and who, as chat_identity in shapes.c. */
static void identity(scan_t *s, member_t *line, member_t *resp,
                     audit_call_t *call)
{
    static const char *const owner_keys[] = {"owner", "user", "team", "user_id",
                                             NULL};
    static const char *const key_keys[] = {
        "key", "api_key", "api_key_id", "project", "project_id", NULL};

    first_text(s, line, owner_keys, call->owner, sizeof(call->owner));
    first_text(s, line, key_keys, call->key, sizeof(call->key));
    call->at = time_of(s, member(line, "timestamp"));
    if (call->at == 0)
        call->at = time_of(s, member(line, "created_at"));
    if (call->at == 0)
        call->at = time_of(s, member(line, "time"));
    if (call->at == 0)
        call->at = time_of(s, member(resp, "created"));
    if (call->at == 0)
        call->at = time_of(s, member(resp, "created_at"));
}

static int fast_call(scan_t *s, member_t *line, struct json_tokener *tok,
                     audit_call_t *call, char *why)
{
    member_t want[] = {
        {"model", {0, 0}, false},        {"object", {0, 0}, false},
        {"type", {0, 0}, false},         {"usageMetadata", {0, 0}, false},
        {"error", {0, 0}, false},        {"usage", {0, 0}, false},
        {"service_tier", {0, 0}, false}, {"created", {0, 0}, false},
        {"created_at", {0, 0}, false},   {NULL, {0, 0}, false}};
    message_t msgs[FAST_MAX_MESSAGES];
    struct json_object *resp;
    const char *model;
    size_t n = 0, len;
    int rc = -EAGAIN;
    usage_t usage;
    bool has_model;

    if (s->t[member(line, "response")->val.start] != '{')
        return -EAGAIN;
    resp = read_response(s, member(line, "response")->val.start, want, tok);
    if (resp == NULL || usage_read_chat(resp, &usage) < 0 || !usage.present)
        goto out;
    has_model = text_of(s, &want[0], &model, &len);
    if (has_model)
        copy_text(call->model, sizeof(call->model), model, len);
    read_request(s, member(line, "request")->val.start, has_model, call, msgs,
                 &n);
    if (!s->bad)
        identity(s, line, want, call);
    if (s->bad)
        goto out;
    call->count = 1;
    walk(call, msgs, n, false);
    rc = shape_chat_answer(call, resp, false, why);
out:
    json_object_put(resp);
    return rc;
}

int shape_fast_chat(const char *text, size_t len, struct json_tokener *tok,
                    audit_call_t *call, char *why)
{
    member_t line[] = {
        {"timestamp", {0, 0}, false}, {"created_at", {0, 0}, false},
        {"time", {0, 0}, false},      {"owner", {0, 0}, false},
        {"user", {0, 0}, false},      {"team", {0, 0}, false},
        {"user_id", {0, 0}, false},   {"key", {0, 0}, false},
        {"api_key", {0, 0}, false},   {"api_key_id", {0, 0}, false},
        {"project", {0, 0}, false},   {"project_id", {0, 0}, false},
        {"request", {0, 0}, false},   {"response", {0, 0}, false},
        {NULL, {0, 0}, false}};
    scan_t s = {text, len, false, 0};
    size_t start = jsonedit_skip_ws(text, len, 0);

    if (start >= len || text[start] != '{' ||
        jsonedit_validate(text, len, NULL) < 0)
        return -EAGAIN;
    members(&s, start, line, true);
    /* Every byte of the line is under one of its members: json-c's
     * tokener stops deeper than its limit, so must this path. */
    if (s.bad || s.deepest + 1 > FAST_MAX_DEPTH ||
        !member(line, "request")->found || !member(line, "response")->found ||
        text[member(line, "request")->val.start] != '{')
        return -EAGAIN;
    return fast_call(&s, line, tok, call, why);
}
