/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/link-http.c - the master link's calls as libcurl easy handles in one multi handle,
 * driven by the agent's libevent loop (evcurl/: curl's docs/examples/hiperfifo.c; no threads,
 * no blocking call). It verifies the master's certificate or pin before anything is said, signs
 * every call after SUBSCRIBE with the session key, and hands the stream's bytes and each finished
 * call to link.c through struct link's two function pointers. */
#include <string.h>

#include "agentd/link-internal.h"

static void check_done(struct link *l);
static void call_unlink(struct link *l, struct link_call *c);

static void on_ran(void *arg)
{
    check_done(arg);
}

static size_t answer_write(char *data, size_t size, size_t n, void *arg)
{
    struct link_call *c = arg;
    size_t len = size * n, room = MAX_ANSWER - c->answer_len;
    size_t take = len < room ? len : room;
    c->answer = xrealloc(c->answer, c->answer_len + take + 1);
    memcpy(c->answer + c->answer_len, data, take);
    c->answer_len += take;
    c->answer[c->answer_len] = 0;
    return len;
}

static size_t stream_write(char *data, size_t size, size_t n, void *arg)
{
    struct link_call *c = arg;
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return answer_write(data, size, n, arg);
    /* 0 ends the transfer (CURLE_WRITE_ERROR) */
    return c->l->on_stream_data(c->l, c, data, size * n) ? size * n : 0;
}

static void call_free(struct link_call *c)
{
    if (c->h)
        curl_easy_cleanup(c->h);
    curl_slist_free_all(c->hdrs);
    free(c->body);
    free(c->answer);
    free(c);
}

struct link_call *link_call_start(struct link *l, enum call_kind kind, char *body_take)
{
    struct link_call *c = xzalloc(sizeof(*c));
    c->l = l;
    c->kind = kind;
    c->body = body_take;
    c->started_ns = now_monotonic_ns();
    c->h = curl_easy_init();
    if (!c->h) {
        call_free(c);
        return NULL;
    }
    c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/json");
    c->hdrs = curl_slist_append(c->hdrs, kind == CALL_STREAM ? "Accept: application/recordio"
                                                             : "Accept: application/json");
    if (kind != CALL_STREAM)
        c->hdrs = curl_slist_append(c->hdrs, l->stream_header);
    if (kind == CALL_HEARTBEAT || kind == CALL_UPDATE) {
        char sig[ML_HEX_LEN + 1], hdr[sizeof(ML_SIGNATURE_HEADER) + ML_HEX_LEN + 4];
        ml_auth_sign(l->session, c->body, strlen(c->body), sig);
        snprintf(hdr, sizeof(hdr), "%s: %s", ML_SIGNATURE_HEADER, sig);
        c->hdrs = curl_slist_append(c->hdrs, hdr);
    }
    c->hdrs = curl_slist_append(c->hdrs, "User-Agent: berth-agent/" BERTH_VERSION);
    curl_easy_setopt(c->h, CURLOPT_URL, l->url);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long) strlen(c->body));
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* the master must prove who it is before we say anything (docs/security.md): its
     * certificate chains to master_ca (or the system's CAs) for its host name, and/or its
     * public key is the pinned one; curl verifies peer and host by default */
    if (l->a->cfg.master_ca[0])
        curl_easy_setopt(c->h, CURLOPT_CAINFO, l->a->cfg.master_ca);
    if (l->a->cfg.master_pin[0])
        curl_easy_setopt(c->h, CURLOPT_PINNEDPUBLICKEY, l->a->cfg.master_pin);
    curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (kind == CALL_STREAM) {
        curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, stream_write);
    } else {
        curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, answer_write);
        curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, (long) CALL_TIMEOUT_MS);
    }
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    if (curl_multi_add_handle(l->ec.multi, c->h) != CURLM_OK) {
        call_free(c);
        return NULL;
    }
    c->next = l->calls;
    l->calls = c;
    return c;
}

static void call_unlink(struct link *l, struct link_call *c)
{
    for (struct link_call **p = &l->calls; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    if (l->stream == c)
        l->stream = NULL;
    curl_multi_remove_handle(l->ec.multi, c->h);
}

static void check_done(struct link *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->ec.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct link_call *c = NULL;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);
        call_unlink(l, c);
        l->on_call_done(l, c, rc);
        call_free(c);
    }
}

void link_call_drop(struct link *l, struct link_call *c)
{
    call_unlink(l, c);
    call_free(c);
}

int link_http_init(struct link *l, struct berr **err)
{
    struct agent *a = l->a;
    if (evcurl_init(&l->ec, a->base, on_ran, l) < 0)
        return berr_setx(err, ENOMEM, "master link: out of memory");
    return 0;
}

void link_http_free(struct link *l)
{
    while (l->calls)
        link_call_drop(l, l->calls);
    evcurl_done(&l->ec);
}
