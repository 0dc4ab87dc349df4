/* SPDX-License-Identifier: Apache-2.0 */
/* config/config.h - the one public header of config/: berth-agent's configuration from
 * /etc/berth/agent.conf, agent.conf.d/NAME.conf and --key=value flags (flags win). Parsing
 * (libinih) and validation live in config.c; nothing here touches the host. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"

#define CFG_DEFAULT_FILE "/etc/berth/agent.conf"

/* A resource amount that may be "auto" (measured by the agent). */
struct cfg_amount {
    bool is_auto;
    uint64_t value; /* cpus: millicores; mem/disk: bytes */
};

struct cfg_role {
    char *name;
    uint64_t cpus_millis;
    uint64_t mem_bytes;
};

/* One [attributes] line (node.c): name = value, sent to the master with SUBSCRIBE. */
struct cfg_attr {
    char *name;  /* 1-63 of [A-Za-z0-9_.-] */
    char *value; /* 0-255 printable ASCII characters */
};
#define CFG_MAX_ATTRS 64 /* masterlink's ML_MAX_ATTRS (unit-tested) */

struct cfg_agent {
    /* [agent] */
    char *master;           /* "" = standalone */
    char *hostname;         /* the name the agent gives the master; "" = gethostname() */
    char *address;          /* the IP its tasks' ports are reached on; "" = the master's view */
    char *work_dir;         /* /var/lib/berth */
    char *listen;           /* "unix:/run/berth/agent.sock[,tcp:127.0.0.1:5051]" */
    char *token_file;       /* the master link's join token; "" = none */
    char *master_ca;        /* PEM CA bundle for the master's certificate; "" = system's */
    char *master_pin;       /* "sha256//BASE64[;...]" pinned master key(s); "" = none */
    bool master_plain_http; /* allow master = http:// (no TLS) */
    char *api_token_file;   /* bearer token of the TCP API; "" = none */
    /* what anyone may ask (docs/security.md): volume sources for the master's launches and
     * for the local API's (comma lists of host directories; "" none, "/" any), who may run
     * tasks as uid 0 (none, local, all), the users tasks may run as ("*" any) */
    char *volume_paths, *local_volume_paths;
    char *allow_root;
    char *allowed_users;
    /* user namespaces: root (tasks as uid 0), all or none; host uid range for their slices */
    char *userns;
    uint64_t userns_first, userns_last;
    char *mask_paths;           /* comma list of host paths (globs) hidden from tasks */
    char *isolation;            /* comma list, parsed by isolator */
    char *cgroup_parent;        /* "auto" or path */
    char *task_user;            /* "nobody" */
    char *executor;             /* "" = default lookup */
    char *cpu_limit;            /* "hard" or "burst" */
    char *log_level;            /* error, warning, info, debug */
    uint64_t pids_max;          /* default pids.max per task (1024) */
    uint64_t kill_grace_ms;     /* default SIGTERM -> SIGKILL grace (10 s) */
    uint64_t stats_interval_ms; /* usage sampling period (1 s) */
    uint64_t http_timeout_ms;   /* idle / slow request / stalled reader on the API (60 s) */
    uint64_t log_max_bytes;     /* per output file of a task, then rotated (100 MiB; 0 = none) */
    uint64_t log_max_files;     /* files kept per stream, the current one included (2) */
    char *recover;              /* at start: "reconnect" (default) or "cleanup" */
    uint64_t gc_delay_ms;       /* keep a terminal container's sandbox this long (1 week) */
    uint64_t gc_interval_ms;    /* how often GC checks the disk watermark (1 min) */
    uint64_t gc_min_age_ms;     /* the watermark never removes what ended this recently (1 h) */
    uint64_t gc_disk_watermark; /* percent of the work_dir file system; above it GC removes
                                 * terminal sandboxes early, oldest first (90) */
    /* networking (network.c, docs/design/network.md): a task's mode when it names none
     * (host, bridge, none), whether host is allowed at all, and the listen watcher */
    char *network;
    bool allow_host_network;
    bool enforce_ports;
    uint64_t enforce_ports_interval_ms;
    /* [network]: the bridge mode's subnet ("172.31.0.0/16": address in host order and
     * prefix length) and its bridge's name */
    char *net_subnet;
    uint32_t net_addr;
    unsigned net_prefix;
    char *net_bridge;
    /* [resources] */
    struct cfg_amount cpus, mem, disk, pids;
    char *ports; /* "[31000-32000]" */
    /* [reserved] */
    uint64_t reserved_cpus_millis, reserved_mem, reserved_disk, reserved_pids;
    bool reserved_pids_auto; /* 10% of the node's pids */
    /* [role.NAME] */
    struct cfg_role *roles;
    size_t n_roles;
    /* [attributes], in the order first set (a later line of the same name replaces the value) */
    struct cfg_attr *attrs;
    size_t n_attrs;
    /* where the values came from, for messages */
    char *config_file;
    /* "FILE:LINE" or "--flag" where [reserved] cpus, mem, disk were set (NULL: default), so
     * checks that need the measured node can still point at the line */
    char *reserved_where[3];
    /* the same for every key set: "section\nkey" and where, for checks made at start-up */
    struct cfg_where {
        char *key, *where;
    } * wheres;
    size_t n_wheres;
};

