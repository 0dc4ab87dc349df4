/* SPDX-License-Identifier: Apache-2.0 */
/* config/config.c - the agent's configuration keys: defaults, and cfg_set(), which checks and
 * stores one section/key/value whatever its origin (file line or flag). load.c reads files,
 * agent.conf.d and flags and feeds them here; default-text.c holds the annotated agent.conf.
 * Pure: no I/O, no logging. */
#include "config/config.h"

#include <string.h>

#include "common/common.h"

/* Keep equal to isolator/isolator.h's ISO_DEFAULT_ISOLATION: config/ may not include
 * isolator/ (STYLE.md §3), so tests/unit/config_test.c compares the two. */
#define CFG_DEFAULT_ISOLATION                                                                      \
    "cgroups/cpu,cgroups/mem,cgroups/pids,cgroups/devices,namespaces/pid,namespaces/mount,"        \
    "namespaces/ipc,namespaces/uts,filesystem/readonly-host,linux/capabilities,linux/seccomp"

const char cfg_default_isolation[] = CFG_DEFAULT_ISOLATION;

/* Secrets of the host and of berth that no task needs to read, even in the read-only view. */
const char cfg_default_mask_paths[] = "/etc/shadow,/etc/shadow-,/etc/gshadow,/etc/gshadow-,/root,"
                                      "/etc/ssh/ssh_host_*,/etc/berth,/var/lib/berth-master";

#define SIZE_HINT "use B, KiB, MiB, GiB, TiB, KB, MB, GB or plain bytes"
#define CPUS_HINT "a decimal > 0 with at most 3 decimals, e.g. 0.5 or 2"

static void set_str(char **field, const char *value)
{
    free(*field);
    *field = xstrdup(value);
}

void cfg_defaults(struct cfg_agent *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->master = xstrdup("");
    cfg->work_dir = xstrdup("/var/lib/berth");
    cfg->listen = xstrdup("unix:/run/berth/agent.sock");
    cfg->token_file = xstrdup("");
    cfg->master_ca = xstrdup("");
    cfg->master_pin = xstrdup("");
    cfg->api_token_file = xstrdup("");
    cfg->volume_paths = xstrdup("");
    cfg->local_volume_paths = xstrdup("/");
    cfg->allow_root = xstrdup("local");
    cfg->allowed_users = xstrdup("*");
    cfg->userns = xstrdup("root");
    cfg->userns_first = UINT64_C(1879048192);
    cfg->userns_last = UINT64_C(2147483647);
    cfg->mask_paths = xstrdup(cfg_default_mask_paths);
    cfg->isolation = xstrdup(CFG_DEFAULT_ISOLATION);
    cfg->cgroup_parent = xstrdup("auto");
    cfg->task_user = xstrdup("nobody");
    cfg->executor = xstrdup("");
    cfg->cpu_limit = xstrdup("hard");
    cfg->log_level = xstrdup("info");
    cfg->pids_max = 1024;
    cfg->kill_grace_ms = 10000;
    cfg->stats_interval_ms = 1000;
    cfg->http_timeout_ms = 60000;
    cfg->log_max_bytes = UINT64_C(100) << 20;
    cfg->log_max_files = 2;
    cfg->recover = xstrdup("reconnect");
    cfg->gc_delay_ms = UINT64_C(7) * 24 * 3600 * 1000;
    cfg->gc_interval_ms = 60000;
    cfg->gc_min_age_ms = 3600000;
    cfg->gc_disk_watermark = 90;
    cfg->cpus.is_auto = true;
    cfg->mem.is_auto = true;
    cfg->disk.is_auto = true;
    cfg->pids.is_auto = true;
    cfg->reserved_pids_auto = true;
    cfg->ports = xstrdup("[31000-32000]");
    cfg->config_file = xstrdup(CFG_DEFAULT_FILE);
    cfg_network_defaults(cfg);
    cfg_node_defaults(cfg);
}

