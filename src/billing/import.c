/*
 * Prices from text: decimal strings into integer picodollars per token, and
 * LiteLLM's model_prices_and_context_window.json into the price table. Runs
 * at start, never on the request path.
 *
 * No price ever passes through a double. json-c keeps the source text of
 * each number it parses (json_object_new_double_s), and
 * json_object_get_string() gives that text back, so "1.5e-07" is read as
 * written; test_billing checks that the linked json-c still does this.
 */
#include "billing/billing.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DECIMAL_MAX_TEXT 256
#define DECIMAL_MAX_DIGITS 64
#define DECIMAL_MAX_EXPONENT 400
#define PICO_SHIFT_PER_TOKEN 12
#define PICO_SHIFT_PER_MILLION 6
#define LITELLM_MAX_FILE (64u << 20)
#define NO_TIER SIZE_MAX

/* A decimal as written: value = digits (no leading zeros) x 10^exponent. */
struct decimal {
    char digits[DECIMAL_MAX_DIGITS];
    int ndigits;
    int exponent;
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int digit_push(struct decimal *dec, char c)
{
    if (dec->ndigits == 0 && c == '0')
        return 0;
    if (dec->ndigits == DECIMAL_MAX_DIGITS)
        return -EINVAL;
    dec->digits[dec->ndigits++] = c;
    return 0;
}

/* "e-06", "E+2", "e7" at text[*pos]; adds the exponent to dec. */
static int exponent_scan(const char *text, size_t len, size_t *pos,
                         struct decimal *dec)
{
    size_t i = *pos + 1;
    int sign = 1, exponent = 0;

    if (i < len && (text[i] == '+' || text[i] == '-'))
        sign = text[i++] == '-' ? -1 : 1;
    if (i == len || !is_digit(text[i]))
        return -EINVAL;

    while (i < len && is_digit(text[i])) {
        exponent = exponent * 10 + (text[i++] - '0');
        if (exponent > DECIMAL_MAX_EXPONENT)
            return -EINVAL;
    }
    dec->exponent += sign * exponent;
    *pos = i;
    return 0;
}

/* The JSON number grammar without a sign: 12, 0.5, 3e-06, 1.5E+2. */
static int decimal_scan(const char *text, size_t len, struct decimal *dec)
{
    size_t i = 0;
    int fraction = 0;

    dec->ndigits = 0;
    dec->exponent = 0;
    if (len == 0 || len > DECIMAL_MAX_TEXT || !is_digit(text[0]))
        return -EINVAL;

    while (i < len && is_digit(text[i])) {
        if (digit_push(dec, text[i++]) < 0)
            return -EINVAL;
    }
    if (i < len && text[i] == '.') {
        if (++i == len || !is_digit(text[i]))
            return -EINVAL;
        for (; i < len && is_digit(text[i]); fraction++) {
            if (digit_push(dec, text[i++]) < 0)
                return -EINVAL;
        }
    }
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        if (exponent_scan(text, len, &i, dec) < 0)
            return -EINVAL;
    }

    dec->exponent -= fraction;
    return i == len ? 0 : -EINVAL;
}

/*
 * dec x 10^shift as an exact int64: -EINVAL when that is not a whole
 * number or does not fit.
 */
static int decimal_to_int(const struct decimal *dec, int shift, int64_t *out)
{
    int n = dec->ndigits, scale = dec->exponent + shift;
    int64_t value = 0;

    while (n > 0 && dec->digits[n - 1] == '0') {
        n--;
        scale++;
    }
    if (n == 0) {
        *out = 0;
        return 0;
    }
    if (scale < 0)
        return -EINVAL;

    for (int i = 0; i < n; i++) {
        if (__builtin_mul_overflow(value, 10, &value) ||
            __builtin_add_overflow(value, dec->digits[i] - '0', &value))
            return -EINVAL;
    }
    for (; scale > 0; scale--) {
        if (__builtin_mul_overflow(value, 10, &value))
            return -EINVAL;
    }
    *out = value;
    return 0;
}

int billing_parse_price(const char *text, size_t len, bool per_million,
                        pico_t *out)
{
    struct decimal dec;
    int64_t value;
    int shift = per_million ? PICO_SHIFT_PER_MILLION : PICO_SHIFT_PER_TOKEN;

    if (text == NULL || out == NULL || decimal_scan(text, len, &dec) < 0)
        return -EINVAL;
    if (decimal_to_int(&dec, shift, &value) < 0)
        return -EINVAL;
    *out = value;
    return 0;
}

/* LiteLLM keys that carry a rate, and where each goes in price_t. */
static const struct rate_key {
    const char *name;
    size_t base; /* offset of the rate */
    size_t tier; /* offset of its long-context twin, or NO_TIER */
} rate_keys[] = {
    {"input_cost_per_token", offsetof(price_t, input),
     offsetof(price_t, tier_input)},
    {"cache_read_input_token_cost", offsetof(price_t, cached_input),
     offsetof(price_t, tier_cached_input)},
    {"cache_creation_input_token_cost", offsetof(price_t, cache_write),
     offsetof(price_t, tier_cache_write)},
    {"output_cost_per_token", offsetof(price_t, output),
     offsetof(price_t, tier_output)},
    {"output_cost_per_reasoning_token", offsetof(price_t, reasoning_output),
     NO_TIER},
    {"input_cost_per_audio_token", offsetof(price_t, audio_input), NO_TIER},
    {"output_cost_per_audio_token", offsetof(price_t, audio_output), NO_TIER},
};

