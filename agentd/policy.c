/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/policy.c - what anyone may ask of this agent, the master included ([agent]
 * volume_paths, local_volume_paths, allow_root, allowed_users; docs/security.md): checked
 * on a parsed launch before anything is recorded or created, so a refused launch leaves
 * nothing behind. Also resolves each volume's host path to its canonical form, which the
 * executor then binds without following any symlink (a task cannot swap one in later).
 * Then picks the user namespace slice of a task that gets one ([agent] userns).
 * lifecycle.c calls both from ctr launch's admission; masterlink/spec.c parsed the fields. */
#include <string.h>

#include "agentd/agent.h"

#define DENY(...) berr_setc(err, EPERM, BERR_FORBIDDEN, __VA_ARGS__)

static bool in_list(const char *csv, const char *word)
{
    _cleanup_free_ char *copy = xstrdup(csv);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (streq(tok, word))
            return true;
    }
    return false;
}

/* Is canonical path p the directory dir or below it? Both canonical. */
static bool path_under(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    if (streq(dir, "/"))
        return true;
    return strncmp(p, dir, n) == 0 && (p[n] == 0 || p[n] == '/');
}

static bool volume_allowed(const char *canonical, const char *csv)
{
    _cleanup_free_ char *copy = xstrdup(csv);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        _cleanup_free_ char *dir = realpath(tok, NULL);
        if (dir && path_under(canonical, dir))
            return true;
    }
    return false;
}

static int check_user(struct agent *a, struct container *c, bool from_master, struct berr **err)
{
    _cleanup_berr_ struct berr *uerr = NULL;
    /* refused now rather than as LAUNCH_FAILED later (review L3); a numeric uid without a
     * passwd entry resolves to itself. The answer goes into the executor's spec. */
    free(c->user_home);
    c->user_home = NULL;
    int r = iso_user_resolve(c->spec.user, &c->user, &c->user_home, &uerr);
    if (r == -ENOENT || r == -EINVAL)
        return berr_setc(err, EINVAL, BERR_INVALID_ARGUMENT, "%s on this host", berr_msg(uerr));
    if (r < 0) /* the host could not say (out of fds, ...): not the caller's mistake */
        return berr_setc(err, -r, BERR_UNAVAILABLE, "%s", berr_msg(uerr));
    const struct iso_user u = c->user;
    if (u.uid == 0) {
        const char *who = a->cfg.allow_root;
        if (streq(who, "none") || (streq(who, "local") && from_master))
            return DENY("user '%s' is uid 0, and [agent] allow_root = %s on this agent%s",
                        c->spec.user, who,
                        from_master ? " (this launch came from the master)" : "");
        return 0; /* root is allow_root's alone to allow */
    }
    if (streq(a->cfg.allowed_users, "*") || in_list(a->cfg.allowed_users, c->spec.user))
        return 0;
    char uid[24];
    snprintf(uid, sizeof(uid), "%u", (unsigned) u.uid);
    if (in_list(a->cfg.allowed_users, uid))
        return 0;
    return DENY("user '%s' is not in [agent] allowed_users (%s)", c->spec.user,
                a->cfg.allowed_users);
}

int policy_check(struct agent *a, struct container *c, bool from_master, struct berr **err)
{
    int r = check_user(a, c, from_master, err);
    if (r < 0)
        return r;
    const char *allowed = from_master ? a->cfg.volume_paths : a->cfg.local_volume_paths;
    const char *key = from_master ? "volume_paths" : "local_volume_paths";
    for (size_t i = 0; i < c->spec.n_volumes; i++) {
        struct ml_volume *v = &c->spec.volumes[i];
        char *canonical = realpath(v->host, NULL);
        if (!canonical)
            return berr_setc(err, errno, BERR_INVALID_ARGUMENT, "volumes[%zu]: host path '%s': %s",
                             i, v->host, strerror(errno));
        if (!allowed[0] || !volume_allowed(canonical, allowed)) {
            r = DENY("volumes[%zu]: host path '%s'%s%s%s is not under [agent] %s (%s)%s", i,
                     v->host, streq(canonical, v->host) ? "" : " ('",
                     streq(canonical, v->host) ? "" : canonical,
                     streq(canonical, v->host) ? "" : "')", key, allowed[0] ? allowed : "none",
                     from_master ? ": the master may not give tasks host directories" : "");
            free(canonical);
            return r;
        }
        free(v->host);
        v->host = canonical;
    }
    return 0;
}

/* A user namespace slice for c when [agent] userns asks for one: the next free one of
 * userns_range (round robin, so a slice a task just left is not handed out at once). 0 when
 * c needs none, -ENOSPC when all are taken by live containers. */
int policy_userns_pick(struct agent *a, struct container *c, struct berr **err)
{
    if (streq(a->cfg.userns, "none"))
        return 0;
    if (streq(a->cfg.userns, "root") && c->user.uid != 0) /* resolved by check_user */
        return 0;
    uint64_t n = (a->cfg.userns_last - a->cfg.userns_first + 1) / ISO_USERNS_SIZE;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t slot = (a->userns_next + i) % n;
        uint64_t base = a->cfg.userns_first + slot * ISO_USERNS_SIZE;
        bool used = false;
        for (struct container *o = a->containers; o && !used; o = o->next)
            used = o->userns_base == base && !ml_state_terminal(o->state);
        if (!used) {
            c->userns_base = base;
            a->userns_next = slot + 1;
            return 0;
        }
    }
    return berr_setc(err, ENOSPC, BERR_INSUFFICIENT_RESOURCES,
                     "every user namespace slice of [agent] userns_range is in use");
}