void cfg_done(struct cfg_agent *cfg)
{
    if (!cfg)
        return;
    char **strs[] = {
            &cfg->master,       &cfg->work_dir,           &cfg->listen,     &cfg->token_file,
            &cfg->isolation,    &cfg->cgroup_parent,      &cfg->task_user,  &cfg->executor,
            &cfg->cpu_limit,    &cfg->log_level,          &cfg->ports,      &cfg->config_file,
            &cfg->recover,      &cfg->master_ca,          &cfg->master_pin, &cfg->api_token_file,
            &cfg->volume_paths, &cfg->local_volume_paths, &cfg->allow_root, &cfg->allowed_users,
            &cfg->userns,       &cfg->mask_paths};
    for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
        free(*strs[i]);
    cfg_network_done(cfg);
    cfg_node_done(cfg);
    for (size_t i = 0; i < cfg->n_roles; i++)
        free(cfg->roles[i].name);
    free(cfg->roles);
    for (size_t i = 0; i < ARRAY_SIZE(cfg->reserved_where); i++)
        free(cfg->reserved_where[i]);
    for (size_t i = 0; i < cfg->n_wheres; i++) {
        free(cfg->wheres[i].key);
        free(cfg->wheres[i].where);
    }
    free(cfg->wheres);
    memset(cfg, 0, sizeof(*cfg)); /* a second cfg_done is harmless */
}

const char *cfg_where(const struct cfg_agent *cfg, const char *section, const char *key)
{
    _cleanup_free_ char *k = xasprintf("%s\n%s", section, key);
    for (size_t i = cfg->n_wheres; i-- > 0;)
        if (streq(cfg->wheres[i].key, k))
            return cfg->wheres[i].where;
    return cfg->config_file ? cfg->config_file : "the configuration";
}

/* ---- value parsers: 0 or -EINVAL/-ERANGE, *ret written only on success ------------------ */

/* CPUs where 0 is allowed ([reserved], roles): parse_cpus refuses 0 with -ERANGE after
 * having accepted the syntax, so an all-zero spelling ("0", "0.0") is the only way there. */
static int parse_cpus_or_zero(const char *s, uint64_t *ret)
{
    int r = parse_cpus(s, ret);
    if (r == -ERANGE && strspn(s, "0.") == strlen(s)) {
        *ret = 0;
        return 0;
    }
    return r;
}

/* Durations: "10" (seconds), "10s", "500ms", "2m", "1h", "7d", "1w". */
int cfg_parse_duration_ms(const char *s, uint64_t *ret_ms)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {{"", 1000},     {"s", 1000},    {"ms", 1},       {"m", 60000},
                 {"min", 60000}, {"h", 3600000}, {"d", 86400000}, {"w", 604800000}};
    size_t n = strspn(s, "0123456789");
    if (n == 0)
        return -EINVAL;
    _cleanup_free_ char *digits = xstrndup(s, n);
    uint64_t v;
    int r = parse_u64(digits, &v);
    if (r < 0)
        return r;
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (!streq(s + n, units[i].suffix))
            continue;
        if (v > UINT64_MAX / units[i].ms)
            return -ERANGE;
        *ret_ms = v * units[i].ms;
        return 0;
    }
    return -EINVAL;
}

/* Parse "a-b" or "a" as a port range. */
static int parse_port_range(const char *s, size_t len, uint64_t *lo, uint64_t *hi)
{
    _cleanup_free_ char *buf = xstrndup(s, len);
    char *dash = strchr(buf, '-');
    if (dash)
        *dash = 0;
    if (parse_u64(buf, lo) < 0 || parse_u64(dash ? dash + 1 : buf, hi) < 0)
        return -EINVAL;
    if (*lo < 1 || *lo > *hi || *hi > 65535)
        return -ERANGE;
    return 0;
}

/* Ports: "[a-b,c-d,...]" with 1 <= a <= b <= 65535, ranges not overlapping; spaces after
 * commas are tolerated; "" and "[]" mean no ports to offer. */