/* "FILE:LINE" or "--flag" where [section] key was last set, or the config file's name when it
 * kept its default. */
const char *cfg_where(const struct cfg_agent *cfg, const char *section, const char *key);

/* Fill cfg with defaults, then the config file (argv's --config=FILE or CFG_DEFAULT_FILE;
 * a missing default file is fine, a missing named one is an error), then FILE.d/NAME.conf in
 * name order, then flags: --KEY=VALUE ([agent] KEY) and --SECTION.KEY=VALUE. Errors name
 * "file:line: reason" or "--flag: reason", with err->code INVALID_ARGUMENT. argv[0] is
 * skipped; --help/--version are not handled here (the caller checks first). */
int cfg_load(struct cfg_agent *cfg, int argc, char **argv, struct berr **err);
/* Set defaults only (what cfg_load starts from). */
void cfg_defaults(struct cfg_agent *cfg);
/* Apply one "section", "key", "value" (used by the file parser and the flags).
 * Returns 0 or -EINVAL with err naming the key. */
int cfg_set(struct cfg_agent *cfg, const char *section, const char *key, const char *value,
            struct berr **err);
void cfg_done(struct cfg_agent *cfg);
/* The embedded default config (make demo writes it out). */
extern const char cfg_default_text[];

/* Additions (backward compatible): */
/* cfg_load with another default file than CFG_DEFAULT_FILE (unit tests). On failure cfg is
 * already released (cfg_done); calling cfg_done again is harmless either way. */
int cfg_load_with_default(struct cfg_agent *cfg, const char *default_path, int argc, char **argv,
                          struct berr **err);
/* daemon.c: the settings of berth-master, berth-apps and berth-lb, read one way: the file
 * (--config=FILE, or default_file when it exists), then --KEY=VALUE flags; every key goes to
 * set(obj, section, key, value, err) (0, or < 0 with err), flags to flag(obj, key, value, err)
 * when given (key as typed), else to set under section. *ret_file: the file's name (malloc'd,
 * also on failure). 0, or < 0 with err ("FILE:LINE: ..." for the file, "--FLAG: ..."). */
typedef int (*cfg_daemon_set_fn)(void *obj, const char *section, const char *key, const char *value,
                                 struct berr **err);
struct cfg_daemon {
    const char *default_file, *section, *prog;
    cfg_daemon_set_fn set;
    int (*flag)(void *obj, char *key, const char *value, struct berr **err);
};
int cfg_daemon_load(const struct cfg_daemon *d, void *obj, int argc, char **argv, char **ret_file,
                    struct berr **err);
/* Durations "10" (seconds), "10s", "500ms", "2m", "1h", "7d", "1w" -> ms. 0 or -EINVAL/-ERANGE. */
int cfg_parse_duration_ms(const char *s, uint64_t *ret_ms);
/* Check a ports value: "[A-B,C-D,...]", 1 <= A <= B <= 65535, ranges not overlapping; ""
 * and "[]" mean none. 0 or -EINVAL/-ERANGE. */
int cfg_parse_ports(const char *s);
/* network.c: the networking keys ([agent] network, allow_host_network, enforce_ports,
 * enforce_ports_interval; [network] subnet, bridge) - defaults, release, and one key as
 * cfg_set takes it. cfg_parse_subnet: "A.B.C.D/N", N 16-29, no host bits: 0 with the address
 * (host order) and N, or -EINVAL/-ERANGE. */
#define CFG_DEFAULT_SUBNET "172.31.0.0/16"
void cfg_network_defaults(struct cfg_agent *cfg);
void cfg_network_done(struct cfg_agent *cfg);
int cfg_set_network_key(struct cfg_agent *cfg, const char *section, const char *key,
                        const char *value, struct berr **err);
int cfg_parse_subnet(const char *s, uint32_t *ret_addr, unsigned *ret_prefix);
/* node.c: what the agent tells the master about its node ([agent] hostname, [attributes]) -
 * defaults, release, and one key as cfg_set takes it (-EINVAL with err when it is not
 * one of them or is bad). */
void cfg_node_defaults(struct cfg_agent *cfg);
void cfg_node_done(struct cfg_agent *cfg);
int cfg_set_node_key(struct cfg_agent *cfg, const char *section, const char *key, const char *value,
                     struct berr **err);
/* Each uid range slice a user namespace gets (uids 0..65535 inside). */
#define CFG_USERNS_SLICE 65536
/* The default mask_paths. */
extern const char cfg_default_mask_paths[];
/* The default [agent] isolation; equal to isolator.h's ISO_DEFAULT_ISOLATION (unit-tested). */
extern const char cfg_default_isolation[];
