/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/spec.c - the sandbox spec's JSON codec: the agent writes runtime_dir/spec.json
 * with iso_spec_to_json, berth-executor reads it back with iso_spec_from_json. Only data
 * here; mount.c and task.c act on the spec, isolation.c names its flags. */
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "isolator/isolator.h"

/* ---- writing ---------------------------------------------------------------------------- */

/* Returns a malloc'd JSON object (never NULL: allocation failure aborts). NULL members are
 * written as null / empty arrays. Strings are written as given (UTF-8 expected). */
char *iso_spec_to_json(const struct iso_spec *s)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        abort();
    char iso[512];
    iso_format_isolation(s->flags, iso, sizeof(iso));

    yajl_gen_map_open(g);
    json_kv_str(g, "id", s->id);
    json_kv_str(g, "hostname", s->hostname);
    json_kv_u64(g, "flags", s->flags);
    json_kv_str(g, "isolation", iso); /* for humans; "flags" wins when reading */
    json_kv_str(g, "sandbox_dir", s->sandbox_dir);
    json_kv_str(g, "runtime_dir", s->runtime_dir);
    json_kv_strv(g, "mask_dirs", s->mask_dirs);
    json_kv_str(g, "user", s->user);
    json_kv_u64(g, "uid", s->ids.uid);
    json_kv_u64(g, "gid", s->ids.gid);
    json_str(g, "groups");
    yajl_gen_array_open(g);
    for (int i = 0; i < s->ids.n_groups; i++)
        yajl_gen_integer(g, s->ids.groups[i]);
    yajl_gen_array_close(g);
    json_kv_str(g, "home", s->home);
    json_kv_strv(g, "argv", s->argv);
    json_kv_strv(g, "env", s->env);
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
    json_kv_u64(g, "nofile", s->nofile);
    json_kv_u64(g, "grace_ms", s->grace_ms);
    json_kv_u64(g, "userns_base", s->userns_base);
    json_kv_u64(g, "log_max_bytes", s->log_max_bytes);
    json_kv_u64(g, "log_max_files", s->log_max_files);
    json_kv_strv(g, "cgroup_join", s->cgroup_join);
    json_kv_str(g, "network", iso_net_mode_name(s->net));
    json_kv_str(g, "etc_dir", s->etc_dir);
    yajl_gen_map_close(g);
    return json_gen_take(g);
}

/* ---- reading ---------------------------------------------------------------------------- */

static int bad(struct berr **err, const char *key, const char *what)
{
    return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "spec: '%s' must be %s", key, what);
}

/* Optional string member: absent (or null) stays NULL. */
static int get_str(yajl_val root, const char *key, char **ret, struct berr **err)
{
    yajl_val v = json_get(root, key);
    if (!v)
        return 0;
    if (!YAJL_IS_STRING(v))
        return bad(err, key, "a string");
    *ret = xstrdup(YAJL_GET_STRING(v));
    return 0;
}

static int get_u64(yajl_val root, const char *key, uint64_t *ret, struct berr **err)
{
    if (json_get(root, key) && !json_get_u64(root, key, ret))
        return bad(err, key, "a non-negative integer");
    return 0;
}

/* The user's ids: required, so a spec from an agent that did not resolve the user can
 * never run the task as uid 0 by default. */
static int get_ids(yajl_val root, struct iso_user *u, struct berr **err)
{
    uint64_t uid, gid;
    if (!json_get_u64(root, "uid", &uid) || uid >= UINT32_MAX)
        return bad(err, "uid", "a uid (the agent resolves the user)");
    if (!json_get_u64(root, "gid", &gid) || gid >= UINT32_MAX)
        return bad(err, "gid", "a gid (the agent resolves the user)");
    u->uid = (uid_t) uid;
    u->gid = (gid_t) gid;
    yajl_val v = json_get(root, "groups");
    if (!v)
        return 0;
    if (!YAJL_IS_ARRAY(v) || v->u.array.len > ARRAY_SIZE(u->groups))
        return bad(err, "groups", "an array of up to 64 gids");
    for (size_t i = 0; i < v->u.array.len; i++) {
        yajl_val e = v->u.array.values[i];
        if (!YAJL_IS_INTEGER(e) || YAJL_GET_INTEGER(e) < 0 || YAJL_GET_INTEGER(e) >= UINT32_MAX)
            return bad(err, "groups", "an array of up to 64 gids");
        u->groups[u->n_groups++] = (gid_t) YAJL_GET_INTEGER(e);
    }
    return 0;
}

/* NULL-terminated string vector; an absent member gives an empty (non-NULL) vector. */
static int get_strv(yajl_val root, const char *key, char ***ret, struct berr **err)
{
    if (json_get_strv(root, key, ret) < 0)
        return bad(err, key, "an array of strings");
    if (!*ret)
        *ret = xcalloc(1, sizeof(char *));
    return 0;
}

static bool is_abs(const char *p)
{
    return p && p[0] == '/';
}

static int get_volumes(yajl_val root, struct iso_spec *s, struct berr **err)
{
    yajl_val v = json_get(root, "volumes");
    if (!v)
        return 0;
    if (!YAJL_IS_ARRAY(v))
        return bad(err, "volumes", "an array of objects");
    size_t n = v->u.array.len;
    s->volumes = xcalloc(n ? n : 1, sizeof(*s->volumes));
    for (size_t i = 0; i < n; i++) {
        yajl_val e = v->u.array.values[i];
        if (!YAJL_IS_OBJECT(e))
            return bad(err, "volumes", "an array of objects");
        struct iso_volume *vol = &s->volumes[s->n_volumes++];
        if (get_str(e, "host", &vol->host, err) < 0 ||
            get_str(e, "container", &vol->container, err) < 0)
            return berr_wrap(err, "volumes");
        yajl_val ro = json_get(e, "readonly");
        if (ro && !YAJL_IS_TRUE(ro) && !YAJL_IS_FALSE(ro))
            return bad(err, "volumes.readonly", "a boolean");
        vol->readonly = ro && YAJL_IS_TRUE(ro);
        if (!is_abs(vol->host))
            return bad(err, "volumes.host", "an absolute path");
        if (!vol->container || !*vol->container)
            return bad(err, "volumes.container", "a non-empty path");
    }
    return 0;
}

