/* SPDX-License-Identifier: Apache-2.0 */
/* apps/constraints.h - berth-apps' placement constraints over agent attributes (docs/apps.md,
 * "constraints"): [field, op] or [field, op, value] with op UNIQUE, CLUSTER, MAX_PER, LIKE,
 * UNLIKE and field "hostname" or an agent attribute ([attributes] in agent.conf, carried by
 * every offer as ml_attr pairs). Pure decisions: constraints.c,
 * tests/unit/apps_constraints_test.c. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"
#include "masterlink/masterlink.h"

enum app_constraint_op {
    APP_UNIQUE,
    APP_CLUSTER,
    APP_MAX_PER,
    APP_LIKE,
    APP_UNLIKE,
};

struct app_constraint {
    char *field; /* "hostname" or an attribute name */
    enum app_constraint_op op;
    char *value;  /* CLUSTER's value (NULL: the first placed one's), MAX_PER's n as given,
                   * LIKE/UNLIKE's regex text; NULL for UNIQUE */
    long max_per; /* MAX_PER */
    regex_t re;   /* LIKE/UNLIKE: compiled, anchored ^(value)$ */
    bool has_re;
};

/* Where one instance runs (or will): its agent's hostname and attributes. */
struct app_place {
    const char *hostname;
    const struct ml_attr *attrs;
    size_t n_attrs;
};

/* Parse one constraint (a JSON array of 2 or 3 strings; MAX_PER's value may also be a
 * number): 0 with *ret (free with app_constraint_done), or -EINVAL with err naming what is
 * wrong (unknown op, missing/extra value, bad regex, MAX_PER not a positive integer). */
int app_constraint_parse(yajl_val v, struct app_constraint *ret, struct berr **err);
void app_constraint_done(struct app_constraint *c);
/* As given: ["field", "OP"(, "value")]. */
void app_constraint_gen(yajl_gen g, const struct app_constraint *c);

/* The value of field at place p ("hostname" or an attribute), NULL when it has none. */
const char *app_place_value(const struct app_place *p, const char *field);

/* Whether one more instance may go to candidate given the instances already placed (running,
 * staged or about to be launched in the same pass). false: why (if non-NULL) gets one line
 * naming the constraint and the value, e.g. "hostname UNIQUE: an instance already runs on
 * agent-b" or "rack LIKE r[12]: agent-c has rack=r3" or "rack LIKE r[12]: agent-c has no
 * rack". */
bool app_constraint_ok(const struct app_constraint *c, const struct app_place *candidate,
                       const struct app_place *placed, size_t n_placed, char *why, size_t whylen);
/* All of them: the first refusing one's why. */
bool app_constraints_ok(const struct app_constraint *cs, size_t n,
                        const struct app_place *candidate, const struct app_place *placed,
                        size_t n_placed, char *why, size_t whylen);
