/* SPDX-License-Identifier: Apache-2.0 */
/* masterlink/spec.c - the task spec, the one schema of "what to run" (docs/api.md): the body
 * of the agent's POST /v1/containers, of the master's POST /v1/tasks and of LAUNCH's
 * "container", and the spec part of the agent's container record. Parsed once, at the edge
 * where it arrives, into struct ml_task_spec; every check of a field's type and range is
 * here, so the agent and the master refuse the same bodies with the same words. What
 * depends on a host (users that exist, volume policy, free resources) is the agent's.
 * codec.c does the envelopes around it; state.c the states and reasons; spec-health.c the
 * health_check member. */
#include <string.h>

#include "masterlink/masterlink.h"

#define BAD(...) berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, __VA_ARGS__)

/* largest argv, env and volume lists (a bound on what one body can make us allocate) */
#define MAX_LIST 4096

static int get_cpus(yajl_val v, const char *what, uint64_t *ret, struct berr **err)
{
    const char *s = YAJL_IS_NUMBER(v) ? v->u.number.r : YAJL_IS_STRING(v) ? v->u.string : NULL;
    if (!s)
        return BAD("%s must be a number", what);
    if (parse_cpus(s, ret) < 0)
        return BAD("%s: '%.64s' is not a CPU count > 0 (decimals, at most 3 places)", what, s);
    return 0;
}

static int get_size(yajl_val v, const char *what, uint64_t *ret, struct berr **err)
{
    uint64_t n;
    if (YAJL_IS_NUMBER(v)) {
        if (parse_u64(v->u.number.r, &n) < 0)
            return BAD("%s: '%.64s' is not a whole number of bytes", what, v->u.number.r);
    } else if (YAJL_IS_STRING(v)) {
        if (parse_size(v->u.string, &n) < 0)
            return BAD("%s: bad size '%.64s' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or bytes)",
                       what, v->u.string);
    } else {
        return BAD("%s must be a number of bytes or a size string", what);
    }
    if (n == 0)
        return BAD("%s must be > 0", what);
    *ret = n;
    return 0;
}

static int get_count(yajl_val v, const char *what, uint64_t *ret, struct berr **err)
{
    uint64_t n;
    const char *s = YAJL_IS_NUMBER(v) ? v->u.number.r : YAJL_IS_STRING(v) ? v->u.string : NULL;
    if (!s || parse_u64(s, &n) < 0 || n == 0 || n > ML_PIDS_MAX)
        return BAD("%s must be an integer between 1 and %u", what, ML_PIDS_MAX);
    *ret = n;
    return 0;
}

static char **strv_new(size_t n)
{
    return xcalloc(n + 1, sizeof(char *));
}

int ml_command_parse(yajl_val cmd, struct ml_command *ret, struct berr **err)
{
    struct ml_command c = {0};
    if (!cmd || !YAJL_IS_OBJECT(cmd))
        return BAD("command must be an object: {\"shell\": \"...\"} or {\"argv\": [...]}");
    yajl_val shell = json_get(cmd, "shell"), argv = json_get(cmd, "argv");
    for (size_t i = 0; i < cmd->u.object.len; i++)
        if (!streq(cmd->u.object.keys[i], "shell") && !streq(cmd->u.object.keys[i], "argv"))
            return BAD("command: unknown field '%.64s'", cmd->u.object.keys[i]);
    if ((shell != NULL) == (argv != NULL))
        return BAD("command needs exactly one of shell or argv");
    if (shell) {
        if (!YAJL_IS_STRING(shell) || !shell->u.string[0])
            return BAD("command.shell must be a non-empty string");
        c.shell = xstrdup(shell->u.string);
        c.argv = strv_new(3);
        c.argv[0] = xstrdup("/bin/sh");
        c.argv[1] = xstrdup("-c");
        c.argv[2] = xstrdup(shell->u.string);
        *ret = c;
        return 0;
    }
    if (!YAJL_IS_ARRAY(argv) || argv->u.array.len == 0 || argv->u.array.len > MAX_LIST)
        return BAD("command.argv must be a non-empty array of at most %d strings", MAX_LIST);
    for (size_t i = 0; i < argv->u.array.len; i++)
        if (!YAJL_IS_STRING(argv->u.array.values[i]))
            return BAD("command.argv[%zu] must be a string", i);
    if (!argv->u.array.values[0]->u.string[0])
        return BAD("command.argv[0] must not be empty");
    c.argv = strv_new(argv->u.array.len);
    for (size_t i = 0; i < argv->u.array.len; i++)
        c.argv[i] = xstrdup(argv->u.array.values[i]->u.string);
    *ret = c;
    return 0;
}

