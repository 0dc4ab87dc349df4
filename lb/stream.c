/* SPDX-License-Identifier: Apache-2.0 */
/* lb/stream.c - berth-lb's subscription to berth-apps' GET /v1/events (docs/apps.md
 * "Events"): one libcurl easy handle in a multi handle driven by the libevent loop (evcurl/,
 * like sched/http.c), its body fed to sseparse.c, each event applied to the table.
 * A stream that ends, fails or stays silent for stream_timeout is opened again after a backoff
 * (0.2 s doubling to 5 s), with Last-Event-ID: berth-apps replays what was missed, or sends a
 * snapshot that replaces the table. berth-apps' certificate is verified before the token
 * leaves. */
#include <string.h>

#include "lb/lbd.h"

#define MAX_EVENT (64u << 20)

static void check_done(struct lbd *l);

static void on_ran(void *arg)
{
    check_done(arg);
}

static void on_event(void *arg, const char *name, const char *id, const char *data, size_t len)
{
    struct lbd *l = arg;
    _cleanup_berr_ struct berr *err = NULL;
    int r = lb_table_apply(&l->table, name, data, len, &err);
    l->events++;
    l->retry_ms = 200;
    if (r < 0) {
        log_warning("event %s (id %s): %s", name, id, berr_msg(err));
        return;
    }
    if (streq(name, "snapshot"))
        log_info("snapshot (id %s): %zu apps, %zu instances", id, l->table.n_apps,
                 l->table.n_insts);
    else
        log_debug("event %s (id %s)%s", name, id, r ? "" : ": no change");
    if (r > 0)
        lb_sync_soon(l);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct lbd *l = arg;
    size_t len = size * n;
    if (!l->status)
        curl_easy_getinfo(l->h, CURLINFO_RESPONSE_CODE, &l->status);
    if (l->status != 200) {
        size_t have = strlen(l->err_body), room = sizeof(l->err_body) - 1 - have;
        memcpy(l->err_body + have, data, len < room ? len : room);
        l->err_body[have + (len < room ? len : room)] = 0;
        return len;
    }
    if (lb_sse_feed(&l->parser, data, len, on_event, l) < 0) {
        log_error("an event of more than %u bytes: the stream is opened again", MAX_EVENT);
        return 0;
    }
    return len;
}

static void drop_handle(struct lbd *l)
{
    if (l->h) {
        curl_multi_remove_handle(l->ec.multi, l->h);
        curl_easy_cleanup(l->h);
    }
    curl_slist_free_all(l->hdrs);
    l->h = NULL;
    l->hdrs = NULL;
}

static void check_done(struct lbd *l)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(l->ec.multi, &left))) {
        if (msg->msg != CURLMSG_DONE || msg->easy_handle != l->h)
            continue;
        CURLcode rc = msg->data.result;
        if (l->status && l->status != 200)
            log_warning("GET %s/v1/events: HTTP %ld %s", l->cfg.apps, l->status, l->err_body);
        else
            log_warning("the event stream from %s ended (%s): again in %llu ms", l->cfg.apps,
                        rc == CURLE_OK ? "closed" : curl_easy_strerror(rc),
                        (unsigned long long) l->retry_ms);
        drop_handle(l);
        struct timeval tv = {.tv_sec = (time_t) (l->retry_ms / 1000),
                             .tv_usec = (suseconds_t) (l->retry_ms % 1000) * 1000};
        evtimer_add(l->ev_reconnect, &tv);
        l->retry_ms = l->retry_ms * 2 > 5000 ? 5000 : l->retry_ms * 2;
        return;
    }
}

void lb_stream_start(struct lbd *l)
{
    drop_handle(l);
    lb_sse_reset(&l->parser);
    l->status = 0;
    l->err_body[0] = 0;
    l->h = curl_easy_init();
    if (!l->h) {
        evtimer_add(l->ev_reconnect, &(struct timeval){.tv_sec = 1});
        return;
    }
    _cleanup_free_ char *url = xasprintf("%s/v1/events", l->cfg.apps);
    _cleanup_free_ char *auth = xasprintf("Authorization: Bearer %s", l->token);
    l->hdrs = curl_slist_append(l->hdrs, "Accept: text/event-stream");
    l->hdrs = curl_slist_append(l->hdrs, auth);
    l->hdrs = curl_slist_append(l->hdrs, "User-Agent: berth-lb/" BERTH_VERSION);
    if (l->parser.last_id[0]) {
        _cleanup_free_ char *h = xasprintf("Last-Event-ID: %s", l->parser.last_id);
        l->hdrs = curl_slist_append(l->hdrs, h);
    }
    curl_easy_setopt(l->h, CURLOPT_URL, url);
    curl_easy_setopt(l->h, CURLOPT_HTTPHEADER, l->hdrs);
    curl_easy_setopt(l->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(l->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(l->h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(l->h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* berth-apps proves who it is before the token leaves (curl verifies by default) */
    if (l->cfg.apps_ca[0])
        curl_easy_setopt(l->h, CURLOPT_CAINFO, l->cfg.apps_ca);
    curl_easy_setopt(l->h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(l->h, CURLOPT_SSL_VERIFYHOST, 2L);
    /* silent for stream_timeout (no event, no keepalive): dropped and opened again */
    curl_easy_setopt(l->h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(l->h, CURLOPT_LOW_SPEED_TIME,
                     (long) ((l->cfg.stream_timeout_ms + 999) / 1000));
    curl_easy_setopt(l->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(l->h, CURLOPT_WRITEDATA, l);
    log_info("subscribing to %s%s%s", url, l->parser.last_id[0] ? " from event " : "",
             l->parser.last_id);
    if (curl_multi_add_handle(l->ec.multi, l->h) != CURLM_OK) {
        drop_handle(l);
        evtimer_add(l->ev_reconnect, &(struct timeval){.tv_sec = 1});
    }
}

static void on_reconnect(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    lb_stream_start(arg);
}

int lb_stream_init(struct lbd *l, struct berr **err)
{
    l->parser.max = MAX_EVENT;
    l->retry_ms = 200;
    l->ev_reconnect = evtimer_new(l->base, on_reconnect, l);
    if (evcurl_init(&l->ec, l->base, on_ran, l) < 0 || !l->ev_reconnect)
        return berr_setx(err, ENOMEM, "out of memory");
    return 0;
}

void lb_stream_free(struct lbd *l)
{
    drop_handle(l);
    evcurl_done(&l->ec);
    if (l->ev_reconnect)
        event_free(l->ev_reconnect);
    l->ev_reconnect = NULL;
    lb_sse_done(&l->parser);
}
