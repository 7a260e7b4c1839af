/*
 * Price imports: genai-prices data (match clauses, dated prices, tiers)
 * and the LiteLLM keys added for 1-hour writes, service tiers, tiered
 * pricing and geography, on small inline files and on the shared data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "billing/billing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GENAI_REL "/data/llm-prices/genai-prices/data.json"
#define LITELLM_REL                                                            \
    "/data/llm-prices/litellm/model_prices_and_context_window.json"
#define SEP_2026 INT64_C(1788220800) /* 2026-09-01T00:00:00Z */

static const char small_genai[] =
    "[{\"id\": \"anthropic\", \"model_match\": {\"contains\": \"claude\"},\n"
    "  \"models\": [\n"
    "   {\"id\": \"claude-sonnet-4-5\",\n"
    "    \"match\": {\"or\": [{\"starts_with\": \"claude-sonnet-4-5\"},\n"
    "                       {\"starts_with\": \"claude-sonnet-4.5\"}]},\n"
    "    \"prices\": {\"input_mtok\": {\"base\": 3, \"tiers\":\n"
    "                   [{\"start\": 200000, \"price\": 6}]},\n"
    "      \"cache_write_mtok\": 3.75,\n"
    "      \"cache_write_1h_mtok\": {\"base\": 6, \"tiers\":\n"
    "                   [{\"start\": 200000, \"price\": 12}]},\n"
    "      \"cache_read_mtok\": 0.3, \"output_mtok\": 15,\n"
    "      \"web_searches_kcount\": 10}},\n"
    "   {\"id\": \"claude-sonnet-5\",\n"
    "    \"match\": {\"starts_with\": \"claude-sonnet-5\"},\n"
    "    \"prices\": [{\"prices\": {\"input_mtok\": 2, \"output_mtok\": 10}},\n"
    "      {\"constraint\": {\"start_date\": \"2026-09-01\"},\n"
    "       \"prices\": {\"input_mtok\": 3, \"output_mtok\": 15}}]},\n"
    "   {\"id\": \"two-tiers\", \"match\": {\"equals\": \"two-tiers\"},\n"
    "    \"prices\": {\"input_mtok\": {\"base\": 1, \"tiers\": [\n"
    "      {\"start\": 100, \"price\": 2}, {\"start\": 200, \"price\": 3}]},\n"
    "      \"output_mtok\": 1}},\n"
    "   {\"id\": \"bad-regex\", \"match\": {\"regex\": \"(\"},\n"
    "    \"prices\": {\"input_mtok\": 1, \"output_mtok\": 1}},\n"
    "   {\"id\": \"image-only\", \"match\": {\"equals\": \"image-only\"},\n"
    "    \"prices\": {\"output_mtok\": 30}}]},\n"
    " {\"id\": \"google\", \"model_match\": {\"starts_with\": \"gemini\"},\n"
    "  \"models\": [\n"
    "   {\"id\": \"gemini-3.5-flash\",\n"
    "    \"match\": {\"or\": [{\"equals\": \"gemini-3.5-flash\"},\n"
    "               {\"regex\": \"^gemini-3\\\\.5-flash-\\\\d{3}$\"}]},\n"
    "    \"prices\": {\"input_mtok\": 1.5, \"output_mtok\": 9,\n"
    "                 \"requests_kcount\": 0.5}},\n"
    "   {\"id\": \"embed\", \"match\": {\"ends_with\": \"-embed\"},\n"
    "    \"prices\": {\"input_mtok\": 0.02}},\n"
    "   {\"id\": \"claude-sonnet-4-5\",\n"
    "    \"match\": {\"and\": [{\"contains\": \"vertex\"},\n"
    "                        {\"contains\": \"claude-sonnet-4-5\"}]},\n"
    "    \"prices\": {\"input_mtok\": 3.3, \"output_mtok\": 16.5}}]}]\n";

