/* SPDX-License-Identifier: Apache-2.0 */
/* lb/config.c - berth-lb's settings (docs/lb.md "Configuration", docs/config.md): built-in
 * defaults, then /etc/berth/lb.conf (or --config=FILE; INI read with libinih, section [lb]),
 * then --key=value flags. */
#include "config/config.h"

#include <string.h>

#include "lb/lb.h"

/* The annotated defaults (--print-default-config): loading this text gives the defaults. */
const char lb_default_config[] =
        "; /etc/berth/lb.conf - berth-lb configuration (INI; docs/lb.md).\n"
        "; Read in this order, later wins: built-in defaults (the values below), this file,\n"
        "; then command-line flags --KEY=VALUE (--http_port=8080).\n"
        "; Durations: 10, 10s, 500ms, 2m, 1w.\n"
        "\n"
        "[lb]\n"
        "; berth-apps' URL (its GET /v1/events is followed).\n"
        "apps = https://127.0.0.1:5070\n"
        "; File whose first line is berth-apps' API token. Required.\n"
        "token_file =\n"
        "; CA bundle of berth-apps' certificate (empty: the system's).\n"
        "apps_ca =\n"
        "; The HAProxy binary (2.2 or newer: master-worker, server-template, runtime API).\n"
        "haproxy = /usr/sbin/haproxy\n"
        "; Holds haproxy.cfg, haproxy.pid, the master socket master.sock and the runtime API's\n"
        "; haproxy.sock.\n"
        "run_dir = /run/berth-lb\n"
        "; The address the frontends bind (* for every address).\n"
        "bind = *\n"
        "; The port of the HTTP frontend that routes by Host to the apps with the label\n"
        "; lb.vhost (0: none).\n"
        "http_port = 80\n"
        "; Servers (server-template slots) per backend: the most instances of an app routed to.\n"
        "slots = 32\n"
        "; How long a server that stops serving drains before it goes to maint; also how long\n"
        "; an old HAProxy worker may finish its connections after a reload (hard-stop-after).\n"
        "drain_timeout = 30s\n"
        "; HAProxy's connect timeout, and its client/server idle timeout.\n"
        "connect_timeout = 2s\n"
        "idle_timeout = 60s\n"
        "; Connection attempts to servers per request (a refused one goes to another server).\n"
        "retries = 3\n"
        "; A stream from berth-apps silent this long is dropped and opened again (berth-apps\n"
        "; sends a keepalive comment every 15 s by default).\n"
        "stream_timeout = 45s\n"
        "; Leave HAProxy running when berth-lb stops (a restart adopts it without a reload).\n"
        "keep_haproxy = true\n"
        "; error, warning, info or debug.\n"
        "log_level = info\n";

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

static void defaults(struct lb_cfg *c)
{
    *c = (struct lb_cfg){0};
    c->apps = xstrdup("https://127.0.0.1:5070");
    c->token_file = xstrdup("");
    c->apps_ca = xstrdup("");
    c->haproxy = xstrdup("/usr/sbin/haproxy");
    c->run_dir = xstrdup("/run/berth-lb");
    c->bind = xstrdup("*");
    c->http_port = 80;
    c->slots = 32;
    c->drain_timeout_ms = 30000;
    c->connect_timeout_ms = 2000;
    c->idle_timeout_ms = 60000;
    c->retries = 3;
    c->stream_timeout_ms = 45000;
    c->keep_haproxy = true;
    c->log_level = xstrdup("info");
}

#define BAD(...) berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, __VA_ARGS__)

