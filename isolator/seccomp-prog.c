/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/seccomp-prog.c - the task's seccomp deny-list as the BPF program compiled when
 * berth was built ($(B)/gen/isolator/seccomp-bpf.h, from seccomp.c by isolator/gen/
 * seccomp-bpf.c, with the same libseccomp the static executor linked before), and its
 * load. The filter has no per-task part: compiling it in every executor cost each launch
 * ~0.4 ms of CPU and libseccomp's heap (issue #18). */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "isolator/isolator.h"
#include "isolator/seccomp-bpf.h"

const struct iso_bpf iso_seccomp_prog = {
        .insns = (void *) seccomp_insns, /* the kernel only reads it */
        .len = ARRAY_SIZE(seccomp_insns),
};

/* Load prog into the calling thread: one system call, no allocation. */
int iso_seccomp_install(const struct iso_bpf *prog, struct berr **err)
{
    struct sock_fprog fp = {.len = prog->len, .filter = prog->insns};
    if (!prog->insns || !prog->len)
        return berr_setx(err, EINVAL, "no seccomp filter was built");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
        return berr_set(err, errno, "load seccomp filter");
    return 0;
}
