/*
 * libFuzzer target for the JSON splicer on arbitrary bytes: member
 * lookups and the usage edit must stay inside the input, return only
 * their documented codes, and give spans and edits the input can hold.
 */
#include "util/jsonedit.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_jsonedit: %s\n", what);
        abort();
    }
}

static void find_at(const char *text, size_t len, size_t obj)
{
    static const char *const keys[] = {"model", "stream_options",
                                       "include_usage", "", "a"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_span_t span = {0, 0};
        int rc = jsonedit_find(text, len, obj, keys[i], &span);

        check(rc == 0 || rc == -ENOENT || rc == -EINVAL, "find code");
        if (rc == 0)
            check(obj < span.start && span.start < span.end && span.end <= len,
                  "find span outside the text");
    }
}

static void usage_edit(arena_t *arena, const char *text, size_t len)
{
    json_edit_t edit = {0, 0, NULL};
    bool asked = true;
    int rc = jsonedit_usage_edit(arena, text, len, &edit, &asked);
    size_t out_len = 0;
    char *out;

    check(rc == 0 || rc == 1 || rc == -EINVAL, "usage edit code");
    check(rc == 0 || !asked, "caller_asked set without rc 0");
    if (rc != 1)
        return;
    check(edit.start <= edit.end && edit.end <= len && edit.text != NULL,
          "usage edit outside the text");
    out = jsonedit_apply(arena, text, len, &edit, 1, &out_len);
    check(out_len == len - (edit.end - edit.start) + strlen(edit.text),
          "apply length");
    check(memcmp(out, text, edit.start) == 0 &&
              memcmp(out + out_len - (len - edit.end), text + edit.end,
                     len - edit.end) == 0,
          "apply changed bytes outside the edit");
    check(out[out_len] == '\0', "apply output not NUL-terminated");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    arena_t *arena = arena_new(4096);
    const char *brace = memchr(text, '{', size);
    size_t ws = jsonedit_skip_ws(text, size, 0);

    check(ws <= size, "skip_ws past the end");
    find_at(text, size, 0);
    if (brace != NULL)
        find_at(text, size, (size_t)(brace - text));
    find_at(text, size, size);
    usage_edit(arena, text, size);
    arena_free(arena);
    return 0;
}
