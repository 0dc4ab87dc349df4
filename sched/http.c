/* SPDX-License-Identifier: Apache-2.0 */
/* sched/http.c - the scheduler library's transport: each request to berth-master's
 * POST /api/v1/scheduler is a libcurl easy handle in one multi handle that the caller's
 * libevent loop drives (evcurl/: curl's docs/examples/hiperfifo.c). The master's certificate is
 * verified (cacert, or the system's CAs) before the bearer token is sent. The stream's bytes and
 * each finished request go back to sched.c through struct sched's two function pointers. */
#include <string.h>

#include "sched/sched-internal.h"

#define MAX_ANSWER (1u << 20)

static void check_done(struct sched *s);

/* evcurl ran curl: finished requests, then a TEARDOWN that waited for the calls */
static void on_ran(void *arg)
{
    struct sched *s = arg;
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
        curl_multi_remove_handle(s->ec.multi, r->h);
}

static void on_kick(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct sched *s = arg;
    struct sched_req *failed = NULL;
    for (struct sched_req *r = s->reqs, *next; r; r = next) {
        next = r->next;
        if (r->added)
            continue;
        r->added = true;
        if (curl_multi_add_handle(s->ec.multi, r->h) != CURLM_OK) {
            r->added = false;
            req_unlink(s, r);
            r->next = failed;
            failed = r;
        }
    }
    /* each ends like a failed transfer (an ACCEPT's cb hears of it); calls made from the
     * callbacks are added on the next kick */
    while (failed) {
        struct sched_req *r = failed;
        failed = r->next;
        s->on_done(s, r, CURLE_FAILED_INIT, 0);
        req_free(r);
    }
    evcurl_kick(&s->ec);
}

static void check_done(struct sched *s)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->ec.multi, &left))) {
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
    s->ev_kick = event_new(s->base, -1, 0, on_kick, s);
    if (evcurl_init(&s->ec, s->base, on_ran, s) < 0 || !s->ev_kick)
        return berr_setx(err, ENOMEM, "scheduler library: out of memory");
    return 0;
}

void sched_http_free(struct sched *s)
{
    while (s->reqs)
        sched_req_drop(s, s->reqs);
    evcurl_done(&s->ec);
    if (s->ev_kick)
        event_free(s->ev_kick);
    s->ev_kick = NULL;
}
