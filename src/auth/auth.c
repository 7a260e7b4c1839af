/*
 * Caller authentication, the first stage of every request after routing:
 * config keys, then run-time keys from the key ring, reloaded through the
 * worker (never on the loop) when a key is not known.
 */
#include "auth/auth.h"
#include "auth/keyring.h"

#include "http/gateway.h"
#include "util/arena.h"
#include "util/clock.h"

#include <errno.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *bearer(struct evhttp_request *req, bool allow_x_api_key)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *v = evhttp_find_header(h, "Authorization");

    if (v != NULL && strncasecmp(v, "Bearer ", 7) == 0) {
        v += 7;
        while (*v == ' ')
            v++;
        return v;
    }
    if (allow_x_api_key)
        return evhttp_find_header(h, "x-api-key");
    return NULL;
}

const cfg_key_t *auth_caller(const config_t *config, struct evhttp_request *req,
                             bool allow_x_api_key)
{
    const char *secret = bearer(req, allow_x_api_key);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (secret == NULL || secret[0] == '\0')
        return NULL;
    if (!EVP_Digest(secret, strlen(secret), md, &mdlen, EVP_sha256(), NULL))
        return NULL;
    return config_find_key(config, md);
}

bool auth_is_admin(const config_t *config, struct evhttp_request *req)
{
    const char *secret = bearer(req, false);
    size_t n;

    if (config->admin_key == NULL || secret == NULL)
        return false;
    n = strlen(config->admin_key);
    return strlen(secret) == n &&
           CRYPTO_memcmp(secret, config->admin_key, n) == 0;
}

int auth_find(gateway_t *gw, struct evhttp_request *req, bool allow_x_api_key,
              const cfg_key_t **out)
{
    const char *secret = bearer(req, allow_x_api_key);
    const cfg_key_t *key;

    if (secret == NULL || secret[0] == '\0')
        return -ENOENT;
    key = auth_caller(gw->config, req, allow_x_api_key);
    if (key != NULL) {
        *out = key;
        return 0;
    }
    if (gw->keyring == NULL)
        return -ENOENT;
    return keyring_match(gw->keyring, secret, strlen(secret), clock_now_ms(),
                         out);
}

/* A request waiting for the key ring's reload. */
typedef struct pending_auth {
    struct evhttp_request *req;
    bool allow_x_api_key;
    auth_done_fn done;
    void *arg;
} pending_auth_t;

static void on_reloaded(gateway_t *gw, bool loaded, void *arg)
{
    pending_auth_t *p = arg;
    const cfg_key_t *key = NULL;
    int why;

    /* The waiter still gets its answer (and frees what it holds); the
     * refusal says the gateway is going away. */
    why = gw->draining ? -ESHUTDOWN
                       : auth_find(gw, p->req, p->allow_x_api_key, &key);
    p->done(gw, p->req, why == 0 ? key : NULL, why, p->arg);
    free(p);
}

void auth_resolve(gateway_t *gw, struct evhttp_request *req,
                  bool allow_x_api_key, auth_done_fn done, void *arg)
{
    const cfg_key_t *key = NULL;
    const char *secret = bearer(req, allow_x_api_key);
    int why = auth_find(gw, req, allow_x_api_key, &key);
    pending_auth_t *p;

    /* Only a key never seen can be new on disk: a revoked or expired one
     * stays so, and a missing one has nothing to look up. */
    if (why != -ENOENT || secret == NULL || secret[0] == '\0' ||
        gw->keyring == NULL || gw->worker == NULL) {
        done(gw, req, why == 0 ? key : NULL, why, arg);
        return;
    }

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        die_oom();
    *p = (pending_auth_t){req, allow_x_api_key, done, arg};
    if (keyring_reload(gw, on_reloaded, p) < 0) {
        free(p);
        done(gw, req, NULL, -ENOENT, arg);
    }
}

void auth_send_refusal(struct evhttp_request *req, int why,
                       bool allow_x_api_key)
{
    const char *message;

    if (why == -ESHUTDOWN) {
        gateway_send_error(req, 503, "server_error", "shutting_down", NULL,
                           "the gateway is shutting down");
        return;
    }
    if (why == -EKEYREVOKED)
        message = "this API key has been revoked; ask the gateway's admin "
                  "for a new one";
    else if (why == -EKEYEXPIRED)
        message = "this API key has expired; ask the gateway's admin for a "
                  "new one";
    else if (allow_x_api_key)
        message = "the API key is missing or not known to this gateway; "
                  "send it as 'x-api-key: KEY'";
    else
        message = "the API key is missing or not known to this gateway; "
                  "send it as 'Authorization: Bearer KEY'";
    gateway_send_error(req, 401, "invalid_request_error", "invalid_api_key",
                       NULL, message);
}
