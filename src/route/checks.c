/*
 * Answer checks: compiling a task's check set and running it on a
 * finished answer. Every check runs even after one fails, so the ledger
 * and a re-ask message can name all that went wrong.
 */
#include "route/checks.h"

#include "route/jsonschema.h"
#include "route/regex.h"
#include "util/arena.h"
#include "util/jsonedit.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct checks {
    bool any;
    bool json;
    jsonschema_t *schema;
    bool has_must, has_must_not;
    regex_t must, must_not;
    char must_text[ROUTE_REGEX_MAX + 1];
    char must_not_text[ROUTE_REGEX_MAX + 1];
    int64_t min_chars, max_chars;
    bool no_truncation, no_refusal, final_number;
    char phrases[CHECKS_MAX_PHRASES][CHECKS_PHRASE_MAX + 1];
    size_t n_phrases;
};

/* Our own short wording of the usual ways a model declines. */
const char *const checks_default_refusals[] = {"I can't help with",
                                               "I cannot help with",
                                               "I can't assist with",
                                               "I cannot assist with",
                                               "I'm unable to help",
                                               "I am unable to help",
                                               "I'm not able to help",
                                               "I won't be able to help",
                                               "I'm sorry, but I can't",
                                               "I'm sorry, but I cannot",
                                               "I'm afraid I can't",
                                               "I can't comply",
                                               "I cannot comply",
                                               "I must decline",
                                               "As an AI language model, I",
                                               NULL};

static const char *const kind_names[CHECK_KIND_COUNT] = {
    "no_truncation", "no_refusal", "min_chars",      "max_chars",   "json",
    "schema",        "must_match", "must_not_match", "final_number"};

/* finish_reason values (OpenAI, Anthropic, Gemini, Responses) saying
 * the answer stopped before the model meant it to. */
static const char *const cut_reasons[] = {"length",
                                          "max_tokens",
                                          "MAX_TOKENS",
                                          "content_filter",
                                          "model_context_window_exceeded",
                                          "incomplete"};

const char *check_kind_name(check_kind_t kind)
{
    return kind < CHECK_KIND_COUNT ? kind_names[kind] : "unknown";
}

void checks_desc_init(checks_desc_t *desc)
{
    memset(desc, 0, sizeof(*desc));
    desc->min_chars = -1;
    desc->max_chars = -1;
}

void checks_free(checks_t *set)
{
    if (set == NULL)
        return;
    if (set->has_must)
        regfree(&set->must);
    if (set->has_must_not)
        regfree(&set->must_not);
    jsonschema_free(set->schema);
    free(set);
}

bool checks_any(const checks_t *set)
{
    return set->any;
}

