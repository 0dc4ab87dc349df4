/* SPDX-License-Identifier: Apache-2.0 */
/* sse/hub.c - the subscribers of a Server-Sent Events stream on an evhttp server: each is an
 * open chunked reply (text/event-stream) that starts with a snapshot (the daemon's callback)
 * or with the events it missed (the history, event.c), then gets every event published.
 *
 * Cost: an event is formatted once, with its HTTP/1.1 chunk framing; fan-out appends those
 * same bytes to each stream's output buffer (a memcpy for small events, a shared reference
 * for large ones: sub_send says why), with no formatting, framing or malloc per subscriber.
 *
 * Bounds: what a subscriber has queued (the connection's output buffer: bytes libevent has
 * not written to the socket yet) may not pass max_buffer; a subscriber that would go past it
 * is cut off (its connection freed, counted, logged) rather than making the daemon hold more,
 * or wait. Its snapshot is allowed on top of that bound until the queue has drained below it
 * once. Rejected: a per-subscriber queue of events that we pump on the write callback
 * (agentd/logs.c's pattern) - it needs the same bound anyway, and evhttp's one write callback
 * per connection is easy to lose between two sends. At most max_subscribers streams are
 * open, and keepalive comments keep proxies and idle timeouts from ending quiet streams. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "sse/sse.h"

#define SSE_SNDBUF (128 << 10) /* a subscriber's socket send buffer; the kernel doubles it */
#define SSE_REF_MIN (4 << 10)  /* events this large are shared by reference, smaller copied */

struct sse_sub {
    struct sse_hub *h;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    size_t allow; /* its snapshot's bytes, allowed over max_buffer until it drained once */
    bool chunked; /* HTTP/1.1: each event goes as one chunk (1.0: the bytes, then close) */
    char peer[64];
    struct sse_sub *next;
};

struct sse_hub {
    struct sse_hub_cfg cfg;
    char *name;
    struct event_base *base;
    struct event *ev_keepalive;
    sse_snapshot_fn snapshot;
    void *arg;
    uint64_t epoch, seq;
    struct sse_history hist;
    struct sse_event *snap; /* the snapshot of the state after event seq, once made */
    struct sse_sub *subs;
    struct sse_stats st;
};

static void sub_unlink(struct sse_sub *s)
{
    for (struct sse_sub **p = &s->h->subs; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            s->h->st.subscribers--;
            return;
        }
    }
}

/* The peer went (EOF, error, evhttp's timeout) and libevent frees the connection. */
static void sub_closed(struct evhttp_connection *conn, void *arg)
{
    (void) conn;
    struct sse_sub *s = arg;
    log_debug("%s: subscriber %s went", s->h->name, s->peer);
    /* libevent detaches a request whose reply was not finished when its peer goes and
     * leaves it to us: ending it frees it; one still attached goes with the connection */
    if (!evhttp_request_get_connection(s->req))
        evhttp_send_reply_end(s->req);
    sub_unlink(s);
    free(s);
}

/* Bytes s has queued that libevent has not written to its socket yet. */
static size_t sub_queued(const struct sse_sub *s)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->conn);
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* May s take more bytes? An empty queue always may (one event larger than the bound still
 * goes out); a queue that drained below max_buffer ends its snapshot's allowance. */
static bool sub_room(struct sse_sub *s, size_t more, size_t *ret_queued)
{
    size_t q = sub_queued(s);
    *ret_queued = q;
    if (q <= s->h->cfg.max_buffer)
        s->allow = 0;
    return q == 0 || q + more <= s->h->cfg.max_buffer + s->allow;
}

/* Cut s off: its connection is freed (the client sees it close), with what was queued. */
static void sub_cut(struct sse_sub *s, size_t queued)
{
    struct sse_hub *h = s->h;
    h->st.cut_off++;
    log_warning("%s: subscriber %s is not reading (%zu bytes queued, max_buffer %zu): cut off",
                h->name, s->peer, queued, h->cfg.max_buffer);
    sub_unlink(s);
    evhttp_connection_set_closecb(s->conn, NULL, NULL);
    evhttp_connection_free(s->conn); /* frees its request too */
    free(s);
}

static void event_release(const void *data, size_t len, void *arg)
{
    (void) data, (void) len;
    sse_event_unref(arg);
}

/* One event or a comment onto s's connection, written into the connection's output buffer
 * directly (evhttp has enabled writing since the reply started); a chunked stream gets the
 * event's own framed bytes. Small events are copied onto the end of the buffer's last chain;
 * large ones (a snapshot) go by reference, shared with every other stream. Measured: a
 * reference costs a chain of its own, which libevent 2.1 allocates at 1 KiB at least
 * (MIN_BUFFER_SIZE), so a 300-byte event by reference took 4.5 times its size for a lagging
 * subscriber, while a copy takes its size. Rejected too: evhttp_send_reply_chunk, which adds
 * the framing in a fresh 1 KiB chain for every event and subscriber. */