static void error_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The text of a JSON number or string; 1 for null (an absent value). */
static int value_text(json_object *value, const char **text, size_t *len)
{
    switch (json_object_get_type(value)) {
    case json_type_null:
        return 1;
    case json_type_double:
    case json_type_int:
    case json_type_string:
        *text = json_object_get_string(value);
        *len = strlen(*text);
        return 0;
    default:
        return -EINVAL;
    }
}

static int rate_read(json_object *value, pico_t *rate)
{
    const char *text;
    size_t len;
    int rc = value_text(value, &text, &len);

    if (rc != 0)
        return rc > 0 ? 0 : rc;
    return billing_parse_price(text, len, false, rate);
}

/* Token limits are not money: one that cannot be read stays unknown. */
static void limit_read(json_object *value, int64_t *limit)
{
    struct decimal dec;
    const char *text;
    size_t len;
    int64_t tokens;

    if (value_text(value, &text, &len) != 0 ||
        decimal_scan(text, len, &dec) < 0 ||
        decimal_to_int(&dec, 0, &tokens) < 0)
        return;
    *limit = tokens;
}

/* "_above_200k_tokens" or "_above_128000_tokens": the threshold in tokens,
 * or 0 when rest is anything else (such as "_above_1hr" or a "_priority"
 * tail, which this table does not model). */
static int64_t tier_suffix_threshold(const char *rest)
{
    static const char above[] = "_above_";
    int64_t n = 0;

    if (strncmp(rest, above, sizeof(above) - 1) != 0)
        return 0;
    rest += sizeof(above) - 1;
    if (!is_digit(*rest))
        return 0;

    for (; is_digit(*rest); rest++) {
        n = n * 10 + (*rest - '0');
        if (n > INT64_C(1000000000000))
            return 0;
    }
    if (strcmp(rest, "k_tokens") == 0)
        return n * 1000;
    return strcmp(rest, "_tokens") == 0 ? n : 0;
}

static pico_t *rate_at(price_t *price, size_t offset)
{
    return (pico_t *)((char *)price + offset);
}

/* One key of an entry: a rate, a tier twin, a limit, or ignored. */
static int entry_field(price_t *price, const char *key, json_object *value)
{
    for (size_t i = 0; i < sizeof(rate_keys) / sizeof(rate_keys[0]); i++) {
        const struct rate_key *rk = &rate_keys[i];
        size_t n = strlen(rk->name);
        int64_t threshold;

        if (strncmp(key, rk->name, n) != 0)
            continue;
        if (key[n] == '\0')
            return rate_read(value, rate_at(price, rk->base));
        if (rk->tier == NO_TIER)
            continue;
        threshold = tier_suffix_threshold(key + n);
        if (threshold == 0)
            continue;

        if (price->tier_threshold != 0 && price->tier_threshold != threshold)
            return -EINVAL;
        price->tier_threshold = threshold;
        return rate_read(value, rate_at(price, rk->tier));
    }

    if (strcmp(key, "max_input_tokens") == 0)
        limit_read(value, &price->max_input_tokens);
    else if (strcmp(key, "max_output_tokens") == 0)
        limit_read(value, &price->max_output_tokens);
    return 0;
}

/* A rate we cannot read exactly rejects the whole entry: pricing it with
 * that rate missing would bill at a fallback rate, silently wrong. */
static void entry_import(price_table_t *table, const char *model,
                         json_object *fields, const char *source,
                         billing_import_t *tally)
{
    price_t price;

    if (billing_price_init(&price, model, source) < 0) {
        tally->rejected++;
        return;
    }
    json_object_object_foreach(fields, key, value)
    {
        if (entry_field(&price, key, value) < 0) {
            tally->rejected++;
            return;
        }
    }

    if (price.input == PRICE_ABSENT || price.output == PRICE_ABSENT) {
        tally->unpriced++;
        return;
    }
    billing_put(table, &price);
    tally->loaded++;
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
    if (st.st_size > LITELLM_MAX_FILE) {
        rc = -EFBIG;
        error_set(err, errlen, "%s: larger than %u bytes", path,
                  LITELLM_MAX_FILE);
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

int billing_import_litellm(price_table_t *table, const char *path,
                           billing_import_t *counts, char *err, size_t errlen)
{
    billing_import_t tally = {0};
    char source[sizeof(((price_t *)0)->source)];
    const char *base = strrchr(path, '/');
    json_object *root;
    char *text = NULL;
    size_t len = 0;
    int rc;

    if ((rc = file_read(path, &text, &len, err, errlen)) < 0)
        return rc;
    if ((root = json_parse(text, len, path, err, errlen)) == NULL) {
        rc = -EINVAL;
        goto free_text;
    }
    if (!json_object_is_type(root, json_type_object)) {
        rc = -EINVAL;
        error_set(err, errlen, "%s: not a JSON object of models", path);
        goto free_root;
    }

    snprintf(source, sizeof(source), "litellm:%s",
             base != NULL ? base + 1 : path);
    json_object_object_foreach(root, model, fields)
    {
        if (strcmp(model, "sample_spec") == 0 ||
            !json_object_is_type(fields, json_type_object))
            continue;
        entry_import(table, model, fields, source, &tally);
    }
    rc = tally.loaded;
    if (counts != NULL)
        *counts = tally;

free_root:
    json_object_put(root);
free_text:
    free(text);
    return rc;
}

int billing_load_litellm(price_table_t *table, const char *path, char *err,
                         size_t errlen)
{
    return billing_import_litellm(table, path, NULL, err, errlen);
}
