/*
 * Exact decimals: price text ("1.5e-07", "2.50") into integer picodollars,
 * multipliers ("1.1") into fractions, dates into unix seconds. Used by the
 * importers and the built-in table at start, never on the request path.
 */
#include "billing/internal.h"

#include <errno.h>
#include <string.h>

#define DECIMAL_MAX_TEXT 256
#define DECIMAL_MAX_DIGITS 64
#define DECIMAL_MAX_EXPONENT 400
#define RATIO_MAX_SHIFT 12

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
    int shift = per_million ? SHIFT_PER_MILLION : SHIFT_PER_TOKEN;

    if (text == NULL || out == NULL || decimal_scan(text, len, &dec) < 0)
        return -EINVAL;
    if (decimal_to_int(&dec, shift, &value) < 0 || value > PRICE_RATE_MAX)
        return -EINVAL;
    *out = value;
    return 0;
}

int decimal_scaled(const char *text, size_t len, int shift, int64_t *out)
{
    struct decimal dec;

    if (text == NULL || decimal_scan(text, len, &dec) < 0)
        return -EINVAL;
    return decimal_to_int(&dec, shift, out);
}

static int64_t gcd(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t r = a % b;

        a = b;
        b = r;
    }
    return a;
}

int decimal_ratio(const char *text, size_t len, int64_t *num, int64_t *den)
{
    int64_t value, scale = 1, g;

    for (int shift = 0; shift <= RATIO_MAX_SHIFT; shift++, scale *= 10) {
        if (decimal_scaled(text, len, shift, &value) < 0)
            continue;
        g = value == 0 ? scale : gcd(value, scale);
        *num = value / g;
        *den = scale / g;
        return 0;
    }
    return -EINVAL;
}

int json_decimal_text(json_object *value, const char **text, size_t *len)
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

/* Days from 1970-01-01 to a proleptic Gregorian date (the era method). */
int64_t date_to_unix(int year, int month, int day)
{
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return (era * 146097 + doe - 719468) * 86400;
}