static void sub_send(struct sse_sub *s, struct sse_event *ev, const char *text, size_t len)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->conn);
    if (!bev)
        return;
    struct evbuffer *out = bufferevent_get_output(bev);
    if (ev) {
        const char *p = s->chunked ? ev->chunk : ev->text;
        size_t n = s->chunked ? ev->chunk_len : ev->len;
        if (n >= SSE_REF_MIN)
            evbuffer_add_reference(out, p, n, event_release, sse_event_ref(ev));
        else
            evbuffer_add(out, p, n);
    } else if (s->chunked) {
        evbuffer_add_printf(out, "%zx\r\n", len);
        evbuffer_add(out, text, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, text, len);
    }
}

/* Send to s, or cut it off when it has no room. false when it was cut. */
static bool sub_offer(struct sse_sub *s, struct sse_event *ev, const char *text, size_t len)
{
    size_t q;
    if (!sub_room(s, ev ? ev->chunk_len : len, &q)) {
        sub_cut(s, q);
        return false;
    }
    sub_send(s, ev, text, len);
    return true;
}

static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct sse_hub *h = arg;
    static const char ka[] = ": keepalive\n\n";
    for (struct sse_sub *s = h->subs, *next; s; s = next) {
        next = s->next;
        sub_offer(s, NULL, ka, sizeof(ka) - 1);
    }
}

struct sse_hub *sse_hub_new(struct event_base *base, const struct sse_hub_cfg *cfg,
                            sse_snapshot_fn snapshot, void *arg)
{
    struct sse_hub *h = xzalloc(sizeof(*h));
    h->cfg = *cfg;
    h->name = xstrdup(cfg->name ? cfg->name : "events");
    h->cfg.name = h->name;
    h->base = base;
    h->snapshot = snapshot;
    h->arg = arg;
    /* ids of this run: past every id of an earlier run unless the clock went back */
    h->epoch = (uint64_t) (now_realtime() * 1000);
    sse_history_init(&h->hist, cfg->history);
    if (cfg->keepalive_ms) {
        h->ev_keepalive = event_new(base, -1, EV_PERSIST, on_keepalive, h);
        struct timeval tv = {.tv_sec = (time_t) (cfg->keepalive_ms / 1000),
                             .tv_usec = (suseconds_t) (cfg->keepalive_ms % 1000) * 1000};
        event_add(h->ev_keepalive, &tv);
    }
    return h;
}

void sse_hub_free(struct sse_hub *h)
{
    if (!h)
        return;
    /* the loop no longer runs to flush a reply's end: the connections go outright */
    while (h->subs) {
        struct sse_sub *s = h->subs;
        h->subs = s->next;
        evhttp_connection_set_closecb(s->conn, NULL, NULL);
        evhttp_connection_free(s->conn);
        free(s);
    }
    if (h->ev_keepalive)
        event_free(h->ev_keepalive);
    sse_history_done(&h->hist);
    sse_event_unref(h->snap);
    free(h->name);
    free(h);
}

/* The id the client has: its Last-Event-ID header (a reconnecting EventSource sends it), or
 * ?last_event_id= (a first connect, where browsers cannot set headers). Copied into buf. */
static const char *last_id_of(struct evhttp_request *req, char *buf, size_t len)
{
    const char *hdr = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
    if (hdr) {
        snprintf(buf, len, "%s", hdr);
        return buf;
    }
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq q;
    if (!query || evhttp_parse_query_str(query, &q) < 0)
        return NULL;
    const char *v = evhttp_find_header(&q, "last_event_id");
    if (v)
        snprintf(buf, len, "%s", v);
    evhttp_clear_headers(&q);
    return v ? buf : NULL;
}

