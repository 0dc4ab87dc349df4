/* master/config.c - berth-master's settings: built-in defaults, then /etc/berth/master.conf
 * (or --config=FILE; INI read with libinih, one [master] section), then --key=value flags.
 * Durations use config/'s parser so both daemons read "5s" alike. docs/config.md lists the
 * keys under "berth-master". main.c calls master_cfg_load once. */
#include "config/config.h"

#include <ini.h>
#include <string.h>

#include "master/master.h"

/* The annotated defaults (--print-default-config): every key at its built-in value, so
 * loading this text gives the defaults. The packages install it as /etc/berth/master.conf
 * with every key commented out (packaging/gen-conf.sh). */
const char master_default_config[] =
        "; /etc/berth/master.conf - berth-master configuration (INI; docs/config.md).\n"
        "; Read in this order, later wins: built-in defaults (the values below), this file,\n"
        "; then command-line flags --KEY=VALUE (--listen=0.0.0.0:5050).\n"
        "; Durations: 10, 10s, 500ms, 2m.\n"
        "\n"
        "[master]\n"
        "; HOST:PORT of the HTTP server: the agents' link, the task API, /metrics, /health.\n"
        "listen = 127.0.0.1:5050\n"
        "; Holds master.db (SQLite: agents, tasks, status history).\n"
        "work_dir = /var/lib/berth-master\n"
        "; File holding the bearer token every agent and client must send (its first line,\n"
        "; at least 16 characters); empty = no authentication.\n"
        "token_file =\n"
        "; How often agents send HEARTBEAT (told to them when they subscribe); also the\n"
        "; PING period on their streams.\n"
        "heartbeat_interval = 5s\n"
        "; An agent without a call for this long is unreachable.\n"
        "agent_timeout = 15s\n"
        "; Unreachable this long: its tasks are LOST (0 = at once).\n"
        "lost_grace = 30s\n"
        "; Where a task goes among the agents with room: spread or binpack.\n"
        "placement = spread\n"
        "; Kill tasks an agent reports running that the master holds as ended or does\n"
        "; not know.\n"
        "reconcile_kill = true\n"
        "; error, warning, info or debug.\n"
        "log_level = info\n";

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

static void defaults(struct master_cfg *cfg)
{
    *cfg = (struct master_cfg){0};
    cfg->listen = xstrdup("127.0.0.1:5050");
    cfg->work_dir = xstrdup("/var/lib/berth-master");
    cfg->token_file = xstrdup("");
    cfg->heartbeat_interval_ms = 5000;
    cfg->agent_timeout_ms = 15000;
    cfg->lost_grace_ms = 30000;
    cfg->placement = xstrdup("spread");
    cfg->reconcile_kill = true;
    cfg->log_level = xstrdup("info");
}