void ml_command_gen(yajl_gen g, const struct ml_command *c)
{
    yajl_gen_map_open(g);
    if (c->shell)
        json_kv_str(g, "shell", c->shell);
    else
        json_kv_strv(g, "argv", c->argv);
    yajl_gen_map_close(g);
}

void ml_command_done(struct ml_command *c)
{
    free(c->shell);
    strv_free(c->argv);
    c->shell = NULL;
    c->argv = NULL;
}

static bool env_name_ok(const char *k)
{
    return k[0] && !strchr(k, '=');
}

static int get_env(yajl_val env, struct ml_task_spec *s, struct berr **err)
{
    size_t n = 0;
    if (YAJL_IS_OBJECT(env)) {
        if (env->u.object.len > MAX_LIST)
            return BAD("env holds more than %d variables", MAX_LIST);
        s->env = strv_new(env->u.object.len);
        for (size_t i = 0; i < env->u.object.len; i++) {
            yajl_val v = env->u.object.values[i];
            const char *k = env->u.object.keys[i];
            if (!env_name_ok(k) || !v || !YAJL_IS_STRING(v))
                return BAD("env: '%.64s' must be a name without '=' with a string value", k);
            s->env[n++] = xasprintf("%s=%s", k, v->u.string);
        }
    } else if (YAJL_IS_ARRAY(env)) {
        if (env->u.array.len > MAX_LIST)
            return BAD("env holds more than %d variables", MAX_LIST);
        s->env = strv_new(env->u.array.len);
        for (size_t i = 0; i < env->u.array.len; i++) {
            yajl_val v = env->u.array.values[i];
            if (!YAJL_IS_STRING(v) || !strchr(v->u.string, '=') || v->u.string[0] == '=')
                return BAD("env[%zu] must be a \"K=V\" string", i);
            s->env[n++] = xstrdup(v->u.string);
        }
    } else {
        return BAD("env must be an object of strings");
    }
    return 0;
}

/* One volume: "HOST:CONTAINER[:ro|:rw]" or {"host", "container", "readonly"}. */
static int get_volume(yajl_val v, size_t i, struct ml_volume *vol, struct berr **err)
{
    if (YAJL_IS_STRING(v)) {
        _cleanup_free_ char *s = xstrdup(v->u.string);
        char *ct = strchr(s, ':');
        if (!ct)
            return BAD("volumes[%zu]: '%.200s' is not HOST:CONTAINER[:ro]", i, v->u.string);
        *ct++ = 0;
        char *mode = strchr(ct, ':');
        if (mode) {
            *mode++ = 0;
            if (streq(mode, "ro"))
                vol->readonly = true;
            else if (!streq(mode, "rw"))
                return BAD("volumes[%zu]: mode '%.16s' is not ro or rw", i, mode);
        }
        vol->host = xstrdup(s);
        vol->container = xstrdup(ct);
    } else if (YAJL_IS_OBJECT(v)) {
        yajl_val h = json_get(v, "host"), ct = json_get(v, "container"),
                 ro = json_get(v, "readonly");
        if (!h || !ct || !YAJL_IS_STRING(h) || !YAJL_IS_STRING(ct))
            return BAD("volumes[%zu] needs string host and container", i);
        if (ro && !YAJL_IS_TRUE(ro) && !YAJL_IS_FALSE(ro))
            return BAD("volumes[%zu].readonly must be a boolean", i);
        vol->host = xstrdup(h->u.string);
        vol->container = xstrdup(ct->u.string);
        vol->readonly = ro && YAJL_IS_TRUE(ro);
    } else {
        return BAD("volumes[%zu] must be an object or \"HOST:CONTAINER[:ro]\"", i);
    }
    if (vol->host[0] != '/' || !vol->container[0])
        return BAD("volumes[%zu]: the host path must be absolute and the container path given", i);
    if (strstr(vol->host, "/../") || str_has_suffix(vol->host, "/..") ||
        strstr(vol->container, ".."))
        return BAD("volumes[%zu]: paths must not contain '..'", i);
    return 0;
}

