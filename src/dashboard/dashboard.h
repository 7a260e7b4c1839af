/*
 * /dashboard: the admin's view of cost per useful outcome. The admin logs
 * in once with the admin key and gets a session cookie (HttpOnly,
 * SameSite=Strict, signed with HMAC-SHA256 under a key made at start); the
 * page is the same self-contained HTML `tollgate report --format html`
 * writes, built on the worker thread because it reads the ledger.
 */
#ifndef TOLLGATE_DASHBOARD_H
#define TOLLGATE_DASHBOARD_H

#include "http/gateway.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evhttp_request;

#define DASHBOARD_COOKIE "tollgate_session"
/* A session lasts this long from login. */
#define DASHBOARD_SESSION_MS (12 * 60 * 60 * 1000)
#define DASHBOARD_TOKEN_MAX 96

/*
 * A session token: "<expiry ms>.<64 hex of HMAC-SHA256(key, expiry)>".
 * key is DASHBOARD_KEY_BYTES secret bytes. Writes a NUL-terminated token
 * into out (DASHBOARD_TOKEN_MAX bytes).
 */
#define DASHBOARD_KEY_BYTES 32
void dashboard_session_make(const unsigned char *key, int64_t expires_ms,
                            char out[DASHBOARD_TOKEN_MAX]);

/* True when token is well formed, signed with key, and not expired at
 * now_ms. Compares the signature in constant time. */
bool dashboard_session_check(const unsigned char *key, const char *token,
                             int64_t now_ms);

/* The value of cookie `name` in a Cookie header, copied into out; false
 * when absent or longer than len - 1. */
bool dashboard_cookie_get(const char *header, const char *name, char *out,
                          size_t len);

/*
 * GET /dashboard (the page, or the login form without a session), POST
 * /dashboard/login (form field "key"), POST /dashboard/logout, and GET
 * /dashboard/data.json (the page's data; a session or the admin key as a
 * bearer token). Query: since and until as for `tollgate report` (default
 * since=30d).
 */
void dashboard_handle(gateway_t *gw, struct evhttp_request *req);

#endif
