/* SPDX-License-Identifier: Apache-2.0 */
/* apps/config.c - berth-apps' settings (docs/apps.md "Configuration"): built-in defaults, then
 * /etc/berth/apps.conf (or --config=FILE; INI read with libinih, section [apps]), then
 * --key=value flags. Durations use config/'s parser like the other daemons. */
#include "config/config.h"

#include <string.h>

#include "apps/appsd.h"

/* The annotated defaults (--print-default-config): loading this text gives the defaults. */
const char apps_default_config[] =
        "; /etc/berth/apps.conf - berth-apps configuration (INI; docs/apps.md).\n"
        "; Read in this order, later wins: built-in defaults (the values below), this file,\n"
        "; then command-line flags --KEY=VALUE (--listen=0.0.0.0:5070).\n"
        "; Durations: 10, 10s, 500ms, 2m, 1w.\n"
        "\n"
        "[apps]\n"
        "; HOST:PORT of the HTTP API (/v1/apps, /v1/deployments).\n"
        "listen = 127.0.0.1:5070\n"
        "; Holds apps.db (SQLite: apps, versions, deployments, instances, the framework id).\n"
        "work_dir = /var/lib/berth-apps\n"
        "; File whose first line is the API's bearer token (at least 16 characters). Required.\n"
        "token_file =\n"
        "; TLS: the certificate (chain) and key of the API (PEM).\n"
        "tls_cert =\n"
        "tls_key =\n"
        "; Serve plain HTTP: refused unless set, when tls_cert and tls_key are empty.\n"
        "plain_http = false\n"
        "; berth-master's URL.\n"
        "master = https://127.0.0.1:5050\n"
        "; CA bundle of the master's certificate (empty: the system's).\n"
        "master_ca =\n"
        "; File holding a master token with submit rights in role. Required.\n"
        "master_token_file =\n"
        "; The role berth-apps takes offers in and launches with.\n"
        "role = *\n"
        "; The framework's name at the master.\n"
        "name = berth-apps\n"
        "; How long the master keeps the apps' tasks while berth-apps is away.\n"
        "failover_timeout = 1w\n"
        "; How long an instance that serves (RUNNING and healthy) is kept, marked killing and\n"
        "; so out of every berth-lb's rotation, before berth-apps asks for its end (0 = at once).\n"
        "kill_delay = 1s\n"
        "; GET /v1/events (Server-Sent Events): events kept for clients that come back\n"
        "; with Last-Event-ID (older ones get a snapshot instead).\n"
        "events_history = 4096\n"
        "; Bytes one subscriber may have queued (not yet written to its socket), its\n"
        "; snapshot aside: a subscriber past it is cut off.\n"
        "events_buffer = 4MiB\n"
        "; Subscribers at once (more are refused 503 UNAVAILABLE).\n"
        "events_max_subscribers = 64\n"
        "; A keepalive comment on every stream this often (0 = none).\n"
        "events_keepalive = 15s\n"
        "; error, warning, info or debug.\n"
        "log_level = info\n";

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

static void defaults(struct apps_cfg *c)
{
    *c = (struct apps_cfg){0};
    c->listen = xstrdup("127.0.0.1:5070");
    c->work_dir = xstrdup("/var/lib/berth-apps");
    c->token_file = xstrdup("");
    c->tls_cert = xstrdup("");
    c->tls_key = xstrdup("");
    c->master = xstrdup("https://127.0.0.1:5050");
    c->master_ca = xstrdup("");
    c->master_token_file = xstrdup("");
    c->role = xstrdup("*");
    c->name = xstrdup("berth-apps");
    c->failover_timeout_ms = UINT64_C(7) * 24 * 3600 * 1000;
    c->kill_delay_ms = 1000;
    c->log_level = xstrdup("info");
    c->events_history = 4096;
    c->events_buffer = 4 << 20;
    c->events_max_subscribers = 64;
    c->events_keepalive_ms = 15000;
}

#define BAD(...) berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, __VA_ARGS__)

