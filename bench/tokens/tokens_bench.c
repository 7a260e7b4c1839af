/*
 * Throughput of Tollgate's token counter on one encoding and a set of
 * corpora: one untimed warm-up, then the median of N timed counts, one
 * JSON line per corpus. With --ids DIR, also encodes each corpus and
 * compares the ids with DIR/<encoding>.<corpus>.u32 (tiktoken's ids).
 * With --diff FILE, checks the cases diff_cases.mjs wrote instead. With
 * --cold, the piece cache is emptied before each timed run.
 */
#include "tokens/tokens.h"
#include "tokens/tokens_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        goto close_file;
    buf = malloc((size_t)size + 1);
    if (buf != NULL && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    *len = (size_t)size;
close_file:
    if (f != NULL)
        fclose(f);
    return buf;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* "yes", "no at N" or "-" (no reference file). */
static void ids_compare(const tokens_encoding_t *enc, const char *text,
                        size_t len, const char *ref_path, char *verdict,
                        size_t size)
{
    size_t ref_len = 0;
    uint32_t *ref = (uint32_t *)file_read(ref_path, &ref_len);
    uint32_t *ids = malloc((len + 1) * sizeof(*ids));
    size_t n = tokens_encode(enc, text, len, ids, len + 1);
    size_t i = 0;

    snprintf(verdict, size, "-");
    if (ref != NULL) {
        size_t m = ref_len / 4;

        while (i < n && i < m && ids[i] == ref[i])
            i++;
        if (i == n && n == m)
            snprintf(verdict, size, "yes");
        else
            snprintf(verdict, size, "no at token %zu of %zu/%zu", i, n, m);
    }
    free(ref);
    free(ids);
}

static bool cold;

static int bench_one(const tokens_encoding_t *enc, const char *path, int runs,
                     const char *ids_dir)
{
    size_t len = 0;
    char *text = file_read(path, &len);
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    double times[64];
    int64_t count;
    char verdict[96] = "-";

    if (text == NULL) {
        fprintf(stderr, "tokens_bench: cannot read %s\n", path);
        return 1;
    }
    count = tokens_count(enc, text, len);
    for (int r = 0; r < runs; r++) {
        double t0;

        if (cold)
            cache_clear();
        t0 = now_s();
        if (tokens_count(enc, text, len) != count)
            return 1;
        times[r] = now_s() - t0;
    }
    qsort(times, (size_t)runs, sizeof(times[0]), cmp_double);
    if (ids_dir != NULL) {
        char ref[4096];

        snprintf(ref, sizeof(ref), "%s/%s.%.*s.u32", ids_dir,
                 tokens_kind_name(tokens_encoding_kind(enc)),
                 (int)(strcspn(name, ".")), name);
        ids_compare(enc, text, len, ref, verdict, sizeof(verdict));
    }
    printf("{\"lib\":\"tollgate\",\"variant\":\"%s\",\"enc\":\"%s\","
           "\"corpus\":\"%s\","
           "\"bytes\":%zu,\"tokens\":%lld,\"median_s\":%.6f,"
           "\"mb_per_s\":%.2f,\"ids_equal\":\"%s\"}\n",
           cold ? "cold-cache" : "default",
           tokens_kind_name(tokens_encoding_kind(enc)), name, len,
           (long long)count, times[runs / 2],
           (double)len / 1e6 / times[runs / 2], verdict);
    free(text);
    return 0;
}

static void case_print(const char *text, uint32_t len)
{
    fputs("  text:", stderr);
    for (uint32_t i = 0; i < len; i++)
        fprintf(stderr, " %02x", (unsigned char)text[i]);
    fputc('\n', stderr);
}

/* Checks every case of FILE; returns the number that differ. */
static long diff_cases(const tokens_encoding_t *enc, const char *path)
{
    size_t len = 0, p = 0;
    char *buf = file_read(path, &len);
    uint32_t ids[4096];
    long n = 0, bad = 0;

    while (buf != NULL && p + 4 <= len) {
        uint32_t tlen, want;
        const char *text;
        size_t got;

        memcpy(&tlen, buf + p, 4);
        text = buf + p + 4;
        memcpy(&want, text + tlen, 4);
        got = tokens_encode(enc, text, tlen, ids, 4096);
        n++;
        if (got != want || tokens_count(enc, text, tlen) != (int64_t)want ||
            memcmp(ids, text + tlen + 4, 4 * (size_t)want) != 0) {
            if (bad++ < 5)
                case_print(text, tlen);
        }
        p += 8 + tlen + 4 * (size_t)want;
    }
    printf("{\"enc\":\"%s\",\"cases\":%ld,\"differ\":%ld}\n",
           tokens_kind_name(tokens_encoding_kind(enc)), n, bad);
    free(buf);
    return buf == NULL ? -1 : bad;
}

int main(int argc, char **argv)
{
    tokens_encoding_t *enc = NULL;
    tokens_kind_t kind;
    const char *ids_dir = NULL;
    const char *diff = NULL;
    int runs = 5;
    int i = 1;
    int rc = 0;
    double t0;

    for (; i < argc && strcmp(argv[i], "--cold") == 0; i++)
        cold = true;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--ids") == 0)
            ids_dir = argv[i + 1];
        else if (strcmp(argv[i], "--diff") == 0)
            diff = argv[i + 1];
    }
    if (i >= argc || tokens_kind_parse(argv[i], &kind) != 0 || runs < 1 ||
        runs > 64) {
        fputs("usage: tokens_bench [--cold] [--runs N] [--ids DIR] "
              "[--diff CASES] ENCODING FILE...\n",
              stderr);
        return 2;
    }
    t0 = now_s();
    if ((rc = tokens_load(kind, NULL, &enc)) != 0) {
        fprintf(stderr, "tokens_bench: load %s: %s\n", argv[i], strerror(-rc));
        return 1;
    }
    fprintf(stderr, "tokens_bench: %s loaded in %.0f ms\n", argv[i],
            (now_s() - t0) * 1e3);
    if (diff != NULL)
        rc = diff_cases(enc, diff) == 0 ? 0 : 1;
    for (int k = i + 1; k < argc && rc == 0; k++)
        rc = bench_one(enc, argv[k], runs, ids_dir);
    tokens_free(enc);
    return rc;
}