static int get_volumes(yajl_val vols, struct ml_task_spec *s, struct berr **err)
{
    if (!YAJL_IS_ARRAY(vols) || vols->u.array.len > MAX_LIST)
        return BAD("volumes must be an array of at most %d volumes", MAX_LIST);
    s->volumes = xcalloc(vols->u.array.len + 1, sizeof(*s->volumes));
    for (size_t i = 0; i < vols->u.array.len; i++) {
        int r = get_volume(vols->u.array.values[i], i, &s->volumes[s->n_volumes], err);
        s->n_volumes++; /* half-filled, it is still freed */
        if (r < 0)
            return r;
    }
    return 0;
}

static int get_port_number(yajl_val v, size_t i, const char *what, uint16_t *ret, struct berr **err)
{
    uint64_t n;
    if (!v)
        return 0;
    if (!YAJL_IS_INTEGER(v) || parse_u64(v->u.number.r, &n) < 0 || n > 65535)
        return BAD("ports[%zu].%s must be a port number (1-65535; 0 or absent: any)", i, what);
    *ret = (uint16_t) n;
    return 0;
}

/* "ports": N (N ports, any numbers) or [{"name", "host_port", "container_port"}...]. */
static int get_ports(yajl_val v, struct ml_task_spec *s, struct berr **err)
{
    uint64_t n = 0;
    if (YAJL_IS_INTEGER(v)) {
        if (parse_u64(v->u.number.r, &n) < 0 || n > ML_MAX_PORTS)
            return BAD("ports must be a count from 0 to %d or an array of ports", ML_MAX_PORTS);
        s->ports = xcalloc(n + 1, sizeof(*s->ports));
        s->n_ports = n;
        return 0;
    }
    if (!YAJL_IS_ARRAY(v) || v->u.array.len > ML_MAX_PORTS)
        return BAD("ports must be a count from 0 to %d or an array of ports", ML_MAX_PORTS);
    s->ports = xcalloc(v->u.array.len + 1, sizeof(*s->ports));
    for (size_t i = 0; i < v->u.array.len; i++) {
        yajl_val p = v->u.array.values[i];
        struct ml_port *port = &s->ports[s->n_ports++];
        if (!YAJL_IS_OBJECT(p))
            return BAD("ports[%zu] must be an object {\"name\", \"host_port\", \"container_port\"}",
                       i);
        for (size_t k = 0; k < p->u.object.len; k++) {
            const char *key = p->u.object.keys[k];
            if (!streq(key, "name") && !streq(key, "host_port") && !streq(key, "container_port"))
                return BAD("ports[%zu]: unknown field '%.64s'", i, key);
        }
        yajl_val name = json_get(p, "name");
        if (name) {
            if (!YAJL_IS_STRING(name) || !ml_name_valid(name->u.string))
                return BAD("ports[%zu].name must be 1-63 of [A-Za-z0-9_.-]", i);
            for (size_t k = 0; k + 1 < s->n_ports; k++)
                if (s->ports[k].name && streq(s->ports[k].name, name->u.string))
                    return BAD("ports[%zu]: the name '%s' is used twice", i, name->u.string);
            port->name = xstrdup(name->u.string);
        }
        if (get_port_number(json_get(p, "host_port"), i, "host_port", &port->host_port, err) < 0 ||
            get_port_number(json_get(p, "container_port"), i, "container_port",
                            &port->container_port, err) < 0)
            return -EINVAL;
        for (size_t k = 0; port->host_port && k + 1 < s->n_ports; k++)
            if (s->ports[k].host_port == port->host_port)
                return BAD("ports[%zu]: host port %u is asked for twice", i, port->host_port);
    }
    return 0;
}

bool ml_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (const char *p = s; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return s[0] != '.' && s[0] != '-';
}

bool ml_role_valid(const char *s)
{
    size_t n = strlen(s);
    return streq(s, "*") ||
           (n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n);
}

