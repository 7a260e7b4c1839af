/*
 * A small scanner over JSON text that the request parser has already
 * accepted. It only needs to step over values and find members; it still
 * checks every bound, because it reads bytes from the network.
 */
#include "util/jsonedit.h"

#include "util/common.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t jsonedit_skip_ws(const char *text, size_t len, size_t pos)
{
    while (pos < len && (text[pos] == ' ' || text[pos] == '\t' ||
                         text[pos] == '\n' || text[pos] == '\r'))
        pos++;
    return pos;
}

/* Finds the closing quote with memchr and checks that it is not escaped
 * (an even run of backslashes before it): request bodies are mostly long
 * strings, and this keeps the scan at memory speed. */
static int skip_string(const char *text, size_t len, size_t pos, size_t *end)
{
    if (pos >= len || text[pos] != '"')
        return -EINVAL;
    for (pos++; pos < len;) {
        const char *q = memchr(text + pos, '"', len - pos);
        size_t at, slashes = 0;

        if (q == NULL)
            return -EINVAL;
        at = (size_t)(q - text);
        while (at - slashes > pos && text[at - slashes - 1] == '\\')
            slashes++;
        if (slashes % 2 == 0) {
            *end = at + 1;
            return 0;
        }
        pos = at + 1;
    }
    return -EINVAL;
}

/* Steps over one value of any kind; nesting is tracked with a counter
 * because strings are the only place a bracket can hide. */
static int skip_value(const char *text, size_t len, size_t pos, size_t *end)
{
    int depth = 0;

    pos = jsonedit_skip_ws(text, len, pos);
    if (pos >= len)
        return -EINVAL;
    do {
        char c;

        if (pos >= len)
            return -EINVAL;
        c = text[pos];
        if (c == '"') {
            if (skip_string(text, len, pos, &pos) < 0)
                return -EINVAL;
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
        else if (depth == 0 && (c == ',' || c == ':'))
            return -EINVAL;
        pos++;
        if (depth == 0) {
            /* A scalar runs until a delimiter. */
            while (c != '}' && c != ']' && pos < len &&
                   strchr(",}] \t\r\n", text[pos]) == NULL)
                pos++;
        }
    } while (depth > 0);
    if (depth < 0)
        return -EINVAL;
    *end = pos;
    return 0;
}

/* Whether the string token [start, end) (quotes included) decodes to
 * key. Only the escapes a name can carry need decoding here. */
static bool key_equals(const char *text, size_t start, size_t end,
                       const char *key)
{
    size_t i = start + 1, k = 0;

    end--; /* the closing quote */
    while (i < end) {
        unsigned cp = 0;
        char c = text[i++];

        /* The name is longer than key, or holds a byte key cannot. */
        if (key[k] == '\0' || c == '\0')
            return false;
        if (c != '\\') {
            if (key[k++] != c)
                return false;
            continue;
        }
        if (i >= end)
            return false;
        c = text[i++];
        if (c != 'u') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *at = c ? strchr(from, c) : NULL;

            if (at == NULL || key[k++] != to[at - from])
                return false;
            continue;
        }
        for (int d = 0; d < 4; d++, i++) {
            int v = i < end ? hex_digit(text[i]) : -1;

            if (v < 0)
                return false;
            cp = cp << 4 | (unsigned)v;
        }
        /* Keys we look for are ASCII; any other code point differs. */
        if (cp == 0 || cp > 0x7f || key[k++] != (char)cp)
            return false;
    }
    return key[k] == '\0';
}

static int scan_members(const char *text, size_t len, size_t obj,
                        const char *key, json_span_t *value, int *count);

int jsonedit_find(const char *text, size_t len, size_t obj, const char *key,
                  json_span_t *value)
{
    int count = 0;
    int rc = scan_members(text, len, obj, key, value, &count);

    if (rc < 0)
        return rc;
    return count > 0 ? 0 : -ENOENT;
}

int jsonedit_count(const char *text, size_t len, size_t obj, const char *key)
{
    json_span_t span;
    int count = 0;

    return scan_members(text, len, obj, key, &span, &count) < 0 ? 0 : count;
}

