/*
 * `tollgate keys` and `tollgate approve`: the operator's commands on the
 * key and approval stores in the ledger file. They write the stores
 * directly; a running gateway picks the changes up (keys on its next
 * reload, approvals on the next check, which reads the store).
 */
#include "admin/admin.h"
#include "admin/internal.h"

#include "config/config.h"
#include "util/clock.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli {
    const char *cmd; /* for messages: "keys create", "approve" */
    const char *config_path, *ledger_path;
    const char *name, *team, *owner, *task, *expires;
    const char *by, *until, *note;
    bool json, standing, deny, list, pending, help;
    const char *arg; /* the one positional argument */
    config_t *config;
    const char *ledger; /* resolved */
    int64_t now_ms;
} cli_t;

enum {
    OPT_CONFIG = 'c',
    OPT_LEDGER = 'l',
    OPT_HELP = 'h',
    OPT_NAME = 256,
    OPT_TEAM,
    OPT_OWNER,
    OPT_TASK,
    OPT_EXPIRES,
    OPT_JSON,
    OPT_BY,
    OPT_STANDING,
    OPT_UNTIL,
    OPT_DENY,
    OPT_NOTE,
    OPT_LIST,
    OPT_PENDING
};

static const struct option keys_options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"ledger", required_argument, NULL, OPT_LEDGER},
    {"name", required_argument, NULL, OPT_NAME},
    {"team", required_argument, NULL, OPT_TEAM},
    {"owner", required_argument, NULL, OPT_OWNER},
    {"task", required_argument, NULL, OPT_TASK},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static const struct option approve_options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"ledger", required_argument, NULL, OPT_LEDGER},
    {"by", required_argument, NULL, OPT_BY},
    {"standing", no_argument, NULL, OPT_STANDING},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"deny", no_argument, NULL, OPT_DENY},
    {"note", required_argument, NULL, OPT_NOTE},
    {"list", no_argument, NULL, OPT_LIST},
    {"pending", no_argument, NULL, OPT_PENDING},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static const char keys_usage[] =
    "usage: tollgate keys create --config FILE --name NAME [--team T]\n"
    "                            [--owner O] [--task T] [--expires TIME]\n"
    "       tollgate keys list --config FILE [--json]\n"
    "       tollgate keys revoke ID|NAME --config FILE\n"
    "       tollgate keys rotate ID|NAME --config FILE\n"
    "--ledger FILE may stand for --config FILE. TIME: 2027-01-31 (UTC\n"
    "midnight), 2027-01-31T09:00Z, or a span ahead (30d, 12h).\n";

static const char approve_usage[] =
    "usage: tollgate approve ID --config FILE --by NAME\n"
    "       tollgate approve ID --config FILE --by NAME --standing "
    "--until TIME\n"
    "       tollgate approve ID --config FILE --by NAME --deny "
    "[--note TEXT]\n"
    "       tollgate approve --list --config FILE [--pending] [--json]\n"
    "       tollgate approvals list --config FILE [--pending] [--json]\n"
    "--ledger FILE may stand for --config FILE. TIME: 2027-01-31 (UTC\n"
    "midnight), 2027-01-31T09:00Z, or a span ahead (30d).\n";

/* Where each option lands in cli_t: a string, or a flag set to true. */
static const struct {
    int opt;
    size_t offset;
    bool flag;
} option_slots[] = {
    {OPT_CONFIG, offsetof(cli_t, config_path), false},
    {OPT_LEDGER, offsetof(cli_t, ledger_path), false},
    {OPT_NAME, offsetof(cli_t, name), false},
    {OPT_TEAM, offsetof(cli_t, team), false},
    {OPT_OWNER, offsetof(cli_t, owner), false},
    {OPT_TASK, offsetof(cli_t, task), false},
    {OPT_EXPIRES, offsetof(cli_t, expires), false},
    {OPT_BY, offsetof(cli_t, by), false},
    {OPT_UNTIL, offsetof(cli_t, until), false},
    {OPT_NOTE, offsetof(cli_t, note), false},
    {OPT_JSON, offsetof(cli_t, json), true},
    {OPT_STANDING, offsetof(cli_t, standing), true},
    {OPT_DENY, offsetof(cli_t, deny), true},
    {OPT_LIST, offsetof(cli_t, list), true},
    {OPT_PENDING, offsetof(cli_t, pending), true},
};

