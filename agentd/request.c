/* agentd/request.c - turns a launch request body (POST /v1/containers) into a new container
 * record, checking every field's type and range. It decides nothing about resources or
 * the host: lifecycle.c admits and launches. */
#include <string.h>

#include "agentd/agent.h"

#define BAD(...) berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, __VA_ARGS__)

static int get_string(yajl_val v, const char *what, char **ret, struct berr **err)
{
    if (!YAJL_IS_STRING(v))
        return BAD("%s must be a string", what);
    *ret = xstrdup(v->u.string);
    return 0;
}

/* cpus: a JSON number or a string, > 0, at most 3 decimals; yajl keeps the number's text. */
static int get_cpus(yajl_val v, const char *what, uint64_t *ret, struct berr **err)
{
    const char *s = YAJL_IS_NUMBER(v) ? v->u.number.r : YAJL_IS_STRING(v) ? v->u.string : NULL;
    if (!s)
        return BAD("%s must be a number", what);
    if (parse_cpus(s, ret) < 0)
        return BAD("%s: '%s' is not a CPU count > 0 (decimals, at most 3 places)", what, s);
    return 0;
}

static int get_size(yajl_val v, const char *what, uint64_t *ret, struct berr **err)
{
    uint64_t n;
    if (YAJL_IS_NUMBER(v)) {
        if (parse_u64(v->u.number.r, &n) < 0)
            return BAD("%s: '%s' is not a whole number of bytes", what, v->u.number.r);
    } else if (YAJL_IS_STRING(v)) {
        if (parse_size(v->u.string, &n) < 0)
            return BAD("%s: bad size '%s' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or bytes)", what,
                       v->u.string);
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
    if (!s || parse_u64(s, &n) < 0 || n == 0 || n > 4194304)
        return BAD("%s must be an integer between 1 and 4194304", what);
    *ret = n;
    return 0;
}

static int get_command(yajl_val cmd, struct container *c, struct berr **err)
{
    if (!YAJL_IS_OBJECT(cmd))
        return BAD("command must be an object: {\"shell\": \"...\"} or {\"argv\": [...]}");
    yajl_val shell = json_get(cmd, "shell"), argv = json_get(cmd, "argv");
    if ((shell != NULL) == (argv != NULL))
        return BAD("command needs exactly one of shell or argv");
    if (shell) {
        if (!YAJL_IS_STRING(shell) || !shell->u.string[0])
            return BAD("command.shell must be a non-empty string");
        c->shell = xstrdup(shell->u.string);
        c->argv = xcalloc(4, sizeof(char *));
        c->argv[0] = xstrdup("/bin/sh");
        c->argv[1] = xstrdup("-c");
        c->argv[2] = xstrdup(shell->u.string);
        return 0;
    }
    if (!YAJL_IS_ARRAY(argv) || argv->u.array.len == 0 || argv->u.array.len > 4096)
        return BAD("command.argv must be a non-empty array of strings");
    c->argv = xcalloc(argv->u.array.len + 1, sizeof(char *));
    for (size_t i = 0; i < argv->u.array.len; i++) {
        yajl_val s = argv->u.array.values[i];
        if (!YAJL_IS_STRING(s))
            return BAD("command.argv[%zu] must be a string", i);
        c->argv[i] = xstrdup(s->u.string);
    }
    if (!c->argv[0][0])
        return BAD("command.argv[0] must not be empty");
    return 0;
}

static bool env_name_ok(const char *k)
{
    if (!*k || strchr(k, '='))
        return false;
    return true;
}

static int get_env(yajl_val env, struct container *c, struct berr **err)
{
    size_t n = 0;
    if (YAJL_IS_OBJECT(env)) {
        c->env = xcalloc(env->u.object.len + 1, sizeof(char *));
        for (size_t i = 0; i < env->u.object.len; i++) {
            yajl_val v = env->u.object.values[i];
            const char *k = env->u.object.keys[i];
            if (!env_name_ok(k) || !YAJL_IS_STRING(v))
                return BAD("env: '%s' must be a name without '=' with a string value", k);
            c->env[n++] = xasprintf("%s=%s", k, v->u.string);
        }
    } else if (YAJL_IS_ARRAY(env)) {
        c->env = xcalloc(env->u.array.len + 1, sizeof(char *));
        for (size_t i = 0; i < env->u.array.len; i++) {
            yajl_val v = env->u.array.values[i];
            if (!YAJL_IS_STRING(v) || !strchr(v->u.string, '=') || v->u.string[0] == '=')
                return BAD("env[%zu] must be a \"K=V\" string", i);
            c->env[n++] = xstrdup(v->u.string);
        }
    } else {
        return BAD("env must be an object of strings");
    }
    return 0;
}

static int get_volumes(yajl_val vols, struct container *c, struct berr **err)
{
    if (!YAJL_IS_ARRAY(vols))
        return BAD("volumes must be an array");
    c->volumes = xcalloc(vols->u.array.len + 1, sizeof(*c->volumes));
    for (size_t i = 0; i < vols->u.array.len; i++) {
        yajl_val v = vols->u.array.values[i];
        struct iso_volume *vol = &c->volumes[c->n_volumes];
        if (YAJL_IS_STRING(v)) {
            /* "H:C[:ro|:rw]" */
            _cleanup_free_ char *s = xstrdup(v->u.string);
            char *h = s, *ct = strchr(s, ':');
            if (!ct)
                return BAD("volumes[%zu]: '%s' is not HOST:CONTAINER[:ro]", i, v->u.string);
            *ct++ = 0;
            char *mode = strchr(ct, ':');
            if (mode) {
                *mode++ = 0;
                if (streq(mode, "ro"))
                    vol->readonly = true;
                else if (!streq(mode, "rw"))
                    return BAD("volumes[%zu]: mode '%s' is not ro or rw", i, mode);
            }
            vol->host = xstrdup(h);
            vol->container = xstrdup(ct);
        } else if (YAJL_IS_OBJECT(v)) {
            yajl_val h = json_get(v, "host"), ct = json_get(v, "container"),
                     ro = json_get(v, "readonly");
            if (!YAJL_IS_STRING(h) || !YAJL_IS_STRING(ct))
                return BAD("volumes[%zu] needs string host and container", i);
            if (ro && !YAJL_IS_TRUE(ro) && !YAJL_IS_FALSE(ro))
                return BAD("volumes[%zu].readonly must be a boolean", i);
            vol->host = xstrdup(h->u.string);
            vol->container = xstrdup(ct->u.string);
            vol->readonly = ro && YAJL_IS_TRUE(ro);
        } else {
            return BAD("volumes[%zu] must be an object or \"HOST:CONTAINER[:ro]\"", i);
        }
        c->n_volumes++;
        if (vol->host[0] != '/' || !vol->container[0])
            return BAD("volumes[%zu]: host path must be absolute", i);
        if (strstr(vol->host, "/../") || strstr(vol->container, "..") ||
            str_has_prefix(vol->host, "../"))
            return BAD("volumes[%zu]: paths must not contain '..'", i);
    }
    return 0;
}

static bool name_ok(const char *s)
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

int request_parse_launch(struct agent *a, yajl_val req, struct container *c, struct berr **err)
{
    if (!YAJL_IS_OBJECT(req))
        return BAD("the body must be a JSON object");
    static const char *const known[] = {"name", "command", "resources", "user",
                                        "env",  "volumes", "role"};
    for (size_t i = 0; i < req->u.object.len; i++) {
        bool ok = false;
        for (size_t k = 0; k < ARRAY_SIZE(known); k++)
            ok |= streq(known[k], req->u.object.keys[i]);
        if (!ok)
            return BAD("unknown field '%s'", req->u.object.keys[i]);
    }
    yajl_val v;
    if ((v = json_get(req, "name")) && !YAJL_IS_NULL(v)) {
        if (get_string(v, "name", &c->name, err) < 0)
            return -EINVAL;
        if (!name_ok(c->name))
            return BAD("name '%s' must be 1-63 of [A-Za-z0-9_.-], not starting with '.' or '-'",
                       c->name);
        /* an id or id prefix as a name would make `kill NAME` reach another container */
        if (strlen(c->name) <= 16 && strspn(c->name, "0123456789abcdef") == strlen(c->name))
            return BAD("name '%s' looks like a container id (up to 16 of 0-9a-f): add a letter "
                       "or a '-'",
                       c->name);
    }
    if (!(v = json_get(req, "command")))
        return BAD("command is required");
    if (get_command(v, c, err) < 0)
        return -EINVAL;
    yajl_val res = json_get(req, "resources");
    if (!res || !YAJL_IS_OBJECT(res))
        return BAD("resources {cpus, mem} is required");
    for (size_t i = 0; i < res->u.object.len; i++) {
        const char *k = res->u.object.keys[i];
        if (!streq(k, "cpus") && !streq(k, "cpus_limit") && !streq(k, "mem") && !streq(k, "pids"))
            return BAD("unknown resource '%s'", k);
    }
    if (!(v = json_get(res, "cpus")))
        return BAD("resources.cpus is required");
    if (get_cpus(v, "resources.cpus", &c->cpus_millis, err) < 0)
        return -EINVAL;
    if (!(v = json_get(res, "mem")))
        return BAD("resources.mem is required");
    if (get_size(v, "resources.mem", &c->mem_bytes, err) < 0)
        return -EINVAL;
    c->cpu_limit_millis = streq(a->cfg.cpu_limit, "burst") ? 0 : c->cpus_millis;
    if ((v = json_get(res, "cpus_limit")) && !YAJL_IS_NULL(v)) {
        if (YAJL_IS_STRING(v) && streq(v->u.string, "none")) {
            c->cpu_limit_millis = 0;
        } else {
            if (get_cpus(v, "resources.cpus_limit", &c->cpu_limit_millis, err) < 0)
                return -EINVAL;
            if (c->cpu_limit_millis < c->cpus_millis)
                return BAD("resources.cpus_limit must be >= cpus, or \"none\"");
        }
    }
    c->pids_max = a->cfg.pids_max;
    if ((v = json_get(res, "pids")) && !YAJL_IS_NULL(v))
        if (get_count(v, "resources.pids", &c->pids_max, err) < 0)
            return -EINVAL;
    if ((v = json_get(req, "user")) && !YAJL_IS_NULL(v)) {
        if (get_string(v, "user", &c->user, err) < 0)
            return -EINVAL;
        if (!c->user[0] || strchr(c->user, ':') || strchr(c->user, '/'))
            return BAD("user '%s' is not a user name or uid", c->user);
    } else {
        c->user = xstrdup(a->cfg.task_user);
    }
    if ((v = json_get(req, "env")) && !YAJL_IS_NULL(v))
        if (get_env(v, c, err) < 0)
            return -EINVAL;
    if (!c->env)
        c->env = xcalloc(1, sizeof(char *));
    if ((v = json_get(req, "volumes")) && !YAJL_IS_NULL(v))
        if (get_volumes(v, c, err) < 0)
            return -EINVAL;
    if ((v = json_get(req, "role")) && !YAJL_IS_NULL(v)) {
        if (get_string(v, "role", &c->role, err) < 0)
            return -EINVAL;
        /* any role may use the unreserved pool (Mesos's model); the name must be one */
        size_t n = strlen(c->role);
        if (!streq(c->role, "*") &&
            (n == 0 || n > 64 || strspn(c->role, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n))
            return BAD("role '%s' is not a role name (\"*\", or 1-64 of a-z, 0-9, '_', '-')",
                       c->role);
    } else {
        c->role = xstrdup("*");
    }
    return 0;
}
