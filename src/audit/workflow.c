/*
 * Workflows from raw calls: the prompt's stable prefix with its variable
 * parts normalised away, hashed; and the cheaper tier a premium model's
 * calls are priced at when the audit looks for routing leaks.
 */
#include "audit/internal.h"
#include "util/arena.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define QUOTE_MAX 256  /* a longer "quote" is prose, kept as written */
#define USER_HEAD 64   /* bytes of the first user turn in the prefix */
#define NORM_MAX 65536 /* longer prompts are hashed on this much */

uint64_t audit_hash(uint64_t h, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

typedef struct norm_out {
    char *out;
    size_t len;
    size_t cap; /* bytes usable before the NUL */
} norm_out_t;

/* Bytes of s that fit in n without cutting a UTF-8 character. */
static size_t utf8_fit(const char *s, size_t len, size_t n)
{
    if (n >= len)
        return len;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static void put(norm_out_t *o, const char *s, size_t n)
{
    n = utf8_fit(s, n, o->cap - o->len);
    memcpy(o->out + o->len, s, n);
    o->len += n;
}

static bool is_word(unsigned char c)
{
    return isalnum(c) || c == '_';
}

/* A closing quote for the one at text[i], or 0 when there is none near. */
static size_t quote_end(const char *text, size_t len, size_t i)
{
    char q = text[i];

    if (q == '\'' && i > 0 && is_word((unsigned char)text[i - 1]))
        return 0;
    for (size_t j = i + 1; j < len && j - i <= QUOTE_MAX; j++) {
        if (text[j] == '\n' && q == '\'')
            return 0;
        if (text[j] != q)
            continue;
        if (q == '\'' && j + 1 < len && is_word((unsigned char)text[j + 1]))
            continue;
        return j + 1;
    }
    return 0;
}

/* Length of an e-mail address starting at i, or 0. */
static size_t email_len(const char *text, size_t len, size_t i)
{
    size_t j = i, at = 0;
    bool dot = false;

    while (j < len) {
        unsigned char c = (unsigned char)text[j];
        if (c == '@' && at == 0 && j > i)
            at = j;
        else if (c == '.' && at != 0 && j + 1 < len &&
                 isalnum((unsigned char)text[j + 1]))
            dot = true;
        else if (!is_word(c) && c != '.' && c != '-' && c != '+')
            break;
        j++;
    }
    return at != 0 && dot ? j : 0;
}

/* A UUID (8-4-4-4-12 hex digits) at i. */
static bool is_uuid(const char *text, size_t len, size_t i)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    size_t j = i;

    for (int g = 0; g < 5; g++) {
        for (int k = 0; k < groups[g]; k++, j++)
            if (j >= len || !isxdigit((unsigned char)text[j]))
                return false;
        if (g < 4 && (j >= len || text[j++] != '-'))
            return false;
    }
    return j >= len || !is_word((unsigned char)text[j]);
}

/* One word: digits become "#"; a long word mixing letters and digits is
 * an id and becomes "#" as a whole. */
static void put_word(norm_out_t *o, const char *w, size_t n)
{
    size_t digits = 0;

    for (size_t k = 0; k < n; k++)
        digits += isdigit((unsigned char)w[k]) != 0;
    if (digits == 0) {
        put(o, w, n);
        return;
    }
    if (digits == n || n >= 6) {
        put(o, "#", 1);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        if (!isdigit((unsigned char)w[k]))
            put(o, w + k, 1);
        else if (k == 0 || !isdigit((unsigned char)w[k - 1]))
            put(o, "#", 1);
    }
}

size_t audit_normalise(const char *text, size_t len, char *out, size_t outlen)
{
    norm_out_t o = {out, 0, outlen > 0 ? outlen - 1 : 0};
    size_t i = 0, end;

    while (i < len && o.len < o.cap) {
        unsigned char c = (unsigned char)text[i];

        if (isspace(c)) {
            if (o.len > 0 && out[o.len - 1] != ' ')
                put(&o, " ", 1);
            while (i < len && isspace((unsigned char)text[i]))
                i++;
        } else if ((c == '"' || c == '\'') &&
                   (end = quote_end(text, len, i)) != 0) {
            put(&o, c == '"' ? "\"*\"" : "'*'", 3);
            i = end;
        } else if (is_word(c) && (end = email_len(text, len, i)) != 0) {
            put(&o, "@", 1);
            i = end;
        } else if (is_word(c) && is_uuid(text, len, i)) {
            put(&o, "#", 1);
            i += 36;
        } else if (is_word(c)) {
            for (end = i; end < len && is_word((unsigned char)text[end]);)
                end++;
            put_word(&o, text + i, end - i);
            i = end;
        } else {
            put(&o, text + i, 1);
            i++;
        }
    }
    if (outlen > 0)
        out[o.len] = '\0';
    return o.len;
}

/* One scratch buffer for the single-threaded importers. */
static char *scratch(void)
{
    static char *buffer;

    if (buffer == NULL && (buffer = malloc(NORM_MAX)) == NULL)
        die_oom();
    return buffer;
}

/* Without a system prompt, the template is the first user turn's head:
 * up to its first line end or colon, at most USER_HEAD bytes. */
static size_t user_head(const char *text, size_t len, char *head,
                        size_t headlen)
{
    size_t cut = 0;

    while (cut < len && cut < USER_HEAD && text[cut] != '\n' &&
           text[cut] != ':')
        cut++;
    return audit_normalise(text, utf8_fit(text, len, cut), head, headlen);
}

/* The last system prompts seen, normalised: most calls repeat one, and
 * normalising is the audit's costliest step per line. */
#define PREFIX_CACHE 512
typedef struct prefix_memo {
    uint64_t raw;
    size_t raw_len;
    uint64_t hash;
    char label[AUDIT_LABEL_MAX];
} prefix_memo_t;

static prefix_memo_t *prefix_lookup(const char *system, size_t len)
{
    static prefix_memo_t memo[PREFIX_CACHE];
    uint64_t raw = audit_hash(AUDIT_HASH_SEED, system, len);
    prefix_memo_t *m = &memo[(raw >> 32) % PREFIX_CACHE];
    char *norm;
    size_t n;

    if (m->raw == raw && m->raw_len == len && raw != 0)
        return m;
    norm = scratch();
    n = audit_normalise(system, len, norm, NORM_MAX);
    m->raw = raw;
    m->raw_len = len;
    m->hash = audit_hash(AUDIT_HASH_SEED, norm, n);
    audit_copy(m->label, sizeof(m->label), norm);
    return m;
}

void audit_set_workflow(audit_call_t *call, const char *system,
                        size_t system_len, const char *first_user,
                        size_t first_len, const char *last_user,
                        size_t last_len)
{
    char head[USER_HEAD + 1];
    size_t h;
    uint64_t hash = AUDIT_HASH_SEED;
    prefix_memo_t *m;

    if (system != NULL && system_len > 0) {
        m = prefix_lookup(system, system_len);
        hash = m->hash;
        audit_copy(call->label, sizeof(call->label), m->label);
    } else {
        h = first_user == NULL
                ? 0
                : user_head(first_user, first_len, head, sizeof(head));
        hash = audit_hash(audit_hash(hash, "\x1f", 1), head, h);
        audit_copy(call->label, sizeof(call->label), h > 0 ? head : "");
    }
    call->workflow = hash == 0 ? 1 : hash;
    /* A retry repeats the last user turn exactly. */
    call->turn_hash =
        audit_hash(call->workflow, last_user, last_user == NULL ? 0 : last_len);
}

/* Premium families and the cheaper model of the same provider that the
 * routing leak prices them at. First prefix that matches wins. */
static const struct {
    const char *prefix;
    const char *cheaper;
} tiers[] = {
    {"gpt-4o-mini", NULL},
    {"gpt-4.1-mini", NULL},
    {"o1-mini", NULL},
    {"o3-mini", NULL},
    {"o4-mini", NULL},
    {"gpt-4.1-nano", NULL},
    {"gpt-5-mini", NULL},
    {"gpt-5-nano", NULL},
    {"gpt-5.4-mini", NULL},
    {"gpt-5.4-nano", NULL},
    {"gpt-4o", "gpt-4o-mini"},
    {"gpt-4.1", "gpt-4.1-mini"},
    {"gpt-4", "gpt-4o-mini"},
    {"gpt-5.4", "gpt-5.4-mini"},
    {"gpt-5", "gpt-5-mini"},
    {"o1", "o4-mini"},
    {"o3", "o4-mini"},
    {"claude-opus", "claude-haiku-4-5"},
    {"claude-sonnet", "claude-haiku-4-5"},
    {"claude-3-opus", "claude-haiku-4-5"},
    {"claude-3-5-sonnet", "claude-haiku-4-5"},
    {"claude-3-7-sonnet", "claude-haiku-4-5"},
    {"gemini-2.5-pro", "gemini-2.5-flash"},
    {"gemini-3.1-pro", "gemini-2.5-flash"},
};

const char *audit_cheaper_tier(const price_table_t *table, const char *model,
                               int64_t at)
{
    const char *slash = strrchr(model, '/');
    const char *name = slash != NULL ? slash + 1 : model;

    for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++) {
        size_t n = strlen(tiers[i].prefix);
        if (strncmp(name, tiers[i].prefix, n) != 0)
            continue;
        if (tiers[i].cheaper == NULL ||
            billing_lookup_at(table, tiers[i].cheaper, at) == NULL)
            return NULL;
        return tiers[i].cheaper;
    }
    return NULL;
}
