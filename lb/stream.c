/* SPDX-License-Identifier: Apache-2.0 */
/* lb/stream.c - berth-lb's subscription to berth-apps' GET /v1/events (docs/apps.md
 * "Events"): one libcurl easy handle in a multi handle driven by the libevent loop (curl's
 * hiperfifo.c, like sched/http.c), its body fed to sseparse.c, each event applied to the table.
 * A stream that ends, fails or stays silent for stream_timeout is opened again after a backoff
 * (0.2 s doubling to 5 s), with Last-Event-ID: berth-apps replays what was missed, or sends a
 * snapshot that replaces the table. berth-apps' certificate is verified before the token
 * leaves. */
#include <string.h>

#include "lb/lbd.h"

#define MAX_EVENT (64u << 20)

static void check_done(struct lbd *l);

static void on_socket_event(evutil_socket_t fd, short kind, void *arg)
{
    struct lbd *l = arg;
    int action = (kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(l->multi, fd, action, &running);
    check_done(l);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *cbp, void *sockp)
{
    (void) e;
    struct lbd *l = cbp;
    struct event *ev = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        curl_multi_assign(l->multi, fd, NULL);
        return 0;
    }
    short kind = (short) ((what & CURL_POLL_IN ? EV_READ : 0) |
                          (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (ev) {
        event_del(ev);
        event_assign(ev, l->base, fd, kind, on_socket_event, l);
    } else {
        ev = event_new(l->base, fd, kind, on_socket_event, l);
        curl_multi_assign(l->multi, fd, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    (void) multi;
    struct lbd *l = arg;
    if (timeout_ms < 0) {
        evtimer_del(l->ev_curl_timer);
    } else {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        evtimer_add(l->ev_curl_timer, &tv);
    }
    return 0;
}

static void on_curl_timer(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct lbd *l = arg;
    int running;
    curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(l);
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
        curl_multi_remove_handle(l->multi, l->h);
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
    while ((msg = curl_multi_info_read(l->multi, &left))) {
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
    if (curl_multi_add_handle(l->multi, l->h) != CURLM_OK) {
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
    l->multi = curl_multi_init();
    l->ev_curl_timer = evtimer_new(l->base, on_curl_timer, l);
    l->ev_reconnect = evtimer_new(l->base, on_reconnect, l);
    if (!l->multi || !l->ev_curl_timer || !l->ev_reconnect)
        return berr_setx(err, ENOMEM, "out of memory");
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
    return 0;
}

void lb_stream_free(struct lbd *l)
{
    drop_handle(l);
    if (l->multi)
        curl_multi_cleanup(l->multi);
    l->multi = NULL;
    if (l->ev_curl_timer)
        event_free(l->ev_curl_timer);
    if (l->ev_reconnect)
        event_free(l->ev_reconnect);
    l->ev_curl_timer = l->ev_reconnect = NULL;
    lb_sse_done(&l->parser);
}
