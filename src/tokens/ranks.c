/*
 * The rank table: reads a .tiktoken file (base64 token, space, rank, one
 * per line), checks its SHA-256 against the hash tiktoken pins, and builds
 * an open-addressing hash from token bytes to rank.
 */
#include "tokens/tokens_int.h"
#include "tokens/ucd.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_MAX (64u << 20)

static _Atomic uint32_t next_serial;

/* The hashes openai/tiktoken pins (tiktoken_ext/openai_public.py). */
static const char *const pinned_sha256[] = {
    [TOKENS_CL100K] = "223921b76ee99bde995b7ff738513eef"
                      "100fb51d18c93597a113bcffe865b2a7",
    [TOKENS_O200K] = "446a9538cb6c348e3516120d7c08b09f"
                     "57c36495e2acfffe59a5bf8b0cfb1a2d",
};

static const char *const kind_names[] = {
    [TOKENS_CL100K] = "cl100k_base",
    [TOKENS_O200K] = "o200k_base",
};

const char *tokens_kind_name(tokens_kind_t kind)
{
    return kind_names[kind];
}

int tokens_kind_parse(const char *name, tokens_kind_t *kind)
{
    if (strcmp(name, "cl100k_base") == 0 || strcmp(name, "cl100k") == 0)
        *kind = TOKENS_CL100K;
    else if (strcmp(name, "o200k_base") == 0 || strcmp(name, "o200k") == 0)
        *kind = TOKENS_O200K;
    else
        return -EINVAL;
    return 0;
}

tokens_kind_t tokens_encoding_kind(const tokens_encoding_t *enc)
{
    return enc->kind;
}

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes padded base64 S[0, N) into OUT; returns bytes or -1. */
static long b64_decode(const char *s, size_t n, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    long len = 0;

    if (n == 0 || n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);

        if (v < 0) {
            if (s[i] == '=' && i >= n - 2)
                break;
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (uint8_t)(acc >> bits);
        }
    }
    return len;
}

static void shorts_insert(tokens_encoding_t *enc, const uint8_t *p,
                          uint32_t len, uint32_t rank)
{
    uint64_t k = short_key(p, len);
    uint32_t i = short_index(enc, k);

    while (enc->shorts[i].key_hi != UINT32_MAX)
        i = (i + 1) & enc->short_mask;
    enc->shorts[i] = (short_slot_t){
        .key_lo = (uint32_t)k, .key_hi = (uint32_t)(k >> 32), .rank = rank};
}

static void slots_insert(tokens_encoding_t *enc, uint32_t rank)
{
    const uint8_t *p = enc->blob + enc->rank_off[rank];
    uint32_t len = enc->rank_off[rank + 1] - enc->rank_off[rank];
    uint64_t h;
    uint32_t i;

    if (len <= SHORT_TOKEN_MAX) {
        shorts_insert(enc, p, len, rank);
        return;
    }
    h = rank_hash(p, len);
    i = (uint32_t)h & enc->mask;

    while (enc->slots[i].len != 0)
        i = (i + 1) & enc->mask;
    enc->slots[i] = (rank_slot_t){.off = enc->rank_off[rank],
                                  .len = len,
                                  .rank = rank,
                                  .tag = (uint32_t)(h >> 32)};
}

/* Reads one line "b64 rank\n" at *POS; appends the token as rank N. */
static int line_parse(tokens_encoding_t *enc, const char *text, size_t len,
                      size_t *pos, uint32_t n, uint32_t *blob_len)
{
    const char *line = text + *pos;
    const char *nl = memchr(line, '\n', len - *pos);
    const char *sp = nl ? memchr(line, ' ', (size_t)(nl - line)) : NULL;
    char *end;
    unsigned long rank;
    long got;

    if (sp == NULL)
        return -EBADMSG;
    rank = strtoul(sp + 1, &end, 10);
    if (end != nl || rank != n || sp == line)
        return -EBADMSG;
    got = b64_decode(line, (size_t)(sp - line), enc->blob + *blob_len);
    if (got <= 0)
        return -EBADMSG;
    *blob_len += (uint32_t)got;
    enc->rank_off[n + 1] = *blob_len;
    if ((uint32_t)got > enc->max_len)
        enc->max_len = (uint32_t)got;
    *pos = (size_t)(nl - text) + 1;
    return 0;
}