static int get_name(yajl_val v, unsigned flags, struct ml_task_spec *s, struct berr **err)
{
    if (!YAJL_IS_STRING(v))
        return BAD("name must be a string");
    s->name = xstrdup(v->u.string);
    if (flags & ML_SPEC_RECORD)
        return 0; /* a record's name was checked when it was made, by that version's rules */
    if (!ml_name_valid(s->name))
        return BAD("name '%.64s' must be 1-63 of [A-Za-z0-9_.-], not starting with '.' or '-'",
                   s->name);
    /* an id or id prefix as a name would make `kill NAME` reach another container */
    if (strlen(s->name) <= 16 && strspn(s->name, "0123456789abcdef") == strlen(s->name))
        return BAD("name '%s' looks like a container id (up to 16 of 0-9a-f): add a letter or "
                   "a '-'",
                   s->name);
    return 0;
}

static int get_resources(yajl_val res, struct ml_task_spec *s, struct berr **err)
{
    if (!res || !YAJL_IS_OBJECT(res))
        return BAD("resources {cpus, mem} is required");
    for (size_t i = 0; i < res->u.object.len; i++) {
        const char *k = res->u.object.keys[i];
        if (!streq(k, "cpus") && !streq(k, "cpus_limit") && !streq(k, "mem") && !streq(k, "pids"))
            return BAD("unknown resource '%.64s'", k);
    }
    yajl_val v;
    if (!(v = json_get(res, "cpus")))
        return BAD("resources.cpus is required");
    if (get_cpus(v, "resources.cpus", &s->cpus_millis, err) < 0)
        return -EINVAL;
    if (!(v = json_get(res, "mem")))
        return BAD("resources.mem is required");
    if (get_size(v, "resources.mem", &s->mem_bytes, err) < 0)
        return -EINVAL;
    if ((v = json_get(res, "cpus_limit"))) {
        if (YAJL_IS_STRING(v) && streq(v->u.string, "none")) {
            s->cpus_limit = ML_CPUS_LIMIT_NONE;
        } else {
            if (get_cpus(v, "resources.cpus_limit", &s->cpus_limit_millis, err) < 0)
                return -EINVAL;
            if (s->cpus_limit_millis < s->cpus_millis)
                return BAD("resources.cpus_limit must be >= cpus, or \"none\"");
            s->cpus_limit = ML_CPUS_LIMIT_SET;
        }
    }
    if ((v = json_get(res, "pids")) && get_count(v, "resources.pids", &s->pids, err) < 0)
        return -EINVAL;
    return 0;
}

static const char *const spec_fields[] = {"name",  "command",     "resources", "user",
                                          "env",   "volumes",     "role",      "network",
                                          "ports", "health_check"};

int ml_task_spec_parse(yajl_val v, unsigned flags, struct ml_task_spec *ret, struct berr **err)
{
    struct ml_task_spec s = {0};
    int r = -EINVAL;
    if (!v || !YAJL_IS_OBJECT(v)) {
        BAD("the body must be a JSON object");
        goto fail;
    }
    for (size_t i = 0; !(flags & ML_SPEC_RECORD) && i < v->u.object.len; i++) {
        bool ok = false;
        for (size_t k = 0; k < ARRAY_SIZE(spec_fields); k++)
            ok |= streq(spec_fields[k], v->u.object.keys[i]);
        if (!ok) {
            BAD("unknown field '%.64s'", v->u.object.keys[i]);
            goto fail;
        }
    }
    yajl_val x;
    if ((x = json_get(v, "name")) && get_name(x, flags, &s, err) < 0)
        goto fail;
    if (!(x = json_get(v, "command"))) {
        BAD("command is required");
        goto fail;
    }
    if (ml_command_parse(x, &s.command, err) < 0 ||
        get_resources(json_get(v, "resources"), &s, err) < 0)
        goto fail;
    if ((x = json_get(v, "user"))) {
        if (!YAJL_IS_STRING(x) || !x->u.string[0] || strlen(x->u.string) > 64 ||
            strpbrk(x->u.string, ":/")) {
            BAD("user must be a user name or uid (1-64 characters, no ':' or '/')");
            goto fail;
        }
        s.user = xstrdup(x->u.string);
    }
    if ((x = json_get(v, "env")) && get_env(x, &s, err) < 0)
        goto fail;
    if (!s.env)
        s.env = strv_new(0);
    if ((x = json_get(v, "volumes")) && get_volumes(x, &s, err) < 0)
        goto fail;
    if ((x = json_get(v, "role"))) {
        /* any role may use the unreserved pool (Mesos's model); the name must be one */
        if (!YAJL_IS_STRING(x) || !ml_role_valid(x->u.string)) {
            BAD("role must be \"*\" or 1-64 of a-z, 0-9, '_', '-'");
            goto fail;
        }
        s.role = xstrdup(x->u.string);
    }
    if ((x = json_get(v, "network"))) {
        if (!YAJL_IS_STRING(x) || (!streq(x->u.string, "host") && !streq(x->u.string, "bridge") &&
                                   !streq(x->u.string, "none"))) {
            BAD("network must be \"host\", \"bridge\" or \"none\"");
            goto fail;
        }
        s.network = xstrdup(x->u.string);
    }
    if ((x = json_get(v, "ports")) && get_ports(x, &s, err) < 0)
        goto fail;
    if ((x = json_get(v, "health_check")) && !YAJL_IS_NULL(x) &&
        ml_health_check_parse(x, s.n_ports, &s.health_check, err) < 0)
        goto fail;
    *ret = s;
    return 0;
fail:
    ml_task_spec_done(&s);
    return r;
}