int cfg_parse_ports(const char *s)
{
    if (streq(s, "") || streq(s, "[]"))
        return 0;
    size_t len = strlen(s);
    if (len < 3 || s[0] != '[' || s[len - 1] != ']')
        return -EINVAL;
    uint64_t los[64], his[64];
    size_t n = 0;
    const char *p = s + 1, *end = s + len - 1;
    while (p < end) {
        while (*p == ' ')
            p++;
        const char *comma = memchr(p, ',', (size_t) (end - p));
        const char *stop = comma ? comma : end;
        if (n == ARRAY_SIZE(los))
            return -ERANGE;
        int r = parse_port_range(p, (size_t) (stop - p), &los[n], &his[n]);
        if (r < 0)
            return r;
        for (size_t i = 0; i < n; i++)
            if (los[n] <= his[i] && los[i] <= his[n])
                return -ERANGE; /* overlapping ranges would offer a port twice */
        n++;
        if (!comma)
            break;
        p = comma + 1;
        if (p == end)
            return -EINVAL; /* trailing comma */
    }
    return n > 0 ? 0 : -EINVAL;
}

/* listen: comma list of unix:/ABS/PATH and tcp:HOST:PORT. */
static int parse_listen(const char *s)
{
    if (!*s)
        return -EINVAL;
    _cleanup_free_ char *copy = xstrdup(s);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (str_has_prefix(tok, "unix:/"))
            continue;
        if (!str_has_prefix(tok, "tcp:"))
            return -EINVAL;
        char *colon = strrchr(tok + 4, ':');
        uint64_t port;
        if (!colon || colon == tok + 4 || parse_u64(colon + 1, &port) < 0 || port < 1 ||
            port > 65535)
            return -EINVAL;
    }
    return 0;
}

/* A comma list of absolute paths without ".." components ("" allowed). */
static bool paths_ok(const char *s)
{
    if (!*s)
        return true;
    _cleanup_free_ char *copy = xstrdup(s);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (tok[0] != '/' || strstr(tok, "/../") || str_has_prefix(tok, "/..") ||
            (strlen(tok) >= 3 && streq(tok + strlen(tok) - 3, "/..")))
            return false;
    }
    return true;
}

static bool is_one_of(const char *s, const char *const *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (streq(s, words[i]))
            return true;
    return false;
}

/* Role names: [a-z0-9_-]+ (they end up in API requests, metrics labels and SQL). */
static bool role_name_ok(const char *name)
{
    return *name && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(name);
}

static struct cfg_role *role_get(struct cfg_agent *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_roles; i++)
        if (streq(cfg->roles[i].name, name))
            return &cfg->roles[i];
    cfg->roles = xrealloc(cfg->roles, (cfg->n_roles + 1) * sizeof(*cfg->roles));
    struct cfg_role *r = &cfg->roles[cfg->n_roles++];
    memset(r, 0, sizeof(*r));
    r->name = xstrdup(name);
    return r;
}

/* ---- one key ---------------------------------------------------------------------------- */

#define BAD(what, hint)                                                                            \
    berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "[%s] %s: bad %s '%s' (%s)", section, key, what, \
              value, hint)

static int set_agent(struct cfg_agent *cfg, const char *section, const char *key, const char *value,
                     struct berr **err)
{
    static const char *const limits[] = {"hard", "burst"};
    static const char *const levels[] = {"error", "warning", "info", "debug"};
    uint64_t u = 0;

