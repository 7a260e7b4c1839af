/*
 * Pattern translation for route/. Configs and JSON Schemas are written
 * with ECMAScript regexes in mind; glibc's POSIX matcher understands most
 * of them once a few escapes are spelled the POSIX way.
 */
#include "route/regex.h"

#include "util/arena.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every input byte expands to at most "[:alnum:]_" (10 bytes). */
#define OUT_MAX (ROUTE_REGEX_MAX * 10 + 16)

typedef struct out {
    char text[OUT_MAX];
    size_t len;
} out_t;

static void put(out_t *o, const char *s)
{
    size_t n = strlen(s);

    /* OUT_MAX covers the worst case, so this never truncates. */
    memcpy(o->text + o->len, s, n);
    o->len += n;
    o->text[o->len] = '\0';
}

static void put_char(out_t *o, char c)
{
    char s[2] = {c, '\0'};

    put(o, s);
}

static int refuse(char *err, size_t errlen, const char *why, size_t at)
{
    snprintf(err, errlen, "%s at byte %zu", why, at);
    return -EINVAL;
}

static char control_of(char c)
{
    return c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : 0;
}

/* Appends s to a bracket body that has room by construction. */
static void body_put(char *body, size_t *n, const char *s)
{
    memcpy(body + *n, s, strlen(s) + 1);
    *n += strlen(s);
}

/* The literal or class an escape inside [...] stands for. ']', '^' and
 * '-' only set a flag: the caller puts them where POSIX reads them as
 * literals. */
static int bracket_escape(char c, char *body, size_t *n, bool flags[3])
{
    char one[2] = {control_of(c) ? control_of(c) : c, '\0'};

    if (c == 'd')
        body_put(body, n, "0-9");
    else if (c == 's')
        body_put(body, n, "[:space:]");
    else if (c == 'w')
        body_put(body, n, "[:alnum:]_");
    else if (c == '\0' || c == 'D' || c == 'S' || c == 'W')
        return -EINVAL;
    else if (c == ']' || c == '^' || c == '-')
        flags[c == ']' ? 0 : c == '^' ? 1 : 2] = true;
    else
        body_put(body, n, one);
    return 0;
}

static void bracket_emit(out_t *o, bool neg, const char *body, bool flags[3])
{
    bool rbracket = flags[0], caret = flags[1], dash = flags[2];

    if (caret && body[0] == '\0' && !rbracket && !neg && !dash) {
        put(o, "\\^");
        return;
    }
    put(o, neg ? "[^" : "[");
    put(o, rbracket ? "]" : "");
    put(o, body);
    put(o, caret ? "^" : "");
    put(o, dash ? "-" : "");
    put(o, "]");
}

/* One bracket expression starting at p[*i] == '['. The POSIX bracket has
 * no escapes, so the ECMAScript ones are rewritten. */
static int bracket(out_t *o, const char *p, size_t *i, char *err, size_t errlen)
{
    char body[ROUTE_REGEX_MAX * 10];
    size_t n = 0, j = *i + 1;
    bool neg = p[j] == '^', flags[3] = {false, false, false};

    j += neg;
    body[0] = '\0';
    for (; p[j] != '\0' && p[j] != ']'; j++) {
        const char *end = strstr(p + j, ":]");
        char one[2] = {p[j], '\0'};

        if (p[j] == '[' && p[j + 1] == ':' && end != NULL) {
            memcpy(body + n, p + j, (size_t)(end + 2 - (p + j)));
            n += (size_t)(end + 2 - (p + j));
            body[n] = '\0';
            j = (size_t)(end + 1 - p);
        } else if (p[j] == '\\') {
            j++;
            if (bracket_escape(p[j], body, &n, flags) < 0)
                return refuse(err, errlen, "unsupported escape in [...]",
                              j - 1);
        } else {
            body_put(body, &n, one);
        }
    }
    if (p[j] != ']')
        return refuse(err, errlen, "unclosed [", *i);

    bracket_emit(o, neg, body, flags);
    *i = j;
    return 0;
}

/* An escape outside brackets, p[*i] == '\\'. */
static int escape(out_t *o, const char *p, size_t *i, char *err, size_t errlen)
{
    char c = p[*i + 1];

    *i += 1;
    if (c == 'd')
        put(o, "[0-9]");
    else if (c == 'D')
        put(o, "[^0-9]");
    else if (strchr("sSwWbB", c) != NULL && c != '\0') {
        /* glibc's matcher knows these as GNU extensions. */
        put_char(o, '\\');
        put_char(o, c);
    } else if (control_of(c))
        put_char(o, control_of(c));
    else if (c == '\0' || isalnum((unsigned char)c))
        return refuse(err, errlen, "unsupported escape", *i - 1);
    else {
        put_char(o, '\\');
        put_char(o, c);
    }
    return 0;
}

/* A group opener, p[*i] == '('. Only "(?:" is translated. */
static int group(out_t *o, const char *p, size_t *i, char *err, size_t errlen)
{
    if (p[*i + 1] != '?') {
        put_char(o, '(');
        return 0;
    }
    if (p[*i + 2] != ':')
        return refuse(err, errlen, "lookaround and (?...) groups unsupported",
                      *i);
    put_char(o, '(');
    *i += 2;
    return 0;
}

static int translate(out_t *o, const char *p, char *err, size_t errlen)
{
    int rc = 0;

    for (size_t i = 0; p[i] != '\0' && rc == 0; i++) {
        char c = p[i];

        if (c == '[')
            rc = bracket(o, p, &i, err, errlen);
        else if (c == '\\')
            rc = escape(o, p, &i, err, errlen);
        else if (c == '(')
            rc = group(o, p, &i, err, errlen);
        else
            put_char(o, c);

        /* A lazy quantifier finds a match exactly when the greedy one
         * does, and REG_NOSUB only asks whether there is one. */
        if (rc == 0 && strchr("*+?}", c) != NULL && p[i + 1] == '?')
            i++;
    }
    return rc;
}

int route_regex_compile(regex_t *re, const char *pattern, char *err,
                        size_t errlen)
{
    out_t *o = malloc(sizeof(*o));
    int flags = REG_EXTENDED | REG_NOSUB;
    int rc;

    if (strlen(pattern) > ROUTE_REGEX_MAX)
        return refuse(err, errlen, "pattern too long", ROUTE_REGEX_MAX);
    if (strncmp(pattern, "(?i)", 4) == 0) {
        flags |= REG_ICASE;
        pattern += 4;
    }

    if (o == NULL)
        die_oom();
    o->len = 0;
    o->text[0] = '\0';
    rc = translate(o, pattern, err, errlen);
    if (rc < 0)
        goto free_out;

    rc = regcomp(re, o->text, flags);
    if (rc != 0) {
        char why[128];

        regerror(rc, re, why, sizeof(why));
        snprintf(err, errlen, "%s", why);
        rc = -EINVAL;
    }

free_out:
    free(o);
    return rc;
}

bool route_regex_search(const regex_t *re, const char *text, size_t len)
{
    regmatch_t m[1];

    /* REG_STARTEND bounds the search, so the text needs no NUL. */
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)len;
    return regexec(re, text, 1, m, REG_STARTEND) == 0;
}
