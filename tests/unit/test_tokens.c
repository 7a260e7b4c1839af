/*
 * Token counter: tiktoken's golden vectors for both encodings, Unicode
 * 16.0 classes, invalid UTF-8, chat-request overhead, model lookup and
 * the rank-file hash check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tokens/tokens.h"
#include "tokens/tokens_int.h"
#include "tokens/ucd.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TIKTOKEN_REL "/data/tiktoken"

static tokens_encoding_t *encs[2];
static char data_dir[4096];

static const char *shared_root(void)
{
    const char *shared = getenv("TOLLGATE_SHARED");

    return shared != NULL ? shared : "../shared";
}

/* Loads both encodings once, or prints the SKIP line and returns -1. */
static int encodings_setup(void **state)
{
    char path[4200];

    snprintf(data_dir, sizeof(data_dir), "%s" TIKTOKEN_REL, shared_root());
    snprintf(path, sizeof(path), "%s/o200k_base.tiktoken", data_dir);
    if (access(path, R_OK) != 0) {
        printf("SKIP test_tokens: %s missing\n", path);
        return 0;
    }
    assert_int_equal(tokens_load(TOKENS_CL100K, data_dir, &encs[0]), 0);
    assert_int_equal(tokens_load(TOKENS_O200K, data_dir, &encs[1]), 0);
    return 0;
}

static int encodings_teardown(void **state)
{
    tokens_free(encs[0]);
    tokens_free(encs[1]);
    return 0;
}

static const tokens_encoding_t *enc_get(tokens_kind_t kind)
{
    if (encs[kind] == NULL)
        skip();
    return encs[kind];
}

static void vector_check(struct json_object *v)
{
    struct json_object *f;
    tokens_kind_t kind;
    const char *name, *text;
    size_t len, n;
    uint32_t *ids;

    json_object_object_get_ex(v, "encoding", &f);
    assert_int_equal(tokens_kind_parse(json_object_get_string(f), &kind), 0);
    json_object_object_get_ex(v, "name", &f);
    name = json_object_get_string(f);
    json_object_object_get_ex(v, "text", &f);
    text = json_object_get_string(f);
    len = (size_t)json_object_get_string_len(f);
    json_object_object_get_ex(v, "count", &f);

    ids = calloc(len + 1, sizeof(*ids));
    n = tokens_encode(enc_get(kind), text, len, ids, len + 1);
    if ((int64_t)n != json_object_get_int64(f))
        print_error("vector %s (%s): %zu tokens, want %" PRId64 "\n", name,
                    tokens_kind_name(kind), n, json_object_get_int64(f));
    assert_int_equal(n, json_object_get_int64(f));
    assert_int_equal(tokens_count(enc_get(kind), text, len), n);
    if (json_object_object_get_ex(v, "ids", &f))
        for (size_t i = 0; i < n; i++)
            assert_int_equal(
                ids[i], json_object_get_int64(json_object_array_get_idx(f, i)));
    free(ids);
}

static void test_every_golden_vector_equals_tiktoken(void **state)
{
    char path[4200];
    struct json_object *root, *vectors;
    size_t n;

    enc_get(TOKENS_O200K);
    snprintf(path, sizeof(path), "%s/golden_vectors.json", data_dir);
    root = json_object_from_file(path);
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "vectors", &vectors));
    n = json_object_array_length(vectors);
    assert_int_equal(n, 82);
    for (size_t i = 0; i < n; i++)
        vector_check(json_object_array_get_idx(vectors, i));
    json_object_put(root);
}

/* Code points new in Unicode 15.0, 15.1 and 16.0: unassigned (so not
 * letters) in Debian 12's PCRE2 (14.0) and ICU 72 (15.0). */
