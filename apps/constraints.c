/* SPDX-License-Identifier: Apache-2.0 */
/* apps/constraints.c - berth-apps' placement constraints (docs/apps.md, "constraints"): the
 * parser of ["field", "OP"(, "value")], its generator, and the pure decision whether one more
 * instance may go to an agent given where the others run, with a one-line why when not. No
 * offers, sockets or state here: the daemon builds the app_place arrays from its instances and
 * the offer in hand; tests/unit/apps_constraints_test.c checks every rule. */
#include "apps/constraints.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {
        [APP_UNIQUE] = "UNIQUE", [APP_CLUSTER] = "CLUSTER", [APP_MAX_PER] = "MAX_PER",
        [APP_LIKE] = "LIKE",     [APP_UNLIKE] = "UNLIKE",
};

/* A field is "hostname" or an attribute name: 1-63 of [A-Za-z0-9_.-] (agent.conf's rule). */
static bool field_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Compile "^(text)$". The text alone must be a valid ERE first: "a)|(b" would otherwise
 * close the group and leave the alternation unanchored ("^(a)|(b)$"). */
static int compile_anchored(const char *text, regex_t *re, char *errbuf, size_t errlen)
{
    regex_t alone;
    int r = regcomp(&alone, text, REG_EXTENDED | REG_NOSUB);
    if (r != 0) {
        regerror(r, &alone, errbuf, errlen);
        return -EINVAL;
    }
    regfree(&alone);
    _cleanup_free_ char *anchored = xasprintf("^(%s)$", text);
    r = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
    if (r != 0) {
        regerror(r, re, errbuf, errlen);
        return -EINVAL;
    }
    return 0;
}

#define bad(err, ...) berr_setc((err), EINVAL, BERR_INVALID_ARGUMENT, __VA_ARGS__)

int app_constraint_parse(yajl_val v, struct app_constraint *ret, struct berr **err)
{
    if (!YAJL_IS_ARRAY(v) || v->u.array.len < 2 || v->u.array.len > 3)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "a constraint is an array [field, op] or [field, op, value]");
    yajl_val *a = v->u.array.values;
    if (!YAJL_IS_STRING(a[0]) || !field_valid(a[0]->u.string))
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                         "a constraint's field is \"hostname\" or an attribute name "
                         "(1-63 of [A-Za-z0-9_.-])");
    const char *field = a[0]->u.string;
    if (!YAJL_IS_STRING(a[1]))
        return bad(err, "constraint on %s: the op is a string", field);
    const char *opname = a[1]->u.string;
    int op = -1;
    for (size_t i = 0; i < ARRAY_SIZE(op_names); i++)
        if (streq(opname, op_names[i]))
            op = (int) i;
    if (op < 0)
        return bad(err,
                   "constraint on %s: unknown op '%s' (UNIQUE, CLUSTER, MAX_PER, LIKE or UNLIKE)",
                   field, opname);
    yajl_val val = v->u.array.len == 3 ? a[2] : NULL;
    struct app_constraint c = {.op = (enum app_constraint_op) op};
    switch (c.op) {
    case APP_UNIQUE:
        if (val)
            return bad(err, "constraint %s %s takes no value", field, opname);
        break;
    case APP_CLUSTER:
        if (val && !YAJL_IS_STRING(val))
            return bad(err, "constraint %s %s: the value is a string", field, opname);
        break;
    case APP_MAX_PER: {
        uint64_t n = 0;
        const char *text = NULL;
        if (val && YAJL_IS_STRING(val))
            text = val->u.string;
        else if (val && YAJL_IS_INTEGER(val))
            text = val->u.number.r;
        if (!text || parse_u64(text, &n) < 0 || n == 0 || n > 1000000)
            return bad(err, "constraint %s %s needs a positive integer value", field, opname);
        c.max_per = (long) n;
        break;
    }
    case APP_LIKE:
    case APP_UNLIKE:
        if (!val || !YAJL_IS_STRING(val))
            return bad(err, "constraint %s %s needs a regex value", field, opname);
        break;
    }
    if (c.op == APP_LIKE || c.op == APP_UNLIKE) {
        char ebuf[128];
        if (compile_anchored(val->u.string, &c.re, ebuf, sizeof(ebuf)) < 0)
            return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT,
                             "constraint %s %s: bad regex '%s': %s", field, opname, val->u.string,
                             ebuf);
        c.has_re = true;
    }
    c.field = xstrdup(field);
    if (val)
        c.value = xstrdup(YAJL_IS_STRING(val) ? val->u.string : val->u.number.r);
    *ret = c;
    return 0;
}

