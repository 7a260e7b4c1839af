/*
 * Price files into the price table: reads the file, tells LiteLLM's
 * model_prices_and_context_window.json (an object of models) from
 * genai-prices' data.json (an array of providers) by its content, and
 * hands it to the matching importer. Runs at start, never on the request
 * path.
 *
 * No price ever passes through a double. json-c keeps the source text of
 * each number it parses (json_object_new_double_s), and
 * json_object_get_string() gives that text back, so "1.5e-07" is read as
 * written; test_billing checks that the linked json-c still does this.
 */
#include "billing/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PRICE_FILE_MAX (64u << 20)
#define REASON_MAX 256

void error_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void import_reject(import_ctx_t *ctx, const char *entry, const char *fmt, ...)
{
    char why[REASON_MAX];
    va_list ap;

    ctx->tally.rejected++;
    if (ctx->on_reject == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    ctx->on_reject(entry, why, ctx->arg);
}

/* The whole file in one malloc'd, NUL-terminated buffer. */
static int file_read(const char *path, char **out, size_t *outlen, char *err,
                     size_t errlen)
{
    struct stat st;
    char *text = NULL;
    FILE *file;
    int rc = 0;

    if ((file = fopen(path, "rb")) == NULL) {
        rc = -errno;
        error_set(err, errlen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    if (fstat(fileno(file), &st) < 0) {
        rc = -errno;
        error_set(err, errlen, "%s: %s", path, strerror(-rc));
        goto close_file;
    }
    if (st.st_size > PRICE_FILE_MAX) {
        rc = -EFBIG;
        error_set(err, errlen, "%s: larger than %u bytes", path,
                  PRICE_FILE_MAX);
        goto close_file;
    }

    if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = -ENOMEM;
        error_set(err, errlen, "%s: out of memory", path);
        goto close_file;
    }
    if (fread(text, 1, (size_t)st.st_size, file) != (size_t)st.st_size) {
        rc = -EIO;
        error_set(err, errlen, "%s: short read", path);
        free(text);
        goto close_file;
    }
    text[st.st_size] = '\0';
    *out = text;
    *outlen = (size_t)st.st_size;

close_file:
    fclose(file);
    return rc;
}

static bool only_space(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (strchr(" \t\r\n", text[i]) == NULL)
            return false;
    }
    return true;
}

/* The parsed document, or NULL with a message naming the byte. */
static json_object *json_parse(const char *text, size_t len, const char *path,
                               char *err, size_t errlen)
{
    json_tokener *tok = json_tokener_new();
    json_object *root;
    enum json_tokener_error jerr;
    size_t end;

    if (tok == NULL) {
        error_set(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    root = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);

    if (root == NULL || jerr != json_tokener_success) {
        error_set(err, errlen, "%s: byte %zu: %s", path, end,
                  jerr == json_tokener_continue
                      ? "unexpected end of file"
                      : json_tokener_error_desc(jerr));
        json_object_put(root);
        root = NULL;
    } else if (!only_space(text + end, len - end)) {
        error_set(err, errlen, "%s: byte %zu: text after the JSON value", path,
                  end);
        json_object_put(root);
        root = NULL;
    }
    json_tokener_free(tok);
    return root;
}

int json_file_load(const char *path, json_object **root, char *err,
                   size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    if ((rc = file_read(path, &text, &len, err, errlen)) < 0)
        return rc;
    *root = json_parse(text, len, path, err, errlen);
    free(text);
    return *root != NULL ? 0 : -EINVAL;
}

int billing_import_file(price_table_t *table, const char *path,
                        billing_import_t *counts, billing_reject_fn *on_reject,
                        void *arg, char *err, size_t errlen)
{
    const char *base = strrchr(path, '/');
    import_ctx_t ctx = {.table = table,
                        .path = path,
                        .file = base != NULL ? base + 1 : path,
                        .on_reject = on_reject,
                        .arg = arg};
    json_object *root = NULL;
    int rc;

    if ((rc = json_file_load(path, &root, err, errlen)) < 0)
        return rc;

    if (json_object_is_type(root, json_type_object))
        rc = import_litellm(&ctx, root, err, errlen);
    else if (json_object_is_type(root, json_type_array))
        rc = import_genai(&ctx, root, err, errlen);
    else
        rc = -EINVAL;
    if (rc == -EINVAL && err != NULL && err[0] == '\0')
        error_set(err, errlen,
                  "%s: neither LiteLLM prices (an object of models) nor "
                  "genai-prices data (an array of providers)",
                  path);

    json_object_put(root);
    if (rc < 0)
        return rc;
    if (counts != NULL)
        *counts = ctx.tally;
    return ctx.tally.loaded;
}

int billing_import_litellm(price_table_t *table, const char *path,
                           billing_import_t *counts, char *err, size_t errlen)
{
    return billing_import_file(table, path, counts, NULL, NULL, err, errlen);
}

int billing_load_litellm(price_table_t *table, const char *path, char *err,
                         size_t errlen)
{
    return billing_import_file(table, path, NULL, NULL, NULL, err, errlen);
}
