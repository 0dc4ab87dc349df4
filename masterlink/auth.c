/* SPDX-License-Identifier: Apache-2.0 */
/* masterlink/auth.c - the cryptography of the agent link (docs/security.md, docs/protocol.md
 * "Authentication"): HMAC-SHA256 proofs of a challenge-response handshake in which neither
 * side ever sends its key, the session key that signs every later call, the agent key a
 * join token derives, and token ids. Pure functions over OpenSSL's libcrypto (HMAC,
 * SHA-256, CRYPTO_memcmp); no I/O, no randomness (callers bring their nonces). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>

#include "masterlink/masterlink.h"

void ml_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ml_unhex(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t) (hi << 4 | lo);
    }
    return 0;
}

bool ml_hex_equal(const char *a, const char *b)
{
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    /* lengths are public (always 64 here); the content is compared in constant time */
    return la == lb && la > 0 && CRYPTO_memcmp(a, b, la) == 0;
}

void ml_sha256(const void *data, size_t len, uint8_t out[ML_KEY_LEN])
{
    SHA256(data, len, out);
}

void ml_token_key(const char *token, uint8_t key[ML_KEY_LEN], char id[ML_TOKEN_ID_LEN + 1])
{
    uint8_t h[ML_KEY_LEN];
    ml_sha256(token, strlen(token), h);
    memcpy(key, h, ML_KEY_LEN);
    char hex[2 * ML_KEY_LEN + 1];
    ml_hex(h, ML_KEY_LEN, hex);
    memcpy(id, hex, ML_TOKEN_ID_LEN);
    id[ML_TOKEN_ID_LEN] = 0;
}

/* HMAC-SHA256 over "label\0field\0field\0..." (the NULs keep fields from running into one
 * another: ("ab","c") and ("a","bc") sign differently). */
static void hmac_fields(const uint8_t *key, size_t keylen, const char *label,
                        const struct ml_handshake *h, uint8_t out[ML_KEY_LEN])
{
    const char *fields[] = {label, h->agent_id, h->nonce_agent, h->nonce_master, h->stream_id};
    size_t total = 0;
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
        total += strlen(fields[i]) + 1;
    _cleanup_free_ char *buf = xmalloc(total);
    size_t off = 0;
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        size_t n = strlen(fields[i]) + 1;
        memcpy(buf + off, fields[i], n);
        off += n;
    }
    unsigned int mdlen = ML_KEY_LEN;
    HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) buf, total, out, &mdlen);
}

void ml_auth_proof(const uint8_t key[ML_KEY_LEN], const struct ml_handshake *h, bool by_master,
                   char out[ML_HEX_LEN + 1])
{
    uint8_t mac[ML_KEY_LEN];
    hmac_fields(key, ML_KEY_LEN, by_master ? "berth master proof v1" : "berth agent proof v1", h,
                mac);
    ml_hex(mac, ML_KEY_LEN, out);
}

void ml_auth_session_key(const uint8_t key[ML_KEY_LEN], const struct ml_handshake *h,
                         uint8_t out[ML_KEY_LEN])
{
    hmac_fields(key, ML_KEY_LEN, "berth session key v1", h, out);
}

void ml_auth_agent_key(const uint8_t join_key[ML_KEY_LEN], const struct ml_handshake *h,
                       uint8_t out[ML_KEY_LEN])
{
    hmac_fields(join_key, ML_KEY_LEN, "berth agent key v1", h, out);
}

void ml_auth_sign(const uint8_t session[ML_KEY_LEN], const char *body, size_t len,
                  char out[ML_HEX_LEN + 1])
{
    uint8_t mac[ML_KEY_LEN];
    unsigned int mdlen = ML_KEY_LEN;
    HMAC(EVP_sha256(), session, ML_KEY_LEN, (const unsigned char *) body, len, mac, &mdlen);
    ml_hex(mac, ML_KEY_LEN, out);
}

bool ml_nonce_valid(const char *s)
{
    uint8_t b[ML_KEY_LEN];
    return s && ml_unhex(s, b, ML_KEY_LEN) == 0;
}