static void set_option(cli_t *cli, int c, const char *value)
{
    char *base = (char *)cli;

    for (size_t i = 0; i < sizeof(option_slots) / sizeof(option_slots[0]);
         i++) {
        if (option_slots[i].opt != c)
            continue;
        if (option_slots[i].flag)
            *(bool *)(base + option_slots[i].offset) = true;
        else
            *(const char **)(base + option_slots[i].offset) = value;
    }
}

/* Reads argv (argv[0] names the command). Returns 0 (with help set
 * after printing the usage for --help), or 2 after a usage error. */
static int parse(cli_t *cli, int argc, char **argv,
                 const struct option *options, const char *usage)
{
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:l:h", options, NULL)) != -1) {
        if (c == OPT_HELP) {
            fputs(usage, stdout);
            cli->help = true;
            return 0;
        }
        if (c == '?' || c == ':') {
            fprintf(stderr, "tollgate %s: bad option '%s'\n%s", cli->cmd,
                    argv[optind - 1], usage);
            return 2;
        }
        set_option(cli, c, optarg);
    }
    if (optind < argc)
        cli->arg = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "tollgate %s: unexpected '%s'\n%s", cli->cmd,
                argv[optind], usage);
        return 2;
    }
    return 0;
}

/* The ledger file from --ledger or the config. Returns 0, 1 or 2. */
static int open_target(cli_t *cli, const char *usage)
{
    int n_errors = 0;

    cli->now_ms = clock_now_ms();
    if (cli->ledger_path != NULL) {
        cli->ledger = cli->ledger_path;
        return 0;
    }
    if (cli->config_path == NULL) {
        fprintf(stderr, "tollgate %s: --config FILE is required\n%s", cli->cmd,
                usage);
        return 2;
    }
    cli->config = config_load_opts(cli->config_path, stderr, &n_errors,
                                   CONFIG_SECRETS_OPTIONAL);
    if (cli->config == NULL) {
        fprintf(stderr, "tollgate %s: %s has %d error%s\n", cli->cmd,
                cli->config_path, n_errors, n_errors == 1 ? "" : "s");
        return 1;
    }
    cli->ledger = cli->config->ledger_path;
    return 0;
}