static const char small_litellm[] =
    "{\"sample_spec\": {\"input_cost_per_token\": 0},\n"
    " \"claude-sonnet-4-5\": {\"litellm_provider\": \"anthropic\",\n"
    "  \"input_cost_per_token\": 3e-06, \"output_cost_per_token\": 1.5e-05,\n"
    "  \"cache_creation_input_token_cost\": 3.75e-06,\n"
    "  \"cache_creation_input_token_cost_above_1hr\": 6e-06,\n"
    "  \"cache_creation_input_token_cost_above_1hr_above_200k_tokens\":"
    " 1.2e-05,\n"
    "  \"cache_read_input_token_cost\": 3e-07,\n"
    "  \"input_cost_per_token_above_200k_tokens\": 6e-06,\n"
    "  \"output_cost_per_token_above_200k_tokens\": 2.25e-05,\n"
    "  \"cache_creation_input_token_cost_above_200k_tokens\": 7.5e-06,\n"
    "  \"cache_read_input_token_cost_above_200k_tokens\": 6e-07,\n"
    "  \"provider_specific_entry\": {\"us\": 1.1, \"fast\": 6.0}},\n"
    " \"gpt-5\": {\"input_cost_per_token\": 1.25e-06,\n"
    "  \"output_cost_per_token\": 1e-05,\n"
    "  \"input_cost_per_token_flex\": 6.25e-07,\n"
    "  \"output_cost_per_token_flex\": 5e-06,\n"
    "  \"input_cost_per_token_batches\": 6.25e-07,\n"
    "  \"input_cost_per_token_above_272k_tokens_priority\": 1e-05,\n"
    "  \"input_cost_per_token_priority\": 2.5e-06,\n"
    "  \"output_cost_per_reasoning_token\": 1e-05,\n"
    "  \"input_cost_per_audio_token\": 3.2e-05,\n"
    "  \"input_cost_per_token_cache_hit\": 1e-07},\n"
    " \"qwen-flash\": {\"input_cost_per_token\": 9e-08,\n"
    "  \"output_cost_per_token\": 9e-07,\n"
    "  \"tiered_pricing\": [\n"
    "   {\"input_cost_per_token\": 5e-08, \"output_cost_per_token\": 4e-07,\n"
    "    \"range\": [0, 256000.0]},\n"
    "   {\"input_cost_per_token\": 2.5e-07, \"output_cost_per_token\": 2e-06,\n"
    "    \"range\": [256000.0, 1000000.0]}]},\n"
    " \"three-ranges\": {\"input_cost_per_token\": 1e-06,\n"
    "  \"output_cost_per_token\": 1e-06, \"tiered_pricing\": [\n"
    "   {\"input_cost_per_token\": 1e-06, \"range\": [0, 10]},\n"
    "   {\"input_cost_per_token\": 2e-06, \"range\": [10, 20]},\n"
    "   {\"input_cost_per_token\": 3e-06, \"range\": [20, 30]}]}}\n";

static void temp_write(char *path, size_t pathlen, const char *text)
{
    const char *dir = getenv("TMPDIR");
    FILE *file;
    int fd;

    snprintf(path, pathlen, "%s/tollgate-prices-XXXXXX",
             dir != NULL ? dir : "/tmp");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    file = fdopen(fd, "w");
    assert_non_null(file);
    assert_true(fputs(text, file) >= 0);
    assert_int_equal(fclose(file), 0);
}

static void reject_count(const char *entry, const char *why, void *arg)
{
    (void)entry;
    assert_true(why[0] != '\0');
    (*(int *)arg)++;
}

static price_table_t *small_import(const char *text, billing_import_t *counts)
{
    price_table_t *table = billing_table_new_empty();
    char path[256], err[256] = "";
    int reasons = 0;

    temp_write(path, sizeof(path), text);
    assert_true(billing_import_file(table, path, counts, reject_count, &reasons,
                                    err, sizeof(err)) >= 0);
    assert_string_equal(err, "");
    assert_int_equal(reasons, counts->rejected);
    unlink(path);
    return table;
}

static void genai_check_sonnet(const price_table_t *table)
{
    const price_t *p = billing_lookup_at(table, "claude-sonnet-4-5", 0);

    assert_non_null(p);
    assert_string_equal(p->provider, "anthropic");
    assert_non_null(strstr(p->origin, "#anthropic/claude-sonnet-4-5"));
    assert_int_equal(p->input, 3000000);
    assert_int_equal(p->tier_threshold, 200000);
    assert_int_equal(p->tier_input, 6000000);
    assert_int_equal(p->cache_write, 3750000);
    assert_int_equal(p->cache_write_1h, 6000000);
    assert_int_equal(p->tier_cache_write_1h, 12000000);
    assert_int_equal(p->tier_cache_write, PRICE_ABSENT);
    assert_int_equal(p->fee_per_web_search, INT64_C(10000000000));

    /* The match clause prices a name no entry has. */
    p = billing_lookup_at(table, "claude-sonnet-4.5-preview", 0);
    assert_non_null(p);
    assert_string_equal(p->model, "anthropic/claude-sonnet-4-5");
    /* The provider a prefix names goes first. */
    p = billing_lookup_at(table, "google/vertex-claude-sonnet-4-5", 0);
    assert_int_equal(p->input, 3300000);
}

