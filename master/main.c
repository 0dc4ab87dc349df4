/* SPDX-License-Identifier: Apache-2.0 */
/* master/main.c - berth-master's entry point: reads master.conf and flags, opens master.db
 * and loads the registry (roles, agents, frameworks, the built-in framework, tasks), serves
 * HTTP (api.c) with the agent protocol (link.c) and the scheduler API (sched.c) on one
 * libevent loop with a one-second tick each, allocation passes (offers.c) every
 * allocation_interval and whenever resources free up, and on SIGTERM/SIGINT ends the
 * streams and frees everything. Agents and their tasks keep running while the master is away.
 * Under systemd (berth-master.service, Type=notify) it sends READY=1 once the listener is
 * bound and STOPPING=1 when the loop ends (common/notify.c). */
#include <event2/event.h>
#include <signal.h>
#include <string.h>

#include "master/master.h"

static const char usage[] =
        "Usage: berth-master [--config=FILE] [--KEY=VALUE ...]\n"
        "\n"
        "The berth master: keeps the registry of agents, frameworks and tasks (SQLite), takes\n"
        "agents' subscriptions, heartbeats and status updates, offers the agents' free\n"
        "resources to frameworks by Dominant Resource Fairness across roles (the scheduler API,\n"
        "docs/protocol.md), and runs the tasks users submit through its own framework\n"
        "(docs/api.md).\n"
        "\n"
        "  --config=FILE          configuration file (default /etc/berth/master.conf; a missing\n"
        "                         default file is fine)\n"
        "  --KEY=VALUE            set [master] KEY, e.g. --listen=127.0.0.1:5050\n"
        "                         --work_dir=/var/lib/berth-master --token_file=FILE\n"
        "                         --join_token_file=FILE --tls_cert=FILE --tls_key=FILE\n"
        "                         --plain_http=true\n"
        "                         --heartbeat_interval=5s --agent_timeout=15s --lost_grace=30s\n"
        "                         --placement=spread|binpack --reconcile_kill=true\n"
        "                         --allocation_interval=1s --offer_timeout=30s\n"
        "                         --failover_timeout=1h --role.NAME.weight=2\n"
        "                         --events_history=4096 --events_buffer=4MiB\n"
        "                         --events_max_subscribers=64 --events_keepalive=15s ...\n"
        "  --print-default-config print the annotated default master.conf and exit\n"
        "  --help, --version\n";

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void) what;
    struct master *m = arg;
    log_info("received signal %d, stopping", (int) sig);
    event_base_loopexit(m->base, NULL);
}

static struct timeval ms_tv(uint64_t ms)
{
    return (struct timeval){.tv_sec = (time_t) (ms / 1000),
                            .tv_usec = (suseconds_t) (ms % 1000) * 1000};
}

