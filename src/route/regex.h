/*
 * Patterns for checks, route rules and JSON Schema `pattern`: the common
 * ECMAScript-style escapes translated onto POSIX extended regexes, so a
 * config written for other tools mostly works unchanged.
 */
#ifndef TOLLGATE_ROUTE_REGEX_H
#define TOLLGATE_ROUTE_REGEX_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest pattern accepted, in bytes, before translation. */
#define ROUTE_REGEX_MAX 1024

/*
 * Compiles pattern (NUL-terminated) into re with REG_EXTENDED|REG_NOSUB.
 * Understood beyond POSIX ERE: a leading "(?i)" (case-insensitive),
 * \d \D \s \S \w \W (also inside [...]), \n \r \t, and any escaped
 * punctuation as a literal. Lookaround, lazy quantifiers and
 * backreferences are refused. Returns 0 (the caller then owns re and
 * frees it with regfree) or -EINVAL with the reason in err.
 */
int route_regex_compile(regex_t *re, const char *pattern, char *err,
                        size_t errlen);

/* True when re matches anywhere in text[0..len) (no NUL needed). */
bool route_regex_search(const regex_t *re, const char *text, size_t len);

#endif
