/*
 * Config loading from YAML files written to a temporary directory: every
 * field of a full config, the defaults, ${VAR} expansion, paths taken from
 * the config's directory, and each error with its FILE:LINE.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "config/config.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHA_ALICE                                                              \
    "099295a3784e1bd368dc348843a7398c1931b6b8ec2504c73e91ed2040bdc46c"
#define SHA_BOB                                                                \
    "36c76b48bb2ee1d9d37140550e9d7ed7d395cf56f41050dc2a72e5291c0011f0"

/* Seven lines that make a loadable config; tests append from line 8. */
#define BASE                                                                   \
    "providers:\n"                                                             \
    "  - name: sim\n"                                                          \
    "    kind: openai-compatible\n"                                            \
    "    base_url: http://127.0.0.1:9/v1\n"                                    \
    "models:\n"                                                                \
    "  - name: m\n"                                                            \
    "    provider: sim\n"

static char dir[PATH_MAX];
static char path[PATH_MAX + 32];
static char *errors;     /* what config_load printed, from a memstream */
static config_t *config; /* the last config loaded, freed by teardown */

static int remove_entry(const char *p, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    return remove(p);
}

static int dir_setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/tollgate-config-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    setenv("TG_TEST_DIR", "/var/tg", 1);
    setenv("TG_TEST_EMPTY", "", 1);
    setenv("TG_TEST_ADMIN", "admin-secret", 1);
    setenv("TG_TEST_OPENAI_KEY", "sk-openai", 1);
    unsetenv("TG_TEST_UNSET");
    return 0;
}

