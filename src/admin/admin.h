/*
 * Operating the gateway: the admin API under /admin/ (run-time keys,
 * budgets, approvals; guarded by the admin key) and the `tollgate keys`
 * and `tollgate approve` commands, which write the same stores directly.
 */
#ifndef TOLLGATE_ADMIN_H
#define TOLLGATE_ADMIN_H

#include "http/gateway.h"

struct evhttp_request;

/*
 * Answers every request whose path starts with /admin/: 401 without the
 * admin key (OpenAI's error shape), else one of
 *   GET  /admin/keys                     every run-time key, no secrets
 *   POST /admin/keys                     {name, team, owner, task,
 *                                        expires}: 201 with the secret
 *   POST /admin/keys/{id|name}/revoke
 *   POST /admin/keys/{id|name}/rotate    200 with the new secret
 *   GET  /admin/budgets                  every budget, spent/held/limits
 *   GET  /admin/approvals[?status=S]     S: pending, once, standing,
 *                                        denied, all (default)
 *   POST /admin/approvals/{id}/approve   {by, standing, until}
 *   POST /admin/approvals/{id}/deny      {by, note}
 * Disk work runs on gw->worker; the reply is sent from its completion on
 * the loop, where key changes also reach gw->keyring at once.
 */
void admin_handle(gateway_t *gw, struct evhttp_request *req);

/*
 * `tollgate keys create|list|revoke|rotate` (argv[0] is "keys"). Opens the
 * ledger file of --config FILE (or --ledger FILE). A secret is printed
 * once, on stdout, and never stored. Returns the exit code: 0, 1 on a
 * failure, 2 on a usage error.
 */
int keys_main(int argc, char **argv);

/*
 * `tollgate approve ID --by NAME [--standing --until TIME] [--deny
 * --note TEXT]`, `tollgate approve --list [--pending]`, and the same list
 * as `tollgate approvals list` (argv[0] "approvals"), against the ledger
 * file of --config FILE (or --ledger FILE). Returns the exit code.
 */
int approve_main(int argc, char **argv);

#endif
