/* SPDX-License-Identifier: Apache-2.0 */
/* master/config.c - berth-master's settings: built-in defaults, then /etc/berth/master.conf
 * (or --config=FILE; INI read with libinih: [master], and [role.NAME] for the roles' weights
 * and quota), then --key=value and --role.NAME.key=value flags.
 * Durations use config/'s parser so both daemons read "5s" alike. docs/config.md lists the
 * keys under "berth-master". main.c calls master_cfg_load once. */
#include "config/config.h"

#include <arpa/inet.h>
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
        "; Holds master.db (SQLite: agents, tasks, status history, tokens).\n"
        "work_dir = /var/lib/berth-master\n"
        "; File holding the admin bearer token of operators and tools (berthctl --master; its\n"
        "; first line, at least 16 characters). Required: other tokens are made with\n"
        "; `berthctl --master URL token create` (docs/security.md).\n"
        "token_file =\n"
        "; File holding a join token: agents holding it may register (each then gets its own\n"
        "; key); empty = none.\n"
        "join_token_file =\n"
        "; TLS: the certificate (chain) and key that agents and clients verify (PEM).\n"
        "tls_cert =\n"
        "tls_key =\n"
        "; Serve plain HTTP: refused unless set, when tls_cert and tls_key are empty.\n"
        "plain_http = false\n"
        "; How often agents send HEARTBEAT (told to them when they subscribe); also the\n"
        "; PING period on their streams.\n"
        "heartbeat_interval = 5s\n"
        "; An agent without a call for this long is unreachable (at least 2 heartbeats).\n"
        "agent_timeout = 15s\n"
        "; Unreachable this long: its tasks are LOST (0 = at once).\n"
        "lost_grace = 30s\n"
        "; Where a task goes among the agents with room: spread or binpack.\n"
        "placement = spread\n"
        "; Kill tasks an agent reports running that the master holds as ended or does\n"
        "; not know.\n"
        "reconcile_kill = true\n"
        "; Registry bounds: agents and tasks kept (beyond them new ones are refused).\n"
        "max_agents = 10000\n"
        "max_tasks = 100000\n"
        "; An ended task is forgotten this long after it ended.\n"
        "task_gc_delay = 1w\n"
        "; An allocation pass (offers to frameworks, Dominant Resource Fairness) at least this\n"
        "; often; also at once whenever resources are freed.\n"
        "allocation_interval = 1s\n"
        "; An offer a framework leaves unanswered this long is rescinded (0 = never).\n"
        "offer_timeout = 30s\n"
        "; How long a framework that names no failover_timeout in SUBSCRIBE may be away\n"
        "; before its tasks are killed.\n"
        "failover_timeout = 1h\n"
        "; Test hook: check the allocator's books after every event (slow; logs and counts\n"
        "; berth_master_invariant_violations_total).\n"
        "check_invariants = false\n"
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
        "log_level = info\n"
        "\n"
        "; Roles: a section per role with a weight (its share counts divided by it) and quota:\n"
        "; a guarantee kept free for it while other roles are greedy, and a limit it never\n"
        "; goes beyond. Also set through PUT /v1/roles/NAME (berthctl --master URL role set).\n"
        ";[role.analytics]\n"
        ";weight = 2\n"
        ";guarantee_cpus = 4\n"
        ";guarantee_mem = 8GiB\n"
        ";limit_cpus = 16\n"
        ";limit_mem = 64GiB\n";

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
    cfg->join_token_file = xstrdup("");
    cfg->tls_cert = xstrdup("");
    cfg->tls_key = xstrdup("");
    cfg->heartbeat_interval_ms = 5000;
    cfg->agent_timeout_ms = 15000;
    cfg->lost_grace_ms = 30000;
    cfg->placement = xstrdup("spread");
    cfg->reconcile_kill = true;
    cfg->max_agents = 10000;
    cfg->max_tasks = 100000;
    cfg->task_gc_delay_ms = UINT64_C(7) * 24 * 3600 * 1000;
    cfg->allocation_interval_ms = 1000;
    cfg->offer_timeout_ms = 30000;
    cfg->failover_timeout_ms = 3600000;
    cfg->log_level = xstrdup("info");
    cfg->events_history = 4096;
    cfg->events_buffer = 4 << 20;
    cfg->events_max_subscribers = 64;
    cfg->events_keepalive_ms = 15000;
}

/* HOST of listen: a numeric IPv4 that parses, [IPv6] that parses, or a host name
 * ("999.1.1.1" failed late as "bind: No such file or directory": review L4). */
static bool host_ok(const char *s, size_t n)
{
    _cleanup_free_ char *h = xstrndup(s, n);
    unsigned char buf[16];
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return false;
        h[n - 1] = 0;
        return inet_pton(AF_INET6, h + 1, buf) == 1;
    }
    if (strspn(h, "0123456789.") == n)
        return inet_pton(AF_INET, h, buf) == 1;
    return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