static int compile_pattern(const char *name, const char *pattern, regex_t *re,
                           bool *has, char *text, char *err, size_t errlen)
{
    char why[160];

    if (pattern == NULL)
        return 0;
    if (route_regex_compile(re, pattern, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s: %s", name, why);
        return -EINVAL;
    }
    *has = true;
    snprintf(text, ROUTE_REGEX_MAX + 1, "%s", pattern);
    return 0;
}

/* Copies a phrase with the typographic apostrophe (U+2019) made plain,
 * so one spelling in the config matches both in answers. */
static void copy_phrase(char *out, const char *phrase)
{
    size_t n = 0;

    for (const char *p = phrase; *p != '\0'; p++) {
        if (strncmp(p, "\xE2\x80\x99", 3) == 0) {
            out[n++] = '\'';
            p += 2;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

static int compile_phrases(checks_t *set, const checks_desc_t *d, char *err,
                           size_t errlen)
{
    const char *const *list = d->refusal_phrases;
    size_t n = d->n_refusal_phrases;

    if (list == NULL) {
        list = checks_default_refusals;
        for (n = 0; list[n] != NULL; n++)
            ;
    }
    if (n > CHECKS_MAX_PHRASES) {
        snprintf(err, errlen, "refusal_phrases: more than %d",
                 CHECKS_MAX_PHRASES);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(list[i]);

        if (len == 0 || len > CHECKS_PHRASE_MAX) {
            snprintf(err, errlen,
                     "refusal_phrases: phrase %zu is empty or"
                     " longer than %d bytes",
                     i, CHECKS_PHRASE_MAX);
            return -EINVAL;
        }
        copy_phrase(set->phrases[i], list[i]);
    }
    set->n_phrases = n;
    return 0;
}

static int compile_schema(checks_t *set, struct json_object *schema, char *err,
                          size_t errlen)
{
    char why[400];

    if (schema == NULL)
        return 0;
    if (jsonschema_compile(schema, &set->schema, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "schema: %s", why);
        return -EINVAL;
    }
    return 0;
}

static int check_bounds(const checks_desc_t *d, char *err, size_t errlen)
{
    if (d->min_chars < -1 || d->max_chars < -1 ||
        (d->max_chars >= 0 && d->min_chars > d->max_chars)) {
        snprintf(err, errlen, "min_chars/max_chars: need 0 <= min <= max");
        return -EINVAL;
    }
    return 0;
}

int checks_compile(const checks_desc_t *d, checks_t **out, char *err,
                   size_t errlen)
{
    checks_t *set = calloc(1, sizeof(*set));
    int rc;

    if (set == NULL)
        die_oom();
    set->json = d->json || d->schema != NULL;
    set->min_chars = d->min_chars;
    set->max_chars = d->max_chars;
    set->no_truncation = d->no_truncation;
    set->no_refusal = d->no_refusal;
    set->final_number = d->final_number;

    rc = check_bounds(d, err, errlen);
    if (rc == 0)
        rc = compile_pattern("must_match", d->must_match, &set->must,
                             &set->has_must, set->must_text, err, errlen);
    if (rc == 0)
        rc = compile_pattern("must_not_match", d->must_not_match,
                             &set->must_not, &set->has_must_not,
                             set->must_not_text, err, errlen);
    if (rc == 0 && set->no_refusal)
        rc = compile_phrases(set, d, err, errlen);
    if (rc == 0)
        rc = compile_schema(set, d->schema, err, errlen);
    if (rc < 0)
        goto free_set;

    set->any = set->json || set->has_must || set->has_must_not ||
               set->min_chars >= 0 || set->max_chars >= 0 ||
               set->no_truncation || set->no_refusal || set->final_number;
    *out = set;
    return 0;

free_set:
    checks_free(set);
    *out = NULL;
    return rc;
}

static check_verdict_t *verdict(checks_result_t *r, check_kind_t kind)
{
    check_verdict_t *v = &r->verdicts[r->n_run++];

    v->kind = kind;
    v->passed = true;
    v->reason[0] = '\0';
    return v;
}

static void failed(checks_result_t *r, check_verdict_t *v)
{
    v->passed = false;
    r->n_failed++;
    r->passed = false;
}

static void run_truncation(checks_result_t *r, const char *finish_reason)
{
    check_verdict_t *v = verdict(r, CHECK_NO_TRUNCATION);

    /* An unknown finish_reason passes: some compatible servers send
     * none, and a cut connection already fails the attempt itself. */
    if (finish_reason == NULL)
        return;
    for (size_t i = 0; i < sizeof(cut_reasons) / sizeof(cut_reasons[0]); i++) {
        if (strcmp(finish_reason, cut_reasons[i]) == 0) {
            snprintf(v->reason, sizeof(v->reason), "finish_reason is %s",
                     finish_reason);
            failed(r, v);
            return;
        }
    }
}

/* Length of phrase matched at text[i], or 0: ASCII case ignored, the
 * typographic apostrophe taken for a plain one. */
static size_t phrase_at(const char *text, size_t len, size_t i,
                        const char *phrase)
{
    size_t start = i;

    for (const char *p = phrase; *p != '\0'; p++) {
        if (*p == '\'' && i + 3 <= len &&
            memcmp(text + i, "\xE2\x80\x99", 3) == 0) {
            i += 3;
            continue;
        }
        if (i >= len ||
            tolower((unsigned char)text[i]) != tolower((unsigned char)*p))
            return 0;
        i++;
    }
    return i - start;
}

static const char *find_refusal(const checks_t *set, const char *text,
                                size_t len)
{
    size_t window = len < CHECKS_REFUSAL_WINDOW ? len : CHECKS_REFUSAL_WINDOW;

    for (size_t i = 0; i < window; i++) {
        if (i > 0 && isalnum((unsigned char)text[i - 1]))
            continue;
        for (size_t k = 0; k < set->n_phrases; k++) {
            if (phrase_at(text, len, i, set->phrases[k]) > 0)
                return set->phrases[k];
        }
    }
    return NULL;
}

static void run_refusal(const checks_t *set, checks_result_t *r,
                        const char *text, size_t len, const char *finish_reason)
{
    check_verdict_t *v = verdict(r, CHECK_NO_REFUSAL);
    const char *phrase;

    if (finish_reason != NULL && strcmp(finish_reason, "refusal") == 0) {
        snprintf(v->reason, sizeof(v->reason), "finish_reason is refusal");
        failed(r, v);
        return;
    }
    phrase = find_refusal(set, text, len);
    if (phrase != NULL) {
        snprintf(v->reason, sizeof(v->reason), "refusal phrase '%s'", phrase);
        failed(r, v);
    }
}

static int64_t code_points(const char *s, size_t len)
{
    int64_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static void run_length(const checks_t *set, checks_result_t *r,
                       const char *text, size_t len)
{
    int64_t chars = code_points(text, len);
    check_verdict_t *v;

    if (set->min_chars >= 0) {
        v = verdict(r, CHECK_MIN_CHARS);
        if (chars < set->min_chars) {
            snprintf(v->reason, sizeof(v->reason),
                     "answer has %lld chars, min_chars is %lld",
                     (long long)chars, (long long)set->min_chars);
            failed(r, v);
        }
    }
    if (set->max_chars >= 0) {
        v = verdict(r, CHECK_MAX_CHARS);
        if (chars > set->max_chars) {
            snprintf(v->reason, sizeof(v->reason),
                     "answer has %lld chars, max_chars is %lld",
                     (long long)chars, (long long)set->max_chars);
            failed(r, v);
        }
    }
}

static bool blank(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!isspace((unsigned char)text[i]))
            return false;
    }
    return true;
}

/* Parses the answer once for json and schema; NULL when it is not JSON.
 * The strict check runs first because json-c alone takes NaN, single
 * quotes and trailing text that a JSON consumer downstream would not. */
static struct json_object *run_json(checks_result_t *r, const char *text,
                                    size_t len)
{
    check_verdict_t *v = verdict(r, CHECK_JSON);
    struct json_tokener *tok;
    struct json_object *doc;
    size_t where = 0;

    if (blank(text, len) || len > INT32_MAX) {
        snprintf(v->reason, sizeof(v->reason), "json: %s",
                 len > INT32_MAX ? "answer too long" : "empty answer");
        failed(r, v);
        return NULL;
    }
    if (jsonedit_validate(text, len, &where) < 0) {
        snprintf(v->reason, sizeof(v->reason), "json: invalid at byte %zu",
                 where);
        failed(r, v);
        return NULL;
    }

    tok = json_tokener_new_ex(300);
    if (tok == NULL)
        die_oom();
    doc = json_tokener_parse_ex(tok, text, (int)len);
    /* A bare number or literal at the very end waits for a delimiter;
     * the NUL tells json-c the text is over. */
    if (doc == NULL && json_tokener_get_error(tok) == json_tokener_continue)
        doc = json_tokener_parse_ex(tok, "", 1);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        /* Only past json-c's own limits; the strict check passed. */
        snprintf(v->reason, sizeof(v->reason), "json: unreadable");
        failed(r, v);
    }
    json_tokener_free(tok);
    return doc;
}

static void run_schema(const checks_t *set, checks_result_t *r,
                       struct json_object *doc, bool is_json)
{
    check_verdict_t *v = verdict(r, CHECK_SCHEMA);
    char why[sizeof(v->reason)];

    if (!is_json) {
        snprintf(v->reason, sizeof(v->reason), "schema: answer is not JSON");
        failed(r, v);
        return;
    }
    if (jsonschema_validate(set->schema, doc, why, sizeof(why)) < 0) {
        snprintf(v->reason, sizeof(v->reason), "schema: %.150s", why);
        failed(r, v);
    }
}

static void run_patterns(const checks_t *set, checks_result_t *r,
                         const char *text, size_t len)
{
    check_verdict_t *v;

    if (set->has_must) {
        v = verdict(r, CHECK_MUST_MATCH);
        if (!route_regex_search(&set->must, text, len)) {
            snprintf(v->reason, sizeof(v->reason),
                     "must_match: no match for '%.100s'", set->must_text);
            failed(r, v);
        }
    }
    if (set->has_must_not) {
        v = verdict(r, CHECK_MUST_NOT_MATCH);
        if (route_regex_search(&set->must_not, text, len)) {
            snprintf(v->reason, sizeof(v->reason),
                     "must_not_match: '%.100s' matched", set->must_not_text);
            failed(r, v);
        }
    }
}

static void run_final_number(checks_result_t *r, const char *text, size_t len)
{
    check_verdict_t *v = verdict(r, CHECK_FINAL_NUMBER);
    char why[120];

    if (checks_final_number(text, len, NULL, 0, why, sizeof(why)) < 0) {
        snprintf(v->reason, sizeof(v->reason), "final_number: %s", why);
        failed(r, v);
    }
}

bool checks_run(const checks_t *set, const char *answer, size_t len,
                const char *finish_reason, checks_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->passed = true;

    if (set->no_truncation)
        run_truncation(r, finish_reason);
    if (set->no_refusal)
        run_refusal(set, r, answer, len, finish_reason);
    run_length(set, r, answer, len);

    if (set->json) {
        int failed_before = r->n_failed;
        struct json_object *doc = run_json(r, answer, len);

        if (set->schema != NULL)
            run_schema(set, r, doc, r->n_failed == failed_before);
        json_object_put(doc);
    }
    run_patterns(set, r, answer, len);
    if (set->final_number)
        run_final_number(r, answer, len);
    return r->passed;
}

static void append(char *out, size_t outlen, size_t *n, const char *s)
{
    int w;

    if (*n >= outlen)
        return;
    w = snprintf(out + *n, outlen - *n, "%s", s);
    *n += w > 0 ? (size_t)w : 0;
}

char *checks_failures(const checks_result_t *r, char *out, size_t outlen)
{
    size_t n = 0;
    bool first = true;

    if (outlen > 0)
        out[0] = '\0';
    for (int i = 0; i < r->n_run; i++) {
        if (r->verdicts[i].passed)
            continue;
        append(out, outlen, &n, first ? "" : "; ");
        append(out, outlen, &n, r->verdicts[i].reason);
        first = false;
    }
    return out;
}

char *checks_summary(const checks_result_t *r, char *out, size_t outlen)
{
    size_t n = 0;

    if (outlen > 0)
        out[0] = '\0';
    for (int i = 0; i < r->n_run; i++) {
        append(out, outlen, &n, i ? "," : "");
        append(out, outlen, &n, check_kind_name(r->verdicts[i].kind));
        append(out, outlen, &n, r->verdicts[i].passed ? "=pass" : "=fail");
    }
    return out;
}