static size_t pow2_at_least(size_t n)
{
    size_t cap = 1;

    while (cap < n)
        cap <<= 1;
    return cap;
}

/* Both hash tables at a load factor of at most one half, then every
 * token in; a token seen twice makes the file invalid. */
static int tables_build(tokens_encoding_t *enc)
{
    size_t n_short = 0;
    size_t cap;

    for (uint32_t r = 0; r < enc->n_ranks; r++)
        n_short += enc->rank_off[r + 1] - enc->rank_off[r] <= SHORT_TOKEN_MAX;
    cap = pow2_at_least(2 * n_short + 2);
    enc->shorts = malloc(cap * sizeof(*enc->shorts));
    enc->short_mask = (uint32_t)cap - 1;
    cap = pow2_at_least(2 * (enc->n_ranks - n_short) + 2);
    enc->slots = calloc(cap, sizeof(*enc->slots));
    enc->mask = (uint32_t)cap - 1;
    if (enc->shorts == NULL || enc->slots == NULL)
        return -ENOMEM;
    memset(enc->shorts, 0xFF, (enc->short_mask + 1) * sizeof(*enc->shorts));

    for (uint32_t r = 0; r < enc->n_ranks; r++) {
        const uint8_t *p = enc->blob + enc->rank_off[r];

        if (rank_lookup(enc, p, enc->rank_off[r + 1] - enc->rank_off[r]) !=
            RANK_NONE)
            return -EBADMSG;
        slots_insert(enc, r);
    }
    return 0;
}

/* The byte ranks, and every pair of bytes: merges start from those, and
 * a flat table keeps the lookups in cache. */
static int bytes_build(tokens_encoding_t *enc)
{
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;

        enc->byte_rank[b] = rank_lookup(enc, &byte, 1);
        if (enc->byte_rank[b] == RANK_NONE)
            return -EBADMSG;
    }
    enc->pair_rank = malloc(65536 * sizeof(*enc->pair_rank));
    if (enc->pair_rank == NULL)
        return -ENOMEM;
    for (int i = 0; i < 65536; i++) {
        uint8_t two[2] = {(uint8_t)(i >> 8), (uint8_t)i};

        enc->pair_rank[i] = rank_lookup(enc, two, 2);
    }
    return 0;
}

int ranks_parse(tokens_encoding_t *enc, const char *text, size_t len)
{
    size_t pos = 0;
    size_t lines = 0;
    uint32_t blob_len = 0;
    int rc = 0;

    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    enc->blob = malloc(len + 1);
    enc->rank_off = calloc(lines + 2, sizeof(*enc->rank_off));
    if (enc->blob == NULL || enc->rank_off == NULL)
        return -ENOMEM;

    while (rc == 0 && pos < len)
        rc = line_parse(enc, text, len, &pos, enc->n_ranks++, &blob_len);
    if (rc == 0 && enc->n_ranks >= (1u << 24))
        rc = -EBADMSG;
    if (rc == 0)
        rc = tables_build(enc);
    if (rc == 0)
        rc = bytes_build(enc);
    return rc;
}

void ranks_release(tokens_encoding_t *enc)
{
    free(enc->blob);
    free(enc->rank_off);
    free(enc->slots);
    free(enc->shorts);
    free(enc->pair_rank);
}

static int sha256_check(const char *text, size_t len, tokens_kind_t kind)
{
    unsigned char md[32];
    unsigned int md_len = 0;
    char hex[65];

    if (!EVP_Digest(text, len, md, &md_len, EVP_sha256(), NULL))
        return -EBADMSG;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return strcmp(hex, pinned_sha256[kind]) == 0 ? 0 : -EBADMSG;
}

