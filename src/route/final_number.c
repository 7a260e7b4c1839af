/*
 * The final_number check: does an answer state a numeric result where a
 * grader would look for it? Tuned on the GSM8K answers of GPT-4 and
 * Mixtral in routellm-evals: it passes answers that end in "#### 18" or
 * in a finished sentence with a number, and fails answers cut off in the
 * middle ("= <<15+2", "$130,00", "after 3").
 */
#include "route/checks.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct span {
    size_t start, end; /* [start, end) of the text */
} span_t;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Last index of needle in text[0..len), ASCII case ignored; -1 if none. */
static long last_index(const char *text, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = len >= n ? len - n + 1 : 0; i-- > 0;) {
        if (strncasecmp(text + i, needle, n) == 0)
            return (long)i;
    }
    return -1;
}

static size_t line_end(const char *text, size_t len, size_t from)
{
    const char *nl = memchr(text + from, '\n', len - from);

    return nl ? (size_t)(nl - text) : len;
}

/* The number starting at the digit text[i]: \d[\d,]*(\.\d+)?, without a
 * trailing comma. */
static span_t number_at(const char *text, size_t end, size_t i)
{
    span_t s = {i, i};

    while (s.end < end && (is_digit(text[s.end]) || text[s.end] == ','))
        s.end++;
    while (text[s.end - 1] == ',')
        s.end--;
    if (s.end + 1 < end && text[s.end] == '.' && is_digit(text[s.end + 1])) {
        s.end++;
        while (s.end < end && is_digit(text[s.end]))
            s.end++;
    }
    if (s.start > 0 && text[s.start - 1] == '-' &&
        (s.start == 1 || !isalnum((unsigned char)text[s.start - 2])))
        s.start--;
    return s;
}

/* First (or last) number in text[from..end); false when none. */
static bool find_number(const char *text, size_t from, size_t end,
                        bool want_last, span_t *out)
{
    bool found = false;

    for (size_t i = from; i < end; i++) {
        if (!is_digit(text[i]))
            continue;
        *out = number_at(text, end, i);
        found = true;
        if (!want_last)
            break;
        i = out->end;
    }
    return found;
}

/* "9,000" is a number; "130,00" is one cut off mid-group. */
static bool well_formed(const char *text, span_t s)
{
    size_t group = 0, lead = 0;
    bool comma = false;

    for (size_t i = s.start; i < s.end && text[i] != '.'; i++) {
        if (text[i] == ',') {
            if (comma ? group != 3 : lead > 3)
                return false;
            comma = true;
            group = 0;
        } else if (is_digit(text[i])) {
            comma ? group++ : lead++;
        }
    }
    return !comma || group == 3;
}

static void copy_number(const char *text, span_t s, char *num, size_t numlen)
{
    size_t n = 0;

    for (size_t i = s.start; i < s.end && n + 1 < numlen; i++) {
        if (text[i] != ',')
            num[n++] = text[i];
    }
    if (numlen > 0)
        num[n] = '\0';
}

static int reject(char *why, size_t whylen, const char *reason)
{
    if (why != NULL)
        snprintf(why, whylen, "%s", reason);
    return -EINVAL;
}

/* "answer is $18", "Answer: 18", "\boxed{18}": the number must follow
 * the marker on its line after at most spaces, ':', '*', '$', '\', '('. */
static bool after_soft_marker(const char *text, size_t len, span_t *num)
{
    static const char *const markers[] = {"answer is", "answer:", "\\boxed{"};

    for (size_t m = 0; m < sizeof(markers) / sizeof(markers[0]); m++) {
        long at = last_index(text, len, markers[m]);
        size_t i, end;

        if (at < 0)
            continue;
        i = (size_t)at + strlen(markers[m]);
        end = line_end(text, len, i);
        while (i < end && strchr(" \t:*$\\(", text[i]) != NULL)
            i++;
        if (i < end && text[i] == '-')
            i++;
        if (i < end && is_digit(text[i])) {
            *num = number_at(text, end, i);
            return true;
        }
    }
    return false;
}

static bool ends_with_word(const char *text, size_t start, size_t end,
                           const char *word)
{
    size_t n = strlen(word);

    if (end - start < n || strncasecmp(text + end - n, word, n) != 0)
        return false;
    return end - start == n || !isalpha((unsigned char)text[end - n - 1]);
}

/* The number closes the line: fine after "=", ":", ">>" or "is", or as
 * the whole line; after anything else the sentence was cut off. */
static bool closing_number_ok(const char *text, span_t line, span_t num)
{
    size_t end = num.start;
    static const char *const verbs[] = {"is", "are", "was", "be"};

    while (end > line.start && strchr(" $*-", text[end - 1]) != NULL)
        end--;
    if (end == line.start || text[end - 1] == '=' || text[end - 1] == ':')
        return true;
    if (end - line.start >= 2 && text[end - 1] == '>' && text[end - 2] == '>')
        return true;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (ends_with_word(text, line.start, end, verbs[i]))
            return true;
    }
    return false;
}

static int last_line(const char *text, span_t line, span_t *num, char *why,
                     size_t whylen)
{
    long calc = last_index(text + line.start, line.end - line.start, "<<");
    size_t rest;

    if (calc >= 0 && last_index(text + line.start + calc,
                                line.end - line.start - (size_t)calc, ">>") < 0)
        return reject(why, whylen, "unfinished calculation '<<'");
    if (!find_number(text, line.start, line.end, true, num))
        return reject(why, whylen, "no number in the last line");
    if (!well_formed(text, *num))
        return reject(why, whylen, "number cut off in the last line");

    rest = num->end;
    while (rest < line.end && strchr(" *_", text[rest]) != NULL)
        rest++;
    if (rest == line.end)
        return closing_number_ok(text, line, *num)
                   ? 0
                   : reject(why, whylen, "last line ends mid-sentence");

    rest = line.end;
    while (rest > line.start && strchr(" *_", text[rest - 1]) != NULL)
        rest--;
    if (rest > line.start && strchr(".!)%", text[rest - 1]) != NULL)
        return 0;
    return reject(why, whylen, "last line ends mid-sentence");
}

static span_t final_line(const char *text, size_t len)
{
    span_t line = {0, len};
    const char *nl;

    while (line.end > 0 && is_space(text[line.end - 1]))
        line.end--;
    nl = memrchr(text, '\n', line.end);
    line.start = nl ? (size_t)(nl - text) + 1 : 0;
    return line;
}

int checks_final_number(const char *answer, size_t len, char *num,
                        size_t numlen, char *why, size_t whylen)
{
    span_t line = final_line(answer, len), found = {0, 0};
    long hash = last_index(answer, len, "####");
    int rc = 0;

    if (line.end == 0)
        return reject(why, whylen, "empty answer");

    if (hash >= 0) {
        size_t from = (size_t)hash + 4;

        if (!find_number(answer, from, line_end(answer, len, from), false,
                         &found))
            return reject(why, whylen, "no number after '####'");
    } else if (!after_soft_marker(answer, len, &found)) {
        rc = last_line(answer, line, &found, why, whylen);
    }

    if (rc == 0 && num != NULL)
        copy_number(answer, found, num, numlen);
    if (rc == 0 && why != NULL && whylen > 0)
        why[0] = '\0';
    return rc;
}