static void test_unicode16_classes(void **state)
{
    ucd_init();
    assert_int_equal(ucd_class(0x11F04), UCD_OTHER_LETTER); /* Kawi, 15.0 */
    assert_int_equal(ucd_class(0x2EBF0), UCD_OTHER_LETTER); /* CJK I, 15.1 */
    assert_int_equal(ucd_class(0x10D4A), UCD_OTHER_LETTER); /* Garay, 16 */
    assert_int_equal(ucd_class(0x10D40), UCD_NUMBER);       /* Garay digit 0 */
    assert_int_equal(ucd_class(0x1C89), UCD_UPPER);         /* Cyrillic Tje */
    assert_int_equal(ucd_class(0x1C8A), UCD_LOWER);         /* Cyrillic tje */
    assert_int_equal(ucd_class(0xA7CB), UCD_UPPER);         /* Ramshorn */
    assert_int_equal(ucd_class(0x0897), UCD_MARK);          /* Arabic pepet */
    assert_int_equal(ucd_class(0x0085), UCD_SPACE);         /* NEL */
    assert_int_equal(ucd_class(0xFEFF), UCD_OTHER);         /* BOM: not \s */
    assert_int_equal(ucd_class(0x0378), UCD_OTHER);         /* unassigned */
    assert_int_equal(ucd_class(0x10FFFF), UCD_OTHER);
}

/* Each piece of TEXT under KIND's pattern, joined with '|'. */
static void pieces(tokens_kind_t kind, const char *text, char *out)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t n = strlen(text);

    ucd_init();
    out[0] = '\0';
    for (size_t p = 0, e; p < n; p = e) {
        e = kind == TOKENS_O200K ? pretoken_next_o200k(s, n, p)
                                 : pretoken_next_cl100k(s, n, p);
        assert_true(e > p && e <= n);
        if (p > 0)
            strcat(out, "|");
        strncat(out, text + p, e - p);
    }
}

static void test_unicode16_letters_split_as_letters(void **state)
{
    char out[256];

    /* Tje + tje is Upper+lower: one o200k word, with its contraction. */
    pieces(TOKENS_O200K, "\xE1\xB2\x89\xE1\xB2\x8A's x", out);
    assert_string_equal(out, "\xE1\xB2\x89\xE1\xB2\x8A's| x");
    /* Garay letters are letters: " " joins them in cl100k. */
    pieces(TOKENS_CL100K, "a \xF0\x90\xB5\x8A\xF0\x90\xB5\x8B!", out);
    assert_string_equal(out, "a| \xF0\x90\xB5\x8A\xF0\x90\xB5\x8B|!");
    /* Garay digits are \p{N}: at most three per piece. */
    pieces(TOKENS_O200K,
           "\xF0\x90\xB5\x80\xF0\x90\xB5\x81\xF0\x90\xB5\x82"
           "\xF0\x90\xB5\x83",
           out);
    assert_string_equal(out, "\xF0\x90\xB5\x80\xF0\x90\xB5\x81"
                             "\xF0\x90\xB5\x82|\xF0\x90\xB5\x83");
    /* Pepet is a mark: part of an o200k word, punctuation in cl100k. */
    pieces(TOKENS_O200K, "b\xE0\xA2\x97", out);
    assert_string_equal(out, "b\xE0\xA2\x97");
    pieces(TOKENS_CL100K, "b\xE0\xA2\x97", out);
    assert_string_equal(out, "b|\xE0\xA2\x97");
}

static void test_whitespace_rules(void **state)
{
    char out[256];

    pieces(TOKENS_CL100K, "a    b", out);
    assert_string_equal(out, "a|   | b");
    pieces(TOKENS_CL100K, "x\n  ", out);
    assert_string_equal(out, "x|\n  ");
    pieces(TOKENS_O200K, "x\n  ", out);
    assert_string_equal(out, "x|\n|  ");
    pieces(TOKENS_O200K, "a/b\n/c", out);
    assert_string_equal(out, "a|/b|\n|/c");
    pieces(TOKENS_O200K, "!!\n/\nx", out);
    assert_string_equal(out, "!!\n/\n|x");
    pieces(TOKENS_CL100K, "'rer x'S", out);
    assert_string_equal(out, "'re|r| x|'S");
    pieces(TOKENS_O200K, "THEY'RE x'\xC5\xBFt", out);
    assert_string_equal(out, "THEY'RE| x'\xC5\xBF|t");
}

