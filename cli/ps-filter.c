/* SPDX-License-Identifier: Apache-2.0 */
/* cli/ps-filter.c - `berthctl ps --filter KEY=VALUE`: parses the filters docker and podman
 * users type (state/status, name, id, reason) and matches container objects against them.
 * Pure (no I/O), unit-tested in tests/unit/cli_test.c; verbs-ctr.c's `ps` uses it.
 *
 * As docker's: values of one key are alternatives (OR), different keys must all match
 * (AND). name matches a part of the name, id a prefix of the id, state and reason exactly
 * (case-insensitive). status takes docker's words (created, running, exited, dead) as well
 * as ours, so `ps -a --filter status=exited` means what it means to a docker user. */
#include <string.h>
#include <strings.h>

#include "cli/cli.h"

static const char *const key_names[CTL_FILTER_MAX] = {
        [CTL_FILTER_ID] = "id",
        [CTL_FILTER_NAME] = "name",
        [CTL_FILTER_STATE] = "state",
        [CTL_FILTER_REASON] = "reason",
};

static const char *const states[] = {"STAGING", "STARTING", "RUNNING", "FINISHED",
                                     "FAILED",  "KILLED",   "LOST"};

/* docker's container statuses, as sets of our states */
static const struct {
    const char *word;
    const char *states[4];
} docker_status[] = {
        {"created", {"STAGING", "STARTING"}},
        {"running", {"RUNNING"}},
        {"exited", {"FINISHED", "FAILED", "KILLED", "LOST"}},
        {"dead", {"LOST"}},
};

static void add_value(struct ctl_ps_filter *f, enum ctl_filter_key k, const char *v)
{
    for (size_t i = 0; i < f->n[k]; i++)
        if (streq(f->values[k][i], v))
            return;
    f->values[k] = xrealloc(f->values[k], (f->n[k] + 1) * sizeof(char *));
    f->values[k][f->n[k]++] = xstrdup(v);
}

/* Our state named by s (any case), or NULL. */
static const char *state_name(const char *s)
{
    for (size_t i = 0; i < ARRAY_SIZE(states); i++)
        if (strcasecmp(s, states[i]) == 0)
            return states[i];
    return NULL;
}

int ctl_ps_filter_add(struct ctl_ps_filter *f, const char *arg, struct berr **err)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return berr_setx(err, EINVAL, "ps: --filter '%s': expected KEY=VALUE (%s)", arg,
                         CTL_FILTER_KEYS);
    _cleanup_free_ char *given = xstrndup(arg, (size_t) (eq - arg));
    const char *key = given, *value = eq + 1;
    if (!*value)
        return berr_setx(err, EINVAL, "ps: --filter '%s': empty value", arg);
    if (streq(key, "status")) {
        for (size_t i = 0; i < ARRAY_SIZE(docker_status); i++) {
            if (strcasecmp(value, docker_status[i].word) != 0)
                continue;
            for (size_t j = 0; j < ARRAY_SIZE(docker_status[i].states); j++)
                if (docker_status[i].states[j])
                    add_value(f, CTL_FILTER_STATE, docker_status[i].states[j]);
            return 0;
        }
        key = "state"; /* not one of docker's words: one of our states, checked below */
    }
    for (int k = 0; k < CTL_FILTER_MAX; k++) {
        if (!streq(key, key_names[k]))
            continue;
        if (k == CTL_FILTER_STATE) {
            const char *s = state_name(value);
            if (!s)
                return berr_setx(err, EINVAL,
                                 "ps: --filter '%s': no such state (STAGING, STARTING, RUNNING, "
                                 "FINISHED, FAILED, KILLED, LOST; status= also takes created, "
                                 "running, exited, dead)",
                                 arg);
            value = s;
        }
        add_value(f, (enum ctl_filter_key) k, value);
        return 0;
    }
    return berr_setx(err, EINVAL, "ps: unknown filter '%s' (%s)", key, CTL_FILTER_KEYS);
}

static bool match_one(enum ctl_filter_key k, const char *want, yajl_val ctr)
{
    const char *have = json_get_str(ctr, k == CTL_FILTER_ID      ? "id"
                                         : k == CTL_FILTER_NAME  ? "name"
                                         : k == CTL_FILTER_STATE ? "state"
                                                                 : "reason");
    if (!have)
        return false;
    switch (k) {
    case CTL_FILTER_ID:
        return str_has_prefix(have, want);
    case CTL_FILTER_NAME:
        return strstr(have, want) != NULL;
    default:
        return strcasecmp(have, want) == 0;
    }
}

bool ctl_ps_filter_match(const struct ctl_ps_filter *f, yajl_val ctr)
{
    for (int k = 0; k < CTL_FILTER_MAX; k++) {
        if (f->n[k] == 0)
            continue;
        bool any = false;
        for (size_t i = 0; i < f->n[k] && !any; i++)
            any = match_one((enum ctl_filter_key) k, f->values[k][i], ctr);
        if (!any)
            return false;
    }
    return true;
}

void ctl_ps_filter_free(struct ctl_ps_filter *f)
{
    for (int k = 0; k < CTL_FILTER_MAX; k++) {
        for (size_t i = 0; i < f->n[k]; i++)
            free(f->values[k][i]);
        free(f->values[k]);
    }
    *f = (struct ctl_ps_filter){0};
}
