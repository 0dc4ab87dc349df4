/* SPDX-License-Identifier: Apache-2.0 */
/* isolator/cgroup-v2-devices.c - device access on cgroup v2: v2 has no devices controller, so
 * a BPF_PROG_TYPE_CGROUP_DEVICE program, assembled here by hand and loaded with the raw bpf()
 * syscall (as crun's src/libcrun/ebpf.c and systemd do; libbpf is not a dependency), is
 * attached to each container's cgroup. It allows what cgroup-v1.c's devices.allow list
 * allows, no more. cgroup-v2.c calls it from apply; cgroup.c owns the dir fds. */
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>

#include "isolator/cgroup-internal.h"

/* The allow-list, the same as cgroup-v1.c's cg1_devices: the minimal /dev of the sandbox
 * (isolator/mount.c binds null, zero, full, random, urandom and tty, and mounts a private
 * devpts), with read, write and mknod. minor -1 = any. */
static const struct {
    short type; /* BPF_DEVCG_DEV_CHAR / _BLOCK */
    int major, minor;
} cg2_dev_allow[] = {
        {BPF_DEVCG_DEV_CHAR, 1, 3},    /* null */
        {BPF_DEVCG_DEV_CHAR, 1, 5},    /* zero */
        {BPF_DEVCG_DEV_CHAR, 1, 7},    /* full */
        {BPF_DEVCG_DEV_CHAR, 1, 8},    /* random */
        {BPF_DEVCG_DEV_CHAR, 1, 9},    /* urandom */
        {BPF_DEVCG_DEV_CHAR, 5, 0},    /* tty */
        {BPF_DEVCG_DEV_CHAR, 5, 2},    /* ptmx */
        {BPF_DEVCG_DEV_CHAR, 136, -1}, /* pts */
};

static struct bpf_insn cg2_insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    return (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}

/* Append one instruction (the builder is sized for the fixed list above). */
#define EMIT(code, dst, src, off, imm)                                                             \
    do {                                                                                           \
        if (n >= max)                                                                              \
            return -ENOSPC;                                                                        \
        out[n++] = cg2_insn(code, dst, src, off, imm);                                             \
    } while (0)

/* Build the program into out (at most max instructions); returns the count or -ENOSPC.
 *
 * The kernel calls it with r1 = struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 |
 * type); u32 major; u32 minor; } for every open() and mknod() of a device node; r0 = 1
 * allows, 0 denies (EPERM). Layout, as in systemd's and crun's generators: load type (r2),
 * access (r3), major (r4), minor (r5); then one block per rule, "if any field differs jump
 * over the block, else return 1"; finally return 0. The first block allows any mknod that
 * asks for nothing else ("c *:* m" and "b *:* m" on v1): creating a node is harmless when
 * opening it is denied, and tools that mknod keep working. */
int cg2_devices_program(struct bpf_insn *out, size_t max)
{
    size_t n = 0;
    EMIT(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0);
    EMIT(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xFFFF);
    EMIT(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_3, BPF_REG_1, 0, 0);
    EMIT(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
    EMIT(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0);
    EMIT(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0);

    /* if ((access & (READ | WRITE)) == 0) return 1; */
    EMIT(BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
    EMIT(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE);
    EMIT(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, 2, 0);
    EMIT(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
    EMIT(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);

    /* if (type == T && major == M && (minor == N || N == any)) return 1; all access kinds
     * (rwm) are allowed for these, so access needs no test */
    for (size_t i = 0; i < ARRAY_SIZE(cg2_dev_allow); i++) {
        bool any_minor = cg2_dev_allow[i].minor < 0;
        int16_t skip = any_minor ? 3 : 4; /* to the instruction after this block's exit */
        EMIT(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, skip--, cg2_dev_allow[i].type);
        EMIT(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, skip--, cg2_dev_allow[i].major);
        if (!any_minor)
            EMIT(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, skip--, cg2_dev_allow[i].minor);
        EMIT(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
        EMIT(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }
    EMIT(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
    EMIT(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    return (int) n;
}
#undef EMIT

static int cg2_bpf(int cmd, union bpf_attr *attr)
{
    return (int) syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

/* Load the device program and attach it to the cgroup dirfd. BPF_F_ALLOW_MULTI, as systemd
 * attaches its own: the kernel then runs every program of the cgroup and its ancestors and
 * allows an access only when all allow, so a host policy above our parent (a unit's
 * DevicePolicy=) still applies, and we can only narrow it. The attachment holds the program;
 * our fd is closed on return and the program goes away with the cgroup (rmdir). Needs
 * CAP_SYS_ADMIN (or CAP_BPF); the verifier's log is returned in err when it refuses. */
int cg2_devices_attach(int dirfd, struct berr **err)
{
    struct bpf_insn prog[128];
    int len = cg2_devices_program(prog, ARRAY_SIZE(prog));
    if (len < 0)
        return berr_set(err, -len, "build device program");
    char log[1024] = "";
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (uint64_t) (uintptr_t) prog;
    attr.insn_cnt = (uint32_t) len;
    attr.license = (uint64_t) (uintptr_t) "GPL";
    attr.log_buf = (uint64_t) (uintptr_t) log;
    attr.log_size = sizeof(log);
    attr.log_level = 1;
    _cleanup_close_ int pfd = cg2_bpf(BPF_PROG_LOAD, &attr);
    if (pfd < 0 && errno == ENOSPC) { /* the log did not fit: retry without it */
        attr.log_buf = 0;
        attr.log_size = 0;
        attr.log_level = 0;
        pfd = cg2_bpf(BPF_PROG_LOAD, &attr);
    }
    if (pfd < 0) {
        log[strcspn(log, "\n")] = 0;
        return berr_set(err, errno, "load BPF device program%s%s", log[0] ? ": " : "", log);
    }
    /* The kernel's fds are born close-on-exec (bpf(2) sets O_CLOEXEC on every fd it makes). */
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = (uint32_t) dirfd;
    attr.attach_bpf_fd = (uint32_t) pfd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (cg2_bpf(BPF_PROG_ATTACH, &attr) < 0)
        return berr_set(err, errno, "attach BPF device program");
    return 0;
}

/* Number of BPF device programs attached to dirfd itself (BPF_PROG_QUERY), or -errno. */
int cg2_devices_attached(int dirfd)
{
    uint32_t ids[8];
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = (uint32_t) dirfd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = (uint64_t) (uintptr_t) ids;
    attr.query.prog_cnt = ARRAY_SIZE(ids);
    if (cg2_bpf(BPF_PROG_QUERY, &attr) < 0)
        return -errno;
    return (int) attr.query.prog_cnt;
}
