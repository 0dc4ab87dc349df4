/* SPDX-License-Identifier: Apache-2.0 */
/* lb/table.c - berth-lb's endpoint table: the apps (id, service ports, lb.vhost) and their
 * instances (address, ports, serving or not), kept from berth-apps' events (docs/apps.md
 * "Events"): a snapshot replaces it, app_* and instance_* events change one entry. Pure. */
#include <ctype.h>
#include <string.h>

#include "lb/lb.h"

static void app_free(struct lb_app *a)
{
    if (!a)
        return;
    free(a->id);
    free(a->vhost);
    free(a->service_ports);
    free(a);
}

static void inst_free(struct lb_inst *i)
{
    if (!i)
        return;
    free(i->id);
    free(i->app_id);
    free(i->address);
    free(i->ports);
    free(i);
}

void lb_table_clear(struct lb_table *t)
{
    for (size_t i = 0; i < t->n_apps; i++)
        app_free(t->apps[i]);
    for (size_t i = 0; i < t->n_insts; i++)
        inst_free(t->insts[i]);
    free(t->apps);
    free(t->insts);
    t->apps = NULL;
    t->insts = NULL;
    t->n_apps = t->n_insts = 0;
    t->loaded = false;
}

/* Binary search over an array of structs whose first member is char *id. */
static size_t find(void *const *v, size_t n, const char *id, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(*(char *const *) v[mid], id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const struct lb_app *lb_table_app(const struct lb_table *t, const char *id)
{
    bool found;
    size_t i = find((void *const *) t->apps, t->n_apps, id, &found);
    return found ? t->apps[i] : NULL;
}

static struct lb_app *app_parse(yajl_val v, struct berr **err)
{
    const char *id = json_get_str(v, "id");
    if (!id || !id[0])
        return berr_setx(err, EINVAL, "an app without id"), NULL;
    struct lb_app *a = xzalloc(sizeof(*a));
    a->id = xstrdup(id);
    yajl_val labels = json_get(v, "labels");
    const char *vh = labels ? json_get_str(labels, LB_VHOST_LABEL) : NULL;
    if (vh && vh[0]) {
        a->vhost = xstrdup(vh);
        for (char *p = a->vhost; *p; p++) {
            *p = (char) tolower((unsigned char) *p);
            if (!isalnum((unsigned char) *p) && *p != '.' && *p != '-') {
                free(a->vhost); /* not a host name: no virtual host */
                a->vhost = NULL;
                break;
            }
        }
    }
    yajl_val ports = json_get(v, "ports");
    if (YAJL_IS_ARRAY(ports) && ports->u.array.len) {
        a->n_ports = ports->u.array.len;
        a->service_ports = xcalloc(a->n_ports, sizeof(unsigned));
        for (size_t i = 0; i < a->n_ports; i++) {
            uint64_t sp = 0;
            if (json_get_u64(ports->u.array.values[i], "service_port", &sp) && sp <= 65535)
                a->service_ports[i] = (unsigned) sp;
        }
    }
    return a;
}

static struct lb_inst *inst_parse(yajl_val v, struct berr **err)
{
    const char *id = json_get_str(v, "id"), *app = json_get_str(v, "app_id");
    if (!id || !app)
        return berr_setx(err, EINVAL, "an instance without id or app_id"), NULL;
    struct lb_inst *i = xzalloc(sizeof(*i));
    i->id = xstrdup(id);
    i->app_id = xstrdup(app);
    const char *addr = json_get_str(v, "address");
    i->address = xstrdup(addr ? addr : "");
    yajl_val ports = json_get(v, "ports");
    if (YAJL_IS_ARRAY(ports) && ports->u.array.len) {
        i->n_ports = ports->u.array.len;
        i->ports = xcalloc(i->n_ports, sizeof(unsigned));
        for (size_t k = 0; k < i->n_ports; k++) {
            yajl_val p = ports->u.array.values[k];
            if (YAJL_IS_INTEGER(p) && YAJL_GET_INTEGER(p) > 0 && YAJL_GET_INTEGER(p) <= 65535)
                i->ports[k] = (unsigned) YAJL_GET_INTEGER(p);
        }
    }
    const char *state = json_get_str(v, "state");
    yajl_val healthy = json_get(v, "healthy"), killing = json_get(v, "killing");
    i->serving = state && streq(state, "RUNNING") && YAJL_IS_TRUE(healthy) &&
                 !YAJL_IS_TRUE(killing) && i->address[0];
    return i;
}

static bool app_same(const struct lb_app *a, const struct lb_app *b)
{
    if (a->n_ports != b->n_ports || !a->vhost != !b->vhost ||
        (a->vhost && !streq(a->vhost, b->vhost)))
        return false;
    return !a->n_ports ||
           !memcmp(a->service_ports, b->service_ports, a->n_ports * sizeof(unsigned));
}

static bool inst_same(const struct lb_inst *a, const struct lb_inst *b)
{
    return a->serving == b->serving && streq(a->address, b->address) &&
           streq(a->app_id, b->app_id) && a->n_ports == b->n_ports &&
           (!a->n_ports || !memcmp(a->ports, b->ports, a->n_ports * sizeof(unsigned)));
}

/* Put x (an app or an instance) into the sorted array, replacing one of its id; 1 when that
 * changed anything. */
static int put(void ***v, size_t *n, void *x, bool (*same)(const void *, const void *),
               void (*del)(void *))
{
    bool found = false;
    size_t i = *n ? find(*v, *n, *(char **) x, &found) : 0; /* none yet: no array either */
    if (found) {
        int changed = !same((*v)[i], x);
        del((*v)[i]);
        (*v)[i] = x;
        return changed;
    }
    *v = xrealloc(*v, (*n + 1) * sizeof(void *));
    memmove(*v + i + 1, *v + i, (*n - i) * sizeof(void *));
    (*v)[i] = x;
    (*n)++;
    return 1;
}

static int drop(void ***v, size_t *n, const char *id, void (*del)(void *))
{
    bool found;
    size_t i = find(*v, *n, id, &found);
    if (!found)
        return 0;
    del((*v)[i]);
    memmove(*v + i, *v + i + 1, (*n - i - 1) * sizeof(void *));
    (*n)--;
    return 1;
}

static bool app_same_v(const void *a, const void *b)
{
    return app_same(a, b);
}
static bool inst_same_v(const void *a, const void *b)
{
    return inst_same(a, b);
}
static void app_free_v(void *a)
{
    app_free(a);
}
static void inst_free_v(void *i)
{
    inst_free(i);
}

static int put_app(struct lb_table *t, struct lb_app *a)
{
    return put((void ***) &t->apps, &t->n_apps, a, app_same_v, app_free_v);
}

static int put_inst(struct lb_table *t, struct lb_inst *i)
{
    return put((void ***) &t->insts, &t->n_insts, i, inst_same_v, inst_free_v);
}

static int load_snapshot(struct lb_table *t, yajl_val root, struct berr **err)
{
    yajl_val apps = json_get(root, "apps");
    if (!YAJL_IS_ARRAY(apps))
        return berr_setx(err, EINVAL, "snapshot: no \"apps\" array");
    struct lb_table n = {0};
    for (size_t k = 0; k < apps->u.array.len; k++) {
        yajl_val av = apps->u.array.values[k];
        struct lb_app *a = app_parse(av, err);
        if (!a) {
            lb_table_clear(&n);
            return -EINVAL;
        }
        put_app(&n, a);
        yajl_val tasks = json_get(av, "tasks");
        for (size_t j = 0; YAJL_IS_ARRAY(tasks) && j < tasks->u.array.len; j++) {
            struct lb_inst *i = inst_parse(tasks->u.array.values[j], err);
            if (!i) {
                lb_table_clear(&n);
                return -EINVAL;
            }
            put_inst(&n, i);
        }
    }
    lb_table_clear(t);
    *t = n;
    t->loaded = true;
    return 1;
}

int lb_table_apply(struct lb_table *t, const char *name, const char *data, size_t len,
                   struct berr **err)
{
    bool is_app = str_has_prefix(name, "app_"), is_inst = str_has_prefix(name, "instance_");
    if (!streq(name, "snapshot") && !is_app && !is_inst)
        return 0;
    yajl_val root = json_parse(data, len, err);
    if (!root)
        return berr_wrap(err, "event %s", name);
    int r;
    if (streq(name, "snapshot")) {
        r = load_snapshot(t, root, err);
    } else {
        yajl_val v = json_get(root, is_app ? "app" : "instance");
        const char *id = v ? json_get_str(v, "id") : NULL;
        if (!id) {
            r = berr_setx(err, EINVAL, "event %s: no %s.id", name, is_app ? "app" : "instance");
        } else if (streq(name, "app_removed")) {
            r = drop((void ***) &t->apps, &t->n_apps, id, app_free_v);
        } else if (streq(name, "instance_removed")) {
            r = drop((void ***) &t->insts, &t->n_insts, id, inst_free_v);
        } else if (is_app) {
            struct lb_app *a = app_parse(v, err);
            r = a ? put_app(t, a) : -EINVAL;
        } else {
            struct lb_inst *i = inst_parse(v, err);
            r = i ? put_inst(t, i) : -EINVAL;
        }
    }
    yajl_tree_free(root);
    return r;
}
