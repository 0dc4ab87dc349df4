/* SPDX-License-Identifier: Apache-2.0 */
/* common/json.c - the one set of yajl helpers every berth binary uses: a parse with a
 * nesting limit (yajl_tree_free recurses, so a body of 100000 '[' must be refused before it
 * becomes a tree) that also refuses U+0000, typed getters that never trust the input's
 * types, and key/value emitters. The codecs of each contract (masterlink/codec.c,
 * isolator/spec.c and status.c, agentd/record.c) are built on these; error.c, log.c,
 * parse.c are the neighbours this file uses. */
#include <math.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "common/common.h"

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

/* A string (or key) holding U+0000 ("\u0000") would be cut short as a C string: "ab\u0000cd"
 * would name a container "ab" (review L2). Refused, like a raw NUL. */
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
            .yajl_start_map = depth_open,
            .yajl_map_key = no_nul,
            .yajl_string = no_nul,
            .yajl_end_map = depth_close,
            .yajl_start_array = depth_open,
            .yajl_end_array = depth_close,
    };
    if (memchr(text, 0, len)) {
        berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "malformed JSON: NUL byte");
        return NULL;
    }
    /* a streaming pass first: it stops at the depth limit before any tree exists */
    struct depth_ctx d = {0};
    yajl_handle h = yajl_alloc(&cbs, NULL, &d);
    yajl_status st = yajl_parse(h, (const unsigned char *) text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok) {
        if (d.too_deep) {
            berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "JSON nested deeper than %d levels",
                      JSON_MAX_DEPTH);
        } else if (d.nul) {
            berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "a JSON string holds U+0000");
        } else {
            unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *) text, len);
            berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "malformed JSON: %.200s",
                      (const char *) msg);
            yajl_free_error(h, msg);
        }
        yajl_free(h);
        return NULL;
    }
    yajl_free(h);
    _cleanup_free_ char *copy = xstrndup(text, len); /* yajl_tree_parse wants a C string */
    char ebuf[256];
    yajl_val v = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
    if (!v)
        berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "malformed JSON: %s", ebuf);
    return v;
}

yajl_val json_get(yajl_val obj, const char *key)
{
    if (!obj || !YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (streq(obj->u.object.keys[i], key)) {
            yajl_val v = obj->u.object.values[i];
            return v && YAJL_IS_NULL(v) ? NULL : v;
        }
    }
    return NULL;
}

const char *json_get_str(yajl_val obj, const char *key)
{
    yajl_val v = json_get(obj, key);
    return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

bool json_get_double(yajl_val obj, const char *key, double *ret)
{
    yajl_val v = json_get(obj, key);
    if (!v || !YAJL_IS_NUMBER(v))
        return false;
    double d = YAJL_IS_INTEGER(v) ? (double) YAJL_GET_INTEGER(v) : YAJL_GET_DOUBLE(v);
    if (!isfinite(d))
        return false;
    *ret = d;
    return true;
}

bool json_get_i64(yajl_val obj, const char *key, int64_t *ret)
{
    yajl_val v = json_get(obj, key);
    if (!v || !YAJL_IS_INTEGER(v))
        return false;
    *ret = YAJL_GET_INTEGER(v);
    return true;
}

bool json_get_u64(yajl_val obj, const char *key, uint64_t *ret)
{
    yajl_val v = json_get(obj, key);
    /* yajl keeps the number's text: parse it ourselves so values above INT64_MAX work */
    if (!v || !YAJL_IS_NUMBER(v) || !v->u.number.r)
        return false;
    return parse_u64(v->u.number.r, ret) == 0;
}

bool json_get_cpus(yajl_val obj, const char *key, uint64_t *ret_millis)
{
    yajl_val v = json_get(obj, key);
    if (v && YAJL_IS_STRING(v))
        return parse_cpus(v->u.string, ret_millis) == 0;
    if (v && YAJL_IS_NUMBER(v) && v->u.number.r)
        return parse_cpus(v->u.number.r, ret_millis) == 0;
    return false;
}

bool json_get_size(yajl_val obj, const char *key, uint64_t *ret)
{
    yajl_val v = json_get(obj, key);
    if (v && YAJL_IS_STRING(v))
        return parse_size(v->u.string, ret) == 0;
    if (v && YAJL_IS_NUMBER(v) && v->u.number.r)
        return parse_u64(v->u.number.r, ret) == 0;
    return false;
}

int json_get_strv(yajl_val obj, const char *key, char ***ret)
{
    yajl_val v = json_get(obj, key);
    if (!v) {
        *ret = NULL;
        return 0;
    }
    if (!YAJL_IS_ARRAY(v))
        return -EINVAL;
    for (size_t i = 0; i < v->u.array.len; i++)
        if (!YAJL_IS_STRING(v->u.array.values[i]))
            return -EINVAL;
    char **out = xzalloc((v->u.array.len + 1) * sizeof(char *));
    for (size_t i = 0; i < v->u.array.len; i++)
        out[i] = xstrdup(v->u.array.values[i]->u.string);
    *ret = out;
    return 0;
}

void json_str(yajl_gen g, const char *s)
{
    if (!s)
        yajl_gen_null(g);
    else
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

void json_double(yajl_gen g, double v)
{
    if (!isfinite(v)) {
        yajl_gen_null(g);
        return;
    }
    /* "%.6f" of 1e90 has 98 characters: a peer's timestamp must not make us read past buf
     * (found by tests/fuzz/fuzz_codec); beyond 1e15 the exponent form is exact enough */
    char buf[64];
    int n = snprintf(buf, sizeof(buf), fabs(v) < 1e15 ? "%.6f" : "%.17g", v);
    yajl_gen_number(g, buf, (size_t) n);
}

void json_kv_double(yajl_gen g, const char *k, double v)
{
    json_str(g, k);
    json_double(g, v);
}

void json_kv_bool(yajl_gen g, const char *k, bool v)
{
    json_str(g, k);
    yajl_gen_bool(g, v);
}

void json_kv_null(yajl_gen g, const char *k)
{
    json_str(g, k);
    yajl_gen_null(g);
}

void json_cpus(yajl_gen g, uint64_t millis)
{
    char buf[32];
    format_cpus(millis, buf, sizeof(buf));
    yajl_gen_number(g, buf, strlen(buf));
}

void json_kv_cpus(yajl_gen g, const char *k, uint64_t millis)
{
    json_str(g, k);
    json_cpus(g, millis);
}

void json_kv_strv(yajl_gen g, const char *k, char *const *v)
{
    json_str(g, k);
    if (!v) {
        yajl_gen_null(g);
        return;
    }
    yajl_gen_array_open(g);
    for (char *const *p = v; *p; p++)
        json_str(g, *p);
    yajl_gen_array_close(g);
}

void json_gen_value(yajl_gen g, yajl_val v)
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
    yajl_val v = json && json[0] ? json_parse(json, strlen(json), NULL) : NULL;
    json_gen_value(g, v);
    yajl_tree_free(v);
}

char *json_to_text(yajl_val v)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    json_gen_value(g, v);
    return json_gen_take(g);
}

char *json_gen_take(yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    char *s = yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok
                      ? xstrndup((const char *) buf, len)
                      : xstrdup("");
    yajl_gen_free(g);
    return s;
}
