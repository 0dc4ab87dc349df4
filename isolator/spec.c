/* isolator/spec.c - the sandbox spec's JSON codec: the agent writes runtime_dir/spec.json
 * with iso_spec_to_json, berth-executor reads it back with iso_spec_from_json. Only data
 * here; mount.c and task.c act on the spec, isolation.c names its flags. */
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "isolator/isolator.h"

/* ---- writing ---------------------------------------------------------------------------- */

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *) s, strlen(s));
}

static void gen_key_str(yajl_gen g, const char *key, const char *val)
{
    gen_str(g, key);
    if (val)
        gen_str(g, val);
    else
        yajl_gen_null(g);
}

static void gen_key_u64(yajl_gen g, const char *key, uint64_t v)
{
    gen_str(g, key);
    yajl_gen_integer(g, v > (uint64_t) INT64_MAX ? INT64_MAX : (long long) v);
}

static void gen_key_strv(yajl_gen g, const char *key, char *const *v)
{
    gen_str(g, key);
    yajl_gen_array_open(g);
    for (size_t i = 0; v && v[i]; i++)
        gen_str(g, v[i]);
    yajl_gen_array_close(g);
}

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
    gen_key_str(g, "id", s->id);
    gen_key_str(g, "hostname", s->hostname);
    gen_key_u64(g, "flags", s->flags);
    gen_key_str(g, "isolation", iso); /* for humans; "flags" wins when reading */
    gen_key_str(g, "sandbox_dir", s->sandbox_dir);
    gen_key_str(g, "runtime_dir", s->runtime_dir);
    gen_key_strv(g, "mask_dirs", s->mask_dirs);
    gen_key_str(g, "user", s->user);
    gen_key_strv(g, "argv", s->argv);
    gen_key_strv(g, "env", s->env);
    gen_str(g, "volumes");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < s->n_volumes; i++) {
        yajl_gen_map_open(g);
        gen_key_str(g, "host", s->volumes[i].host);
        gen_key_str(g, "container", s->volumes[i].container);
        gen_str(g, "readonly");
        yajl_gen_bool(g, s->volumes[i].readonly);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    gen_key_u64(g, "nofile", s->nofile);
    gen_key_u64(g, "grace_ms", s->grace_ms);
    gen_key_u64(g, "userns_base", s->userns_base);
    gen_key_u64(g, "log_max_bytes", s->log_max_bytes);
    gen_key_u64(g, "log_max_files", s->log_max_files);
    yajl_gen_map_close(g);

    const unsigned char *buf;
    size_t len;
    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
        abort(); /* only a programming error (unbalanced containers) gets here */
    char *out = xstrndup((const char *) buf, len);
    yajl_gen_free(g);
    return out;
}

/* ---- reading ---------------------------------------------------------------------------- */

static int bad(struct berr **err, const char *key, const char *what)
{
    return berr_setc(err, EINVAL, "INVALID_ARGUMENT", "spec: '%s' must be %s", key, what);
}

/* Optional string member: NULL stays NULL; null is accepted as absent. */
static int get_str(yajl_val v, const char *key, char **ret, struct berr **err)
{
    if (!v || YAJL_IS_NULL(v))
        return 0;
    if (!YAJL_IS_STRING(v))
        return bad(err, key, "a string");
    *ret = xstrdup(YAJL_GET_STRING(v));
    return 0;
}

static int get_u64(yajl_val v, const char *key, uint64_t *ret, struct berr **err)
{
    if (!v || YAJL_IS_NULL(v))
        return 0;
    if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0)
        return bad(err, key, "a non-negative integer");
    *ret = (uint64_t) YAJL_GET_INTEGER(v);
    return 0;
}

/* NULL-terminated string vector; an absent member gives an empty (non-NULL) vector. */
static int get_strv(yajl_val v, const char *key, char ***ret, struct berr **err)
{
    if (v && !YAJL_IS_NULL(v) && !YAJL_IS_ARRAY(v))
        return bad(err, key, "an array of strings");
    size_t n = v && YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
    char **out = xcalloc(n + 1, sizeof(char *));
    *ret = out; /* owned by the spec from here, so iso_spec_done frees it on failure */
    for (size_t i = 0; i < n; i++) {
        yajl_val e = v->u.array.values[i];
        if (!YAJL_IS_STRING(e))
            return bad(err, key, "an array of strings");
        out[i] = xstrdup(YAJL_GET_STRING(e));
    }
    return 0;
}

static bool is_abs(const char *p)
{
    return p && p[0] == '/';
}