int sse_hub_subscribe(struct sse_hub *h, struct evhttp_request *req, struct berr **err)
{
    if (h->st.subscribers >= h->cfg.max_subscribers) {
        h->st.refused++;
        return berr_setc(err, EAGAIN, BERR_UNAVAILABLE,
                         "%zu subscribers of %s are connected, the most there may be",
                         h->cfg.max_subscribers, h->name);
    }
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (!conn)
        return berr_setc(err, ENOTCONN, BERR_INTERNAL, "the subscriber's connection is gone");
    char last[SSE_ID_MAX + 16];
    const char *last_id = last_id_of(req, last, sizeof(last));
    size_t from = 0;
    bool resume = sse_resume_decide(&h->hist, h->epoch, h->seq, last_id, &from) > 0;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(oh, "Cache-Control", "no-cache");
    evhttp_add_header(oh, "X-Accel-Buffering", "no"); /* proxies: pass events on at once */
    evhttp_send_reply_start(req, 200, "OK");
    const char *te = evhttp_find_header(oh, "Transfer-Encoding");

    struct sse_sub *s = xzalloc(sizeof(*s));
    s->h = h;
    s->req = req;
    s->conn = conn;
    s->chunked = te && streq(te, "chunked");
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(conn, &addr, &port);
    snprintf(s->peer, sizeof(s->peer), "%s:%u", addr ? addr : "?", (unsigned) port);
    s->next = h->subs;
    h->subs = s;
    h->st.subscribers++;
    evhttp_connection_set_closecb(conn, sub_closed, s);
    /* the kernel's send buffer is a queue too: left alone it autotunes up to tcp_wmem's
     * maximum (4 MiB here) for a client that does not read, before our bound sees a byte.
     * Fixed at SSE_SNDBUF (the kernel doubles it) or max_buffer when smaller, it is bounded
     * as well; events are small, and a reader on any sane path keeps up with that. Not
     * max_buffer itself: where net.core.wmem_max allows, the kernel would hold twice it. */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn);
    int fd = bev ? (int) bufferevent_getfd(bev) : -1;
    int sndbuf = h->cfg.max_buffer < SSE_SNDBUF ? (int) h->cfg.max_buffer : SSE_SNDBUF;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
        log_debug("%s: SO_SNDBUF of %s: %s", h->name, s->peer, strerror(errno));
    /* evhttp's idle timeout is a read timeout too, and a subscriber sends nothing after its
     * GET: it would end every stream that long after it opened, keepalives or not. Reading
     * stays on (a closing peer is seen); writing times out only while bytes wait. */
    if (bev) {
        struct timeval wtv = {.tv_sec = (time_t) (h->cfg.write_timeout_ms / 1000),
                              .tv_usec = (suseconds_t) (h->cfg.write_timeout_ms % 1000) * 1000};
        bufferevent_set_timeouts(bev, NULL, h->cfg.write_timeout_ms ? &wtv : NULL);
    }

    if (resume) {
        h->st.resumed++;
        /* a comment first: the client sees the stream is live even when it missed nothing */
        char line[SSE_ID_MAX + 64];
        int n = snprintf(line, sizeof(line), ": resumed after %s, %zu missed\n\n", last_id,
                         h->hist.n - from);
        for (size_t i = from; i < h->hist.n; i++)
            s->allow += sse_history_at(&h->hist, i)->chunk_len;
        sub_send(s, NULL, line, (size_t) n);
        for (size_t i = from; i < h->hist.n; i++)
            sub_send(s, sse_history_at(&h->hist, i), NULL, 0);
        log_debug("%s: subscriber %s resumed after '%s'", h->name, s->peer, last_id);
        return 0;
    }
    h->st.snapshots++;
    /* one snapshot per state: subscribers that connect between two events (a reconnect
     * storm after a restart) share it instead of each making and holding a copy */
    if (!h->snap) {
        yajl_gen g = yajl_gen_alloc(NULL);
        h->snapshot(h->arg, g);
        const unsigned char *buf;
        size_t len;
        yajl_gen_get_buf(g, &buf, &len);
        /* its id is the newest event's: resuming from it replays what came after */
        h->snap = sse_event_new(h->epoch, h->seq, "snapshot", (const char *) buf, len);
        yajl_gen_free(g);
    }
    struct sse_event *ev = sse_event_ref(h->snap);
    s->allow = ev->chunk_len;
    sub_send(s, ev, NULL, 0);
    sse_event_unref(ev);
    log_debug("%s: subscriber %s: snapshot (%s)", h->name, s->peer,
              last_id ? "its last id is not in the history" : "no last id");
    return 0;
}

void sse_hub_publish(struct sse_hub *h, const char *name, const char *data, size_t len)
{
    struct sse_event *ev = sse_event_new(h->epoch, ++h->seq, name, data, len);
    sse_event_unref(h->snap); /* the state changed */
    h->snap = NULL;
    sse_history_push(&h->hist, ev);
    h->st.published++;
    for (struct sse_sub *s = h->subs, *next; s; s = next) {
        next = s->next;
        sub_offer(s, ev, NULL, 0);
    }
    sse_event_unref(ev);
}

void sse_hub_publish_gen(struct sse_hub *h, const char *name, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    sse_hub_publish(h, name, (const char *) buf, len);
}

void sse_hub_stats(const struct sse_hub *h, struct sse_stats *ret)
{
    *ret = h->st;
    ret->last_seq = h->seq;
    ret->history_bytes = 0;
    for (size_t i = 0; i < h->hist.n; i++)
        ret->history_bytes += sse_history_at(&h->hist, i)->chunk_len;
}
