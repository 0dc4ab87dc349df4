/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/seccomp.c - the task's seccomp deny-list with libseccomp: default allow, EPERM
 * for syscalls that reach the host kernel's global state (modules, kexec, mounts, keys,
 * bpf, clocks, new user namespaces). Compiled to BPF when berth is built (isolator/gen/
 * seccomp-bpf.c runs iso_seccomp_build); the executor embeds the program (seccomp-prog.c)
 * and links no libseccomp; task.c loads it last, after no_new_privs. */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>

#include "isolator/isolator.h"

/* Denied with EPERM. ptrace is allowed on purpose: tasks debug their own processes inside
 * the pid namespace, and the executor is protected by the dropped CAP_SYS_PTRACE plus its
 * PR_SET_DUMPABLE=0. Names unknown to this libseccomp/arch are skipped. */
static const char *const filter_denied[] = {
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "acct",
        "quotactl",
        "quotactl_fd",
        "lookup_dcookie",
        "open_by_handle_at",
        "name_to_handle_at",
        "mount",
        "umount",
        "umount2",
        "pivot_root",
        "mount_setattr",
        "move_mount",
        "open_tree",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "setns",
        "iopl",
        "ioperm",
        "settimeofday",
        "stime",
        "clock_settime",
        "clock_settime64",
        "clock_adjtime",
        "clock_adjtime64",
        "adjtimex",
        "syslog",
        "userfaultfd",
        /* io_uring: a large kernel attack surface that bypasses this filter's view of
         * syscalls (docker denies it by default since 2023) */
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "vhangup",
        "nfsservctl",
        "uselib",
        "kcmp",
};

static int filter_add(scmp_filter_ctx ctx, const char *name, uint32_t action, unsigned n_args,
                      const struct scmp_arg_cmp *args, struct berr **err)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0;
    int r = seccomp_rule_add_array(ctx, action, nr, n_args, args);
    if (r < 0 && r != -EDOM) /* -EDOM: not representable on one of the arches */
        return berr_set(err, -r, "seccomp rule for '%s'", name);
    return 0;
}

/* Build the filter and export its BPF. On x86_64 the i386 ABI gets the same rules, so
 * int 0x80 is no way around them. Returns 0 or -errno with err set. */
int iso_seccomp_build(struct iso_bpf *ret, struct berr **err)
{
    memset(ret, 0, sizeof(*ret));
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return berr_set(err, ENOMEM, "seccomp init");
    int r, fd = -1;
    /* a binary tree of syscall numbers, not a list in priority order: the kernel runs the
     * filter for each syscall number once when it is loaded (its per-syscall cache), then on
     * every syscall the cache does not settle; ~10 instructions each instead of ~60 */
    if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0) {
        r = berr_set(err, -r, "seccomp binary tree");
        goto out;
    }
#if defined(__x86_64__)
    r = seccomp_arch_add(ctx, SCMP_ARCH_X86);
    if (r < 0 && r != -EEXIST) {
        r = berr_set(err, -r, "seccomp add arch x86");
        goto out;
    }
#endif
    for (size_t i = 0; i < ARRAY_SIZE(filter_denied); i++) {
        r = filter_add(ctx, filter_denied[i], SCMP_ACT_ERRNO(EPERM), 0, NULL, err);
        if (r < 0)
            goto out;
    }
    /* New user namespaces would give the task a fresh full capability set to attack the
     * kernel with. clone3 passes flags in memory, which seccomp cannot read: answer ENOSYS
     * so glibc falls back to clone(2), whose flags we can check. */
    const struct scmp_arg_cmp newuser_a0 =
            SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER);
#if defined(__s390__) || defined(__s390x__)
    const struct scmp_arg_cmp clone_flags =
            SCMP_A1(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER);
#else
    const struct scmp_arg_cmp clone_flags = newuser_a0;
#endif
    if ((r = filter_add(ctx, "unshare", SCMP_ACT_ERRNO(EPERM), 1, &newuser_a0, err)) < 0 ||
        (r = filter_add(ctx, "clone", SCMP_ACT_ERRNO(EPERM), 1, &clone_flags, err)) < 0 ||
        (r = filter_add(ctx, "clone3", SCMP_ACT_ERRNO(ENOSYS), 0, NULL, err)) < 0)
        goto out;
    /* libseccomp 2.5 exports only to an fd */
    fd = memfd_create("berth-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        r = berr_set(err, errno, "memfd_create");
        goto out;
    }
    if ((r = seccomp_export_bpf(ctx, fd)) < 0) {
        r = berr_set(err, -r, "export the seccomp filter");
        goto out;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % (off_t) sizeof(struct sock_filter) ||
        size / (off_t) sizeof(struct sock_filter) > BPF_MAXINSNS) {
        r = berr_setx(err, EINVAL, "the exported seccomp filter has %lld bytes", (long long) size);
        goto out;
    }
    ret->insns = xmalloc((size_t) size);
    if (pread(fd, ret->insns, (size_t) size, 0) != (ssize_t) size) {
        r = berr_set(err, errno ? errno : EIO, "read the exported seccomp filter");
        free(ret->insns);
        ret->insns = NULL;
        goto out;
    }
    ret->len = (unsigned short) (size / (off_t) sizeof(struct sock_filter));
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return r < 0 ? r : 0;
}