    if (streq(key, "master")) {
        const char *host = str_has_prefix(value, "https://")  ? value + 8
                           : str_has_prefix(value, "http://") ? value + 7
                                                              : NULL;
        if (*value && (!host || !*host || strchr("/?#:", *host)))
            return BAD("URL", "https://HOST:PORT (http:// with master_plain_http) or empty for "
                              "standalone");
        set_str(&cfg->master, value);
    } else if (streq(key, "work_dir")) {
        if (*value != '/')
            return BAD("path", "an absolute directory, e.g. /var/lib/berth");
        set_str(&cfg->work_dir, value);
    } else if (streq(key, "listen")) {
        if (parse_listen(value) < 0)
            return BAD("listen address", "unix:/PATH and/or tcp:HOST:PORT, comma-separated");
        set_str(&cfg->listen, value);
    } else if (streq(key, "token_file") || streq(key, "api_token_file") ||
               streq(key, "master_ca")) {
        if (*value && *value != '/')
            return BAD("path", "an absolute path, or empty");
        set_str(streq(key, "token_file")       ? &cfg->token_file
                : streq(key, "api_token_file") ? &cfg->api_token_file
                                               : &cfg->master_ca,
                value);
    } else if (streq(key, "master_pin")) {
        if (*value && !str_has_prefix(value, "sha256//"))
            return BAD("pin", "sha256//BASE64 of the master's public key, ';'-separated");
        set_str(&cfg->master_pin, value);
    } else if (streq(key, "master_plain_http")) {
        if (parse_bool(value, &cfg->master_plain_http) < 0)
            return BAD("boolean", "true or false");
    } else if (streq(key, "volume_paths") || streq(key, "local_volume_paths") ||
               streq(key, "mask_paths")) {
        if (!paths_ok(value))
            return BAD("path list", "absolute paths, comma-separated, without '..'");
        set_str(streq(key, "volume_paths")         ? &cfg->volume_paths
                : streq(key, "local_volume_paths") ? &cfg->local_volume_paths
                                                   : &cfg->mask_paths,
                value);
    } else if (streq(key, "allow_root")) {
        static const char *const who[] = {"none", "local", "all"};
        if (!is_one_of(value, who, ARRAY_SIZE(who)))
            return BAD("value", "none, local (the local API only) or all (the master too)");
        set_str(&cfg->allow_root, value);
    } else if (streq(key, "allowed_users")) {
        if (!*value || strpbrk(value, ":/ "))
            return BAD("user list", "* or user names and uids, comma-separated");
        set_str(&cfg->allowed_users, value);
    } else if (streq(key, "userns")) {
        static const char *const modes[] = {"root", "all", "none"};
        if (!is_one_of(value, modes, ARRAY_SIZE(modes)))
            return BAD("value", "root (tasks as uid 0), all or none");
        set_str(&cfg->userns, value);
    } else if (streq(key, "userns_range")) {
        uint64_t lo, hi;
        const char *dash = strchr(value, '-');
        _cleanup_free_ char *first = dash ? xstrndup(value, (size_t) (dash - value)) : NULL;
        if (!dash || parse_u64(first, &lo) < 0 || parse_u64(dash + 1, &hi) < 0 || lo < 65536 ||
            hi >= UINT32_MAX || hi < lo || hi - lo + 1 < CFG_USERNS_SLICE)
            return BAD("uid range", "FIRST-LAST host uids, above 65535, at least 65536 of them");
        cfg->userns_first = lo;
        cfg->userns_last = hi;
    } else if (streq(key, "isolation")) {
        set_str(&cfg->isolation, value); /* the isolator checks the names */
    } else if (streq(key, "cgroup_parent")) {
        if (!value[strspn(value, "/")] || strstr(value, ".."))
            return BAD("cgroup", "auto or a cgroup path below the agent's own, without '..'");
        set_str(&cfg->cgroup_parent, value);
    } else if (streq(key, "task_user")) {
        if (!*value)
            return BAD("user", "a user name or uid");
        set_str(&cfg->task_user, value);
    } else if (streq(key, "executor")) {
        set_str(&cfg->executor, value);
    } else if (streq(key, "cpu_limit")) {
        if (!is_one_of(value, limits, ARRAY_SIZE(limits)))
            return BAD("value", "hard or burst");
        set_str(&cfg->cpu_limit, value);
    } else if (streq(key, "log_level")) {
        if (!is_one_of(value, levels, ARRAY_SIZE(levels)))
            return BAD("level", "error, warning, info or debug");
        set_str(&cfg->log_level, value);
    } else if (streq(key, "pids_max")) {
        if (parse_u64(value, &u) < 0 || u == 0 || u > 4194304)
            return BAD("count", "1 to 4194304, the kernel's limit");
        cfg->pids_max = u;
    } else if (streq(key, "kill_grace")) {
        if (cfg_parse_duration_ms(value, &u) < 0)
            return BAD("duration", "e.g. 10, 10s, 500ms, 2m");
        cfg->kill_grace_ms = u;
    } else if (streq(key, "log_max_size")) {
        if (!streq(value, "0") && (parse_size(value, &u) < 0 || u < 4096))
            return BAD("size", "0 (no cap) or at least 4KiB, e.g. 100MiB");
        cfg->log_max_bytes = streq(value, "0") ? 0 : u;
    } else if (streq(key, "log_max_files")) {
        if (parse_u64(value, &u) < 0 || u < 1 || u > 100)
            return BAD("count", "1 to 100");
        cfg->log_max_files = u;
    } else if (streq(key, "http_timeout")) {
        if (cfg_parse_duration_ms(value, &u) < 0 || u < 100 || u > 86400000)
            return BAD("duration", "100ms to 1d, e.g. 60s");
        cfg->http_timeout_ms = u;
    } else if (streq(key, "stats_interval")) {
        if (cfg_parse_duration_ms(value, &u) < 0 || u == 0)
            return BAD("duration", "> 0, e.g. 1s or 500ms");
        cfg->stats_interval_ms = u;
    } else if (streq(key, "recover")) {
        static const char *const modes[] = {"reconnect", "cleanup"};
        if (!is_one_of(value, modes, ARRAY_SIZE(modes)))
            return BAD("value", "reconnect or cleanup");
        set_str(&cfg->recover, value);
    } else if (streq(key, "gc_delay")) {
        if (cfg_parse_duration_ms(value, &u) < 0)
            return BAD("duration", "e.g. 1w, 7d, 12h, 30m");
        cfg->gc_delay_ms = u;
    } else if (streq(key, "gc_interval")) {
        if (cfg_parse_duration_ms(value, &u) < 0 || u == 0)
            return BAD("duration", "> 0, e.g. 1m or 30s");
        cfg->gc_interval_ms = u;
    } else if (streq(key, "gc_min_age")) {
        if (cfg_parse_duration_ms(value, &u) < 0)
            return BAD("duration", "e.g. 1h, 10m, 0");
        cfg->gc_min_age_ms = u;
    } else if (streq(key, "gc_disk_watermark")) {
        _cleanup_free_ char *num = xstrdup(value);
        size_t n = strlen(num);
        if (n && num[n - 1] == '%')
            num[n - 1] = 0;
        if (parse_u64(num, &u) < 0 || u < 1 || u > 100)
            return BAD("percentage", "1% to 100% of the work_dir file system, e.g. 90%");
        cfg->gc_disk_watermark = u;
    } else if (streq(key, "hostname") || streq(key, "address")) {
        return cfg_set_node_key(cfg, section, key, value, err);
    } else {
        return cfg_set_network_key(cfg, section, key, value, err); /* or unknown */
    }
    return 0;
}

