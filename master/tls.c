/* SPDX-License-Identifier: Apache-2.0 */
/* master/tls.c - the master's TLS: an OpenSSL server context from [master] tls_cert and
 * tls_key, and for every connection evhttp accepts a libevent OpenSSL bufferevent in
 * accepting state (libevent's sample/https-server.c does the same). Agents verify the
 * certificate against [agent] master_ca or a pinned key before they say anything
 * (docs/security.md); clients with berthctl --cacert. api.c installs the callback. */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "master/master.h"

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

int master_tls_init(struct master *m, struct berr **err)
{
    if (!m->cfg.tls_cert[0])
        return 0;
    char ebuf[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return berr_setx(err, ENOMEM, "TLS: %s", tls_error(ebuf, sizeof(ebuf)));
    m->tls = ctx;
    /* TLS 1.2 and 1.3 only; no renegotiation or compression (CRIME), no session tickets
     * whose key would have to be rotated: agents keep one stream up anyway */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, m->cfg.tls_cert) != 1)
        return berr_setx(err, EINVAL, "[master] tls_cert '%s': %s", m->cfg.tls_cert,
                         tls_error(ebuf, sizeof(ebuf)));
    if (SSL_CTX_use_PrivateKey_file(ctx, m->cfg.tls_key, SSL_FILETYPE_PEM) != 1)
        return berr_setx(err, EINVAL, "[master] tls_key '%s': %s", m->cfg.tls_key,
                         tls_error(ebuf, sizeof(ebuf)));
    if (SSL_CTX_check_private_key(ctx) != 1)
        return berr_setx(err, EINVAL, "[master] tls_key '%s' does not match tls_cert '%s'",
                         m->cfg.tls_key, m->cfg.tls_cert);
    return 0;
}

void master_tls_free(struct master *m)
{
    if (m->tls)
        SSL_CTX_free(m->tls);
    m->tls = NULL;
}

struct bufferevent *master_tls_bev(struct event_base *base, void *arg)
{
    struct master *m = arg;
    /* Both fail only without memory. Returning NULL would make evhttp serve the connection
     * in plain text, so, like the x* allocators, abort instead. */
    SSL *ssl = SSL_new(m->tls);
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
