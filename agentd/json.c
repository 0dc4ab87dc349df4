/* agentd/json.c - small yajl helpers for the agent: emitting key/value pairs, re-emitting a
 * parsed tree, and parsing request bodies with a nesting limit (yajl_tree recurses when
 * it frees, so a body of 100000 '[' must be refused before it becomes a tree). */
#include <math.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "agentd/agent.h"

#define JSON_MAX_DEPTH 32

void json_str(yajl_gen g, const char *s)
{
    if (!s) {
        yajl_gen_null(g);
        return;
    }
    yajl_gen_string(g, (const unsigned char *) s, strlen(s));
}

void json_kv_str(yajl_gen g, const char *k, const char *v)
{
    json_str(g, k);
    json_str(g, v);
}

void json_u64(yajl_gen g, uint64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long) v);
    yajl_gen_number(g, buf, (size_t) n);
}

void json_kv_u64(yajl_gen g, const char *k, uint64_t v)
{
    json_str(g, k);
    json_u64(g, v);
}

void json_kv_i64(yajl_gen g, const char *k, int64_t v)
{
    json_str(g, k);
    yajl_gen_integer(g, v);
}

void json_kv_double(yajl_gen g, const char *k, double v)
{
    json_str(g, k);
    if (isfinite(v)) {
        /* bounded: "%.6f" of 1e90 would not fit (fuzz_codec found it in the master) */
        char buf[64];
        int n = snprintf(buf, sizeof(buf), fabs(v) < 1e15 ? "%.6f" : "%.17g", v);
        yajl_gen_number(g, buf, (size_t) n);
    } else {
        yajl_gen_null(g);
    }
}

void json_kv_null(yajl_gen g, const char *k)
{
    json_str(g, k);
    yajl_gen_null(g);
}

void json_kv_bool(yajl_gen g, const char *k, bool v)
{
    json_str(g, k);
    yajl_gen_bool(g, v);
}

void json_cpus(yajl_gen g, uint64_t millis)
{
    char buf[32];
    format_cpus(millis, buf, sizeof(buf));
    yajl_gen_number(g, buf, strlen(buf));
}

static void json_gen_value(yajl_gen g, yajl_val v)
{
    if (!v) {
        yajl_gen_null(g);
    } else if (YAJL_IS_STRING(v)) {
        json_str(g, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    } else if (YAJL_IS_TRUE(v)) {
        yajl_gen_bool(g, 1);
    } else if (YAJL_IS_FALSE(v)) {
        yajl_gen_bool(g, 0);
    } else if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            json_str(g, v->u.object.keys[i]);
            json_gen_value(g, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++)
            json_gen_value(g, v->u.array.values[i]);
        yajl_gen_array_close(g);
    } else {
        yajl_gen_null(g);
    }
}

void json_kv_raw(yajl_gen g, const char *k, const char *json)
{
    json_str(g, k);
    yajl_val v = json ? yajl_tree_parse(json, NULL, 0) : NULL;
    json_gen_value(g, v);
    yajl_tree_free(v);
}

struct depth_ctx {
    int depth;
    bool too_deep;
    bool nul;
};

static int depth_open(void *ctx)
{
    struct depth_ctx *d = ctx;
    if (++d->depth > JSON_MAX_DEPTH) {
        d->too_deep = true;
        return 0; /* cancels the parse */
    }
    return 1;
}

static int depth_close(void *ctx)
{
    ((struct depth_ctx *) ctx)->depth--;
    return 1;
}

static int depth_map_open(void *ctx)
{
    return depth_open(ctx);
}

/* A string (or key) holding U+0000 ("\u0000") would be cut short as a C string: "ab\u0000cd"
 * would name a container "ab" and run argv "a" (review L2). Refused. */
static int no_nul(void *ctx, const unsigned char *s, size_t l)
{
    if (!memchr(s, 0, l))
        return 1;
    ((struct depth_ctx *) ctx)->nul = true;
    return 0;
}

yajl_val json_parse(const char *text, size_t len, struct berr **err)
{
    static const yajl_callbacks cbs = {
            .yajl_start_map = depth_map_open,
            .yajl_map_key = no_nul,
            .yajl_string = no_nul,
            .yajl_end_map = depth_close,
            .yajl_start_array = depth_open,
            .yajl_end_array = depth_close,
    };
    struct depth_ctx d = {0};
    yajl_handle h = yajl_alloc(&cbs, NULL, &d);
    yajl_status st = yajl_parse(h, (const unsigned char *) text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok) {
        if (d.too_deep || d.nul) {
            yajl_free(h);
            if (d.nul)
                berr_setc(err, EINVAL, "INVALID_ARGUMENT", "a JSON string holds U+0000");
            else
                berr_setc(err, EINVAL, "INVALID_ARGUMENT", "JSON nested deeper than %d levels",
                          JSON_MAX_DEPTH);
            return NULL;
        }
        unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *) text, len);
        berr_setc(err, EINVAL, "INVALID_ARGUMENT", "malformed JSON: %s", (const char *) msg);
        yajl_free_error(h, msg);
        yajl_free(h);
        return NULL;
    }
    yajl_free(h);
    /* yajl_tree_parse needs a NUL-terminated string */
    _cleanup_free_ char *copy = xstrndup(text, len);
    if (strlen(copy) != len) {
        berr_setc(err, EINVAL, "INVALID_ARGUMENT", "malformed JSON: NUL byte in body");
        return NULL;
    }
    char ebuf[256];
    yajl_val v = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
    if (!v) {
        berr_setc(err, EINVAL, "INVALID_ARGUMENT", "malformed JSON: %s", ebuf);
        return NULL;
    }
    return v;
}

yajl_val json_get(yajl_val obj, const char *key)
{
    if (!obj || !YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (streq(obj->u.object.keys[i], key))
            return obj->u.object.values[i];
    return NULL;
}