/* [role.NAME]: weight, guarantee_cpus, guarantee_mem, limit_cpus, limit_mem. */
static int set_role_key(struct master_cfg *cfg, const char *name, const char *key,
                        const char *value, struct berr **err)
{
    if (!ml_role_valid(name))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "[role.%s]: not a role name (1-64 of a-z, 0-9, _ and -, or *)", name);
    struct m_role_cfg *r = NULL;
    for (size_t i = 0; i < cfg->n_roles; i++)
        if (streq(cfg->roles[i].name, name))
            r = &cfg->roles[i];
    if (!r) {
        cfg->roles = xrealloc(cfg->roles, (cfg->n_roles + 1) * sizeof(*cfg->roles));
        r = &cfg->roles[cfg->n_roles++];
        *r = (struct m_role_cfg){
                .name = xstrdup(name), .weight = 1, .limit = {DRF_UNLIMITED, DRF_UNLIMITED}};
    }
    uint64_t *cpus = streq(key, "guarantee_cpus") ? &r->guarantee.cpus
                     : streq(key, "limit_cpus")   ? &r->limit.cpus
                                                  : NULL;
    uint64_t *mem = streq(key, "guarantee_mem") ? &r->guarantee.mem
                    : streq(key, "limit_mem")   ? &r->limit.mem
                                                : NULL;
    if (streq(key, "weight")) {
        char *end;
        double w = strtod(value, &end);
        if (end == value || *end || !(w > 0) || w > 1000)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[role.%s] weight: '%s' is not a number above 0, at most 1000", name,
                             value);
        r->weight = w;
    } else if (cpus) {
        if (streq(value, "0"))
            *cpus = 0;
        else if (parse_cpus(value, cpus) < 0)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "[role.%s] %s: bad cpus '%s'",
                             name, key, value);
    } else if (mem) {
        if (parse_size(value, mem) < 0)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[role.%s] %s: bad size '%s' (e.g. 8GiB)", name, key, value);
    } else {
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "unknown key '%s' in [role.%s] (weight, guarantee_cpus, guarantee_mem, "
                         "limit_cpus, limit_mem)",
                         key, name);
    }
    return 0;
}

static __attribute__((nonnull(1))) int set_key(struct master_cfg *cfg, const char *section,
                                               const char *key, const char *value,
                                               struct berr **err)
{
    if (str_has_prefix(section, "role."))
        return set_role_key(cfg, section + 5, key, value, err);
    if (!streq(section, "master"))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "unknown section [%s]", section);
    uint64_t *dur = streq(key, "heartbeat_interval")    ? &cfg->heartbeat_interval_ms
                    : streq(key, "agent_timeout")       ? &cfg->agent_timeout_ms
                    : streq(key, "lost_grace")          ? &cfg->lost_grace_ms
                    : streq(key, "task_gc_delay")       ? &cfg->task_gc_delay_ms
                    : streq(key, "allocation_interval") ? &cfg->allocation_interval_ms
                    : streq(key, "offer_timeout")       ? &cfg->offer_timeout_ms
                    : streq(key, "failover_timeout")    ? &cfg->failover_timeout_ms
                    : streq(key, "events_keepalive")    ? &cfg->events_keepalive_ms
                                                        : NULL;
    uint64_t *count = streq(key, "max_agents")               ? &cfg->max_agents
                      : streq(key, "max_tasks")              ? &cfg->max_tasks
                      : streq(key, "events_history")         ? &cfg->events_history
                      : streq(key, "events_max_subscribers") ? &cfg->events_max_subscribers
                                                             : NULL;
    if (count) {
        uint64_t n;
        if (parse_u64(value, &n) < 0 || n == 0 || n > 10000000)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] %s: bad count '%s' (1 to 10000000)", key, value);
        *count = n;
    } else if (dur) {
        uint64_t ms;
        bool zero_ok = streq(key, "lost_grace") || streq(key, "offer_timeout") ||
                       streq(key, "failover_timeout") || streq(key, "events_keepalive");
        if (cfg_parse_duration_ms(value, &ms) < 0 || (ms == 0 && !zero_ok))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] %s: bad duration '%s' (e.g. 500ms, 5s, 2m)", key, value);
        *dur = ms;
    } else if (streq(key, "events_buffer")) {
        uint64_t n;
        if (parse_size(value, &n) < 0 || n < 4096 || n > (UINT64_C(1) << 30))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] events_buffer: bad size '%s' (4KiB to 1GiB)", value);
        cfg->events_buffer = n;
    } else if (streq(key, "listen")) {
        const char *colon = strrchr(value, ':');
        uint64_t port;
        if (!colon || colon == value || parse_u64(colon + 1, &port) < 0 || port > 65535 ||
            !host_ok(value, (size_t) (colon - value)))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] listen: bad address '%s' (want HOST:PORT: an IPv4 "
                             "address, [IPv6] or a host name)",
                             value);
        set_str(&cfg->listen, value);
    } else if (streq(key, "work_dir")) {
        if (value[0] != '/')
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] work_dir: '%s' is not an absolute path", value);
        set_str(&cfg->work_dir, value);
    } else if (streq(key, "token_file") || streq(key, "join_token_file") ||
               streq(key, "tls_cert") || streq(key, "tls_key")) {
        if (value[0] && value[0] != '/')
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] %s: '%s' is not an absolute path", key, value);
        set_str(streq(key, "token_file")        ? &cfg->token_file
                : streq(key, "join_token_file") ? &cfg->join_token_file
                : streq(key, "tls_cert")        ? &cfg->tls_cert
                                                : &cfg->tls_key,
                value);
    } else if (streq(key, "plain_http")) {
        if (parse_bool(value, &cfg->plain_http) < 0)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] plain_http: '%s' is not a boolean", value);
    } else if (streq(key, "placement")) {
        if (!streq(value, "spread") && !streq(value, "binpack"))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] placement: '%s' is not spread or binpack", value);
        set_str(&cfg->placement, value);
    } else if (streq(key, "check_invariants")) {
        if (parse_bool(value, &cfg->check_invariants) < 0)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] check_invariants: '%s' is not a boolean", value);
    } else if (streq(key, "reconcile_kill")) {
        if (parse_bool(value, &cfg->reconcile_kill) < 0)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] reconcile_kill: '%s' is not a boolean", value);
    } else if (streq(key, "log_level")) {
        if (!streq(value, "error") && !streq(value, "warning") && !streq(value, "info") &&
            !streq(value, "debug"))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[master] log_level: '%s' (error, warning, info or debug)", value);
        set_str(&cfg->log_level, value);
    } else {
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "unknown key '%s' in [master]", key);
    }
    return 0;
}