static void genai_check_others(const price_table_t *table)
{
    const price_t *p;

    p = billing_lookup_at(table, "claude-sonnet-5-20260101", SEP_2026 - 1);
    assert_int_equal(p->input, 2000000);
    assert_int_equal(p->valid_to, SEP_2026);
    p = billing_lookup_at(table, "claude-sonnet-5", SEP_2026);
    assert_int_equal(p->input, 3000000);
    assert_non_null(strstr(p->origin, "@2026-09-01"));

    p = billing_lookup_at(table, "gemini-3.5-flash-002", 0);
    assert_string_equal(p->model, "google/gemini-3.5-flash");
    assert_int_equal(p->fee_per_request, 500000000); /* $0.5 / 1000 */
    assert_null(billing_lookup_at(table, "gemini-3.5-flash-0021", 0));

    p = billing_lookup_at(table, "text-embed", 0);
    assert_int_equal(p->output, 0);
    assert_null(billing_lookup_at(table, "two-tiers", 0));
    assert_null(billing_lookup_at(table, "image-only", 0));
}

static void test_genai_import_small_file(void **state)
{
    billing_import_t counts = {0};
    price_table_t *table = small_import(small_genai, &counts);

    (void)state;
    assert_int_equal(counts.loaded, 5);
    assert_int_equal(counts.unpriced, 1);
    assert_int_equal(counts.rejected, 2);
    genai_check_sonnet(table);
    genai_check_others(table);
    billing_table_free(table);
}

static void test_litellm_new_keys(void **state)
{
    billing_import_t counts = {0};
    price_table_t *table = small_import(small_litellm, &counts);
    const price_t *p;

    (void)state;
    assert_int_equal(counts.loaded, 3);
    assert_int_equal(counts.rejected, 1);
    p = billing_lookup_at(table, "claude-sonnet-4-5", 0);
    assert_int_equal(p->cache_write_1h, 6000000);
    assert_int_equal(p->tier_cache_write_1h, 12000000);
    assert_int_equal(p->tier_cache_write, 7500000);
    assert_int_equal(p->n_geo, 1);
    assert_string_equal(p->geo[0].name, "us");
    assert_int_equal(p->geo[0].num, 11);
    assert_int_equal(p->geo[0].den, 10);
    assert_string_equal(p->provider, "anthropic");
    assert_string_equal(strchr(p->origin, '#'), "#claude-sonnet-4-5");

    p = billing_lookup_at(table, "gpt-5", 0);
    assert_true(p->flex.present && p->batch.present && p->priority.present);
    assert_int_equal(p->flex.base[RATE_INPUT], 625000);
    assert_int_equal(p->flex.base[RATE_OUTPUT], 5000000);
    assert_int_equal(p->batch.base[RATE_OUTPUT], PRICE_ABSENT);
    assert_int_equal(p->priority.tier[RATE_INPUT], 10000000);
    assert_int_equal(p->tier_threshold, 272000);
    assert_int_equal(p->reasoning_output, 10000000);
    assert_int_equal(p->audio_input, 32000000);

    p = billing_lookup_at(table, "qwen-flash", 0);
    assert_int_equal(p->input, 50000);
    assert_int_equal(p->tier_threshold, 256000);
    assert_int_equal(p->tier_input, 250000);
    assert_int_equal(p->tier_output, 2000000);
    billing_table_free(table);
}

static const char *shared_path(char *path, size_t pathlen, const char *rel)
{
    const char *shared = getenv("TOLLGATE_SHARED");

    snprintf(path, pathlen, "%s%s", shared != NULL ? shared : "../shared", rel);
    if (access(path, R_OK) == 0)
        return path;
    printf("SKIP test_billing_import: %s missing\n", path);
    return NULL;
}