static int get_volumes(yajl_val v, struct iso_spec *s, struct berr **err)
{
    if (!v || YAJL_IS_NULL(v))
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
        const char *host_path[] = {"host", NULL};
        const char *ctr_path[] = {"container", NULL};
        const char *ro_path[] = {"readonly", NULL};
        if (get_str(yajl_tree_get(e, host_path, yajl_t_any), "volumes.host", &vol->host, err) < 0 ||
            get_str(yajl_tree_get(e, ctr_path, yajl_t_any), "volumes.container", &vol->container,
                    err) < 0)
            return -EINVAL;
        yajl_val ro = yajl_tree_get(e, ro_path, yajl_t_any);
        if (ro && !YAJL_IS_NULL(ro) && !YAJL_IS_TRUE(ro) && !YAJL_IS_FALSE(ro))
            return bad(err, "volumes.readonly", "a boolean");
        vol->readonly = ro && YAJL_IS_TRUE(ro);
        if (!is_abs(vol->host))
            return bad(err, "volumes.host", "an absolute path");
        if (!vol->container || !*vol->container)
            return bad(err, "volumes.container", "a non-empty path");
    }
    return 0;
}

static yajl_val member(yajl_val root, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(root, path, yajl_t_any);
}

/* Parse json into *ret (zeroed first). Unknown members are ignored (forward compatible).
 * Required: id, sandbox_dir and runtime_dir (absolute), a non-empty argv. Returns 0, or
 * -EINVAL with err set (code INVALID_ARGUMENT) and *ret emptied. */
int iso_spec_from_json(const char *json, struct iso_spec *ret, struct berr **err)
{
    memset(ret, 0, sizeof(*ret));
    char errbuf[256] = "";
    yajl_val root = yajl_tree_parse(json, errbuf, sizeof(errbuf));
    if (!root) {
        errbuf[strcspn(errbuf, "\n")] = 0;
        return berr_setc(err, EINVAL, "INVALID_ARGUMENT", "spec: bad JSON: %s",
                         errbuf[0] ? errbuf : "parse error");
    }
    int r = -EINVAL;
    struct iso_spec *s = ret;
    if (!YAJL_IS_OBJECT(root)) {
        berr_setc(err, EINVAL, "INVALID_ARGUMENT", "spec: not a JSON object");
        goto fail;
    }
    uint64_t flags = 0;
    yajl_val fv = member(root, "flags");
    if (get_str(member(root, "id"), "id", &s->id, err) < 0 ||
        get_str(member(root, "hostname"), "hostname", &s->hostname, err) < 0 ||
        get_str(member(root, "sandbox_dir"), "sandbox_dir", &s->sandbox_dir, err) < 0 ||
        get_str(member(root, "runtime_dir"), "runtime_dir", &s->runtime_dir, err) < 0 ||
        get_strv(member(root, "mask_dirs"), "mask_dirs", &s->mask_dirs, err) < 0 ||
        get_str(member(root, "user"), "user", &s->user, err) < 0 ||
        get_strv(member(root, "argv"), "argv", &s->argv, err) < 0 ||
        get_strv(member(root, "env"), "env", &s->env, err) < 0 ||
        get_volumes(member(root, "volumes"), s, err) < 0 ||
        get_u64(member(root, "nofile"), "nofile", &s->nofile, err) < 0 ||
        get_u64(member(root, "grace_ms"), "grace_ms", &s->grace_ms, err) < 0 ||
        get_u64(member(root, "userns_base"), "userns_base", &s->userns_base, err) < 0 ||
        get_u64(member(root, "log_max_bytes"), "log_max_bytes", &s->log_max_bytes, err) < 0 ||
        get_u64(member(root, "log_max_files"), "log_max_files", &s->log_max_files, err) < 0 ||
        get_u64(fv, "flags", &flags, err) < 0)
        goto fail;
    if (fv && !YAJL_IS_NULL(fv)) {
        if (flags > UINT32_MAX) {
            bad(err, "flags", "a 32-bit integer");
            goto fail;
        }
        s->flags = (unsigned) flags;
    } else {
        yajl_val iv = member(root, "isolation");
        if (iv && YAJL_IS_STRING(iv) &&
            iso_parse_isolation(YAJL_GET_STRING(iv), &s->flags, err) < 0) {
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

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
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
    strv_free(s->argv);
    strv_free(s->env);
    for (size_t i = 0; i < s->n_volumes; i++) {
        free(s->volumes[i].host);
        free(s->volumes[i].container);
    }
    free(s->volumes);
    memset(s, 0, sizeof(*s));
}