/* Walks the object's members; the last one named key lands in value. */
static int scan_members(const char *text, size_t len, size_t obj,
                        const char *key, json_span_t *value, int *count)
{
    size_t pos = jsonedit_skip_ws(text, len, obj);

    *count = 0;
    if (pos >= len || text[pos] != '{')
        return -EINVAL;
    pos = jsonedit_skip_ws(text, len, pos + 1);
    if (pos < len && text[pos] == '}')
        return 0;
    for (;;) {
        size_t kstart = pos, kend, vstart, vend;

        if (skip_string(text, len, pos, &kend) < 0)
            return -EINVAL;
        pos = jsonedit_skip_ws(text, len, kend);
        if (pos >= len || text[pos] != ':')
            return -EINVAL;
        vstart = jsonedit_skip_ws(text, len, pos + 1);
        if (skip_value(text, len, vstart, &vend) < 0)
            return -EINVAL;
        if (key_equals(text, kstart, kend, key)) {
            value->start = vstart;
            value->end = vend;
            (*count)++;
        }
        pos = jsonedit_skip_ws(text, len, vend);
        if (pos < len && text[pos] == '}')
            return 0;
        if (pos >= len || text[pos] != ',')
            return -EINVAL;
        pos = jsonedit_skip_ws(text, len, pos + 1);
    }
}