static void print_json(struct json_object *obj)
{
    puts(json_object_to_json_string_ext(
        obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                 JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(obj);
}

static const char *when(int64_t ms, char *out, size_t outlen)
{
    if (ms == 0)
        return "-";
    return budget_format_time(NULL, ms, out, outlen);
}

static const char *dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

/* ---------------------------------------------------------------- keys */

static int key_failure(const cli_t *cli, int rc)
{
    const char *why;

    switch (rc) {
    case -ENOENT:
        why = "no run-time key has that id or name (keys in the config "
              "file are changed by editing it)";
        break;
    case -EEXIST:
        why = "a key with that name exists";
        break;
    case -EALREADY:
    case -EKEYREVOKED:
        why = "that key is revoked";
        break;
    case -EKEYEXPIRED:
        why = "that key has expired; make a new one";
        break;
    case -EINVAL:
        why = "--name must be 1-63 of A-Z a-z 0-9 . _ @ - (not starting "
              "with 'key_'), other fields under 64 bytes, and --expires "
              "after now";
        break;
    default:
        why = "the key store could not be read or written";
    }
    fprintf(stderr, "tollgate %s: %s\n", cli->cmd, why);
    return 1;
}

static void print_secret(const cli_t *cli, const keystore_key_t *key,
                         const char *secret)
{
    if (cli->json) {
        struct json_object *k = admin_key_json(key, NULL, cli->now_ms);

        json_object_object_add(k, "secret", json_object_new_string(secret));
        print_json(k);
    } else {
        printf("id:     %s\nname:   %s\nsecret: %s\n", key->id, key->name,
               secret);
    }
    fflush(stdout);
    fputs("The secret is shown only now: it is stored hashed and cannot be "
          "shown again.\n",
          stderr);
}

static bool config_has_key(const config_t *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && i < cfg->n_keys; i++)
        if (cfg->keys[i].name != NULL && strcmp(cfg->keys[i].name, name) == 0)
            return true;
    return false;
}

static int keys_create(cli_t *cli, keystore_t *ks)
{
    keystore_new_t spec = {cli->name, cli->team, cli->owner, cli->task, 0};
    keystore_key_t key;
    char secret[KEYSTORE_SECRET_SIZE];
    int rc;

    if (cli->name == NULL || cli->arg != NULL) {
        fprintf(stderr, "tollgate %s: give the name as --name NAME\n",
                cli->cmd);
        return 2;
    }
    if (config_has_key(cli->config, cli->name)) {
        fprintf(stderr, "tollgate %s: the config file has a key named '%s'\n",
                cli->cmd, cli->name);
        return 1;
    }
    if (cli->expires != NULL &&
        admin_parse_when(cli->expires, cli->now_ms, &spec.expires_ms) < 0) {
        fprintf(stderr, "tollgate %s: --expires %s: not a time\n", cli->cmd,
                cli->expires);
        return 2;
    }
    rc = keystore_create(ks, &spec, cli->now_ms, &key, secret);
    if (rc < 0)
        return key_failure(cli, rc);
    print_secret(cli, &key, secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    return 0;
}

static void print_key_table(const cli_t *cli, const keystore_key_t *keys,
                            size_t n)
{
    char created[64], expires[64];

    printf("%-20s %-20s %-12s %-8s %-25s %-25s %s\n", "ID", "NAME", "TEAM",
           "STATUS", "CREATED", "EXPIRES", "OWNER / TASK");
    for (size_t i = 0; i < n; i++) {
        const keystore_key_t *k = &keys[i];

        printf("%-20s %-20s %-12s %-8s %-25s %-25s %s / %s\n", k->id, k->name,
               dash(k->team), admin_key_state(k, cli->now_ms),
               when(k->created_ms, created, sizeof(created)),
               when(k->expires_ms, expires, sizeof(expires)), dash(k->owner),
               dash(k->default_task));
    }
}

static int keys_list(cli_t *cli, keystore_t *ks)
{
    keystore_key_t *keys = NULL;
    size_t n = 0;
    int rc = keystore_list(ks, &keys, &n);

    if (rc < 0)
        return key_failure(cli, rc);
    if (cli->json) {
        struct json_object *data = json_object_new_array();

        for (size_t i = 0; i < n; i++)
            json_object_array_add(data,
                                  admin_key_json(&keys[i], NULL, cli->now_ms));
        print_json(data);
    } else {
        print_key_table(cli, keys, n);
    }
    free(keys);
    return 0;
}

static int keys_change(cli_t *cli, keystore_t *ks, bool rotate)
{
    keystore_key_t key;
    char secret[KEYSTORE_SECRET_SIZE];
    int rc;

    if (cli->arg == NULL) {
        fprintf(stderr, "tollgate %s: name the key: ID or NAME\n", cli->cmd);
        return 2;
    }
    if (!rotate) {
        rc = keystore_revoke(ks, cli->arg, cli->now_ms);
        if (rc == 0)
            rc = keystore_get(ks, cli->arg, &key);
        if (rc < 0)
            return key_failure(cli, rc);
        printf("revoked key %s (%s)\n", key.name, key.id);
        return 0;
    }
    rc = keystore_rotate(ks, cli->arg, cli->now_ms, &key, secret);
    if (rc < 0)
        return key_failure(cli, rc);
    print_secret(cli, &key, secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    return 0;
}

static int keys_run_sub(cli_t *cli, const char *sub, keystore_t *ks)
{
    if (strcmp(sub, "create") == 0)
        return keys_create(cli, ks);
    if (strcmp(sub, "list") == 0)
        return keys_list(cli, ks);
    return keys_change(cli, ks, strcmp(sub, "rotate") == 0);
}

static bool known_sub(const char *sub)
{
    return strcmp(sub, "create") == 0 || strcmp(sub, "list") == 0 ||
           strcmp(sub, "revoke") == 0 || strcmp(sub, "rotate") == 0;
}

int keys_main(int argc, char **argv)
{
    cli_t cli = {0};
    char cmd[32], err[256];
    keystore_t *ks;
    int rc;

    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(keys_usage, stdout);
        return 0;
    }
    if (argc < 2 || !known_sub(argv[1])) {
        fputs(keys_usage, stderr);
        return 2;
    }
    snprintf(cmd, sizeof(cmd), "keys %s", argv[1]);
    cli.cmd = cmd;
    rc = parse(&cli, argc - 1, argv + 1, keys_options, keys_usage);
    if (rc == 0 && !cli.help)
        rc = open_target(&cli, keys_usage);
    if (rc != 0 || cli.help)
        goto free_config;

    rc = keystore_open(cli.ledger, &ks, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "tollgate %s: %s: %s\n", cmd, cli.ledger, err);
        rc = 1;
        goto free_config;
    }
    rc = keys_run_sub(&cli, argv[1], ks);
    keystore_close(ks);

free_config:
    config_free(cli.config);
    return rc;
}

/* ------------------------------------------------------------ approvals */

static void print_approval_table(const approval_t *list, size_t n,
                                 bool pending_only)
{
    char created[64], estimate[48];

    printf("%-28s %-9s %-16s %-16s %-10s %-16s %-25s %s\n", "ID", "STATUS",
           "KEY", "TASK", "TIER", "ESTIMATE USD", "CREATED", "BY / REASON");
    for (size_t i = 0; i < n; i++) {
        const approval_t *a = &list[i];

        if (pending_only && a->decision != APPROVAL_DECISION_PENDING)
            continue;
        printf("%-28s %-9s %-16s %-16s %-10s %-16s %-25s %s / %s\n", a->id,
               approval_decision_name(a->decision), dash(a->key), dash(a->task),
               dash(a->tier),
               pico_format_usd(a->estimate, estimate, sizeof(estimate)),
               when(a->created_ms, created, sizeof(created)),
               dash(a->decided_by), dash(a->reason));
    }
}

static int approvals_print(cli_t *cli, approvals_t *store)
{
    approval_t *list = NULL;
    size_t n = 0;

    if (approvals_list(store, cli->pending, &list, &n) < 0) {
        fprintf(stderr,
                "tollgate %s: the approvals store could not be "
                "read\n",
                cli->cmd);
        return 1;
    }
    if (cli->json) {
        struct json_object *data = json_object_new_array();

        for (size_t i = 0; i < n; i++)
            json_object_array_add(data, admin_approval_json(&list[i], NULL));
        print_json(data);
    } else {
        print_approval_table(list, n, cli->pending);
    }
    free(list);
    return 0;
}

static int decision_failure(const cli_t *cli, approvals_t *store, int rc)
{
    approval_t a;

    if (rc == -EALREADY && approvals_get(store, cli->arg, &a) == 0)
        fprintf(stderr, "tollgate %s: %s was decided before: %s by %s\n",
                cli->cmd, cli->arg, approval_decision_name(a.decision),
                a.decided_by);
    else if (rc == -ENOENT)
        fprintf(stderr, "tollgate %s: no approval has the id %s\n", cli->cmd,
                cli->arg);
    else if (rc == -EINVAL)
        fprintf(stderr,
                "tollgate %s: --by must be under 64 bytes and "
                "--until after now\n",
                cli->cmd);
    else
        fprintf(stderr,
                "tollgate %s: the approvals store could not be "
                "written\n",
                cli->cmd);
    return 1;
}

static void print_decision(approvals_t *store, const cli_t *cli)
{
    approval_t a;
    char until[64];

    if (approvals_get(store, cli->arg, &a) < 0) {
        printf("%s decided by %s\n", cli->arg, cli->by);
        return;
    }
    if (cli->json) {
        print_json(admin_approval_json(&a, NULL));
        return;
    }
    printf("%s %s by %s (key %s, task %s, tier %s)", a.id,
           approval_decision_name(a.decision), a.decided_by, dash(a.key),
           dash(a.task), dash(a.tier));
    if (a.decision == APPROVAL_DECISION_STANDING)
        printf(" until %s", when(a.until_ms, until, sizeof(until)));
    putchar('\n');
}

/* Checks the options of a decision; returns 0 or 2 after a message. */
static int check_decision(cli_t *cli, int64_t *until_ms)
{
    const char *problem = NULL;

    if (cli->arg == NULL)
        problem = "name the approval: tollgate approve ID ...";
    else if (cli->by == NULL || cli->by[0] == '\0')
        problem = "--by NAME is required: every decision records who "
                  "made it";
    else if (cli->deny && (cli->standing || cli->until != NULL))
        problem = "--deny takes no --standing or --until";
    else if (cli->standing != (cli->until != NULL))
        problem = "a standing approval needs --standing and --until TIME";
    else if (cli->note != NULL && !cli->deny)
        problem = "--note goes with --deny";
    else if (cli->until != NULL &&
             admin_parse_when(cli->until, cli->now_ms, until_ms) < 0)
        problem = "--until: not a time (2027-01-31, 2027-01-31T09:00Z, 30d)";
    if (problem == NULL)
        return 0;
    fprintf(stderr, "tollgate %s: %s\n", cli->cmd, problem);
    return 2;
}

static int approvals_decide(cli_t *cli, approvals_t *store)
{
    int64_t until_ms = 0;
    int rc = check_decision(cli, &until_ms);

    if (rc != 0)
        return rc;
    if (cli->deny)
        rc = approvals_deny(store, cli->arg, cli->by, cli->now_ms);
    else if (cli->standing)
        rc = approvals_grant_standing(store, cli->arg, cli->by, until_ms,
                                      cli->now_ms);
    else
        rc = approvals_approve_once(store, cli->arg, cli->by, cli->now_ms);
    if (rc < 0)
        return decision_failure(cli, store, rc);
    print_decision(store, cli);
    if (cli->note != NULL)
        printf("note: %s\n", cli->note);
    return 0;
}

/* "approvals list ..." is "approve --list ...". */
static int approvals_form(int *argc, char ***argv, cli_t *cli)
{
    if (strcmp((*argv)[0], "approvals") != 0)
        return 0;
    if (*argc < 2 || strcmp((*argv)[1], "list") != 0) {
        fputs(approve_usage, stderr);
        return 2;
    }
    cli->list = true;
    *argc -= 1;
    *argv += 1;
    return 0;
}

int approve_main(int argc, char **argv)
{
    cli_t cli = {.cmd = "approve"};
    char err[256];
    approvals_t *store;
    int rc = approvals_form(&argc, &argv, &cli);

    if (rc == 0)
        rc = parse(&cli, argc, argv, approve_options, approve_usage);
    if (rc == 0 && cli.help)
        return 0;
    if (rc == 0 && cli.list && cli.arg != NULL) {
        fprintf(stderr, "tollgate approve: --list takes no ID\n");
        rc = 2;
    }
    if (rc == 0)
        rc = open_target(&cli, approve_usage);
    if (rc != 0)
        goto free_config;

    rc = approvals_open(cli.ledger, &store, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "tollgate approve: %s: %s\n", cli.ledger, err);
        rc = 1;
        goto free_config;
    }
    rc =
        cli.list ? approvals_print(&cli, store) : approvals_decide(&cli, store);
    approvals_close(store);

free_config:
    config_free(cli.config);
    return rc;
}