/* tiktoken's encode-bytes rule on input that is not UTF-8. */
static void test_invalid_utf8_counts_bytes(void **state)
{
    const tokens_encoding_t *enc = enc_get(TOKENS_CL100K);
    uint32_t ids[16];
    uint32_t space = enc->byte_rank[' '];

    assert_int_equal(tokens_count(enc, "\xFF", 1), 1);
    assert_int_equal(tokens_encode(enc, "\xFF", 1, ids, 16), 1);
    assert_int_equal(ids[0], enc->byte_rank[0xFF]);

    /* "hello " + FF: the last piece " " is taken back and merged with the
     * bad byte; "hello" stays. */
    assert_int_equal(tokens_encode(enc, "hello \xFF", 7, ids, 16), 3);
    assert_int_equal(ids[0], 15339);
    assert_int_equal(ids[1], space);
    assert_int_equal(ids[2], enc->byte_rank[0xFF]);

    /* A truncated sequence and a surrogate are bytes too; never more
     * tokens than bytes. */
    assert_true(tokens_count(enc, "ab\xE4\xB8", 4) <= 4);
    assert_true(tokens_count(enc, "\xED\xA0\x80z", 4) <= 4);
    assert_int_equal(tokens_count(enc_get(TOKENS_O200K), "\x80\x80", 2), 2);
    /* An overlong NUL and a byte past F4 are not UTF-8 either. */
    assert_true(tokens_count(enc, "a\xC0\x80", 3) <= 3);
    assert_true(tokens_count(enc, "\xF5\x80\x80\x80", 4) <= 4);
}

/* tiktoken's merge written the plain way: rank of every joined pair,
 * lowest first, leftmost on ties. */
static size_t naive_merge(const tokens_encoding_t *enc, const uint8_t *p,
                          size_t n, uint32_t *ids)
{
    size_t *start = calloc(n + 1, sizeof(*start));
    size_t m = n;

    for (size_t i = 0; i <= n; i++)
        start[i] = i;
    for (;;) {
        uint32_t best = RANK_NONE;
        size_t at = 0;

        for (size_t i = 0; i + 1 < m; i++) {
            uint32_t r =
                rank_lookup(enc, p + start[i], start[i + 2] - start[i]);

            if (r < best) {
                best = r;
                at = i;
            }
        }
        if (best == RANK_NONE)
            break;
        memmove(&start[at + 1], &start[at + 2], (m - at - 1) * sizeof(*start));
        m--;
    }
    for (size_t i = 0; i < m; i++)
        ids[i] = rank_lookup(enc, p + start[i], start[i + 1] - start[i]);
    free(start);
    return m;
}

/* Pieces past 128 bytes merge on the heap path; it must give the ids the
 * plain quadratic merge gives. */
static void test_long_piece_merge_equals_plain_merge(void **state)
{
    static const char *const alphabets[] = {
        "ab",
        "abcdefghij",
        "\xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97",
        "0123456789+/=",
        "\xF0\x9F\x91\x8D\xE2\x80\x8D",
    };
    uint8_t piece[600];
    uint32_t got[600], want[600];
    uint32_t seed = 7;

    for (int kind = 0; kind < 2; kind++) {
        const tokens_encoding_t *enc = enc_get((tokens_kind_t)kind);

        for (int t = 0; t < 60; t++) {
            const char *abc = alphabets[t % 5];
            size_t len = strlen(abc), n = 129 + (size_t)(t * 7) % 460;

            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                piece[i] = (uint8_t)abc[(seed >> 16) % len];
            }
            assert_int_equal(bpe_merge(enc, piece, n, got),
                             naive_merge(enc, piece, n, want));
            assert_memory_equal(got, want,
                                naive_merge(enc, piece, n, want) * 4);
        }
    }
}