static int file_read(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long size;
    int rc = -ENOENT;

    if (f == NULL)
        return -errno;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        (size_t)size > FILE_MAX || fseek(f, 0, SEEK_SET) != 0)
        goto close_file;
    rc = -ENOMEM;
    *text = malloc((size_t)size + 1);
    if (*text == NULL)
        goto close_file;
    rc = 0;
    *len = fread(*text, 1, (size_t)size, f);
    if (*len != (size_t)size) {
        free(*text);
        rc = -EIO;
    }
close_file:
    fclose(f);
    return rc;
}

int tokens_load_file(tokens_kind_t kind, const char *path,
                     tokens_encoding_t **out)
{
    tokens_encoding_t *enc;
    char *text = NULL;
    size_t len = 0;
    int rc = file_read(path, &text, &len);

    if (rc != 0)
        return rc;
    ucd_init();
    rc = sha256_check(text, len, kind);
    if (rc != 0)
        goto free_text;
    rc = -ENOMEM;
    enc = calloc(1, sizeof(*enc));
    if (enc == NULL)
        goto free_text;
    enc->kind = kind;
    enc->serial = atomic_fetch_add(&next_serial, 1) + 1;
    rc = ranks_parse(enc, text, len);
    if (rc != 0) {
        tokens_free(enc);
        goto free_text;
    }
    *out = enc;
free_text:
    free(text);
    return rc;
}

void tokens_free(tokens_encoding_t *enc)
{
    if (enc == NULL)
        return;
    ranks_release(enc);
    free(enc);
}

/* Writes "<dir>/<name>.tiktoken" into BUF; false when it does not fit. */
static bool path_join(char *buf, size_t size, const char *dir, const char *sub,
                      tokens_kind_t kind)
{
    int n = snprintf(buf, size, "%s%s/%s.tiktoken", dir, sub, kind_names[kind]);

    return n > 0 && (size_t)n < size;
}

static int load_from(tokens_kind_t kind, const char *dir, const char *sub,
                     tokens_encoding_t **out)
{
    char path[PATH_MAX];

    if (dir == NULL || dir[0] == '\0' ||
        !path_join(path, sizeof(path), dir, sub, kind))
        return -ENOENT;
    if (access(path, R_OK) != 0)
        return -ENOENT;
    return tokens_load_file(kind, path, out);
}

/* The directory of the running executable, or "" when unknown. */
static void exe_dir(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    char *slash;

    buf[0] = '\0';
    if (n <= 0)
        return;
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
}

/* build/data/tiktoken in the executable's directory or up to two above
 * it (./tollgate, build/asan/tollgate and build/tests/ all find it). */
static int load_near_exe(tokens_kind_t kind, tokens_encoding_t **out)
{
    char dir[PATH_MAX];
    int rc = -ENOENT;

    exe_dir(dir, sizeof(dir));
    for (int up = 0; up < 3 && rc == -ENOENT && dir[0] != '\0'; up++) {
        char *slash;

        rc = load_from(kind, dir, "/build/data/tiktoken", out);
        slash = strrchr(dir, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
    }
    return rc;
}

int tokens_load(tokens_kind_t kind, const char *dir, tokens_encoding_t **out)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    int rc;

    if (dir != NULL)
        return load_from(kind, dir, "", out);
    rc = load_from(kind, getenv("TOLLGATE_TIKTOKEN_DIR"), "", out);
    if (rc == -ENOENT && xdg != NULL && xdg[0] != '\0')
        rc = load_from(kind, xdg, "/tollgate/tiktoken", out);
    else if (rc == -ENOENT)
        rc = load_from(kind, getenv("HOME"), "/.cache/tollgate/tiktoken", out);
    if (rc == -ENOENT)
        rc = load_near_exe(kind, out);
    if (rc == -ENOENT)
        rc = load_from(kind, getenv("TOLLGATE_SHARED"), "/data/tiktoken", out);
    return rc;
}
