/* SPDX-License-Identifier: Apache-2.0 */
/* master/tls.c - the master's TLS: an OpenSSL server context from [master] tls_cert and
 * tls_key, and for every connection evhttp accepts a libevent OpenSSL bufferevent in
 * accepting state, both from common/tls.c (shared with berth-apps). Agents verify the
 * certificate against [agent] master_ca or a pinned key before they say anything
 * (docs/security.md); clients with berthctl --cacert. api.c installs the callback. */
#include "common/tls.h"

#include "master/master.h"

int master_tls_init(struct master *m, struct berr **err)
{
    if (!m->cfg.tls_cert[0])
        return 0;
    void *ctx = NULL;
    int r = tls_server_new(m->cfg.tls_cert, m->cfg.tls_key, "[master]", &ctx, err);
    m->tls = ctx;
    return r;
}

void master_tls_free(struct master *m)
{
    tls_server_free(m->tls);
    m->tls = NULL;
}

struct bufferevent *master_tls_bev(struct event_base *base, void *arg)
{
    struct master *m = arg;
    return tls_server_bev(base, m->tls);
}