static int edit_cmp(const void *a, const void *b)
{
    const json_edit_t *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

char *jsonedit_apply(arena_t *arena, const char *text, size_t len,
                     json_edit_t *edits, size_t n_edits, size_t *out_len)
{
    size_t total = len, pos = 0, o = 0;
    char *out;

    qsort(edits, n_edits, sizeof(*edits), edit_cmp);
    for (size_t i = 0; i < n_edits; i++)
        total += strlen(edits[i].text) - (edits[i].end - edits[i].start);
    out = arena_alloc(arena, total + 1);
    for (size_t i = 0; i < n_edits; i++) {
        size_t tl = strlen(edits[i].text);

        memcpy(out + o, text + pos, edits[i].start - pos);
        o += edits[i].start - pos;
        memcpy(out + o, edits[i].text, tl);
        o += tl;
        pos = edits[i].end;
    }
    memcpy(out + o, text + pos, len - pos);
    o += len - pos;
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Index of the top-level object's closing brace. */
static int object_close(const char *text, size_t len, size_t obj, size_t *close)
{
    size_t end;

    if (skip_value(text, len, obj, &end) < 0 || text[end - 1] != '}')
        return -EINVAL;
    *close = end - 1;
    return 0;
}

static bool object_empty(const char *text, size_t len, size_t obj)
{
    size_t pos = jsonedit_skip_ws(text, len, obj + 1);

    return pos < len && text[pos] == '}';
}

int jsonedit_usage_edit(arena_t *arena, const char *text, size_t len,
                        json_edit_t *edit, bool *caller_asked)
{
    size_t top = jsonedit_skip_ws(text, len, 0), close;
    json_span_t opts, inc;
    int rc;

    *caller_asked = false;
    if (object_close(text, len, top, &close) < 0)
        return -EINVAL;
    rc = jsonedit_find(text, len, top, "stream_options", &opts);
    if (rc == -EINVAL)
        return rc;
    if (rc == -ENOENT) {
        edit->start = edit->end = close;
        edit->text = object_empty(text, len, top)
                         ? "\"stream_options\":{\"include_usage\":true}"
                         : ",\"stream_options\":{\"include_usage\":true}";
        return 1;
    }
    if (text[opts.start] != '{') {
        edit->start = opts.start;
        edit->end = opts.end;
        edit->text = "{\"include_usage\":true}";
        return 1;
    }
    rc = jsonedit_find(text, len, opts.start, "include_usage", &inc);
    if (rc == 0) {
        if (inc.end - inc.start == 4 &&
            memcmp(text + inc.start, "true", 4) == 0) {
            *caller_asked = true;
            return 0;
        }
        edit->start = inc.start;
        edit->end = inc.end;
        edit->text = "true";
        return 1;
    }
    edit->start = edit->end = opts.start + 1;
    edit->text = object_empty(text, len, opts.start)
                     ? "\"include_usage\":true"
                     : "\"include_usage\":true,";
    (void)arena;
    return 1;
}

/* A strict RFC 8259 checker: recursive descent with a depth bound. */
typedef struct checker {
    const char *t;
    size_t len;
    size_t pos;
    int depth;
} checker_t;

static int check_value(checker_t *c);

static void check_ws(checker_t *c)
{
    c->pos = jsonedit_skip_ws(c->t, c->len, c->pos);
}

/* Length of the UTF-8 sequence at pos, 0 when it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned cp;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* A string byte that needs no further look: printable ASCII other than
 * the quote and the backslash. */
static inline bool plain_ascii(unsigned char ch)
{
    return ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\';
}

static int check_string(checker_t *c)
{
    const unsigned char *t = (const unsigned char *)c->t;

    if (c->pos >= c->len || t[c->pos] != '"')
        return -EINVAL;
    c->pos++;
    while (c->pos < c->len) {
        unsigned char ch = t[c->pos];
        size_t n;

        /* Runs of plain ASCII, the common case, in a tight loop. */
        if (plain_ascii(ch)) {
            while (++c->pos < c->len && plain_ascii(t[c->pos]))
                ;
            continue;
        }
        if (ch == '"') {
            c->pos++;
            return 0;
        }
        if (ch < 0x20)
            return -EINVAL;
        if (ch == '\\') {
            if (c->pos + 1 >= c->len)
                return -EINVAL;
            ch = t[c->pos + 1];
            if (ch == 'u') {
                for (size_t i = 2; i < 6; i++)
                    if (c->pos + i >= c->len || !isxdigit(t[c->pos + i]))
                        return -EINVAL;
                c->pos += 6;
            } else if (strchr("\"\\/bfnrt", ch) != NULL && ch != '\0') {
                c->pos += 2;
            } else {
                return -EINVAL;
            }
            continue;
        }
        n = utf8_len(t + c->pos, c->len - c->pos);
        if (n == 0)
            return -EINVAL;
        c->pos += n;
    }
    return -EINVAL;
}

static size_t digits(checker_t *c)
{
    size_t start = c->pos;

    while (c->pos < c->len && c->t[c->pos] >= '0' && c->t[c->pos] <= '9')
        c->pos++;
    return c->pos - start;
}

static int check_number(checker_t *c)
{
    if (c->pos < c->len && c->t[c->pos] == '-')
        c->pos++;
    if (c->pos < c->len && c->t[c->pos] == '0')
        c->pos++;
    else if (digits(c) == 0)
        return -EINVAL;
    if (c->pos < c->len && c->t[c->pos] == '.') {
        c->pos++;
        if (digits(c) == 0)
            return -EINVAL;
    }
    if (c->pos < c->len && (c->t[c->pos] == 'e' || c->t[c->pos] == 'E')) {
        c->pos++;
        if (c->pos < c->len && (c->t[c->pos] == '+' || c->t[c->pos] == '-'))
            c->pos++;
        if (digits(c) == 0)
            return -EINVAL;
    }
    return 0;
}

static int check_literal(checker_t *c, const char *word)
{
    size_t n = strlen(word);

    if (c->len - c->pos < n || memcmp(c->t + c->pos, word, n) != 0)
        return -EINVAL;
    c->pos += n;
    return 0;
}

/* Members or elements up to the closing bracket; c->pos is past the
 * opening one. */
static int check_container(checker_t *c, char close, bool object)
{
    check_ws(c);
    if (c->pos < c->len && c->t[c->pos] == close) {
        c->pos++;
        return 0;
    }
    for (;;) {
        check_ws(c);
        if (object) {
            if (check_string(c) < 0)
                return -EINVAL;
            check_ws(c);
            if (c->pos >= c->len || c->t[c->pos] != ':')
                return -EINVAL;
            c->pos++;
        }
        if (check_value(c) < 0)
            return -EINVAL;
        check_ws(c);
        if (c->pos < c->len && c->t[c->pos] == close) {
            c->pos++;
            return 0;
        }
        if (c->pos >= c->len || c->t[c->pos] != ',')
            return -EINVAL;
        c->pos++;
    }
}

static int check_value(checker_t *c)
{
    int rc;

    check_ws(c);
    if (c->pos >= c->len)
        return -EINVAL;
    switch (c->t[c->pos]) {
    case '{':
    case '[':
        if (++c->depth > 256)
            return -EINVAL;
        c->pos++;
        rc = check_container(c, c->t[c->pos - 1] == '{' ? '}' : ']',
                             c->t[c->pos - 1] == '{');
        c->depth--;
        return rc;
    case '"':
        return check_string(c);
    case 't':
        return check_literal(c, "true");
    case 'f':
        return check_literal(c, "false");
    case 'n':
        return check_literal(c, "null");
    default:
        return check_number(c);
    }
}

int jsonedit_validate(const char *text, size_t len, size_t *where)
{
    checker_t c = {text, len, 0, 0};
    int rc = check_value(&c);

    if (rc == 0) {
        check_ws(&c);
        if (c.pos != len)
            rc = -EINVAL;
    }
    if (where != NULL)
        *where = c.pos;
    return rc;
}
