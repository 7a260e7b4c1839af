/*
 * Dashboard sessions: a signed expiry, nothing stored. The signing key is
 * random per process, so a restart logs everyone out, and a token can
 * never be forged without it.
 */
#include "dashboard/dashboard.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sign(const unsigned char *key, const char *expiry, char hex[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    HMAC(EVP_sha256(), key, DASHBOARD_KEY_BYTES, (const unsigned char *)expiry,
         strlen(expiry), mac, &len);
    for (unsigned int i = 0; i < 32 && i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

void dashboard_session_make(const unsigned char *key, int64_t expires_ms,
                            char out[DASHBOARD_TOKEN_MAX])
{
    char expiry[24];
    char hex[65];

    snprintf(expiry, sizeof(expiry), "%" PRId64, expires_ms);
    sign(key, expiry, hex);
    snprintf(out, DASHBOARD_TOKEN_MAX, "%s.%s", expiry, hex);
}

bool dashboard_session_check(const unsigned char *key, const char *token,
                             int64_t now_ms)
{
    const char *dot = strchr(token, '.');
    char expiry[24];
    char hex[65];
    size_t n;
    char *end;
    int64_t expires;

    if (dot == NULL || (n = (size_t)(dot - token)) == 0 ||
        n >= sizeof(expiry) || strlen(dot + 1) != 64)
        return false;
    memcpy(expiry, token, n);
    expiry[n] = '\0';
    expires = strtoll(expiry, &end, 10);
    if (*end != '\0' || expiry[0] == '-' || expires <= now_ms)
        return false;
    sign(key, expiry, hex);
    return CRYPTO_memcmp(hex, dot + 1, 64) == 0;
}

bool dashboard_cookie_get(const char *header, const char *name, char *out,
                          size_t len)
{
    size_t name_len = strlen(name);
    const char *p = header;

    while (p != NULL && *p != '\0') {
        size_t value_len;

        while (*p == ' ' || *p == ';')
            p++;
        value_len = strcspn(p, ";");
        if (strncmp(p, name, name_len) == 0 && p[name_len] == '=') {
            value_len -= name_len + 1;
            if (value_len >= len)
                return false;
            memcpy(out, p + name_len + 1, value_len);
            out[value_len] = '\0';
            return true;
        }
        p += value_len;
    }
    return false;
}