static int dir_teardown(void **state)
{
    config_free(config);
    config = NULL;
    free(errors);
    errors = NULL;
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *file, const char *text)
{
    FILE *f = fopen(file, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Loads the config at file; its messages land in `errors`. */
static config_t *load_file(const char *file, int *n_errors)
{
    size_t size = 0;
    FILE *err;

    free(errors);
    errors = NULL;
    err = open_memstream(&errors, &size);
    assert_non_null(err);
    config_free(config);
    config = config_load(file, err, n_errors);
    fclose(err);
    return config;
}

static config_t *load(const char *yaml, int *n_errors)
{
    snprintf(path, sizeof(path), "%s/tollgate.yaml", dir);
    write_file(path, yaml);
    return load_file(path, n_errors);
}

/* Writes into out the messages config_load should print: want holds
 * "LINE: message" lines, each printed as "PATH:LINE: message", in line
 * order (config_load sorts its errors by line; ties keep their order).
 * Returns the number of lines. */
static int expected_text(const char *want, char *out, size_t size)
{
    const char *line[64];
    size_t len[64];
    int lines = 0;
    size_t o = 0;

    for (const char *s = want; *s != '\0';) {
        const char *nl = strchr(s, '\n');

        assert_true(lines < 64);
        line[lines] = s;
        len[lines] = nl ? (size_t)(nl - s) : strlen(s);
        lines++;
        s += (nl ? (size_t)(nl - s) : strlen(s)) + (nl != NULL);
    }
    /* Insertion sort: stable, and the lists are short. */
    for (int i = 1; i < lines; i++) {
        for (int j = i; j > 0 && atoi(line[j - 1]) > atoi(line[j]); j--) {
            const char *tl = line[j];
            size_t tn = len[j];

            line[j] = line[j - 1];
            len[j] = len[j - 1];
            line[j - 1] = tl;
            len[j - 1] = tn;
        }
    }
    out[0] = '\0';
    for (int i = 0; i < lines; i++) {
        o += (size_t)snprintf(out + o, size - o, "%s:%.*s\n", path, (int)len[i],
                              line[i]);
        assert_true(o < size);
    }
    return lines;
}

/* The config must fail with exactly these messages, in line order. */
static void expect_errors(const char *yaml, const char *want)
{
    char expected[8192];
    int lines, n = -1;

    snprintf(path, sizeof(path), "%s/tollgate.yaml", dir);
    lines = expected_text(want, expected, sizeof(expected));
    if (load(yaml, &n) != NULL)
        fail_msg("loaded a config that should fail:\n%s", yaml);
    if (strcmp(errors, expected) != 0)
        fail_msg("errors differ.\nwant:\n%sgot:\n%s", expected, errors);
    assert_int_equal(n, lines);
}

static const char FULL[] = "listen: 0.0.0.0:9090\n"
                           "ledger: data/ledger.db\n"
                           "ledger_queue: 100\n"
                           "max_body_bytes: 1000\n"
                           "max_response_bytes: 2000\n"
                           "connect_timeout_ms: 1\n"
                           "first_byte_timeout_ms: 2\n"
                           "total_timeout_ms: 3\n"
                           "drain_timeout_ms: 0\n"
                           "admin_key_env: TG_TEST_ADMIN\n"
                           "log_level: debug\n"
                           "prices:\n"
                           "  - prices/a.json\n"
                           "  - /abs/b.json\n"
                           "providers:\n"
                           "  - name: openai\n"
                           "    kind: openai\n"
                           "    base_url: https://api.openai.com/v1//\n"
                           "    api_key_env: TG_TEST_OPENAI_KEY\n"
                           "  - name: local\n"
                           "    kind: openai-compatible\n"
                           "    base_url: http://127.0.0.1:9/v1\n"
                           "models:\n"
                           "  - name: fast\n"
                           "    provider: openai\n"
                           "    upstream: gpt-4o-mini\n"
                           "    tier: 1\n"
                           "    price:\n"
                           "      input: 0.15\n"
                           "      cached_input: \"0.075\"\n"
                           "      output: 0.60\n"
                           "  - name: llama\n"
                           "    provider: local\n"
                           "    price_entry: llama-3-8b\n"
                           "keys:\n"
                           "  - name: alice\n"
                           "    sha256: " SHA_ALICE "\n"
                           "    team: research\n"
                           "    owner: alice@example.com\n"
                           "    default_task: chat\n";

static char *in_dir(const char *rel)
{
    static char out[PATH_MAX + 64];

    snprintf(out, sizeof(out), "%s/%s", dir, rel);
    return out;
}

static void expect_full_settings(const config_t *cfg)
{
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 9090);
    assert_string_equal(cfg->ledger_path, in_dir("data/ledger.db"));
    assert_int_equal(cfg->ledger_queue, 100);
    assert_int_equal(cfg->max_body_bytes, 1000);
    assert_int_equal(cfg->max_response_bytes, 2000);
    assert_int_equal(cfg->connect_timeout_ms, 1);
    assert_int_equal(cfg->first_byte_timeout_ms, 2);
    assert_int_equal(cfg->total_timeout_ms, 3);
    assert_int_equal(cfg->drain_timeout_ms, 0);
    assert_string_equal(cfg->admin_key_env, "TG_TEST_ADMIN");
    assert_string_equal(cfg->admin_key, "admin-secret");
    assert_string_equal(cfg->log_level, "debug");
    assert_int_equal(cfg->n_price_files, 2);
    assert_string_equal(cfg->price_files[0], in_dir("prices/a.json"));
    assert_string_equal(cfg->price_files[1], "/abs/b.json");
}

static void expect_full_providers(const config_t *cfg)
{
    const cfg_provider_t *p = cfg->providers;

    assert_int_equal(cfg->n_providers, 2);
    assert_string_equal(p[0].name, "openai");
    assert_string_equal(p[0].kind, "openai");
    assert_string_equal(p[0].base_url, "https://api.openai.com/v1");
    assert_string_equal(p[0].api_key_env, "TG_TEST_OPENAI_KEY");
    assert_string_equal(p[0].api_key, "sk-openai");
    assert_int_equal(p[0].line, 16);
    assert_string_equal(p[1].name, "local");
    assert_string_equal(p[1].kind, "openai-compatible");
    assert_string_equal(p[1].base_url, "http://127.0.0.1:9/v1");
    assert_null(p[1].api_key_env);
    assert_null(p[1].api_key);
    assert_int_equal(p[1].line, 20);
}

static void expect_full_models(const config_t *cfg)
{
    const cfg_model_t *m = cfg->models;

    assert_int_equal(cfg->n_models, 2);
    assert_string_equal(m[0].name, "fast");
    assert_ptr_equal(m[0].provider, &cfg->providers[0]);
    assert_string_equal(m[0].upstream, "gpt-4o-mini");
    assert_int_equal(m[0].tier, 1);
    assert_null(m[0].price_entry);
    assert_true(m[0].has_price);
    assert_int_equal(m[0].price.input, 150000);
    assert_int_equal(m[0].price.cached_input, 75000);
    assert_int_equal(m[0].price.output, 600000);
    assert_int_equal(m[0].price.cache_write, PRICE_ABSENT);
    assert_int_equal(m[0].price.reasoning_output, PRICE_ABSENT);
    assert_string_equal(m[0].price.model, "fast");
    assert_string_equal(m[0].price.source, "config");
    assert_string_equal(m[0].price.origin, "config#fast");
    assert_int_equal(m[0].price.cache_write_1h, PRICE_ABSENT);
    assert_int_equal(m[0].price.layout, PRICE_LAYOUT);
    assert_int_equal(m[0].line, 24);

    assert_string_equal(m[1].name, "llama");
    assert_ptr_equal(m[1].provider, &cfg->providers[1]);
    assert_string_equal(m[1].upstream, "llama");
    assert_int_equal(m[1].tier, 0);
    assert_string_equal(m[1].price_entry, "llama-3-8b");
    assert_false(m[1].has_price);
    assert_int_equal(m[1].line, 32);

    assert_ptr_equal(config_find_model(cfg, "fast"), &m[0]);
    assert_ptr_equal(config_find_model(cfg, "llama"), &m[1]);
    assert_null(config_find_model(cfg, "gpt-4o-mini"));
}

static void digest_of(const char *secret, unsigned char digest[32])
{
    char hex[65];

    config_hash_secret(secret, strlen(secret), hex);
    for (int i = 0; i < 32; i++) {
        unsigned int byte;

        assert_int_equal(sscanf(hex + 2 * i, "%2x", &byte), 1);
        digest[i] = (unsigned char)byte;
    }
}

static void expect_full_keys(const config_t *cfg)
{
    const cfg_key_t *k = cfg->keys;
    unsigned char digest[32];

    assert_int_equal(cfg->n_keys, 1);
    assert_string_equal(k[0].name, "alice");
    assert_string_equal(k[0].team, "research");
    assert_string_equal(k[0].owner, "alice@example.com");
    assert_string_equal(k[0].default_task, "chat");
    assert_int_equal(k[0].line, 36);
    digest_of("sk-alice", digest);
    assert_memory_equal(k[0].sha256, digest, 32);
    assert_ptr_equal(config_find_key(cfg, digest), &k[0]);
    digest_of("sk-bob", digest);
    assert_null(config_find_key(cfg, digest));
}

static void test_config_loads_every_field(void **state)
{
    int n = -1;
    const config_t *cfg = load(FULL, &n);

    if (cfg == NULL)
        fail_msg("config failed:\n%s", errors);
    assert_int_equal(n, 0);
    assert_string_equal(errors, "");
    assert_string_equal(cfg->path, path);
    expect_full_settings(cfg);
    expect_full_providers(cfg);
    expect_full_models(cfg);
    expect_full_keys(cfg);
}

static void test_config_defaults(void **state)
{
    int n = -1;
    const config_t *cfg = load(BASE, &n);

    assert_non_null(cfg);
    assert_int_equal(n, 0);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    {
        char want[PATH_MAX + 16];

        /* Like an explicit relative path, beside the config file. */
        snprintf(want, sizeof(want), "%s/tollgate.db", dir);
        assert_string_equal(cfg->ledger_path, want);
    }
    assert_int_equal(cfg->ledger_queue, 65536);
    assert_int_equal(cfg->max_body_bytes, 4 * 1024 * 1024);
    assert_int_equal(cfg->max_response_bytes, 64 * 1024 * 1024);
    assert_int_equal(cfg->connect_timeout_ms, 10000);
    assert_int_equal(cfg->first_byte_timeout_ms, 300000);
    assert_int_equal(cfg->total_timeout_ms, 600000);
    assert_int_equal(cfg->drain_timeout_ms, 30000);
    assert_null(cfg->admin_key_env);
    assert_null(cfg->admin_key);
    assert_string_equal(cfg->log_level, "info");
    assert_int_equal(cfg->n_price_files, 0);
    assert_int_equal(cfg->n_keys, 0);
    assert_int_equal(cfg->n_providers, 1);
    assert_int_equal(cfg->n_models, 1);
    assert_string_equal(cfg->models[0].upstream, "m");
    assert_false(cfg->models[0].has_price);
}

static void test_config_admin_key_from_an_empty_variable_is_unset(void **state)
{
    int n = -1;
    const config_t *cfg = load(BASE "admin_key_env: TG_TEST_EMPTY\n", &n);

    assert_non_null(cfg);
    assert_null(cfg->admin_key);
    cfg = load(BASE "admin_key_env: TG_TEST_UNSET\n", &n);
    assert_non_null(cfg);
    assert_null(cfg->admin_key);
}

static void test_config_expands_environment_in_paths(void **state)
{
    int n = -1;
    const config_t *cfg =
        load(BASE "ledger: ${TG_TEST_DIR}/ledger.db\n"
                  "prices:\n"
                  "  - ${TG_TEST_UNSET:-fallback}/p.json\n"
                  "  - ${TG_TEST_EMPTY:-empty-default}.json\n"
                  "  - ${TG_TEST_DIR:-/ignored}/x${TG_TEST_UNSET:-}.json\n"
                  "  - $TG_TEST_DIR/raw.json\n"
                  "  - ${TG_TEST_DIR\n"
                  "  - ${TG_TEST_DIR}${TG_TEST_DIR}\n",
             &n);

    if (cfg == NULL)
        fail_msg("config failed:\n%s", errors);
    assert_string_equal(cfg->ledger_path, "/var/tg/ledger.db");
    assert_int_equal(cfg->n_price_files, 6);
    assert_string_equal(cfg->price_files[0], in_dir("fallback/p.json"));
    assert_string_equal(cfg->price_files[1], in_dir("empty-default.json"));
    assert_string_equal(cfg->price_files[2], "/var/tg/x.json");
    /* Only the braced form is expanded. */
    assert_string_equal(cfg->price_files[3], in_dir("$TG_TEST_DIR/raw.json"));
    assert_string_equal(cfg->price_files[4], in_dir("${TG_TEST_DIR"));
    assert_string_equal(cfg->price_files[5], "/var/tg/var/tg");
}

static void test_config_takes_a_single_prices_file(void **state)
{
    int n = -1;
    const config_t *cfg = load(BASE "prices: p/litellm.json\n", &n);

    assert_non_null(cfg);
    assert_int_equal(cfg->n_price_files, 1);
    assert_string_equal(cfg->price_files[0], in_dir("p/litellm.json"));
}

static void test_config_paths_are_relative_to_its_directory(void **state)
{
    char sub[PATH_MAX + 16], file[PATH_MAX + 32], cwd[PATH_MAX];
    int n = -1;
    const config_t *cfg;

    snprintf(sub, sizeof(sub), "%s/etc", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(file, sizeof(file), "%s/tollgate.yaml", sub);
    write_file(file, BASE "ledger: ../var/l.db\nprices: [p.json, /p.json]\n");
    cfg = load_file(file, &n);
    assert_non_null(cfg);
    assert_string_equal(cfg->ledger_path, in_dir("etc/../var/l.db"));
    assert_string_equal(cfg->price_files[0], in_dir("etc/p.json"));
    assert_string_equal(cfg->price_files[1], "/p.json");

    /* A config named without a directory leaves paths as written. */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(sub), 0);
    cfg = load_file("tollgate.yaml", &n);
    assert_int_equal(chdir(cwd), 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->ledger_path, "../var/l.db");
    assert_string_equal(cfg->price_files[0], "p.json");
}

static void test_config_hash_secret_is_sha256_hex(void **state)
{
    char hex[65];

    config_hash_secret("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
    config_hash_secret("sk-alice", 8, hex);
    assert_string_equal(hex, SHA_ALICE);
}

static void test_config_error_unknown_setting(void **state)
{
    expect_errors(BASE "lisen: 127.0.0.1:1\n", "8: unknown setting 'lisen'");
}

static void test_config_error_listen(void **state)
{
    expect_errors(BASE "listen: localhost\n",
                  "8: listen must be HOST:PORT, such as 127.0.0.1:8080");
    expect_errors(BASE "listen: \"h:70000\"\n",
                  "8: listen must be HOST:PORT, such as 127.0.0.1:8080");
    expect_errors(BASE "listen: \"h:80x\"\n",
                  "8: listen must be HOST:PORT, such as 127.0.0.1:8080");
    expect_errors(BASE "listen: [a, b]\n", "8: listen must be a single value");
}

static void test_config_error_numbers_out_of_range(void **state)
{
    expect_errors(BASE "ledger_queue: 0\n",
                  "8: ledger_queue must be a whole number from 1 to "
                  "10000000, not '0'");
    expect_errors(BASE "drain_timeout_ms: -1\n",
                  "8: drain_timeout_ms must be a whole number from 0 to "
                  "2147483647, not '-1'");
    expect_errors(BASE "max_body_bytes: 1.5\n",
                  "8: max_body_bytes must be a whole number from 1 to "
                  "2147483647, not '1.5'");
    expect_errors(BASE "\n\ntotal_timeout_ms: 99999999999999999999\n",
                  "10: total_timeout_ms must be a whole number from 1 to "
                  "2147483647, not '99999999999999999999'");
    expect_errors(BASE "connect_timeout_ms: {a: 1}\n",
                  "8: connect_timeout_ms must be a single value");
}

static void test_config_error_providers(void **state)
{
    expect_errors(
        "providers:\n"
        "  - name: a\n"
        "    kind: bedrock\n"
        "    base_url: ftp://x\n"
        "  - kind: openai\n"
        "    base_url: http://x\n"
        "    api_key_env: TG_TEST_UNSET\n"
        "    colour: red\n"
        "  - name: c\n"
        "models:\n"
        "  - name: m\n"
        "    provider: a\n",
        "2: provider kind 'bedrock' is not supported (expected openai, "
        "openai-compatible, azure, gemini or anthropic)\n"
        "2: base_url must start with http:// or https://\n"
        "8: unknown provider key 'colour' (expected name, kind, base_url, "
        "api_key_env, api_version)\n"
        "5: provider needs a name\n"
        "5: provider '?' takes its key from $TG_TEST_UNSET, which is not "
        "set\n"
        "9: provider needs a kind (openai, openai-compatible, azure, gemini "
        "or anthropic)\n"
        "9: provider needs a base_url");
}

static void test_config_error_models(void **state)
{
    expect_errors(BASE "  - name: m\n"
                       "    provider: nosuch\n"
                       "  - provider: sim\n"
                       "    tier: 101\n"
                       "    flavour: x\n"
                       "  - name: p\n"
                       "    provider: sim\n"
                       "    price:\n"
                       "      input: abc\n"
                       "      output_tokens: 1\n"
                       "  - name: q\n",
                  "8: model 'm' names provider 'nosuch', which is not "
                  "configured\n"
                  "11: tier must be a whole number from 0 to 100, not "
                  "'101'\n"
                  "12: unknown model key 'flavour' (expected name, provider, "
                  "upstream, tier, price, price_entry, max_tokens)\n"
                  "10: model needs a name\n"
                  "16: price input 'abc' is not a decimal number of USD per "
                  "million tokens (at most $1000 a token)\n"
                  "17: unknown price key 'output_tokens' (expected input, "
                  "cached_input, cache_write, cache_write_1h, output, "
                  "reasoning_output, audio_input, audio_output, "
                  "long_context_threshold, long_context_input, "
                  "long_context_cached_input, long_context_cache_write, "
                  "long_context_cache_write_1h, long_context_output, "
                  "web_search_per_1k, per_request)\n"
                  "13: model 'p' price needs at least input and output\n"
                  "18: model 'q' needs a provider\n"
                  "8: model 'm' is configured twice (first at line 6)");
}

static void test_config_error_price_not_a_mapping(void **state)
{
    expect_errors(BASE "    price: 0.15\n",
                  "8: price must be a mapping of keys to values\n"
                  "6: model 'm' price needs at least input and output");
}

static void test_config_error_keys(void **state)
{
    expect_errors(BASE "keys:\n"
                       "  - name: a\n"
                       "    sha256: " SHA_ALICE "\n"
                       "  - name: b\n"
                       "    sha256: " SHA_ALICE "\n"
                       "  - name: c\n"
                       "    sha256: abc\n"
                       "  - sha256: " SHA_BOB "\n"
                       "    secret: sk-x\n",
                  "14: sha256 must be 64 hex characters (make it with: "
                  "tollgate hash-key)\n"
                  "13: key 'c' needs a sha256\n"
                  "16: keys are stored as sha256, never in clear; hash the "
                  "secret with: tollgate hash-key\n"
                  "15: key needs a name\n"
                  "11: key 'b' has the same sha256 as key at line 9");
}

static void test_config_error_key_fields(void **state)
{
    /* A 64-character value that is not hex, and an unknown field. */
    expect_errors(BASE "keys:\n"
                       "  - name: e\n"
                       "    sha256: " SHA_BOB "\n"
                       "    colour: x\n"
                       "  - name: f\n"
                       "    sha256: "
                       "zz9295a3784e1bd368dc348843a7398c1931b6b8ec2504c73e91e"
                       "d2040bdc46c\n",
                  "11: unknown key field 'colour' (expected name, sha256, "
                  "team, owner, default_task)\n"
                  "13: sha256 must be 64 hex characters (make it with: "
                  "tollgate hash-key)\n"
                  "12: key 'f' needs a sha256");
}

static void test_config_keys_without_a_hash_are_not_duplicates(void **state)
{
    /* Two keys that both lack a sha256 are two errors each, not a claim
     * that they share a hash. */
    expect_errors(BASE "keys:\n"
                       "  - name: a\n"
                       "  - name: b\n",
                  "9: key 'a' needs a sha256\n"
                  "10: key 'b' needs a sha256");
}

static void test_config_error_lists(void **state)
{
    expect_errors("providers: sim\n"
                  "models:\n"
                  "  - name: m\n"
                  "    provider: sim\n",
                  "1: providers must be a list\n"
                  "3: model 'm' names provider 'sim', which is not "
                  "configured");
    expect_errors(BASE "keys: {a: 1}\n", "8: keys must be a list");
    expect_errors(BASE "prices: {a: 1}\n",
                  "8: prices must be a file or a list of files");
}

static void test_config_error_document_shape(void **state)
{
    expect_errors("- a\n- b\n",
                  "1: the config must be a mapping of keys to values\n"
                  "1: no models are configured");
    expect_errors("listen: 127.0.0.1:1\n", "1: no models are configured");
}

static void test_config_error_empty_file_says_so(void **state)
{
    expect_errors("", "1: the file is empty");
    expect_errors("# only a comment\n", "1: the file is empty");
}

static void test_config_error_unset_variable_in_ledger(void **state)
{
    expect_errors(BASE "ledger: ${TG_TEST_UNSET}/l.db\n",
                  "8: environment variable TG_TEST_UNSET is not set");
}

static void test_config_error_unset_variable_in_prices_item(void **state)
{
    expect_errors(BASE "prices:\n"
                       "  - a.json\n"
                       "  - ${TG_TEST_UNSET}/b.json\n",
                  "10: environment variable TG_TEST_UNSET is not set");
}

static void test_config_error_log_level_names_its_line(void **state)
{
    expect_errors(BASE "log_level: loud\n",
                  "8: log_level 'loud' is not one of error, warn, info, "
                  "debug");
}

/* Loads the config in a child process, so that a crash in the loader
 * fails this test rather than ending the run. No cmocka calls in the
 * child: its failure is its exit status. */
static void expect_errors_in_child(const char *yaml, const char *want)
{
    char expected[8192];
    pid_t pid;
    int status = 0;

    snprintf(path, sizeof(path), "%s/tollgate.yaml", dir);
    write_file(path, yaml);
    expected_text(want, expected, sizeof(expected));
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *got = NULL;
        size_t size = 0;
        int n = -1;
        FILE *err = open_memstream(&got, &size);
        config_t *cfg = config_load(path, err, &n);
        bool same;

        fclose(err);
        same = cfg == NULL && strcmp(got, expected) == 0;
        if (!same)
            fprintf(stderr, "want:\n%sgot:\n%s", expected, got);
        _exit(same ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the loader crashed or failed (wait status %d)", status);
}

static void test_config_error_log_level_not_a_value(void **state)
{
    expect_errors_in_child(BASE "log_level: [debug]\n",
                           "8: log_level must be a single value");
}

static void test_config_error_list_item_not_a_mapping(void **state)
{
    expect_errors(BASE "  - fast\n",
                  "8: a model must be a mapping of keys to values\n"
                  "8: model needs a name\n"
                  "8: model '?' needs a provider");
}

static void test_config_models_may_come_before_providers(void **state)
{
    int n = -1;
    const config_t *cfg = load("models:\n"
                               "  - name: m\n"
                               "    provider: sim\n"
                               "providers:\n"
                               "  - name: sim\n"
                               "    kind: openai\n"
                               "    base_url: http://127.0.0.1:9\n",
                               &n);

    if (cfg == NULL)
        fail_msg("config failed:\n%s", errors);
    assert_ptr_equal(cfg->models[0].provider, &cfg->providers[0]);
}

static void test_config_error_yaml_syntax_names_its_line(void **state)
{
    int n = -1;
    char want[PATH_MAX + 64];

    assert_null(load(BASE "listen: [127.0.0.1:1\n", &n));
    assert_int_equal(n, 1);
    /* The bracket opens on line 8; the parser notices at line 9. */
    snprintf(want, sizeof(want), "%s:8:", path);
    if (strstr(errors, want) != NULL)
        return;
    snprintf(want, sizeof(want), "%s:9:", path);
    if (strstr(errors, want) == NULL)
        fail_msg("no line in: %s", errors);
}

static void test_config_error_missing_file(void **state)
{
    int n = -1;

    snprintf(path, sizeof(path), "%s/absent.yaml", dir);
    assert_null(load_file(path, &n));
    assert_int_equal(n, 1);
    assert_non_null(strstr(errors, path));
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, dir_setup, dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_config_loads_every_field),
        TEST(test_config_defaults),
        TEST(test_config_admin_key_from_an_empty_variable_is_unset),
        TEST(test_config_expands_environment_in_paths),
        TEST(test_config_takes_a_single_prices_file),
        TEST(test_config_paths_are_relative_to_its_directory),
        TEST(test_config_hash_secret_is_sha256_hex),
        TEST(test_config_error_unknown_setting),
        TEST(test_config_error_listen),
        TEST(test_config_error_numbers_out_of_range),
        TEST(test_config_error_providers),
        TEST(test_config_error_models),
        TEST(test_config_error_price_not_a_mapping),
        TEST(test_config_error_keys),
        TEST(test_config_error_key_fields),
        TEST(test_config_keys_without_a_hash_are_not_duplicates),
        TEST(test_config_error_lists),
        TEST(test_config_error_document_shape),
        TEST(test_config_error_empty_file_says_so),
        TEST(test_config_error_unset_variable_in_ledger),
        TEST(test_config_error_unset_variable_in_prices_item),
        TEST(test_config_error_log_level_names_its_line),
        TEST(test_config_error_log_level_not_a_value),
        TEST(test_config_error_list_item_not_a_mapping),
        TEST(test_config_models_may_come_before_providers),
        TEST(test_config_error_yaml_syntax_names_its_line),
        TEST(test_config_error_missing_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
