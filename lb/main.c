/* SPDX-License-Identifier: Apache-2.0 */
/* lb/main.c - berth-lb's entry point (docs/lb.md): reads lb.conf and flags and the token,
 * adopts a HAProxy left running by an earlier berth-lb (its pid file), subscribes to
 * berth-apps' events (stream.c), and on every change of the table syncs: the backends and
 * their slots (slots.c), haproxy.cfg and a reload when the set of frontends changed
 * (haproxy.c), the servers' addresses and states through the runtime API (runtime.c); a 100 ms
 * tick ends drains, retries what failed and watches HAProxy. One libevent loop; SIGTERM/SIGINT
 * end it (HAProxy keeps running unless keep_haproxy = false). */
#include <curl/curl.h>
#include <event2/event.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "lb/lbd.h"

static const char usage[] =
        "Usage: berth-lb [--config=FILE] [--KEY=VALUE ...]\n"
        "\n"
        "Routes clients to berth-apps' apps: follows berth-apps' event stream and drives a\n"
        "HAProxy (master-worker) from it, one frontend per service port and HTTP virtual hosts\n"
        "by the app label lb.vhost; servers change through HAProxy's runtime API, reloads only\n"
        "when the frontends change (docs/lb.md).\n"
        "\n"
        "  --config=FILE          configuration file (default /etc/berth/lb.conf; a missing\n"
        "                         default file is fine)\n"
        "  --KEY=VALUE            set [lb] KEY, e.g. --apps=https://127.0.0.1:5070\n"
        "                         --token_file=FILE --apps_ca=FILE --haproxy=/usr/sbin/haproxy\n"
        "                         --run_dir=/run/berth-lb --bind=* --http_port=80 --slots=32\n"
        "                         --drain_timeout=30s --connect_timeout=2s --idle_timeout=60s\n"
        "                         --retries=3 --stream_timeout=45s --keep_haproxy=true\n"
        "                         --log_level=info\n"
        "  --print-default-config print the annotated default lb.conf and exit\n"
        "  --stop-haproxy         soft-stop the HAProxy of run_dir (SIGUSR1 to its master: the\n"
        "                         workers finish their connections) and exit\n"
        "  --help, --version\n";

uint64_t lb_now_ms(void)
{
    return now_monotonic_ns() / 1000000;
}

void lb_sync_soon(struct lbd *l)
{
    event_active(l->ev_sync, 0, 0);
}

void lb_probe_soon(struct lbd *l)
{
    if (!event_pending(l->ev_probe, EV_TIMEOUT, NULL))
        event_add(l->ev_probe, &(struct timeval){.tv_usec = 5000});
}

static bool line_has(const char *p, size_t n, const char *word)
{
    return strcasestr(strndupa(p, n), word) != NULL;
}

static void on_pushed(struct lbd *l, bool ok, const char *reply)
{
    if (!ok) {
        log_warning("runtime API: no answer from HAProxy: the servers are sent again");
        lb_backends_forget(&l->bs);
        return;
    }
    for (const char *p = reply; *p;) {
        size_t n = strcspn(p, "\n");
        if (n && (line_has(p, n, "no such") || line_has(p, n, "unknown") ||
                  line_has(p, n, "invalid") || line_has(p, n, "require")))
            log_warning("runtime API: %.*s", (int) n, p);
        p += n + (p[n] == '\n');
    }
    if (!lb_hap_answered(l, reply)) {
        lb_backends_forget(&l->bs); /* another worker took them: every slot again, */
        lb_probe_soon(l);           /* in a few ms (the old one hands the socket over) */
        return;
    }
    if (l->hap == LB_HAP_RELOADING)
        l->state_stale = true; /* into servers.state for the new master (haproxy.c) */
    lb_sync_soon(l);           /* what changed meanwhile */
}

/* Send what the slots need, in batches of about 8 KiB (HAProxy's line buffer is 16 KiB), after
 * "show info" (which worker took them: lb_hap_answered). While HAProxy reloads they go to the
 * old worker, which serves until the new one takes the sockets. */
static void push(struct lbd *l)
{
    bool to = (l->hap == LB_HAP_RUNNING && l->worker_pid) ||
              (l->hap == LB_HAP_RELOADING && l->old_worker_pid);
    if (!to || l->rt || l->reload_pending)
        return;
    if (l->rt_fail_ms && lb_now_ms() - l->rt_fail_ms < 100)
        return;
    _cleanup_free_ char *cmds = xstrdup("show info");
    size_t n = 0;
    for (size_t i = 0; i < l->bs.n && strlen(cmds) < 8192; i++)
        n += lb_slots_commands(l->bs.v[i], &cmds);
    if (!n)
        return;
    log_debug("runtime API: %zu servers: %s", n, cmds);
    lb_rt_send(l, cmds, on_pushed);
}