static int set_any(void *obj, const char *section, const char *key, const char *value,
                   struct berr **err)
{
    return set_key(obj, section, key, value, err);
}

/* --role.NAME.KEY=V sets [role.NAME] KEY; dashes become underscores in KEY only */
static int set_flag(void *obj, char *key, const char *value, struct berr **err)
{
    char *last = strrchr(key, '.');
    for (char *p = last ? last : key; *p; p++)
        if (*p == '-')
            *p = '_';
    if (str_has_prefix(key, "role.") && last && last > key + 5) {
        *last = 0;
        return set_key(obj, key, last + 1, value, err);
    }
    return set_key(obj, "master", str_has_prefix(key, "master.") ? key + 7 : key, value, err);
}

int master_cfg_load(struct master_cfg *cfg, int argc, char **argv, struct berr **err)
{
    defaults(cfg);
    static const struct cfg_daemon d = {.default_file = MASTER_DEFAULT_CONFIG,
                                        .section = "master",
                                        .prog = "berth-master",
                                        .set = set_any,
                                        .flag = set_flag};
    if (cfg_daemon_load(&d, cfg, argc, argv, &cfg->config_file, err) < 0)
        return -EINVAL;
    /* keys that only make sense together */
    if (cfg->heartbeat_interval_ms > 3600000)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "%s: [master] heartbeat_interval: at most 1h", cfg->config_file);
    if (cfg->agent_timeout_ms < 2 * cfg->heartbeat_interval_ms)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "%s: [master] agent_timeout (%llu ms) must be at least twice "
                         "heartbeat_interval (%llu ms), or agents flap between reachable and not",
                         cfg->config_file, (unsigned long long) cfg->agent_timeout_ms,
                         (unsigned long long) cfg->heartbeat_interval_ms);
    for (size_t i = 0; i < cfg->n_roles; i++) {
        const struct m_role_cfg *r = &cfg->roles[i];
        if (r->guarantee.cpus > r->limit.cpus || r->guarantee.mem > r->limit.mem)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "%s: [role.%s]: the guarantee is above the limit", cfg->config_file,
                             r->name);
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0])
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "%s: [master] tls_cert and tls_key go together", cfg->config_file);
    if (!cfg->tls_cert[0] && !cfg->plain_http)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "%s: [master] tls_cert and tls_key are not set: agents and clients "
                         "need TLS to know they talk to this master (docs/security.md); set "
                         "them, or plain_http = true to serve plain HTTP",
                         cfg->config_file);
    return 0;
}

void master_cfg_done(struct master_cfg *cfg)
{
    free(cfg->listen);
    free(cfg->work_dir);
    free(cfg->token_file);
    free(cfg->join_token_file);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->placement);
    free(cfg->log_level);
    free(cfg->config_file);
    for (size_t i = 0; i < cfg->n_roles; i++)
        free(cfg->roles[i].name);
    free(cfg->roles);
    *cfg = (struct master_cfg){0};
}
