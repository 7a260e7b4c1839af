/*
 * Turns the caller's bearer key into the configured key it hashes to.
 * Keys are compared as SHA-256 digests; the secret is never kept or
 * logged.
 */
#ifndef TOLLGATE_AUTH_H
#define TOLLGATE_AUTH_H

#include "config/config.h"

struct evhttp_request;

/* The key presented in "Authorization: Bearer KEY" (or "x-api-key: KEY"
 * when allow_x_api_key), or NULL when none matches. */
const cfg_key_t *auth_caller(const config_t *config, struct evhttp_request *req,
                             bool allow_x_api_key);

/* True when the request carries the admin key as its bearer token. */
bool auth_is_admin(const config_t *config, struct evhttp_request *req);

#endif
