/* agentd/recover.c - rebuilds the container table from state.db when the agent starts.
 * Containers that were still live are re-adopted when their executor is still there
 * (tasks outlive an agent restart), finished from the executor's status file when it left
 * one, and otherwise marked LOST/AGENT_RESTARTED_LOST. lifecycle.c runs them from then on. */
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>

#include "agentd/agent.h"

static char **strv_from_json(yajl_val arr)
{
    size_t n = YAJL_IS_ARRAY(arr) ? arr->u.array.len : 0;
    char **v = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        v[i] = xstrdup(YAJL_IS_STRING(arr->u.array.values[i]) ? arr->u.array.values[i]->u.string
                                                              : "");
    return v;
}

static const char *str_or(yajl_val v, const char *def)
{
    return v && YAJL_IS_STRING(v) ? v->u.string : def;
}

static uint64_t millis_of(yajl_val v)
{
    uint64_t m = 0;
    if (v && YAJL_IS_NUMBER(v) && parse_cpus(v->u.number.r, &m) == 0)
        return m;
    return 0;
}

static uint64_t u64_of(yajl_val v)
{
    uint64_t n = 0;
    if (v && YAJL_IS_NUMBER(v))
        parse_u64(v->u.number.r, &n);
    return n;
}

static double double_of(yajl_val v)
{
    return v && YAJL_IS_NUMBER(v) ? YAJL_GET_DOUBLE(v) : 0;
}

static char *raw_json(yajl_val v);

static int load_one(struct agent *a, const char *json, void *arg)
{
    (void) arg;
    yajl_val v = yajl_tree_parse(json, NULL, 0);
    if (!v)
        return -EINVAL;
    struct container *c = xzalloc(sizeof(*c));
    c->pidfd = c->status_fd = -1;
    snprintf(c->id, sizeof(c->id), "%s", str_or(json_get(v, "id"), ""));
    c->name = xstrdup(str_or(json_get(v, "name"), c->id));
    yajl_val cmd = json_get(v, "command");
    if (json_get(cmd, "shell")) {
        c->shell = xstrdup(str_or(json_get(cmd, "shell"), ""));
        c->argv = xcalloc(4, sizeof(char *));
        c->argv[0] = xstrdup("/bin/sh");
        c->argv[1] = xstrdup("-c");
        c->argv[2] = xstrdup(c->shell);
    } else {
        c->argv = strv_from_json(json_get(cmd, "argv"));
    }
    yajl_val env = json_get(v, "env");
    size_t ne = YAJL_IS_OBJECT(env) ? env->u.object.len : 0;
    c->env = xcalloc(ne + 1, sizeof(char *));
    for (size_t i = 0; i < ne; i++)
        c->env[i] = xasprintf("%s=%s", env->u.object.keys[i], str_or(env->u.object.values[i], ""));
    yajl_val vols = json_get(v, "volumes");
    size_t nv = YAJL_IS_ARRAY(vols) ? vols->u.array.len : 0;
    c->volumes = xcalloc(nv + 1, sizeof(*c->volumes));
    for (size_t i = 0; i < nv; i++) {
        yajl_val x = vols->u.array.values[i];
        c->volumes[i].host = xstrdup(str_or(json_get(x, "host"), ""));
        c->volumes[i].container = xstrdup(str_or(json_get(x, "container"), ""));
        c->volumes[i].readonly = YAJL_IS_TRUE(json_get(x, "readonly"));
    }
    c->n_volumes = nv;
    c->user = xstrdup(str_or(json_get(v, "user"), "nobody"));
    c->role = xstrdup(str_or(json_get(v, "role"), "*"));
    yajl_val res = json_get(v, "resources");
    c->cpus_millis = millis_of(json_get(res, "cpus"));
    c->cpu_limit_millis = millis_of(json_get(res, "cpus_limit"));
    c->mem_bytes = u64_of(json_get(res, "mem"));
    c->pids_max = u64_of(json_get(res, "pids"));
    c->state = ctr_state_from_name(str_or(json_get(v, "state"), ""));
    if ((int) c->state < 0)
        c->state = CTR_LOST;
    c->reason = ctr_reason_from_name(str_or(json_get(v, "reason"), NULL));
    if ((int) c->reason < 0)
        c->reason = CTR_REASON_NONE;
    yajl_val ec = json_get(v, "exit_code"), sg = json_get(v, "signal");
    c->exit_code = ec && YAJL_IS_INTEGER(ec) ? (int) YAJL_GET_INTEGER(ec) : -1;
    c->signal = sg && YAJL_IS_INTEGER(sg) ? (int) YAJL_GET_INTEGER(sg) : 0;
    c->message = xstrdup(str_or(json_get(v, "message"), ""));
    c->created_at = double_of(json_get(v, "created_at"));
    c->started_at = double_of(json_get(v, "started_at"));
    c->finished_at = double_of(json_get(v, "finished_at"));
    yajl_val pid = json_get(v, "pid");
    c->pid = pid && YAJL_IS_INTEGER(pid) ? (pid_t) YAJL_GET_INTEGER(pid) : 0;
    c->kill_requested = YAJL_IS_TRUE(json_get(v, "kill_requested"));
    c->limits_json = raw_json(json_get(v, "limits"));
    c->cgroups_json = raw_json(json_get(v, "cgroups"));
    yajl_tree_free(v);
    if (!c->id[0] || !c->argv[0]) {
        ctr_free(c);
        return -EINVAL;
    }
    c->next = a->containers;
    a->containers = c;
    return 0;
}

static void gen_value(yajl_gen g, yajl_val v)
{
    if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            json_str(g, v->u.object.keys[i]);
            gen_value(g, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_STRING(v)) {
        json_str(g, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    } else {
        yajl_gen_null(g);
    }
}

static char *raw_json(yajl_val v)
{
    if (!v || !YAJL_IS_OBJECT(v))
        return NULL;
    yajl_gen g = yajl_gen_alloc(NULL);
    gen_value(g, v);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    char *s = xstrndup((const char *) buf, len);
    yajl_gen_free(g);
    return s;
}

void agent_recover(struct agent *a)
{
    int n = store_load(a, load_one, NULL);
    if (n > 0)
        log_info("loaded %d container record(s) from state.db", n);
    for (struct container *c = a->containers; c; c = c->next)
        if (!ctr_state_terminal(c->state))
            agent_adopt(a, c);
}
