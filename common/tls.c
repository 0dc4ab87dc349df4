/* SPDX-License-Identifier: Apache-2.0 */
/* common/tls.c - the daemons' TLS servers (common/tls.h): one OpenSSL server context per
 * daemon and an OpenSSL bufferevent in accepting state for every connection evhttp accepts.
 * berth-master (master/tls.c) and berth-apps (apps/api.c) use it. */
#include "common/tls.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* OpenSSL's reason for the last failure, for messages. */
static const char *tls_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (!e)
        return "unknown TLS error";
    ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

int tls_server_new(const char *cert, const char *key, const char *what, void **ret,
                   struct berr **err)
{
    char ebuf[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return berr_setx(err, ENOMEM, "TLS: %s", tls_error(ebuf, sizeof(ebuf)));
    /* TLS 1.2 and 1.3 only; no renegotiation or compression (CRIME), no session tickets
     * whose key would have to be rotated: clients keep their streams up anyway */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE);
    int r = 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        r = berr_setx(err, EINVAL, "%s tls_cert '%s': %s", what, cert,
                      tls_error(ebuf, sizeof(ebuf)));
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        r = berr_setx(err, EINVAL, "%s tls_key '%s': %s", what, key, tls_error(ebuf, sizeof(ebuf)));
    else if (SSL_CTX_check_private_key(ctx) != 1)
        r = berr_setx(err, EINVAL, "%s tls_key '%s' does not match tls_cert '%s'", what, key, cert);
    if (r < 0) {
        SSL_CTX_free(ctx);
        return r;
    }
    *ret = ctx;
    return 0;
}

void tls_server_free(void *ctx)
{
    if (ctx)
        SSL_CTX_free(ctx);
}

struct bufferevent *tls_server_bev(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);
    struct bufferevent *bev =
            ssl ? bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE)
                : NULL;
    if (!bev) {
        log_error("TLS: out of memory for a new connection");
        abort();
    }
    /* clients (curl) may close without close_notify once they have their answer */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}
