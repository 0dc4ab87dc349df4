/* SPDX-License-Identifier: Apache-2.0 */
/* common/tls.h - the daemons' TLS servers (berth-master, berth-apps): an OpenSSL server
 * context from a certificate chain and key (TLS 1.2+, no compression, renegotiation or
 * tickets), and evhttp's bufferevent callback that wraps each accepted connection in it
 * (libevent's sample/https-server.c does the same). Kept apart from common.h, which includes
 * only libc: whoever includes this links libssl and libevent_openssl. */
#pragma once

#include <event2/bufferevent.h>

#include "common/common.h"

/* An SSL_CTX (as void *) from cert and key (PEM); what names the section in messages
 * ("[master]"). 0 with *ret, or -errno with err. */
int tls_server_new(const char *cert, const char *key, const char *what, void **ret,
                   struct berr **err);
void tls_server_free(void *ctx); /* NULL is fine */
/* evhttp_set_bevcb's callback, arg: the context. Aborts without memory (a NULL would make
 * evhttp serve the connection in plain text). */
struct bufferevent *tls_server_bev(struct event_base *base, void *arg);
