/*
 * Edits spliced into a JSON text's own bytes, so what goes upstream is the
 * caller's request with only the gateway's changes: numbers, spacing and
 * key order stay as the caller wrote them.
 */
#ifndef TOLLGATE_JSONEDIT_H
#define TOLLGATE_JSONEDIT_H

#include "util/arena.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct json_span {
    size_t start; /* first byte */
    size_t end;   /* one past the last byte */
} json_span_t;

/*
 * Finds the LAST member named key (escapes in the member's name decoded,
 * as a JSON parser would) of the object whose '{' is at obj. Returns
 * 0 with the value's span, -ENOENT when absent, -EINVAL when the text is
 * not a well-formed object there.
 */
int jsonedit_find(const char *text, size_t len, size_t obj, const char *key,
                  json_span_t *value);

/*
 * Checks that text is exactly one JSON value by RFC 8259, in valid UTF-8,
 * nested at most 256 deep. json-c's strict mode still takes single-quoted
 * keys, NaN and raw control characters; what a provider would refuse must
 * be refused here too. Returns 0, or -EINVAL with the byte offset of the
 * problem in *where.
 */
int jsonedit_validate(const char *text, size_t len, size_t *where);

/* How many members of the object at obj are named key (0 when the text
 * is not a well-formed object there). */
int jsonedit_count(const char *text, size_t len, size_t obj, const char *key);

/* Index of the first non-space byte at or after pos (len if none). */
size_t jsonedit_skip_ws(const char *text, size_t len, size_t pos);

typedef struct json_edit {
    size_t start; /* bytes [start, end) are replaced by text */
    size_t end;   /* end == start inserts */
    const char *text;
} json_edit_t;

/*
 * Applies edits (any order, not overlapping) and returns the new text in
 * arena memory with its length in out_len. Never fails.
 */
char *jsonedit_apply(arena_t *arena, const char *text, size_t len,
                     json_edit_t *edits, size_t n_edits, size_t *out_len);

/*
 * The edits that make a streamed chat request ask for usage: adds
 * stream_options.include_usage = true unless it is already true. Writes
 * at most one edit into *edit and returns how many (0 or 1); sets
 * *caller_asked when the caller had asked for usage itself. Returns
 * -EINVAL if the top-level text is not an object.
 */
int jsonedit_usage_edit(arena_t *arena, const char *text, size_t len,
                        json_edit_t *edit, bool *caller_asked);

#endif