static int64_t chat_total(tokens_kind_t kind, const char *model,
                          const char *json, tokens_chat_t *out)
{
    /* enc_get() skips the test without the rank files: before the parse,
     * so a skip leaves nothing allocated. */
    const tokens_encoding_t *enc = enc_get(kind);
    struct json_object *req = json_tokener_parse(json);

    assert_non_null(req);
    assert_int_equal(tokens_count_chat(enc, model, req, out), 0);
    json_object_put(req);
    return out->total;
}

/* The example of OpenAI's cookbook "How to count tokens with tiktoken",
 * whose printed counts are 129 (gpt-4, gpt-3.5) and 124 (gpt-4o). */
static const char cookbook[] =
    "{\"messages\":["
    "{\"role\":\"system\",\"content\":\"You are a helpful, "
    "pattern-following assistant that translates corporate jargon into "
    "plain English.\"},"
    "{\"role\":\"system\",\"name\":\"example_user\",\"content\":\"New "
    "synergies will help drive top-line growth.\"},"
    "{\"role\":\"system\",\"name\":\"example_assistant\",\"content\":"
    "\"Things working well together will increase revenue.\"},"
    "{\"role\":\"system\",\"name\":\"example_user\",\"content\":\"Let's "
    "circle back when we have more time to touch base on opportunities "
    "for increased leverage.\"},"
    "{\"role\":\"system\",\"name\":\"example_assistant\",\"content\":"
    "\"Let's talk later when we're less busy about how to do better.\"},"
    "{\"role\":\"user\",\"content\":\"This late pivot means we don't have "
    "time to boil the ocean for the client deliverable.\"}]}";

static void test_chat_overhead_matches_cookbook(void **state)
{
    tokens_chat_t c;

    assert_int_equal(chat_total(TOKENS_CL100K, "gpt-4-0613", cookbook, &c),
                     129);
    assert_int_equal(c.overhead, 6 * 3 + 4 + 3);
    assert_false(c.estimated);
    assert_int_equal(chat_total(TOKENS_O200K, "gpt-4o", cookbook, &c), 124);
    assert_int_equal(c.n_messages, 6);
    /* gpt-3.5-turbo-0301: 4 per message, -1 per name. */
    chat_total(TOKENS_CL100K, "gpt-3.5-turbo-0301", cookbook, &c);
    assert_int_equal(c.overhead, 6 * 4 - 4 + 3);
    assert_int_equal(c.total, 129 + 6 - 8);
}

static void test_chat_parts_surrogates_and_estimates(void **state)
{
    tokens_chat_t c, d;

    /* An empty request still primes the reply. */
    assert_int_equal(
        chat_total(TOKENS_O200K, "gpt-4o", "{\"messages\":[]}", &c), 3);
    /* Text parts count like the same string; an image marks it an
     * estimate. */
    chat_total(TOKENS_O200K, "gpt-4o",
               "{\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}",
               &c);
    chat_total(TOKENS_O200K, "gpt-4o",
               "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"text\",\"text\":\"hi there\"},{\"type\":\"image_url\","
               "\"image_url\":{\"url\":\"x\"}}]}]}",
               &d);
    assert_int_equal(c.total, d.total);
    assert_false(c.estimated);
    assert_true(d.estimated);
    /* A lone surrogate counts as U+FFFD, as Python tiktoken does. */
    chat_total(TOKENS_O200K, "gpt-4o",
               "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud83d\"}]}",
               &c);
    chat_total(TOKENS_O200K, "gpt-4o",
               "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ufffd\"}]}",
               &d);
    assert_int_equal(c.total, d.total);
    /* Claude: o200k count x 1.25, rounded up, flagged. */
    chat_total(TOKENS_O200K, "claude-sonnet-4-5", cookbook, &c);
    assert_int_equal(c.total, (124 * 125 + 99) / 100);
    assert_true(c.estimated);
}

/* Tool definitions: the cookbook's num_tokens_for_tools formula, flagged
 * as an estimate (OpenAI bills them in a hidden format). */
