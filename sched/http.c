/* SPDX-License-Identifier: Apache-2.0 */
/* sched/http.c - the scheduler library's transport: each request to berth-master's
 * POST /api/v1/scheduler is a libcurl easy handle in one multi handle that the caller's
 * libevent loop drives (curl's docs/examples/hiperfifo.c: curl says which sockets and timeouts
 * to watch, libevent says when they fire). The master's certificate is verified (cacert, or the
 * system's CAs) before the bearer token is sent. The stream's bytes and each finished request
 * go back to sched.c through struct sched's two function pointers. */
#include <string.h>

#include "sched/sched-internal.h"

#define MAX_ANSWER (1u << 20)

static void check_done(struct sched *s);

static void on_socket_event(evutil_socket_t fd, short kind, void *arg)
{
    struct sched *s = arg;
    int action = (kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(s->multi, fd, action, &running);
    check_done(s);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *cbp, void *sockp)
{
    (void) e;
    struct sched *s = cbp;
    struct event *ev = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        curl_multi_assign(s->multi, fd, NULL);
        return 0;
    }
    short kind = (short) ((what & CURL_POLL_IN ? EV_READ : 0) |
                          (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (ev) {
        event_del(ev);
        event_assign(ev, s->base, fd, kind, on_socket_event, s);
    } else {
        ev = event_new(s->base, fd, kind, on_socket_event, s);
        curl_multi_assign(s->multi, fd, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    (void) multi;
    struct sched *s = arg;
    if (timeout_ms < 0) {
        evtimer_del(s->ev_curl_timer);
    } else {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        evtimer_add(s->ev_curl_timer, &tv);
    }
    return 0;
}

static void on_curl_timer(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct sched *s = arg;
    int running;
    curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(s);
    sched_teardown_if_idle(s);
}

static size_t answer_write(char *data, size_t size, size_t n, void *arg)
{
    struct sched_req *r = arg;
    size_t len = size * n, room = MAX_ANSWER - r->answer_len;
    size_t take = len < room ? len : room;
    r->answer = xrealloc(r->answer, r->answer_len + take + 1);
    memcpy(r->answer + r->answer_len, data, take);
    r->answer_len += take;
    r->answer[r->answer_len] = 0;
    return len;
}

static size_t stream_write(char *data, size_t size, size_t n, void *arg)
{
    struct sched_req *r = arg;
    long status = 0;
    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return answer_write(data, size, n, arg);
    /* 0 ends the transfer (CURLE_WRITE_ERROR) */
    return r->s->on_stream_data(r->s, data, size * n) ? size * n : 0;
}

static void req_free(struct sched_req *r)
{
    if (r->h)
        curl_easy_cleanup(r->h);
    curl_slist_free_all(r->hdrs);
    free(r->body);
    free(r->answer);
    free(r);
}

struct sched_req *sched_req_start(struct sched *s, enum sched_req_kind kind,
                                  enum ml_sched_call_type call, char *body_take)
{
    struct sched_req *r = xzalloc(sizeof(*r));
    r->s = s;
    r->kind = kind;
    r->call = call;
    r->body = body_take;
    r->h = curl_easy_init();
    if (!r->h) {
        req_free(r);
        return NULL;
    }
    _cleanup_free_ char *url = xasprintf("%s%s", s->cfg.master, ML_SCHED_PATH);
    _cleanup_free_ char *auth = xasprintf("Authorization: Bearer %s", s->cfg.token);
    r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
    r->hdrs = curl_slist_append(r->hdrs, kind == SCHED_REQ_STREAM ? "Accept: application/recordio"
                                                                  : "Accept: application/json");
    r->hdrs = curl_slist_append(r->hdrs, auth);
    if (kind == SCHED_REQ_CALL) {
        _cleanup_free_ char *sid = xasprintf("%s: %s", ML_STREAM_HEADER, s->stream_id);
        r->hdrs = curl_slist_append(r->hdrs, sid);
    }
    r->hdrs = curl_slist_append(r->hdrs, "User-Agent: libberthsched/" BERTH_VERSION);
    curl_easy_setopt(r->h, CURLOPT_URL, url);
    curl_easy_setopt(r->h, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(r->h, CURLOPT_POSTFIELDSIZE, (long) strlen(r->body));
    curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
    curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(r->h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(r->h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* the master proves who it is before the token leaves (curl verifies by default) */
    if (s->cfg.cacert)
        curl_easy_setopt(r->h, CURLOPT_CAINFO, s->cfg.cacert);
    curl_easy_setopt(r->h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(r->h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (kind == SCHED_REQ_STREAM) {
        curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, stream_write);
    } else {
        curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, answer_write);
        curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, 30000L);
    }
    curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r);
    /* added to the multi handle by on_kick, outside curl's callbacks: calls are often made
     * from inside one (an OFFERS callback ACCEPTs) */
    r->next = s->reqs;
    s->reqs = r;
    event_active(s->ev_kick, 0, 0);
    return r;
}

static void on_kick(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct sched *s = arg;
    for (struct sched_req *r = s->reqs, *next; r; r = next) {
        next = r->next;
        if (r->added)
            continue;
        r->added = true;
        if (curl_multi_add_handle(s->multi, r->h) != CURLM_OK) {
            /* reported like a failed transfer */
            r->added = false;
            sched_req_drop(s, r);
        }
    }
    int running;
    curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(s);
    sched_teardown_if_idle(s);
}

static void req_unlink(struct sched *s, struct sched_req *r)
{
    for (struct sched_req **p = &s->reqs; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    if (s->stream == r)
        s->stream = NULL;
    if (r->added)
        curl_multi_remove_handle(s->multi, r->h);
}

static void check_done(struct sched *s)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct sched_req *r = NULL;
        CURLcode rc = msg->data.result;
        long status = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &r);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        req_unlink(s, r);
        s->on_done(s, r, rc, status);
        req_free(r);
    }
}

void sched_req_drop(struct sched *s, struct sched_req *r)
{
    req_unlink(s, r);
    req_free(r);
}

int sched_http_init(struct sched *s, struct berr **err)
{
    s->multi = curl_multi_init();
    s->ev_curl_timer = evtimer_new(s->base, on_curl_timer, s);
    s->ev_kick = event_new(s->base, -1, 0, on_kick, s);
    if (!s->multi || !s->ev_curl_timer || !s->ev_kick)
        return berr_setx(err, ENOMEM, "scheduler library: out of memory");
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
    return 0;
}

void sched_http_free(struct sched *s)
{
    while (s->reqs)
        sched_req_drop(s, s->reqs);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    s->multi = NULL;
    if (s->ev_curl_timer)
        event_free(s->ev_curl_timer);
    if (s->ev_kick)
        event_free(s->ev_kick);
    s->ev_curl_timer = s->ev_kick = NULL;
}
