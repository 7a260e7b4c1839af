/*
 * Turns the caller's bearer key into the key it hashes to: first the keys
 * of the config file, then the run-time keys of the gateway's key ring.
 * Keys are compared as SHA-256 digests; the secret is never kept or
 * logged, nor echoed in an error.
 */
#ifndef TOLLGATE_AUTH_H
#define TOLLGATE_AUTH_H

#include "config/config.h"

struct evhttp_request;
struct gateway;

/* The config key presented in "Authorization: Bearer KEY" (or "x-api-key:
 * KEY" when allow_x_api_key), or NULL when none matches. Config keys
 * only; callers of the gateway use auth_find() or auth_resolve(). */
const cfg_key_t *auth_caller(const config_t *config, struct evhttp_request *req,
                             bool allow_x_api_key);

/* True when the request carries the admin key as its bearer token. */
bool auth_is_admin(const config_t *config, struct evhttp_request *req);

/*
 * The key the request presents, among config keys, then the run-time keys
 * held in gw->keyring (no disk, no reload). Returns 0 with *out (valid for
 * the life of the gateway), -ENOENT (no key, or not known), -EKEYREVOKED
 * or -EKEYEXPIRED (a run-time key past its expiry on the gateway's clock).
 */
int auth_find(struct gateway *gw, struct evhttp_request *req,
              bool allow_x_api_key, const cfg_key_t **out);

/*
 * Runs on the loop with the caller's key (why 0), or key NULL and why
 * -ENOENT, -EKEYREVOKED, -EKEYEXPIRED or -ESHUTDOWN (the gateway began
 * draining while the request waited). The callback owns the request
 * from here and must answer it (auth_send_refusal() for a NULL key).
 */
typedef void (*auth_done_fn)(struct gateway *gw, struct evhttp_request *req,
                             const cfg_key_t *key, int why, void *arg);

/*
 * auth_find(), and when the key is not known, one reload of the key ring
 * from the keystore through the worker (paced: see keyring_reload()), so a
 * key made by the CLI works on its first call. done is called exactly
 * once: before auth_resolve() returns when no reload is needed, or later
 * on the loop after the reload.
 */
void auth_resolve(struct gateway *gw, struct evhttp_request *req,
                  bool allow_x_api_key, auth_done_fn done, void *arg);

/*
 * Answers 401 for a why of auth_find(), in the shape of the path called
 * (OpenAI's, or Anthropic's on /v1/messages), with code invalid_api_key
 * and a message naming how to send the key (503 shutting_down for
 * -ESHUTDOWN). Never echoes the key.
 */
void auth_send_refusal(struct evhttp_request *req, int why,
                       bool allow_x_api_key);

#endif
