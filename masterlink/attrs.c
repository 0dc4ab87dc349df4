/* SPDX-License-Identifier: Apache-2.0 */
/* masterlink/attrs.c - agent attributes ([attributes] in agent.conf, issue #16): the rules a
 * name and a value follow, and their JSON object as SUBSCRIBE, GET /v1/agents and every offer
 * carry it ({"rack": "r1"}). The agent sends them (agentd/link.c), the master checks and keeps
 * them (master/link.c, agents.c) and offers them (sched.c's ml_offer_gen/ml_offer_decode). */
#include <arpa/inet.h>
#include <string.h>

#include "masterlink/masterlink.h"

bool ml_attr_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= ML_ATTR_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

bool ml_attr_value_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char) s[n] < 0x20 || (unsigned char) s[n] > 0x7e)
            return false; /* it goes to logs and tables: no newline, no escape sequence */
    return n <= ML_ATTR_VALUE_MAX;
}

void ml_attrs_free(struct ml_attr *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++) {
        free(a[i].name);
        free(a[i].value);
    }
    free(a);
}

int ml_attrs_decode(yajl_val obj, struct ml_attr **ret, size_t *ret_n, struct berr **err)
{
    if (!obj || YAJL_IS_NULL(obj)) {
        *ret = NULL;
        *ret_n = 0;
        return 0;
    }
    if (!YAJL_IS_OBJECT(obj))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "\"attributes\" is an object of strings");
    size_t n = obj->u.object.len;
    if (n > ML_MAX_ATTRS)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "\"attributes\": %zu of them (at most %d)", n, ML_MAX_ATTRS);
    for (size_t i = 0; i < n; i++) {
        const char *k = obj->u.object.keys[i];
        yajl_val v = obj->u.object.values[i];
        if (!ml_attr_name_valid(k))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "\"attributes\": bad name '%.64s' (1-%d of A-Z, a-z, 0-9, '_', "
                             "'.', '-')",
                             k, ML_ATTR_NAME_MAX);
        if (!YAJL_IS_STRING(v) || !ml_attr_value_valid(v->u.string))
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "\"attributes\": bad value of '%s' (a string of 0-%d printable "
                             "ASCII characters)",
                             k, ML_ATTR_VALUE_MAX);
        for (size_t j = 0; j < i; j++)
            if (streq(obj->u.object.keys[j], k))
                return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "\"attributes\": '%s' twice",
                                 k);
    }
    struct ml_attr *a = n ? xcalloc(n, sizeof(*a)) : NULL;
    for (size_t i = 0; i < n; i++) {
        a[i].name = xstrdup(obj->u.object.keys[i]);
        a[i].value = xstrdup(obj->u.object.values[i]->u.string);
    }
    *ret = a;
    *ret_n = n;
    return 0;
}

void ml_attrs_gen(yajl_gen g, const struct ml_attr *a, size_t n)
{
    yajl_gen_map_open(g);
    for (size_t i = 0; a && i < n; i++)
        json_kv_str(g, a[i].name, a[i].value);
    yajl_gen_map_close(g);
}

struct ml_attr *ml_attrs_dup(const struct ml_attr *a, size_t n)
{
    if (!a || n == 0)
        return NULL;
    struct ml_attr *d = xcalloc(n, sizeof(*d));
    for (size_t i = 0; i < n; i++) {
        d[i].name = xstrdup(a[i].name);
        d[i].value = xstrdup(a[i].value);
    }
    return d;
}

bool ml_attrs_equal(const struct ml_attr *a, size_t na, const struct ml_attr *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!streq(a[i].name, b[i].name) || !streq(a[i].value, b[i].value))
            return false;
    return true;
}

bool ml_address_valid(const char *s)
{
    unsigned char buf[16];
    if (!s || strlen(s) > ML_ADDRESS_MAX)
        return false;
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}
