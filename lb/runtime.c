/* SPDX-License-Identifier: Apache-2.0 */
/* lb/runtime.c - HAProxy's runtime API (the stats socket haproxy.cfg puts at
 * run_dir/haproxy.sock, level admin) from berth-lb's loop: one connection per exchange, the
 * commands on one line joined with ';', the reply read to EOF (HAProxy closes a
 * non-interactive session after answering), all on a bufferevent with a 2 s timeout, so the
 * loop never waits on HAProxy. One exchange at a time. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lb/lbd.h"

static void finish(struct lbd *l, bool ok)
{
    struct evbuffer *in = bufferevent_get_input(l->rt);
    size_t n = evbuffer_get_length(in);
    char *reply = xmalloc(n + 1);
    evbuffer_remove(in, reply, n);
    reply[n] = 0;
    bufferevent_free(l->rt);
    l->rt = NULL;
    lb_rt_cb cb = l->rt_cb;
    l->rt_cb = NULL;
    if (!ok)
        l->rt_fail_ms = lb_now_ms();
    cb(l, ok, reply);
    free(reply);
    if (l->hap == LB_HAP_RELOADING)
        lb_probe_soon(l); /* the next "show info" for the new worker waited for this one */
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void) bev, (void) arg; /* kept in the input buffer until EOF */
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void) bev;
    struct lbd *l = arg;
    if (what & BEV_EVENT_CONNECTED)
        return;
    if (what & BEV_EVENT_EOF) {
        finish(l, true);
        return;
    }
    log_debug("runtime API: %s", what & BEV_EVENT_TIMEOUT ? "timed out" : strerror(errno));
    finish(l, false);
}

int lb_rt_send(struct lbd *l, const char *cmds, lb_rt_cb cb)
{
    if (l->rt)
        return -EBUSY;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    _cleanup_free_ char *path = lb_path(l, "haproxy.sock");
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    l->rt = bufferevent_socket_new(l->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!l->rt)
        return -ENOMEM;
    l->rt_cb = cb;
    bufferevent_setcb(l->rt, on_read, NULL, on_event, l);
    struct timeval tv = {.tv_sec = 2};
    bufferevent_set_timeouts(l->rt, &tv, &tv);
    bufferevent_enable(l->rt, EV_READ | EV_WRITE);
    bufferevent_write(l->rt, cmds, strlen(cmds));
    bufferevent_write(l->rt, "\n", 1);
    if (bufferevent_socket_connect(l->rt, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
        /* the bufferevent is freed by finish */
        finish(l, false);
        return 0;
    }
    return 0;
}

void lb_rt_free(struct lbd *l)
{
    if (l->rt)
        bufferevent_free(l->rt);
    l->rt = NULL;
    l->rt_cb = NULL;
}