static __attribute__((nonnull(1))) int set_key(struct lb_cfg *c, const char *section,
                                               const char *key, const char *value,
                                               struct berr **err)
{
    if (!streq(section, "lb"))
        return BAD("unknown section [%s]", section);
    char **path = streq(key, "token_file") ? &c->token_file
                  : streq(key, "apps_ca")  ? &c->apps_ca
                  : streq(key, "haproxy")  ? &c->haproxy
                  : streq(key, "run_dir")  ? &c->run_dir
                                           : NULL;
    uint64_t *dur = streq(key, "drain_timeout")     ? &c->drain_timeout_ms
                    : streq(key, "connect_timeout") ? &c->connect_timeout_ms
                    : streq(key, "idle_timeout")    ? &c->idle_timeout_ms
                    : streq(key, "stream_timeout")  ? &c->stream_timeout_ms
                                                    : NULL;
    uint64_t v;
    if (path) {
        if ((value[0] || streq(key, "run_dir") || streq(key, "haproxy")) && value[0] != '/')
            return BAD("[lb] %s: '%s' is not an absolute path", key, value);
        set_str(path, value);
    } else if (dur) {
        if (cfg_parse_duration_ms(value, dur) < 0 || (*dur == 0 && !streq(key, "drain_timeout")))
            return BAD("[lb] %s: bad duration '%s' (e.g. 30s)", key, value);
    } else if (streq(key, "apps")) {
        if (!str_has_prefix(value, "https://") && !str_has_prefix(value, "http://"))
            return BAD("[lb] apps: '%s' is not an http(s):// URL", value);
        set_str(&c->apps, value);
        size_t n = strlen(c->apps);
        while (n > 8 && c->apps[n - 1] == '/')
            c->apps[--n] = 0;
    } else if (streq(key, "bind")) {
        if (!value[0] || strpbrk(value, " \t#"))
            return BAD("[lb] bind: bad address '%s'", value);
        set_str(&c->bind, value);
    } else if (streq(key, "http_port")) {
        if (parse_u64(value, &v) < 0 || v > 65535)
            return BAD("[lb] http_port: want 0-65535, not '%s'", value);
        c->http_port = (unsigned) v;
    } else if (streq(key, "slots")) {
        if (parse_u64(value, &v) < 0 || v < 1 || v > 1000)
            return BAD("[lb] slots: want 1-1000, not '%s'", value);
        c->slots = (unsigned) v;
    } else if (streq(key, "retries")) {
        if (parse_u64(value, &v) < 0 || v > 100)
            return BAD("[lb] retries: want 0-100, not '%s'", value);
        c->retries = (unsigned) v;
    } else if (streq(key, "keep_haproxy")) {
        if (parse_bool(value, &c->keep_haproxy) < 0)
            return BAD("[lb] keep_haproxy: '%s' is not a boolean", value);
    } else if (streq(key, "log_level")) {
        if (!streq(value, "error") && !streq(value, "warning") && !streq(value, "info") &&
            !streq(value, "debug"))
            return BAD("[lb] log_level: '%s' (error, warning, info or debug)", value);
        set_str(&c->log_level, value);
    } else {
        return BAD("unknown key '%s' in [lb]", key);
    }
    return 0;
}

static int set_any(void *obj, const char *section, const char *key, const char *value,
                   struct berr **err)
{
    return set_key(obj, section, key, value, err);
}

int lb_cfg_load(struct lb_cfg *cfg, int argc, char **argv, struct berr **err)
{
    defaults(cfg);
    static const struct cfg_daemon d = {
            .default_file = LB_DEFAULT_CONFIG, .section = "lb", .prog = "berth-lb", .set = set_any};
    if (cfg_daemon_load(&d, cfg, argc, argv, &cfg->config_file, err) < 0)
        return -EINVAL;
    if (!cfg->token_file[0])
        return BAD("%s: [lb] token_file is required (berth-apps' API token)", cfg->config_file);
    return 0;
}

void lb_cfg_done(struct lb_cfg *c)
{
    char *s[] = {c->apps,    c->token_file, c->apps_ca,   c->haproxy,
                 c->run_dir, c->bind,       c->log_level, c->config_file};
    for (size_t i = 0; i < ARRAY_SIZE(s); i++)
        free(s[i]);
    *c = (struct lb_cfg){0};
}