static __attribute__((nonnull(1))) int set_key(struct apps_cfg *c, const char *section,
                                               const char *key, const char *value,
                                               struct berr **err)
{
    if (!streq(section, "apps"))
        return BAD("unknown section [%s]", section);
    char **path = streq(key, "work_dir")            ? &c->work_dir
                  : streq(key, "token_file")        ? &c->token_file
                  : streq(key, "tls_cert")          ? &c->tls_cert
                  : streq(key, "tls_key")           ? &c->tls_key
                  : streq(key, "master_ca")         ? &c->master_ca
                  : streq(key, "master_token_file") ? &c->master_token_file
                                                    : NULL;
    if (path) {
        if ((value[0] || streq(key, "work_dir")) && value[0] != '/')
            return BAD("[apps] %s: '%s' is not an absolute path", key, value);
        set_str(path, value);
    } else if (streq(key, "listen")) {
        const char *colon = strrchr(value, ':');
        uint64_t port;
        if (!colon || colon == value || parse_u64(colon + 1, &port) < 0 || port > 65535)
            return BAD("[apps] listen: bad address '%s' (want HOST:PORT)", value);
        set_str(&c->listen, value);
    } else if (streq(key, "plain_http")) {
        if (parse_bool(value, &c->plain_http) < 0)
            return BAD("[apps] plain_http: '%s' is not a boolean", value);
    } else if (streq(key, "master")) {
        if (!str_has_prefix(value, "https://") && !str_has_prefix(value, "http://"))
            return BAD("[apps] master: '%s' is not an http(s):// URL", value);
        set_str(&c->master, value);
    } else if (streq(key, "role")) {
        if (!ml_role_valid(value))
            return BAD("[apps] role: '%s' is not a role name", value);
        set_str(&c->role, value);
    } else if (streq(key, "name")) {
        if (!value[0] || strlen(value) > 128)
            return BAD("[apps] name: want 1-128 characters");
        set_str(&c->name, value);
    } else if (streq(key, "failover_timeout")) {
        if (cfg_parse_duration_ms(value, &c->failover_timeout_ms) < 0)
            return BAD("[apps] failover_timeout: bad duration '%s' (e.g. 1h, 1w)", value);
    } else if (streq(key, "kill_delay")) {
        if (cfg_parse_duration_ms(value, &c->kill_delay_ms) < 0 || c->kill_delay_ms > 3600000)
            return BAD("[apps] kill_delay: bad duration '%s' (e.g. 1s, 0 = at once; at most 1h)",
                       value);
    } else if (streq(key, "events_history") || streq(key, "events_max_subscribers")) {
        uint64_t n;
        if (parse_u64(value, &n) < 0 || n == 0 || n > 10000000)
            return BAD("[apps] %s: bad count '%s' (1 to 10000000)", key, value);
        *(streq(key, "events_history") ? &c->events_history : &c->events_max_subscribers) = n;
    } else if (streq(key, "events_buffer")) {
        uint64_t n;
        if (parse_size(value, &n) < 0 || n < 4096 || n > (UINT64_C(1) << 30))
            return BAD("[apps] events_buffer: bad size '%s' (4KiB to 1GiB)", value);
        c->events_buffer = n;
    } else if (streq(key, "events_keepalive")) {
        if (cfg_parse_duration_ms(value, &c->events_keepalive_ms) < 0)
            return BAD("[apps] events_keepalive: bad duration '%s' (e.g. 15s; 0 = none)", value);
    } else if (streq(key, "log_level")) {
        if (!streq(value, "error") && !streq(value, "warning") && !streq(value, "info") &&
            !streq(value, "debug"))
            return BAD("[apps] log_level: '%s' (error, warning, info or debug)", value);
        set_str(&c->log_level, value);
    } else {
        return BAD("unknown key '%s' in [apps]", key);
    }
    return 0;
}

static int set_any(void *obj, const char *section, const char *key, const char *value,
                   struct berr **err)
{
    return set_key(obj, section, key, value, err);
}

int apps_cfg_load(struct apps_cfg *cfg, int argc, char **argv, struct berr **err)
{
    defaults(cfg);
    static const struct cfg_daemon d = {.default_file = APPS_DEFAULT_CONFIG,
                                        .section = "apps",
                                        .prog = "berth-apps",
                                        .set = set_any};
    if (cfg_daemon_load(&d, cfg, argc, argv, &cfg->config_file, err) < 0)
        return -EINVAL;
    if (!cfg->token_file[0])
        return BAD("%s: [apps] token_file is required (the API's bearer token)", cfg->config_file);
    if (!cfg->master_token_file[0])
        return BAD("%s: [apps] master_token_file is required (a master token with submit "
                   "rights in role '%s')",
                   cfg->config_file, cfg->role);
    if (!cfg->tls_cert[0] != !cfg->tls_key[0])
        return BAD("%s: [apps] tls_cert and tls_key go together", cfg->config_file);
    if (!cfg->tls_cert[0] && !cfg->plain_http)
        return BAD("%s: [apps] tls_cert and tls_key are not set: set them, or plain_http = true "
                   "to serve plain HTTP",
                   cfg->config_file);
    return 0;
}

void apps_cfg_done(struct apps_cfg *c)
{
    char *s[] = {c->listen,  c->work_dir, c->token_file, c->tls_cert,
                 c->tls_key, c->master,   c->master_ca,  c->master_token_file,
                 c->role,    c->name,     c->log_level,  c->config_file};
    for (size_t i = 0; i < ARRAY_SIZE(s); i++)
        free(s[i]);
    *c = (struct apps_cfg){0};
}