static int set_key(struct master_cfg *cfg, const char *section, const char *key, const char *value,
                   struct berr **err)
{
    if (!streq(section, "master"))
        return berr_setc(err, EINVAL, "INVALID_ARGUMENT", "unknown section [%s]", section);
    uint64_t *dur = streq(key, "heartbeat_interval") ? &cfg->heartbeat_interval_ms
                    : streq(key, "agent_timeout")    ? &cfg->agent_timeout_ms
                    : streq(key, "lost_grace")       ? &cfg->lost_grace_ms
                                                     : NULL;
    if (dur) {
        uint64_t ms;
        if (cfg_parse_duration_ms(value, &ms) < 0 || (ms == 0 && !streq(key, "lost_grace")))
            return berr_setc(err, EINVAL, "INVALID_ARGUMENT",
                             "[master] %s: bad duration '%s' (e.g. 500ms, 5s, 2m)", key, value);
        *dur = ms;
    } else if (streq(key, "listen")) {
        const char *colon = strrchr(value, ':');
        uint64_t port;
        if (!colon || colon == value || parse_u64(colon + 1, &port) < 0 || port > 65535)
            return berr_setc(err, EINVAL, "INVALID_ARGUMENT",
                             "[master] listen: bad address '%s' (want HOST:PORT)", value);
        set_str(&cfg->listen, value);
    } else if (streq(key, "work_dir")) {
        if (value[0] != '/')
            return berr_setc(err, EINVAL, "INVALID_ARGUMENT",
                             "[master] work_dir: '%s' is not an absolute path", value);
        set_str(&cfg->work_dir, value);
    } else if (streq(key, "token_file")) {
        set_str(&cfg->token_file, value);
    } else if (streq(key, "placement")) {
        if (!streq(value, "spread") && !streq(value, "binpack"))
            return berr_setc(err, EINVAL, "INVALID_ARGUMENT",
                             "[master] placement: '%s' is not spread or binpack", value);
        set_str(&cfg->placement, value);
    } else if (streq(key, "reconcile_kill")) {
        if (parse_bool(value, &cfg->reconcile_kill) < 0)
            return berr_setc(err, EINVAL, "INVALID_ARGUMENT",
                             "[master] reconcile_kill: '%s' is not a boolean", value);
    } else if (streq(key, "log_level")) {
        if (!streq(value, "error") && !streq(value, "warning") && !streq(value, "info") &&
            !streq(value, "debug"))
            return berr_setc(err, EINVAL, "INVALID_ARGUMENT",
                             "[master] log_level: '%s' (error, warning, info or debug)", value);
        set_str(&cfg->log_level, value);
    } else {
        return berr_setc(err, EINVAL, "INVALID_ARGUMENT", "unknown key '%s' in [master]", key);
    }
    return 0;
}

struct parse_ctx {
    struct master_cfg *cfg;
    const char *file;
    struct berr **err;
};

static int handler(void *arg, const char *section, const char *name, const char *value)
{
    struct parse_ctx *c = arg;
    if (!name) /* a section header alone */
        return 1;
    if (*c->err) /* keep the first error */
        return 0;
    return set_key(c->cfg, section[0] ? section : "(none)", name, value, c->err) < 0 ? 0 : 1;
}

int master_cfg_load(struct master_cfg *cfg, int argc, char **argv, struct berr **err)
{
    defaults(cfg);
    const char *file = MASTER_DEFAULT_CONFIG;
    bool named = false;
    for (int i = 1; i < argc; i++) {
        if (str_has_prefix(argv[i], "--config=")) {
            file = argv[i] + 9;
            named = true;
        } else if (streq(argv[i], "--config") && i + 1 < argc) {
            file = argv[++i];
            named = true;
        }
    }
    cfg->config_file = xstrdup(file);
    FILE *f = fopen(file, "re");
    if (!f && (named || errno != ENOENT))
        return berr_setc(err, errno, "INVALID_ARGUMENT", "%s: %s", file, strerror(errno));
    if (f) {
        struct parse_ctx c = {.cfg = cfg, .file = file, .err = err};
        int line = ini_parse_file(f, handler, &c);
        fclose(f);
        if (line != 0) {
            if (*err)
                return berr_wrap(err, "%s:%d", file, line);
            return berr_setc(err, EINVAL, "INVALID_ARGUMENT",
                             "%s:%d: syntax error (expected [section] or key = value)", file, line);
        }
    }
    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--config")) {
            i++;
            continue;
        }
        if (str_has_prefix(argv[i], "--config="))
            continue;
        const char *eq = strchr(argv[i], '=');
        if (!str_has_prefix(argv[i], "--") || !eq)
            return berr_setc(err, EINVAL, "INVALID_ARGUMENT",
                             "%s: expected --KEY=VALUE (see berth-master --help)", argv[i]);
        _cleanup_free_ char *key = xstrndup(argv[i] + 2, (size_t) (eq - argv[i] - 2));
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        const char *k = str_has_prefix(key, "master.") ? key + 7 : key;
        if (set_key(cfg, "master", k, eq + 1, err) < 0)
            return berr_wrap(err, "%s", argv[i]);
    }
    return 0;
}

void master_cfg_done(struct master_cfg *cfg)
{
    free(cfg->listen);
    free(cfg->work_dir);
    free(cfg->token_file);
    free(cfg->placement);
    free(cfg->log_level);
    free(cfg->config_file);
    *cfg = (struct master_cfg){0};
}
