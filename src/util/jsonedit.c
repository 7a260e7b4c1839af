/*
 * A small scanner over JSON text that the request parser has already
 * accepted. It only needs to step over values and find members; it still
 * checks every bound, because it reads bytes from the network.
 */
#include "util/jsonedit.h"

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

static int skip_string(const char *text, size_t len, size_t pos, size_t *end)
{
    if (pos >= len || text[pos] != '"')
        return -EINVAL;
    for (pos++; pos < len; pos++) {
        if (text[pos] == '\\')
            pos++;
        else if (text[pos] == '"') {
            *end = pos + 1;
            return 0;
        }
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

int jsonedit_find(const char *text, size_t len, size_t obj, const char *key,
                  json_span_t *value)
{
    size_t pos = jsonedit_skip_ws(text, len, obj);
    size_t klen = strlen(key);
    int found = -ENOENT;

    if (pos >= len || text[pos] != '{')
        return -EINVAL;
    pos = jsonedit_skip_ws(text, len, pos + 1);
    if (pos < len && text[pos] == '}')
        return -ENOENT;
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
        if (kend - kstart - 2 == klen &&
            memcmp(text + kstart + 1, key, klen) == 0) {
            value->start = vstart;
            value->end = vend;
            found = 0;
        }
        pos = jsonedit_skip_ws(text, len, vend);
        if (pos < len && text[pos] == '}')
            return found;
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
