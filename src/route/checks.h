/*
 * Answer checks: what a task demands of a finished answer (valid JSON, a
 * schema, patterns, length, not truncated, not a refusal, a final
 * number). The attempt loop runs them and re-asks or escalates on a
 * failure; each check's result goes to the ledger.
 */
#ifndef TOLLGATE_CHECKS_H
#define TOLLGATE_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

typedef enum check_kind {
    CHECK_NO_TRUNCATION = 0,
    CHECK_NO_REFUSAL,
    CHECK_MIN_CHARS,
    CHECK_MAX_CHARS,
    CHECK_JSON,
    CHECK_SCHEMA,
    CHECK_MUST_MATCH,
    CHECK_MUST_NOT_MATCH,
    CHECK_FINAL_NUMBER,
    CHECK_KIND_COUNT
} check_kind_t;

/* Most refusal phrases a set may hold, and the longest one. */
#define CHECKS_MAX_PHRASES 64
#define CHECKS_PHRASE_MAX 128

/* A refusal phrase counts only within the answer's first this many bytes:
 * a refusal comes first, while "I can't help noticing" deep in a long
 * answer is not one. */
#define CHECKS_REFUSAL_WINDOW 400

/*
 * What the config asks for; the config loader fills it. Unset: false,
 * NULL, or -1 for the char bounds. Nothing here is kept by reference
 * except schema, on which checks_compile takes its own reference.
 */
typedef struct checks_desc {
    bool json;                  /* the answer is one JSON value */
    struct json_object *schema; /* implies json */
    const char *must_match;     /* route/regex.h dialect */
    const char *must_not_match;
    int64_t min_chars; /* in code points; -1 unset */
    int64_t max_chars;
    bool no_truncation; /* finish_reason not length/max_tokens/... */
    bool no_refusal;
    const char *const *refusal_phrases; /* NULL: the built-in list */
    size_t n_refusal_phrases;
    bool final_number; /* GSM8K style: a number stated at the end */
} checks_desc_t;

typedef struct checks checks_t;

/* One check's verdict; reason is "" when it passed. */
typedef struct check_verdict {
    check_kind_t kind;
    bool passed;
    char reason[160];
} check_verdict_t;

typedef struct checks_result {
    bool passed; /* every check that ran passed */
    int n_run;
    int n_failed;
    check_verdict_t verdicts[CHECK_KIND_COUNT]; /* the n_run that ran */
} checks_result_t;

/* Sets every field of desc to unset. */
void checks_desc_init(checks_desc_t *desc);

/*
 * Compiles desc into a check set (patterns and schema compiled once).
 * Returns 0 with *out, owned by the caller and freed with checks_free,
 * or -EINVAL with a reason naming the check in err. A set with no check
 * at all is valid and passes everything.
 */
int checks_compile(const checks_desc_t *desc, checks_t **out, char *err,
                   size_t errlen);

/*
 * Builds a set from an object such as {"json": true, "schema": {...},
 * "must_match": "re", "must_not_match": "re", "min_chars": 10,
 * "max_chars": 2000, "no_truncation": true, "no_refusal": true,
 * "refusal_phrases": ["..."], "final_number": true}. Unknown members and
 * wrong types are errors. Same ownership and errors as checks_compile.
 */
int checks_parse_json(struct json_object *obj, checks_t **out, char *err,
                      size_t errlen);

void checks_free(checks_t *set);

/* True when the set holds at least one check. */
bool checks_any(const checks_t *set);

/*
 * Runs every check of the set on answer[0..len) (no NUL needed) and the
 * provider's finish_reason (NULL when unknown). All checks run, so the
 * ledger sees each verdict; order is that of check_kind_t. Returns
 * result->passed. Never fails; safe on several threads at once.
 */
bool checks_run(const checks_t *set, const char *answer, size_t len,
                const char *finish_reason, checks_result_t *result);

/* "json", "schema", "must_match", ... as in the config. */
const char *check_kind_name(check_kind_t kind);

/*
 * Writes the failed checks' reasons joined by "; " into out (the text for
 * a re-ask: "json: invalid at byte 17; finish_reason is length"), or ""
 * when all passed. Returns out; truncates to outlen.
 */
char *checks_failures(const checks_result_t *result, char *out, size_t outlen);

/*
 * Writes every verdict for the ledger: "json=pass,schema=fail" (names in
 * kind order). Returns out; truncates to outlen.
 */
char *checks_summary(const checks_result_t *result, char *out, size_t outlen);

/* The built-in refusal phrases, NULL-terminated. */
extern const char *const checks_default_refusals[];

/*
 * The GSM8K-style format check on its own. Passes when the answer states
 * a final number: after the last "####", else after a final "answer is",
 * "answer:" or "\boxed{" on the same line, else in a last line that
 * ends complete (a sentence end, or the number right after "=", ":" or
 * "is") with no unfinished "<<calc" and no cut-off digit groups such as
 * "130,00". Returns 0 with the number (commas dropped) in num, or
 * -EINVAL with the reason in why ("no number after '####'"). num and
 * why may be NULL.
 */
int checks_final_number(const char *answer, size_t len, char *num,
                        size_t numlen, char *why, size_t whylen);

#endif
