/* SPDX-License-Identifier: Apache-2.0 */
/* sse/sse.h - the public header of sse/, a Server-Sent Events hub for berth's evhttp daemons
 * (berth-master's GET /v1/events, berth-apps' next). event.c holds the pure parts (an event
 * formatted once into its wire text, event ids, the bounded history and the resume decision:
 * tests/unit/sse_test.c); hub.c holds the subscribers, on one libevent loop: a snapshot on
 * connect (made by the daemon's callback) or the missed events from the history, then every
 * event as it is published, keepalive comments, a bound on what one subscriber may have
 * queued (it is cut off beyond it) and a bound on subscribers. sse/ may include common/ and
 * itself; it links libevent and yajl. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>

#include "common/common.h"

struct event_base;
struct evhttp_request;

/* ---- event.c: pure --------------------------------------------------------------------- */

/* One event as it goes on the wire, formatted once and kept by the history and by the streams
 * it is queued on by reference (counted; the hub runs on one thread; hub.c copies small
 * events onto streams instead, which costs less than a reference). text (len bytes) is
 * "id: ID\nevent: NAME\ndata: LINE\n...\n\n"; chunk (chunk_len bytes) is the same text
 * framed as one HTTP/1.1 chunk ("HEX\r\n" text "\r\n"), so a chunked reply needs no
 * per-subscriber framing either. */
struct sse_event {
    uint64_t seq;
    unsigned refs;
    const char *text;
    size_t len;
    size_t chunk_len;
    char chunk[];
};

/* An event's id: "<epoch>-<seq>". epoch is the hub's start (ms since 1970), so ids stay
 * unique across daemon restarts, and (epoch, seq) grows. buf needs SSE_ID_MAX bytes. */
#define SSE_ID_MAX 48
void sse_id_format(char *buf, size_t len, uint64_t epoch, uint64_t seq);
/* 0 with *ret_epoch and *ret_seq, or -EINVAL for anything but two decimal numbers
 * joined by '-'. */
int sse_id_parse(const char *s, uint64_t *ret_epoch, uint64_t *ret_seq);

/* The event NAME with data (len bytes, any text: every line of it becomes one "data:" line,
 * "\r\n", "\r" and "\n" ending lines as the SSE spec reads them) and id epoch-seq; refs = 1.
 * name must be one line. */
struct sse_event *sse_event_new(uint64_t epoch, uint64_t seq, const char *name, const char *data,
                                size_t len);
struct sse_event *sse_event_ref(struct sse_event *ev);
/* Drop one reference; frees at 0. NULL is fine. */
void sse_event_unref(struct sse_event *ev);

/* The last cap events, oldest first, for subscribers that resume. */
struct sse_history {
    struct sse_event **ring;
    size_t cap, n, head; /* head: index of the oldest */
};
void sse_history_init(struct sse_history *h, size_t cap);
/* Keep ev (a reference is taken); the oldest goes when full. Events come in seq order. */
void sse_history_push(struct sse_history *h, struct sse_event *ev);
/* The i-th kept event, oldest first (i < n). */
struct sse_event *sse_history_at(const struct sse_history *h, size_t i);
void sse_history_done(struct sse_history *h);

/* How a subscriber that sent last_id (Last-Event-ID) starts on a hub of epoch whose newest
 * event is last_seq (0: none yet): 1 with *ret_from, the history index of the first event to
 * replay (== n when nothing was missed), or 0 when it needs a snapshot instead: no id, an id
 * that does not parse, one of another epoch (the daemon restarted), one newer than last_seq,
 * or one older than the history holds. */
int sse_resume_decide(const struct sse_history *h, uint64_t epoch, uint64_t last_seq,
                      const char *last_id, size_t *ret_from);

/* ---- hub.c: the subscribers ------------------------------------------------------------- */

struct sse_hub_cfg {
    size_t history;            /* events kept for resume (>= 1) */
    size_t max_buffer;         /* bytes one subscriber may have queued, its snapshot aside */
    size_t max_subscribers;    /* beyond it a new subscriber is refused (UNAVAILABLE) */
    uint64_t keepalive_ms;     /* a comment line this often on every stream (0: none) */
    uint64_t write_timeout_ms; /* a stream whose socket takes nothing this long closes (0: never) */
    const char *name;          /* for log lines: "events" */
};

struct sse_stats {
    uint64_t subscribers;   /* connected now */
    uint64_t published;     /* events published */
    uint64_t cut_off;       /* subscribers cut off over max_buffer */
    uint64_t refused;       /* subscribers refused at max_subscribers */
    uint64_t snapshots;     /* streams that started with a snapshot */
    uint64_t resumed;       /* streams that resumed from the history */
    uint64_t last_seq;      /* the newest event's seq */
    uint64_t history_bytes; /* what the history holds */
};

/* The daemon's snapshot: one JSON value written into g (the "snapshot" event's data). It is
 * made again only after an event was published (subscribers that connect in between share
 * it), so everything it shows must change through published events. */
typedef void (*sse_snapshot_fn)(void *arg, yajl_gen g);

struct sse_hub;
/* A hub on base (cfg copied; snapshot and arg borrowed for its life). Its epoch is now. */
struct sse_hub *sse_hub_new(struct event_base *base, const struct sse_hub_cfg *cfg,
                            sse_snapshot_fn snapshot, void *arg);
/* Close every stream (the connections are freed: call it before evhttp_free) and free h.
 * NULL is fine. */
void sse_hub_free(struct sse_hub *h);
/* req (a GET whose caller the daemon has authorised) becomes a stream: text/event-stream,
 * then a snapshot or, when its Last-Event-ID header (or ?last_event_id=) is in the history,
 * the events it missed, then every event published. 0, or -EAGAIN with err (UNAVAILABLE)
 * when max_subscribers are connected: the daemon answers req with its error reply. */
int sse_hub_subscribe(struct sse_hub *h, struct evhttp_request *req, struct berr **err);
/* Publish event name with data (a JSON text, len bytes): given the next id, kept in the
 * history and queued on every stream; a stream over max_buffer is cut off instead. */
void sse_hub_publish(struct sse_hub *h, const char *name, const char *data, size_t len);
/* Publish what g holds (a complete JSON value). */
void sse_hub_publish_gen(struct sse_hub *h, const char *name, yajl_gen g);
void sse_hub_stats(const struct sse_hub *h, struct sse_stats *ret);
