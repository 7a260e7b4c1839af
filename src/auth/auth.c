/*
 * Caller authentication, the first stage of every request after routing.
 */
#include "auth/auth.h"

#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
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