static void real_genai_check(const price_table_t *table)
{
    const price_t *p = billing_lookup_at(table, "claude-sonnet-4-5", SEP_2026);

    assert_string_equal(p->origin,
                        "genai-prices:data.json#anthropic/claude-sonnet-4-5");
    assert_int_equal(p->tier_threshold, 200000);
    assert_int_equal(p->tier_cache_write, 7500000);
    assert_int_equal(p->cache_write_1h, PRICE_ABSENT); /* v1 data */

    p = billing_lookup_at(table, "gemini-2.5-pro", SEP_2026);
    assert_int_equal(p->tier_threshold, 200000);
    assert_int_equal(p->tier_input, 2500000);
    assert_int_equal(p->tier_cached_input, 250000);
    assert_int_equal(p->tier_output, 15000000);

    p = billing_lookup_at(table, "claude-sonnet-4-6", 1773359999);
    assert_int_equal(p->tier_threshold, 200000);
    p = billing_lookup_at(table, "claude-sonnet-4-6", 1773360000);
    assert_int_equal(p->tier_threshold, 0);
    p = billing_lookup_at(table, "o3", 1749513600 - 1); /* 2025-06-10 */
    assert_int_equal(p->input, 10000000);
    p = billing_lookup_at(table, "o3", 1749513600);
    assert_int_equal(p->input, 2000000);

    /* Only a match clause knows this name. (With a date suffix, Google's
     * bare "claude-3-7-sonnet" would be found first, by rule 4.) */
    p = billing_lookup_at(table, "claude-sonnet-3.7-beta", SEP_2026);
    assert_string_equal(p->model, "anthropic/claude-3-7-sonnet-latest");
}

static void test_genai_import_real_file(void **state)
{
    price_table_t *table = billing_table_new_empty();
    billing_import_t counts = {0};
    char path[1024], err[256] = "";

    (void)state;
    if (shared_path(path, sizeof(path), GENAI_REL) == NULL) {
        billing_table_free(table);
        skip();
    }
    assert_true(billing_import_file(table, path, &counts, NULL, NULL, err,
                                    sizeof(err)) > 1000);
    printf("test_billing_import genai: %d loaded, %d unpriced, %d "
           "rejected\n",
           counts.loaded, counts.unpriced, counts.rejected);
    assert_int_equal(counts.loaded + counts.unpriced + counts.rejected, 1442);
    real_genai_check(table);
    billing_table_free(table);
}

static void real_litellm_check(const price_table_t *table)
{
    const price_t *p = billing_lookup_at(table, "claude-sonnet-4-5", SEP_2026);

    assert_int_equal(p->cache_write_1h, 6000000);
    assert_int_equal(p->tier_cache_write_1h, 12000000);
    p = billing_lookup_at(table, "gpt-4o-mini", SEP_2026);
    assert_int_equal(p->batch.base[RATE_INPUT], 75000);
    assert_int_equal(p->batch.base[RATE_OUTPUT], 300000);
    assert_int_equal(p->priority.base[RATE_CACHED], 125000);
    p = billing_lookup_at(table, "claude-opus-4-6", SEP_2026);
    assert_int_equal(p->geo[0].num, 11);
    p = billing_lookup_at(table, "dashscope/qwen-flash", SEP_2026);
    assert_int_equal(p->tier_threshold, 256000);
}

/* Both files and the built-ins in one table, as a gateway loads them:
 * the imports win, and their disagreements can be listed. */
static void test_both_real_files_and_disagreements(void **state)
{
    price_table_t *table = billing_table_new();
    char genai[1024], litellm[1024], err[256] = "";
    const price_t *p;
    usage_t u = {.present = true, .input_tokens = 1000, .output_tokens = 10};

    (void)state;
    if (shared_path(genai, sizeof(genai), GENAI_REL) == NULL ||
        shared_path(litellm, sizeof(litellm), LITELLM_REL) == NULL) {
        billing_table_free(table);
        skip();
    }
    assert_true(billing_load_litellm(table, genai, err, sizeof(err)) > 0);
    assert_true(billing_load_litellm(table, litellm, err, sizeof(err)) > 0);
    real_litellm_check(table);

    /* Later file wins at the same rank; the built-in stays listed. */
    p = billing_lookup_at(table, "gpt-4o", SEP_2026);
    assert_string_equal(p->source,
                        "litellm:model_prices_and_context_window.json");
    assert_int_equal(billing_cost(p, &u).total, INT64_C(2600000000));
    assert_int_equal(
        billing_disagreements(table, "gpt-4o", SEP_2026, NULL, NULL), 0);
    /* LiteLLM's sonnet-5 is the introductory price, the built-in is not. */
    assert_true(billing_disagreements(table, "claude-sonnet-5", SEP_2026, NULL,
                                      NULL) > 0);
    billing_table_free(table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_genai_import_small_file),
        cmocka_unit_test(test_litellm_new_keys),
        cmocka_unit_test(test_genai_import_real_file),
        cmocka_unit_test(test_both_real_files_and_disagreements),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