static int set_amount(struct cfg_amount *a, bool cpus, const char *section, const char *key,
                      const char *value, struct berr **err)
{
    uint64_t v;
    if (streq(value, "auto")) {
        a->is_auto = true;
        a->value = 0;
        return 0;
    }
    if (cpus ? parse_cpus(value, &v) < 0 : parse_size(value, &v) < 0 || v == 0)
        return cpus ? BAD("cpus", "auto or " CPUS_HINT) : BAD("size", "auto, or > 0: " SIZE_HINT);
    a->is_auto = false;
    a->value = v;
    return 0;
}

static int set_resources(struct cfg_agent *cfg, const char *section, const char *key,
                         const char *value, struct berr **err)
{
    if (streq(key, "cpus"))
        return set_amount(&cfg->cpus, true, section, key, value, err);
    if (streq(key, "mem"))
        return set_amount(&cfg->mem, false, section, key, value, err);
    if (streq(key, "disk"))
        return set_amount(&cfg->disk, false, section, key, value, err);
    if (streq(key, "pids")) {
        uint64_t n;
        if (streq(value, "auto")) {
            cfg->pids = (struct cfg_amount){.is_auto = true};
            return 0;
        }
        if (parse_u64(value, &n) < 0 || n < 64 || n > 4194304)
            return BAD("count", "auto (the kernel's pid_max) or 64 to 4194304");
        cfg->pids = (struct cfg_amount){.value = n};
        return 0;
    }
    if (streq(key, "ports")) {
        if (cfg_parse_ports(value) < 0)
            return BAD("ports", "[A-B,C-D,...] with 1 <= A <= B <= 65535, not overlapping");
        set_str(&cfg->ports, value);
        return 0;
    }
    return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "unknown key '%s' in [%s]", key, section);
}

