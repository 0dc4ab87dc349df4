/* SPDX-License-Identifier: Apache-2.0 */
/* apps/main.c - berth-apps' entry point: reads apps.conf and flags, the two tokens, opens
 * apps.db and loads the apps, instances and deployments, serves the HTTP API (api.c), subscribes
 * to the master as a framework (keeper.c) and runs deploy.c's pass on a tick, all on one
 * libevent loop; SIGTERM/SIGINT end it. The apps' tasks keep running while it is away (the
 * master keeps them for failover_timeout); under systemd (Type=notify) it sends READY=1 once
 * listening. */
#include <event2/event.h>
#include <signal.h>
#include <string.h>

#include "apps/api.h"

static const char usage[] =
        "Usage: berth-apps [--config=FILE] [--KEY=VALUE ...]\n"
        "\n"
        "Keeps long-running apps on a berth cluster: a framework on berth-master's scheduler\n"
        "API that launches each app's instances from offers, replaces the ones that end (with\n"
        "a backoff), scales them and rolls them to new versions (docs/apps.md).\n"
        "\n"
        "  --config=FILE          configuration file (default /etc/berth/apps.conf; a missing\n"
        "                         default file is fine)\n"
        "  --KEY=VALUE            set [apps] KEY, e.g. --listen=127.0.0.1:5070\n"
        "                         --work_dir=/var/lib/berth-apps --token_file=FILE\n"
        "                         --tls_cert=FILE --tls_key=FILE --plain_http=true\n"
        "                         --master=https://127.0.0.1:5050 --master_ca=FILE\n"
        "                         --master_token_file=FILE --role=* --name=berth-apps\n"
        "                         --failover_timeout=1w --log_level=info\n"
        "  --print-default-config print the annotated default apps.conf and exit\n"
        "  --help, --version\n";

int apps_tls_init(struct apps *a, struct berr **err)
{
    if (!a->cfg.tls_cert[0]) {
        log_warning("plain_http = true: the API on '%s' is served without TLS", a->cfg.listen);
        return 0;
    }
    return tls_server_new(a->cfg.tls_cert, a->cfg.tls_key, "[apps]", &a->tls, err);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void) what;
    struct apps *a = arg;
    log_info("received signal %d, stopping", (int) sig);
    event_base_loopexit(a->base, NULL);
}

static int read_token(const char *path, const char *key, char **ret, struct berr **err)
{
    int r = read_file_alloc(path, 4096, ret, NULL);
    if (r < 0)
        return berr_set(err, -r, "[apps] %s '%s'", key, path);
    (*ret)[strcspn(*ret, "\r\n")] = 0;
    if (strlen(*ret) < 16)
        return berr_setx(err, EINVAL, "[apps] %s '%s': the token has fewer than 16 characters", key,
                         path);
    return 0;
}

static int setup(struct apps *a, struct berr **err)
{
    int r;
    if ((r = read_token(a->cfg.token_file, "token_file", &a->token, err)) < 0 ||
        (r = read_token(a->cfg.master_token_file, "master_token_file", &a->master_token, err)) < 0)
        return r;
    if ((r = apps_store_open(a, err)) < 0 || (r = apps_store_load(a, err)) < 0)
        return r;
    a->base = event_base_new();
    if (!a->base)
        return berr_setx(err, ENOMEM, "event_base_new failed");
    if ((r = apps_events_start(a, err)) < 0)
        return r;
    if (apps_api_start(a, err) < 0)
        return berr_wrap(err, "listen '%s'", a->cfg.listen);
    if ((r = apps_keeper_start(a, err)) < 0)
        return r;
    a->ev_tick = event_new(a->base, -1, EV_PERSIST, apps_tick, a);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    event_add(a->ev_tick, &tv);
    a->ev_sigterm = evsignal_new(a->base, SIGTERM, on_stop_signal, a);
    a->ev_sigint = evsignal_new(a->base, SIGINT, on_stop_signal, a);
    event_add(a->ev_sigterm, NULL);
    event_add(a->ev_sigint, NULL);
    return 0;
}

static void teardown(struct apps *a)
{
    apps_keeper_stop(a);
    apps_events_stop(a);
    apps_api_stop(a);
    struct event *evs[] = {a->ev_tick, a->ev_sigterm, a->ev_sigint};
    for (size_t i = 0; i < ARRAY_SIZE(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    while (a->insts) {
        struct inst *i = a->insts;
        a->insts = i->next;
        apps_inst_free(i);
    }
    while (a->deps) /* from memory only: the rows stay */
    {
        struct dep *d = a->deps;
        a->deps = d->next;
        free(d->app_id);
        free(d->kind);
        free(d->version);
        free(d->from_version);
        free(d->state);
        free(d->message);
        free(d->pub);
        free(d);
    }
    while (a->apps) {
        struct app *app = a->apps;
        a->apps = app->next;
        apps_app_free(app);
    }
    apps_store_close(a);
    if (a->base)
        event_base_free(a->base);
    if (a->token)
        explicit_bzero(a->token, strlen(a->token));
    if (a->master_token)
        explicit_bzero(a->master_token, strlen(a->master_token));
    free(a->token);
    free(a->master_token);
    free(a->framework_id);
    apps_cfg_done(&a->cfg);
}

int main(int argc, char **argv)
{
    log_set_ident("berth-apps");
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--help") || streq(argv[i], "-h"))
            return fputs(usage, stdout) < 0;
        if (streq(argv[i], "--version"))
            return printf("berth-apps %s\n", BERTH_VERSION) < 0;
        if (streq(argv[i], "--print-default-config"))
            return fputs(apps_default_config, stdout) < 0;
    }
    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(log_libevent);
    _cleanup_free_ char *notify = notify_socket_take();
    struct apps a = {0};
    _cleanup_berr_ struct berr *err = NULL;
    if (apps_cfg_load(&a.cfg, argc, argv, &err) < 0) {
        log_error("%s", berr_msg(err));
        apps_cfg_done(&a.cfg);
        return 1;
    }
    log_set_level_name(a.cfg.log_level);
    int rc = 0;
    if (setup(&a, &err) < 0) {
        log_error("cannot start: %s", berr_msg(err));
        rc = 1;
    } else {
        size_t n = 0;
        for (struct app *app = a.apps; app; app = app->next)
            n++;
        log_info("serving on '%s' (work_dir '%s', %zu apps, master '%s')", a.cfg.listen,
                 a.cfg.work_dir, n, a.cfg.master);
        if (notify_send(notify, "READY=1") < 0)
            log_warning("cannot notify '%s' that berth-apps is ready", notify);
        event_base_dispatch(a.base);
        notify_send(notify, "STOPPING=1");
        rc = a.exit_code;
    }
    teardown(&a);
    return rc;
}
