/*
 * The split patterns of cl100k_base and o200k_base as hand-written
 * scanners: each returns where the piece starting at a position ends,
 * exactly as tiktoken's regex (leftmost-first alternation, greedy or
 * possessive quantifiers, \s+(?!\S) lookahead) would, in linear time.
 *
 * cl100k_base:
 *   '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}++ | \p{N}{1,3}+
 *   | ?[^\s\p{L}\p{N}]++[\r\n]*+ | \s++$ | \s*[\r\n] | \s+(?!\S) | \s
 * o200k_base (U = Lu Lt Lm Lo M, W = Ll Lm Lo M, C = the contractions):
 *   [^\r\n\p{L}\p{N}]?U*W+C? | [^\r\n\p{L}\p{N}]?U+W*C? | \p{N}{1,3}
 *   | ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 *
 * \s is Unicode White_Space (with U+0085, without U+FEFF), the classes
 * are Unicode 16.0 (ucd16.c), and (?i) folds s to U+017F as well. Every
 * position starts some alternative, so pieces tile the text. Input is
 * valid UTF-8 (the caller checks).
 */
#include "tokens/tokens_int.h"
#include "tokens/ucd.h"

#define BIT(c) (1u << (c))
#define LETTERS (BIT(UCD_UPPER) | BIT(UCD_LOWER) | BIT(UCD_OTHER_LETTER))
#define UPPERISH (BIT(UCD_UPPER) | BIT(UCD_OTHER_LETTER) | BIT(UCD_MARK))
#define LOWERISH (BIT(UCD_LOWER) | BIT(UCD_OTHER_LETTER) | BIT(UCD_MARK))
#define PUNCT (BIT(UCD_OTHER) | BIT(UCD_MARK))

/* One decoded code point: its value, byte length and class bit. */
typedef struct cp {
    uint32_t cp;
    uint32_t len;
    uint32_t bit;
} cp_t;

static inline cp_t cp_at(const uint8_t *s, size_t n, size_t p)
{
    cp_t c = {0, 0, 0};
    uint8_t b;

    if (p >= n)
        return c;
    b = s[p];
    if (b < 0x80) {
        c.cp = b;
        c.len = 1;
    } else if (b < 0xE0) {
        c.cp = (uint32_t)(b & 0x1F) << 6 | (s[p + 1] & 0x3F);
        c.len = 2;
    } else if (b < 0xF0) {
        c.cp = (uint32_t)(b & 0x0F) << 12 | (uint32_t)(s[p + 1] & 0x3F) << 6 |
               (s[p + 2] & 0x3F);
        c.len = 3;
    } else {
        c.cp = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[p + 1] & 0x3F) << 12 |
               (uint32_t)(s[p + 2] & 0x3F) << 6 | (s[p + 3] & 0x3F);
        c.len = 4;
    }
    c.bit = BIT(ucd_class(c.cp));
    return c;
}

static inline bool is_newline(uint32_t cp)
{
    return cp == '\r' || cp == '\n';
}

/* The end of the run of code points from P whose class is in SET. */
static inline size_t run_end(const uint8_t *s, size_t n, size_t p, uint32_t set)
{
    while (p < n) {
        cp_t c = cp_at(s, n, p);

        if (!(c.bit & set))
            break;
        p += c.len;
    }
    return p;
}

/* The end of a run of \r and \n (and '/' when SLASH) from P. */
static size_t newlines_end(const uint8_t *s, size_t n, size_t p, bool slash)
{
    while (p < n && (s[p] == '\r' || s[p] == '\n' || (slash && s[p] == '/')))
        p++;
    return p;
}

static inline bool ascii_is(uint8_t b, char lower)
{
    return (b | 0x20) == lower;
}

/* After an apostrophe at P - 1: the end of (?i:s|t|re|ve|m|ll|d), or 0. */
static size_t contraction_end(const uint8_t *s, size_t n, size_t p)
{
    uint8_t a = p < n ? s[p] : 0;
    uint8_t b = p + 1 < n ? s[p + 1] : 0;

    if (ascii_is(a, 's') || ascii_is(a, 't') || ascii_is(a, 'm') ||
        ascii_is(a, 'd'))
        return p + 1;
    if (a == 0xC5 && b == 0xBF) /* U+017F LATIN SMALL LETTER LONG S */
        return p + 2;
    if ((ascii_is(a, 'r') || ascii_is(a, 'v')) && ascii_is(b, 'e'))
        return p + 2;
    if (ascii_is(a, 'l') && ascii_is(b, 'l'))
        return p + 2;
    return 0;
}

/*
 * The piece of a whitespace run at P: the \s alternatives. cl100k tries
 * \s++$ before \s*[\r\n]; o200k has no \s++$, so a run that ends the text
 * still stops after its last newline (END_FIRST false).
 */