static int setup(struct master *m, struct berr **err)
{
    int r;
    drf_init(&m->drf);
    if ((r = master_store_open(m, err)) < 0 || (r = master_roles_load(m, err)) < 0 ||
        (r = master_agents_load(m, err)) < 0 || (r = master_fws_load(m, err)) < 0)
        return r;
    if (master_builtin_init(m) < 0)
        return berr_setx(err, EIO, "cannot make the built-in framework");
    if ((r = master_tasks_load(m, err)) < 0 || (r = master_auth_load(m, err)) < 0)
        return r;
    master_builtin_start(m);
    m->base = event_base_new();
    if (!m->base)
        return berr_setx(err, ENOMEM, "event_base_new failed");
    if (master_api_start(m, err) < 0)
        return berr_wrap(err, "listen '%s'", m->cfg.listen);
    master_events_start(m); /* from here on changes are published (GET /v1/events) */
    /* the allocation passes: at once when asked (ev_alloc), and every allocation_interval */
    m->ev_alloc = event_new(m->base, -1, 0, master_alloc_pass, m);
    m->ev_alloc_timer = event_new(m->base, -1, EV_PERSIST, master_alloc_pass, m);
    m->ev_sched_tick = event_new(m->base, -1, EV_PERSIST, master_sched_tick, m);
    struct timeval atv = ms_tv(m->cfg.allocation_interval_ms), stv = ms_tv(1000);
    event_add(m->ev_alloc_timer, &atv);
    event_add(m->ev_sched_tick, &stv);
    m->last_fw_hb_ns = now_monotonic_ns();
    if (m->cfg.check_invariants)
        log_warning("check_invariants = true: the allocator's books are checked after every "
                    "event (a test hook; slow with many tasks)");
    m->ev_tick = event_new(m->base, -1, EV_PERSIST, master_link_tick, m);
    uint64_t tick_ms =
            m->cfg.heartbeat_interval_ms < 2000 ? m->cfg.heartbeat_interval_ms / 2 : 1000;
    struct timeval tv = {.tv_sec = (time_t) (tick_ms / 1000),
                         .tv_usec = (suseconds_t) (tick_ms % 1000) * 1000};
    event_add(m->ev_tick, &tv);
    m->last_ping_ns = now_monotonic_ns();
    m->ev_sigterm = evsignal_new(m->base, SIGTERM, on_stop_signal, m);
    m->ev_sigint = evsignal_new(m->base, SIGINT, on_stop_signal, m);
    event_add(m->ev_sigterm, NULL);
    event_add(m->ev_sigint, NULL);
    return 0;
}

static void teardown(struct master *m)
{
    master_agents_streams_free(m);
    master_fws_streams_free(m);
    master_pending_free_all(m);
    master_events_stop(m); /* its connections go before evhttp_free */
    master_api_stop(m);
    struct event *evs[] = {m->ev_tick, m->ev_alloc, m->ev_alloc_timer, m->ev_sched_tick};
    for (size_t i = 0; i < ARRAY_SIZE(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    m->ev_alloc = NULL;
    if (m->ev_sigterm)
        event_free(m->ev_sigterm);
    if (m->ev_sigint)
        event_free(m->ev_sigint);
    master_offers_free(m);
    master_tasks_free(m);
    master_fws_free(m);
    master_agents_free(m);
    drf_free(&m->drf);
    master_tokens_free(m);
    master_store_close(m);
    if (m->base)
        event_base_free(m->base);
    master_cfg_done(&m->cfg);
}

int main(int argc, char **argv)
{
    log_set_ident("berth-master");
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (streq(argv[i], "--version")) {
            printf("berth-master %s\n", BERTH_VERSION);
            return 0;
        }
        if (streq(argv[i], "--print-default-config")) {
            fputs(master_default_config, stdout);
            return 0;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(log_libevent);               /* libevent's warnings, rate-limited */
    _cleanup_free_ char *notify = notify_socket_take(); /* Type=notify (common/notify.c) */
    struct master m = {0};
    _cleanup_berr_ struct berr *err = NULL;
    if (master_cfg_load(&m.cfg, argc, argv, &err) < 0) {
        log_error("%s", berr_msg(err));
        master_cfg_done(&m.cfg);
        return 1;
    }
    log_set_level_name(m.cfg.log_level);
    int rc = 0;
    if (setup(&m, &err) < 0) {
        log_error("cannot start: %s", berr_msg(err));
        rc = 1;
    } else {
        log_info("serving on '%s' (work_dir '%s', %zu agents, %zu tasks known)", m.cfg.listen,
                 m.cfg.work_dir, m.n_agents, m.n_tasks);
        /* the listener is bound (master_api_start): agents and berthctl can connect now */
        if (notify_send(notify, "READY=1") < 0)
            log_warning("cannot notify '%s' that the master is ready", notify);
        event_base_dispatch(m.base);
        notify_send(notify, "STOPPING=1");
    }
    teardown(&m);
    return rc;
}
