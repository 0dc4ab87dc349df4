/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/task.c - the last steps of the task child before execve, in the order that keeps
 * each one possible: rlimits, bounding set (needs CAP_SETPCAP), user, final capabilities,
 * no_new_privs, close-on-exec for stray fds, seccomp. What they need that takes work (the
 * kernel's last capability; the seccomp filter is compiled when berth is built) is planned
 * before the fork, by the executor, so the task's cgroups are not charged for it. caps.c
 * and seccomp.c hold
 * the policies; mount.c builds the filesystem; user.c resolves the user (in the agent). */
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "isolator/isolator.h"
#include "isolator/sandbox-internal.h"

static int task_rlimits(const struct iso_spec *s, struct berr **err)
{
    struct rlimit core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &core) < 0)
        return berr_set(err, errno, "set RLIMIT_CORE");
    if (s->nofile) {
        struct rlimit nf = {(rlim_t) s->nofile, (rlim_t) s->nofile};
        if (setrlimit(RLIMIT_NOFILE, &nf) < 0)
            return berr_set(err, errno, "set RLIMIT_NOFILE %llu", (unsigned long long) s->nofile);
    }
    return 0;
}

static int task_user(const struct iso_user *u, struct berr **err)
{
    if (setgroups((size_t) u->n_groups, u->groups) < 0)
        return berr_set(err, errno, "setgroups");
    if (setresgid(u->gid, u->gid, u->gid) < 0)
        return berr_set(err, errno, "setgid %u", (unsigned) u->gid);
    if (setresuid(u->uid, u->uid, u->uid) < 0)
        return berr_set(err, errno, "setuid %u", (unsigned) u->uid);
    return 0;
}

/* Runs in the task child, single-threaded, so allocation is fine. Without ISO_CAPS a root
 * task keeps the executor's capabilities (a non-root one still loses them at setuid).
 * Returns 0 or -errno with err set; the caller reports and _exits. */
int iso_userns_map(pid_t pid, uint64_t base, struct berr **err)
{
    char map[64], path[64];
    snprintf(map, sizeof(map), "0 %llu %u\n", (unsigned long long) base, ISO_USERNS_SIZE);
    /* setgroups stays "allow": the writer is privileged in the parent namespace, and the
     * task's supplementary groups (mapped ones) are set by iso_task_prepare */
    static const char *const files[] = {"uid_map", "gid_map"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, files[i]);
        int r = write_file_at(AT_FDCWD, path, map);
        if (r < 0)
            return berr_set(err, -r, "write '%s'", path);
    }
    return 0;
}

int iso_task_plan_build(const struct iso_spec *s, struct iso_task_plan *plan, struct berr **err)
{
    memset(plan, 0, sizeof(*plan));
    plan->user = s->ids;
    plan->last_cap = caps_last();
    (void) err;
    if (s->flags & ISO_SECCOMP)
        plan->seccomp = &iso_seccomp_prog;
    return 0;
}

int iso_task_plan_enter(const struct iso_spec *s, struct iso_task_plan *plan, struct berr **err)
{
    /* A new user namespace gives its creator a full bounding set again (set_cred_user_ns),
     * and the filter denies CLONE_NEWUSER: with one, both wait for the child's unshare. */
    if (s->userns_base)
        return 0;
    /* the executor never execs again: the bounding set is only the task's concern */
    if (s->flags & ISO_CAPS) {
        if (caps_drop_bounding(plan->last_cap, err) < 0)
            return berr_wrap(err, "capabilities");
        plan->caps_bounded = true;
    }
    if (s->flags & ISO_SECCOMP) {
        if (iso_seccomp_install(plan->seccomp, err) < 0)
            return berr_wrap(err, "seccomp");
        plan->seccomp_loaded = true;
    }
    return 0;
}

void iso_task_plan_done(struct iso_task_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
}

int iso_task_prepare(const struct iso_spec *s, const struct iso_task_plan *plan,
                     int (*enter_userns)(void *arg, struct berr **err), void *arg,
                     struct berr **err)
{
    const struct iso_user *u = &plan->user;
    /* rlimits first: raising a hard limit needs CAP_SYS_RESOURCE in the host's namespace */
    if (task_rlimits(s, err) < 0)
        return berr_wrap(err, "rlimits");
    /* then the user namespace: from here on every capability is one inside it, over
     * nothing of the host's (its mount, pid and net namespaces belong to the host's) */
    if (s->userns_base && (!enter_userns || enter_userns(arg, err) < 0))
        return berr_wrap(err, "user namespace");
    struct iso_user mapped = *u;
    if (s->userns_base) { /* groups outside the namespace's range cannot be set in it */
        mapped.n_groups = 0;
        for (int i = 0; i < u->n_groups; i++)
            if (u->groups[i] < ISO_USERNS_SIZE)
                mapped.groups[mapped.n_groups++] = u->groups[i];
        u = &mapped;
    }
    if ((s->flags & ISO_CAPS) && !plan->caps_bounded && caps_drop_bounding(plan->last_cap, err) < 0)
        return berr_wrap(err, "capabilities");
    if (task_user(u, err) < 0)
        return berr_wrap(err, "user");
    if ((s->flags & ISO_CAPS) && caps_set_final(u->uid == 0, err) < 0)
        return berr_wrap(err, "capabilities");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return berr_set(err, errno, "set no_new_privs");
    /* The exec error pipe is CLOEXEC already; this catches anything inherited by mistake. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        return berr_set(err, errno, "mark fds close-on-exec");
    if ((s->flags & ISO_SECCOMP) && !plan->seccomp_loaded &&
        iso_seccomp_install(plan->seccomp, err) < 0)
        return berr_wrap(err, "seccomp");
    return 0;
}