void ml_resources_gen(yajl_gen g, const struct ml_task_spec *s)
{
    yajl_gen_map_open(g);
    json_kv_cpus(g, "cpus", s->cpus_millis);
    if (s->cpus_limit == ML_CPUS_LIMIT_SET)
        json_kv_cpus(g, "cpus_limit", s->cpus_limit_millis);
    else if (s->cpus_limit == ML_CPUS_LIMIT_NONE)
        json_kv_str(g, "cpus_limit", "none");
    json_kv_u64(g, "mem", s->mem_bytes);
    if (s->pids)
        json_kv_u64(g, "pids", s->pids);
    yajl_gen_map_close(g);
}

void ml_task_spec_gen_fields(yajl_gen g, const struct ml_task_spec *s)
{
    if (s->name)
        json_kv_str(g, "name", s->name);
    json_str(g, "command");
    ml_command_gen(g, &s->command);
    json_str(g, "resources");
    ml_resources_gen(g, s);
    if (s->user)
        json_kv_str(g, "user", s->user);
    json_str(g, "env");
    yajl_gen_map_open(g);
    for (char **p = s->env; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        yajl_gen_string(g, (const unsigned char *) *p, (size_t) (eq - *p));
        json_str(g, eq + 1);
    }
    yajl_gen_map_close(g);
    json_str(g, "volumes");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < s->n_volumes; i++) {
        yajl_gen_map_open(g);
        json_kv_str(g, "host", s->volumes[i].host);
        json_kv_str(g, "container", s->volumes[i].container);
        json_kv_bool(g, "readonly", s->volumes[i].readonly);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    if (s->role)
        json_kv_str(g, "role", s->role);
    if (s->network)
        json_kv_str(g, "network", s->network);
    if (s->n_ports) {
        json_str(g, "ports");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < s->n_ports; i++) {
            yajl_gen_map_open(g);
            if (s->ports[i].name)
                json_kv_str(g, "name", s->ports[i].name);
            if (s->ports[i].host_port)
                json_kv_u64(g, "host_port", s->ports[i].host_port);
            if (s->ports[i].container_port)
                json_kv_u64(g, "container_port", s->ports[i].container_port);
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
    }
    if (s->health_check) {
        json_str(g, "health_check");
        ml_health_check_gen(g, s->health_check);
    }
}

char *ml_task_spec_encode(const struct ml_task_spec *s)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    ml_task_spec_gen_fields(g, s);
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

void ml_task_spec_done(struct ml_task_spec *s)
{
    free(s->name);
    ml_command_done(&s->command);
    free(s->user);
    strv_free(s->env);
    for (size_t i = 0; i < s->n_volumes; i++) {
        free(s->volumes[i].host);
        free(s->volumes[i].container);
    }
    free(s->volumes);
    free(s->role);
    free(s->network);
    for (size_t i = 0; i < s->n_ports; i++)
        free(s->ports[i].name);
    free(s->ports);
    ml_health_check_free(s->health_check);
    memset(s, 0, sizeof(*s));
}