/* [reserved] and [role.NAME]: cpus and mem (and disk for [reserved]), 0 allowed. */
static int set_quantity(uint64_t *cpus, uint64_t *mem, uint64_t *disk, const char *section,
                        const char *key, const char *value, struct berr **err)
{
    uint64_t v;
    if (streq(key, "cpus")) {
        if (parse_cpus_or_zero(value, &v) < 0)
            return BAD("cpus", "a decimal >= 0 with at most 3 decimals, e.g. 0.5");
        *cpus = v;
    } else if (streq(key, "mem")) {
        if (parse_size(value, &v) < 0)
            return BAD("size", SIZE_HINT);
        *mem = v;
    } else if (disk && streq(key, "disk")) {
        if (parse_size(value, &v) < 0)
            return BAD("size", SIZE_HINT);
        *disk = v;
    } else {
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "unknown key '%s' in [%s]", key,
                         section);
    }
    return 0;
}

int cfg_set(struct cfg_agent *cfg, const char *section, const char *key, const char *value,
            struct berr **err)
{
    if (!*section)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "key '%s' before any [section]", key);
    if (!value)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "[%s] %s: missing value", section,
                         key);
    if (streq(section, "agent"))
        return set_agent(cfg, section, key, value, err);
    if (streq(section, "resources"))
        return set_resources(cfg, section, key, value, err);
    if (streq(section, "network"))
        return cfg_set_network_key(cfg, section, key, value, err);
    if (streq(section, "attributes"))
        return cfg_set_node_key(cfg, section, key, value, err);
    if (streq(section, "reserved") && streq(key, "pids")) {
        uint64_t n;
        if (streq(value, "auto")) {
            cfg->reserved_pids_auto = true;
            return 0;
        }
        if (parse_u64(value, &n) < 0 || n > 4194304)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "[reserved] pids: bad count '%s' (auto = 10%% of the node's, or "
                             "0 to 4194304)",
                             value);
        cfg->reserved_pids = n;
        cfg->reserved_pids_auto = false;
        return 0;
    }
    if (streq(section, "reserved"))
        return set_quantity(&cfg->reserved_cpus_millis, &cfg->reserved_mem, &cfg->reserved_disk,
                            section, key, value, err);
    if (str_has_prefix(section, "role.")) {
        const char *name = section + strlen("role.");
        if (!role_name_ok(name))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "bad role name '%s' in [%s] (use a-z, 0-9, '_' and '-')", name,
                             section);
        /* check before role_get so that a bad line leaves no empty role behind */
        uint64_t cpus = 0, mem = 0;
        int r = set_quantity(&cpus, &mem, NULL, section, key, value, err);
        if (r < 0)
            return r;
        struct cfg_role *role = role_get(cfg, name);
        if (streq(key, "cpus"))
            role->cpus_millis = cpus;
        else
            role->mem_bytes = mem;
        return 0;
    }
    return berr_setc(
            err, EINVAL, BERR_INVALID_ARGUMENT,
            "unknown section [%s] (known: agent, resources, reserved, network, attributes, "
            "role.NAME)",
            section);
}