static void test_chat_tools_follow_cookbook_formula(void **state)
{
    const tokens_encoding_t *enc = enc_get(TOKENS_O200K);
    tokens_chat_t c;
    const char *a = "get_weather:Get the weather";
    const char *b = "city:string:City name";

    chat_total(TOKENS_O200K, "gpt-4o",
               "{\"messages\":[],\"tools\":[{\"type\":\"function\","
               "\"function\":{\"name\":\"get_weather\",\"description\":"
               "\"Get the weather.\",\"parameters\":{\"type\":\"object\","
               "\"properties\":{\"city\":{\"type\":\"string\","
               "\"description\":\"City name.\"}}}}}]}",
               &c);
    assert_int_equal(c.tools, 7 + tokens_count(enc, a, strlen(a)) + 3 + 3 +
                                  tokens_count(enc, b, strlen(b)) + 12);
    assert_int_equal(c.total, 3 + c.tools);
    assert_true(c.estimated);
}

static void test_model_picks_encoding(void **state)
{
    tokens_kind_t k;

    assert_true(tokens_model_kind("gpt-4o-mini", &k));
    assert_int_equal(k, TOKENS_O200K);
    assert_true(tokens_model_kind("openai/gpt-4.1", &k));
    assert_int_equal(k, TOKENS_O200K);
    assert_true(tokens_model_kind("gpt-5-nano", &k));
    assert_true(tokens_model_kind("o3-mini", &k));
    assert_true(tokens_model_kind("ft:gpt-4o-2024-08-06:acme::x1", &k));
    assert_int_equal(k, TOKENS_O200K);
    assert_true(tokens_model_kind("gpt-4-turbo", &k));
    assert_int_equal(k, TOKENS_CL100K);
    assert_true(tokens_model_kind("gpt-3.5-turbo-0125", &k));
    assert_int_equal(k, TOKENS_CL100K);
    assert_true(tokens_model_kind("text-embedding-3-small", &k));
    assert_int_equal(k, TOKENS_CL100K);
    assert_false(tokens_model_kind("claude-opus-4-1", &k));
    assert_int_equal(k, TOKENS_O200K);
    assert_false(tokens_model_kind("gemini-2.5-pro", &k));
    assert_int_equal(tokens_estimate("gemini-2.5-pro", 100), 110);
    assert_int_equal(tokens_estimate("mistral-large", 7), 7);
}

static void test_load_checks_hash_and_path(void **state)
{
    char src[4200], tmp[] = "/tmp/test_tokens_XXXXXX";
    char path[64];
    tokens_encoding_t *enc = NULL;
    FILE *f;
    int fd;

    enc_get(TOKENS_O200K);
    snprintf(src, sizeof(src), "%s/cl100k_base.tiktoken", data_dir);
    assert_int_equal(tokens_load_file(TOKENS_O200K, src, &enc), -EBADMSG);

    assert_non_null(mkdtemp(tmp));
    assert_int_equal(tokens_load(TOKENS_CL100K, tmp, &enc), -ENOENT);
    snprintf(path, sizeof(path), "%s/cl100k_base.tiktoken", tmp);
    f = fopen(path, "w");
    fputs("IQ== 0\n", f);
    fclose(f);
    assert_int_equal(tokens_load(TOKENS_CL100K, tmp, &enc), -EBADMSG);
    unlink(path);
    rmdir(tmp);
    (void)fd;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_golden_vector_equals_tiktoken),
        cmocka_unit_test(test_unicode16_classes),
        cmocka_unit_test(test_unicode16_letters_split_as_letters),
        cmocka_unit_test(test_whitespace_rules),
        cmocka_unit_test(test_invalid_utf8_counts_bytes),
        cmocka_unit_test(test_long_piece_merge_equals_plain_merge),
        cmocka_unit_test(test_chat_overhead_matches_cookbook),
        cmocka_unit_test(test_chat_parts_surrogates_and_estimates),
        cmocka_unit_test(test_chat_tools_follow_cookbook_formula),
        cmocka_unit_test(test_model_picks_encoding),
        cmocka_unit_test(test_load_checks_hash_and_path),
    };

    return cmocka_run_group_tests(tests, encodings_setup, encodings_teardown);
}