static void sync_now(struct lbd *l)
{
    if (!l->table.loaded)
        return;
    if (lb_backends_update(&l->bs, &l->table, l->cfg.slots))
        l->shape_dirty = true;
    uint64_t now = lb_now_ms();
    for (size_t i = 0; i < l->bs.n; i++)
        lb_slots_assign(l->bs.v[i], &l->table, now, l->cfg.drain_timeout_ms);
    if (l->shape_dirty || l->hap == LB_HAP_NONE)
        lb_hap_apply_cfg(l);
    push(l);
}

static void on_sync(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    sync_now(arg);
}

static void on_tick(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct lbd *l = arg;
    lb_hap_tick(l);
    sync_now(l);
}

static void on_sigchld(evutil_socket_t fd, short kind, void *arg)
{
    (void) fd, (void) kind;
    struct lbd *l = arg;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        lb_hap_on_child(l, pid, status);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void) what;
    struct lbd *l = arg;
    log_info("received signal %d, stopping", (int) sig);
    event_base_loopexit(l->base, NULL);
}

static int setup(struct lbd *l, struct berr **err)
{
    int r = read_file_alloc(l->cfg.token_file, 4096, &l->token, NULL);
    if (r < 0)
        return berr_set(err, -r, "[lb] token_file '%s'", l->cfg.token_file);
    l->token[strcspn(l->token, "\r\n")] = 0;
    if ((r = mkdir_p(l->cfg.run_dir, 0755)) < 0)
        return berr_set(err, -r, "[lb] run_dir '%s'", l->cfg.run_dir);
    l->base = event_base_new();
    if (!l->base)
        return berr_setx(err, ENOMEM, "event_base_new failed");
    if ((r = lb_stream_init(l, err)) < 0)
        return r;
    l->ev_sync = event_new(l->base, -1, 0, on_sync, l);
    l->ev_tick = event_new(l->base, -1, EV_PERSIST, on_tick, l);
    l->ev_probe = event_new(l->base, -1, 0, on_tick, l);
    l->ev_sigchld = evsignal_new(l->base, SIGCHLD, on_sigchld, l);
    l->ev_sigterm = evsignal_new(l->base, SIGTERM, on_stop_signal, l);
    l->ev_sigint = evsignal_new(l->base, SIGINT, on_stop_signal, l);
    event_add(l->ev_tick, &(struct timeval){.tv_usec = 100000});
    event_add(l->ev_sigchld, NULL);
    event_add(l->ev_sigterm, NULL);
    event_add(l->ev_sigint, NULL);
    lb_hap_adopt(l);
    lb_stream_start(l);
    return 0;
}

static void teardown(struct lbd *l)
{
    lb_stream_free(l);
    lb_rt_free(l);
    lb_hap_stop(l);
    struct event *evs[] = {l->ev_sync,    l->ev_tick,    l->ev_probe,
                           l->ev_sigchld, l->ev_sigterm, l->ev_sigint};
    for (size_t i = 0; i < ARRAY_SIZE(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    lb_backends_free(&l->bs);
    lb_table_clear(&l->table);
    if (l->base)
        event_base_free(l->base);
    if (l->token)
        explicit_bzero(l->token, strlen(l->token));
    free(l->token);
    free(l->pending_cfg);
    lb_cfg_done(&l->cfg);
}

int main(int argc, char **argv)
{
    log_set_ident("berth-lb");
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--help") || streq(argv[i], "-h"))
            return fputs(usage, stdout) < 0;
        if (streq(argv[i], "--version"))
            return printf("berth-lb %s\n", BERTH_VERSION) < 0;
        if (streq(argv[i], "--print-default-config"))
            return fputs(lb_default_config, stdout) < 0;
    }
    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(log_libevent);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    _cleanup_free_ char *notify = notify_socket_take();
    struct lbd l = {0};
    _cleanup_berr_ struct berr *err = NULL;
    bool stop_haproxy = false;
    for (int i = 1; i < argc; i++)
        if (streq(argv[i], "--stop-haproxy")) {
            stop_haproxy = true;
            memmove(argv + i, argv + i + 1, (size_t) (argc - i) * sizeof(*argv));
            argc--;
            break;
        }
    if (lb_cfg_load(&l.cfg, argc, argv, &err) < 0) {
        log_error("%s", berr_msg(err));
        lb_cfg_done(&l.cfg);
        return 1;
    }
    log_set_level_name(l.cfg.log_level);
    int rc = 0;
    if (stop_haproxy) {
        rc = lb_hap_soft_stop(&l) < 0;
        lb_cfg_done(&l.cfg);
        return rc;
    }
    if (setup(&l, &err) < 0) {
        log_error("cannot start: %s", berr_msg(err));
        rc = 1;
    } else {
        log_info("following %s, HAProxy in %s", l.cfg.apps, l.cfg.run_dir);
        if (notify_send(notify, "READY=1") < 0)
            log_warning("cannot notify '%s' that berth-lb is ready", notify);
        event_base_dispatch(l.base);
        notify_send(notify, "STOPPING=1");
    }
    teardown(&l);
    curl_global_cleanup();
    return rc;
}