static size_t space_piece(const uint8_t *s, size_t n, size_t p, bool end_first)
{
    size_t q = p;
    size_t last = p;
    size_t after_newline = 0;

    while (q < n) {
        cp_t c = cp_at(s, n, q);

        if (!(c.bit & BIT(UCD_SPACE)))
            break;
        last = q;
        q += c.len;
        if (is_newline(c.cp))
            after_newline = q;
    }
    if (q == n && end_first)
        return n; /* \s++$ */
    if (after_newline != 0)
        return after_newline; /* \s*[\r\n] and \s*[\r\n]+ */
    if (q == n)
        return n; /* \s+(?!\S) at the end of the text */
    if (last > p)
        return last; /* \s+(?!\S): leave one space for the next piece */
    return q;        /* \s */
}

size_t pretoken_next_cl100k(const uint8_t *s, size_t n, size_t p)
{
    cp_t c = cp_at(s, n, p);
    size_t e;

    if (c.cp == '\'' && (e = contraction_end(s, n, p + 1)) != 0)
        return e;
    if (c.bit & LETTERS)
        return run_end(s, n, p, LETTERS);
    if (!(c.bit & BIT(UCD_NUMBER)) && !is_newline(c.cp) &&
        (cp_at(s, n, p + c.len).bit & LETTERS))
        return run_end(s, n, p + c.len, LETTERS);
    if (c.bit & BIT(UCD_NUMBER)) {
        e = p + c.len;
        for (int k = 1; k < 3 && (cp_at(s, n, e).bit & BIT(UCD_NUMBER)); k++)
            e += cp_at(s, n, e).len;
        return e;
    }
    if (c.cp == ' ' && (cp_at(s, n, p + 1).bit & PUNCT))
        return newlines_end(s, n, run_end(s, n, p + 1, PUNCT), false);
    if (c.bit & PUNCT)
        return newlines_end(s, n, run_end(s, n, p, PUNCT), false);
    return space_piece(s, n, p, true);
}

/* U*W+ from P with backtracking: the end, or 0 when it cannot match. */
static size_t upper_lower(const uint8_t *s, size_t n, size_t p)
{
    size_t q = p;
    size_t last_w = 0;
    bool have_w = false;
    cp_t c;

    for (;;) {
        c = cp_at(s, n, q);
        if (!(c.bit & UPPERISH))
            break;
        if (c.bit & LOWERISH) {
            last_w = q + c.len;
            have_w = true;
        }
        q += c.len;
    }
    if (c.bit & LOWERISH) /* an Ll right after the U* run */
        return run_end(s, n, q, LOWERISH);
    return have_w ? last_w : 0;
}

/* Appends an optional contraction at E. */
static size_t with_contraction(const uint8_t *s, size_t n, size_t e)
{
    size_t c;

    if (e < n && s[e] == '\'' && (c = contraction_end(s, n, e + 1)) != 0)
        return c;
    return e;
}

/* The two letter alternatives of o200k, or 0 when neither matches. */
static size_t o200k_word(const uint8_t *s, size_t n, size_t p, cp_t c)
{
    bool lead = !(c.bit & (LETTERS | BIT(UCD_NUMBER))) && !is_newline(c.cp);
    size_t after = p + c.len;
    size_t e = 0;

    if (lead)
        e = upper_lower(s, n, after);
    if (e == 0)
        e = upper_lower(s, n, p);
    if (e == 0 && lead && (cp_at(s, n, after).bit & UPPERISH))
        e = run_end(s, n, run_end(s, n, after, UPPERISH), LOWERISH);
    if (e == 0 && (c.bit & UPPERISH))
        e = run_end(s, n, run_end(s, n, p, UPPERISH), LOWERISH);
    return e == 0 ? 0 : with_contraction(s, n, e);
}

size_t pretoken_next_o200k(const uint8_t *s, size_t n, size_t p)
{
    cp_t c = cp_at(s, n, p);
    size_t e = o200k_word(s, n, p, c);

    if (e != 0)
        return e;
    if (c.bit & BIT(UCD_NUMBER)) {
        e = p + c.len;
        for (int k = 1; k < 3 && (cp_at(s, n, e).bit & BIT(UCD_NUMBER)); k++)
            e += cp_at(s, n, e).len;
        return e;
    }
    if (c.cp == ' ' && (cp_at(s, n, p + 1).bit & PUNCT))
        return newlines_end(s, n, run_end(s, n, p + 1, PUNCT), true);
    if (c.bit & PUNCT)
        return newlines_end(s, n, run_end(s, n, p, PUNCT), true);
    return space_piece(s, n, p, false);
}