/* Parse json into *ret (zeroed first). Unknown members are ignored (forward compatible).
 * Required: id, sandbox_dir and runtime_dir (absolute), uid and gid, a non-empty argv. Returns 0,
 * or -EINVAL with err set (code INVALID_ARGUMENT) and *ret emptied. */
int iso_spec_from_json(const char *json, struct iso_spec *ret, struct berr **err)
{
    memset(ret, 0, sizeof(*ret));
    yajl_val root = json_parse(json, strlen(json), err);
    if (!root)
        return berr_wrap(err, "spec");
    int r = -EINVAL;
    struct iso_spec *s = ret;
    if (!YAJL_IS_OBJECT(root)) {
        berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "spec: not a JSON object");
        goto fail;
    }
    uint64_t flags = 0;
    if (get_str(root, "id", &s->id, err) < 0 || get_str(root, "hostname", &s->hostname, err) < 0 ||
        get_str(root, "sandbox_dir", &s->sandbox_dir, err) < 0 ||
        get_str(root, "runtime_dir", &s->runtime_dir, err) < 0 ||
        get_strv(root, "mask_dirs", &s->mask_dirs, err) < 0 ||
        get_str(root, "user", &s->user, err) < 0 || get_ids(root, &s->ids, err) < 0 ||
        get_str(root, "home", &s->home, err) < 0 || get_strv(root, "argv", &s->argv, err) < 0 ||
        get_strv(root, "env", &s->env, err) < 0 || get_volumes(root, s, err) < 0 ||
        get_u64(root, "nofile", &s->nofile, err) < 0 ||
        get_u64(root, "grace_ms", &s->grace_ms, err) < 0 ||
        get_u64(root, "userns_base", &s->userns_base, err) < 0 ||
        get_u64(root, "log_max_bytes", &s->log_max_bytes, err) < 0 ||
        get_u64(root, "log_max_files", &s->log_max_files, err) < 0 ||
        get_u64(root, "flags", &flags, err) < 0 ||
        get_strv(root, "cgroup_join", &s->cgroup_join, err) < 0 ||
        get_str(root, "etc_dir", &s->etc_dir, err) < 0)
        goto fail;
    /* absent (a spec of an older agent): the host's network */
    const char *net = json_get(root, "network") ? json_get_str(root, "network") : "host";
    if ((int) (s->net = iso_net_mode_from_name(net)) < 0) {
        bad(err, "network", "\"host\", \"none\" or \"bridge\"");
        goto fail;
    }
    if (json_get(root, "flags")) {
        if (flags > UINT32_MAX) {
            bad(err, "flags", "a 32-bit integer");
            goto fail;
        }
        s->flags = (unsigned) flags;
    } else {
        const char *iv = json_get_str(root, "isolation");
        if (iv && iso_parse_isolation(iv, &s->flags, err) < 0) {
            berr_wrap(err, "spec");
            goto fail;
        }
    }
    if (!s->id || !*s->id) {
        bad(err, "id", "a non-empty string");
        goto fail;
    }
    if (!is_abs(s->sandbox_dir)) {
        bad(err, "sandbox_dir", "an absolute path");
        goto fail;
    }
    if (!is_abs(s->runtime_dir)) {
        bad(err, "runtime_dir", "an absolute path");
        goto fail;
    }
    if (s->etc_dir && !is_abs(s->etc_dir)) {
        bad(err, "etc_dir", "an absolute path");
        goto fail;
    }
    if (!s->argv[0]) {
        bad(err, "argv", "a non-empty array of strings");
        goto fail;
    }
    if (s->userns_base && (s->userns_base < ISO_USERNS_SIZE ||
                           s->userns_base + ISO_USERNS_SIZE > (uint64_t) UINT32_MAX)) {
        bad(err, "userns_base", "0, or a host uid with room for 65536 above it");
        goto fail;
    }
    if (s->log_max_bytes && (s->log_max_files < 1 || s->log_max_files > 100)) {
        bad(err, "log_max_files", "1 to 100 when log_max_bytes is set");
        goto fail;
    }
    for (size_t i = 0; s->cgroup_join[i]; i++) {
        if (!is_abs(s->cgroup_join[i])) {
            bad(err, "cgroup_join", "absolute paths");
            goto fail;
        }
    }
    for (size_t i = 0; s->mask_dirs[i]; i++) {
        if (!is_abs(s->mask_dirs[i])) {
            bad(err, "mask_dirs", "absolute paths");
            goto fail;
        }
    }
    yajl_tree_free(root);
    return 0;
fail:
    yajl_tree_free(root);
    iso_spec_done(s);
    return r;
}

/* Free every member and zero the struct; safe on a zeroed or half-built spec, and twice. */
void iso_spec_done(struct iso_spec *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->hostname);
    free(s->sandbox_dir);
    free(s->runtime_dir);
    strv_free(s->mask_dirs);
    free(s->user);
    free(s->home);
    strv_free(s->argv);
    strv_free(s->env);
    strv_free(s->cgroup_join);
    for (size_t i = 0; i < s->n_volumes; i++) {
        free(s->volumes[i].host);
        free(s->volumes[i].container);
    }
    free(s->volumes);
    free(s->etc_dir);
    memset(s, 0, sizeof(*s));
}