void app_constraint_done(struct app_constraint *c)
{
    if (!c)
        return;
    free(c->field);
    free(c->value);
    if (c->has_re)
        regfree(&c->re);
    *c = (struct app_constraint){0};
}

void app_constraint_gen(yajl_gen g, const struct app_constraint *c)
{
    yajl_gen_array_open(g);
    json_str(g, c->field);
    json_str(g, (unsigned) c->op < ARRAY_SIZE(op_names) ? op_names[c->op] : "");
    if (c->value)
        json_str(g, c->value);
    yajl_gen_array_close(g);
}

const char *app_place_value(const struct app_place *p, const char *field)
{
    if (streq(field, "hostname"))
        return p->hostname;
    for (size_t i = 0; i < p->n_attrs; i++)
        if (p->attrs[i].name && streq(p->attrs[i].name, field))
            return p->attrs[i].value;
    return NULL;
}

static bool value_eq(const char *a, const char *b)
{
    return a && b && streq(a, b);
}

/* "hostname UNIQUE" / "rack LIKE r[12]": how a why-line names its constraint. */
static void name_constraint(const struct app_constraint *c, char *buf, size_t len)
{
    const char *op = (unsigned) c->op < ARRAY_SIZE(op_names) ? op_names[c->op] : "?";
    if (c->value)
        snprintf(buf, len, "%s %s %s", c->field, op, c->value);
    else
        snprintf(buf, len, "%s %s", c->field, op);
}

/* "agent-b" for hostname, "rack=r1" for an attribute: where a value is. */
static void name_value(const struct app_constraint *c, const char *value, char *buf, size_t len)
{
    if (streq(c->field, "hostname"))
        snprintf(buf, len, "%s", value);
    else
        snprintf(buf, len, "%s=%s", c->field, value);
}

bool app_constraint_ok(const struct app_constraint *c, const struct app_place *candidate,
                       const struct app_place *placed, size_t n_placed, char *why, size_t whylen)
{
    char cname[400], where[400];
    const char *host = candidate->hostname ? candidate->hostname : "the agent";
    const char *cv = app_place_value(candidate, c->field);
    name_constraint(c, cname, sizeof(cname));
#define REFUSE(...)                                                                                \
    do {                                                                                           \
        if (why && whylen)                                                                         \
            snprintf(why, whylen, __VA_ARGS__);                                                    \
        return false;                                                                              \
    } while (0)

    if (!cv) {
        if (c->op == APP_UNLIKE)
            return true;
        REFUSE("%s: %s has no %s", cname, host, c->field);
    }
    name_value(c, cv, where, sizeof(where));
    switch (c->op) {
    case APP_UNIQUE:
        for (size_t i = 0; i < n_placed; i++)
            if (value_eq(app_place_value(&placed[i], c->field), cv))
                REFUSE("%s: an instance already runs on %s", cname, where);
        return true;
    case APP_CLUSTER: {
        const char *want = c->value;
        for (size_t i = 0; !want && i < n_placed; i++)
            want = app_place_value(&placed[i], c->field);
        if (!want || streq(want, cv))
            return true;
        if (c->value)
            REFUSE("%s: %s has %s=%s", cname, host, c->field, cv);
        REFUSE("%s: instances run on %s=%s, %s has %s=%s", cname, c->field, want, host, c->field,
               cv);
    }
    case APP_MAX_PER: {
        long n = 0;
        for (size_t i = 0; i < n_placed; i++)
            if (value_eq(app_place_value(&placed[i], c->field), cv))
                n++;
        if (n < c->max_per)
            return true;
        REFUSE("%s: %ld instance%s already run%s on %s", cname, n, n == 1 ? "" : "s",
               n == 1 ? "s" : "", where);
    }
    case APP_LIKE:
    case APP_UNLIKE: {
        bool match = c->has_re && regexec(&c->re, cv, 0, NULL, 0) == 0;
        if (match == (c->op == APP_LIKE))
            return true;
        REFUSE("%s: %s has %s=%s", cname, host, c->field, cv);
    }
    }
#undef REFUSE
    return false;
}

bool app_constraints_ok(const struct app_constraint *cs, size_t n,
                        const struct app_place *candidate, const struct app_place *placed,
                        size_t n_placed, char *why, size_t whylen)
{
    for (size_t i = 0; i < n; i++)
        if (!app_constraint_ok(&cs[i], candidate, placed, n_placed, why, whylen))
            return false;
    return true;
}
