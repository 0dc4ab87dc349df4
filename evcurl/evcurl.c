/* SPDX-License-Identifier: Apache-2.0 */
/* evcurl/evcurl.c - see evcurl.h. Each socket curl watches gets a persistent libevent event,
 * kept with the socket (curl_multi_assign) and freed when curl lets the socket go. */
#include "evcurl/evcurl.h"

#include <errno.h>

static void on_socket_event(evutil_socket_t fd, short kind, void *arg)
{
    struct evcurl *ec = arg;
    int action = (kind & EV_READ ? CURL_CSELECT_IN : 0) | (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(ec->multi, fd, action, &running);
    ec->ran(ec->arg);
}

static int sock_cb(CURL *e, curl_socket_t fd, int what, void *cbp, void *sockp)
{
    (void) e;
    struct evcurl *ec = cbp;
    struct event *ev = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (ev)
            event_free(ev);
        curl_multi_assign(ec->multi, fd, NULL);
        return 0;
    }
    short kind = (short) ((what & CURL_POLL_IN ? EV_READ : 0) |
                          (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (ev) {
        event_del(ev);
        event_assign(ev, ec->base, fd, kind, on_socket_event, ec);
    } else {
        ev = event_new(ec->base, fd, kind, on_socket_event, ec);
        curl_multi_assign(ec->multi, fd, ev);
    }
    event_add(ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    (void) multi;
    struct evcurl *ec = arg;
    if (timeout_ms < 0) {
        evtimer_del(ec->timer);
    } else {
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        evtimer_add(ec->timer, &tv);
    }
    return 0;
}

void evcurl_kick(struct evcurl *ec)
{
    int running;
    curl_multi_socket_action(ec->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    ec->ran(ec->arg);
}

static void on_timer(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    evcurl_kick(arg);
}

int evcurl_init(struct evcurl *ec, struct event_base *base, void (*ran)(void *arg), void *arg)
{
    *ec = (struct evcurl){.base = base, .ran = ran, .arg = arg};
    ec->multi = curl_multi_init();
    ec->timer = evtimer_new(base, on_timer, ec);
    if (!ec->multi || !ec->timer)
        return -ENOMEM;
    curl_multi_setopt(ec->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(ec->multi, CURLMOPT_SOCKETDATA, ec);
    curl_multi_setopt(ec->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(ec->multi, CURLMOPT_TIMERDATA, ec);
    return 0;
}

void evcurl_done(struct evcurl *ec)
{
    if (ec->multi)
        curl_multi_cleanup(ec->multi); /* may still call sock_cb: the timer goes after */
    ec->multi = NULL;
    if (ec->timer)
        event_free(ec->timer);
    ec->timer = NULL;
}
