/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/cgroup_devices_test.c - the v2 device program (cgroups/devices on cgroup2 is an
 * eBPF program, not a file): each rule's accesses run through a tiny interpreter of the eBPF
 * subset it uses, and an apply against a fake tree must fail rather than skip the filter.
 * Split from cgroup_test.c (no test file over 600 lines). */
#include <linux/bpf.h>
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "tests/unit/cgroup-fake.h"

/* ---- the v2 device program, run by a tiny interpreter of the eBPF subset it uses -------- */

/* Run prog on one access as the kernel would (struct bpf_cgroup_dev_ctx); returns r0, or -1
 * for an instruction outside the subset, a jump out of range or no exit. */
static int bpf_run(const struct bpf_insn *prog, int len, unsigned type, unsigned access,
                   unsigned major, unsigned minor)
{
    const uint32_t ctx[3] = {(access << 16) | type, major, minor};
    uint64_t r[11] = {0};
    bool r1_is_ctx = true;
    for (int pc = 0, steps = 0; pc >= 0 && pc < len && steps < 1000; pc++, steps++) {
        const struct bpf_insn *i = &prog[pc];
        uint64_t k = (uint64_t) (int64_t) i->imm;
        switch (i->code) {
        case BPF_LDX | BPF_W | BPF_MEM:
            if (i->src_reg != BPF_REG_1 || !r1_is_ctx || i->off < 0 || i->off > 8 || i->off % 4)
                return -1;
            r[i->dst_reg] = ctx[i->off / 4];
            break;
        case BPF_ALU | BPF_AND | BPF_K:
            r[i->dst_reg] = (uint32_t) (r[i->dst_reg] & k);
            break;
        case BPF_ALU | BPF_RSH | BPF_K:
            r[i->dst_reg] = (uint32_t) r[i->dst_reg] >> i->imm;
            break;
        case BPF_ALU | BPF_MOV | BPF_X:
            r[i->dst_reg] = (uint32_t) r[i->src_reg];
            break;
        case BPF_ALU64 | BPF_MOV | BPF_K:
            r[i->dst_reg] = k;
            break;
        case BPF_JMP | BPF_JNE | BPF_K:
            if (i->off < 0)
                return -1; /* forward only: the verifier refuses loops */
            if (r[i->dst_reg] != k)
                pc += i->off;
            break;
        case BPF_JMP | BPF_EXIT:
            return (int) r[BPF_REG_0];
        default:
            return -1;
        }
        if (i->dst_reg == BPF_REG_1)
            r1_is_ctx = false;
    }
    return -1;
}

static void test_v2_device_program(void **state)
{
    (void) state;
    struct bpf_insn prog[128];
    int len = cg2_devices_program(prog, ARRAY_SIZE(prog));
    assert_true(len > 10 && len < 128);
    assert_int_equal(cg2_devices_program(prog, 5), -ENOSPC);
    len = cg2_devices_program(prog, ARRAY_SIZE(prog));
    const unsigned C = BPF_DEVCG_DEV_CHAR, B = BPF_DEVCG_DEV_BLOCK;
    const unsigned R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE, M = BPF_DEVCG_ACC_MKNOD;
    const struct {
        unsigned type, access, major, minor;
        int allow;
    } cases[] = {
            /* the sandbox's /dev, as v1's devices.allow list: rwm */
            {C, R | W, 1, 3, 1},
            {C, R | W | M, 1, 3, 1},
            {C, R, 1, 5, 1},
            {C, W, 1, 7, 1},
            {C, R, 1, 8, 1},
            {C, R, 1, 9, 1},
            {C, R | W, 5, 0, 1},
            {C, R | W, 5, 2, 1},
            {C, R | W, 136, 0, 1},
            {C, R | W, 136, 7, 1},
            /* mknod of anything is allowed, opening it is not */
            {B, M, 254, 0, 1},
            {C, M, 1, 1, 1},
            {B, R, 254, 0, 0},
            {B, W, 254, 0, 0},
            {B, R | W | M, 8, 0, 0},
            {B, R, 7, 0, 0},
            /* near misses: other type, major or minor */
            {B, R, 1, 3, 0},
            {C, R, 1, 1, 0},
            {C, R, 1, 2, 0},
            {C, R, 1, 4, 0},
            {C, R | W, 5, 1, 0},
            {C, R, 4, 1, 0},
            {C, R, 10, 200, 0},
            {C, R, 137, 0, 0},
            {C, R, 3, 3, 0},
            {C, R, 0, 0, 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int got =
                bpf_run(prog, len, cases[i].type, cases[i].access, cases[i].major, cases[i].minor);
        if (got != cases[i].allow)
            fail_msg("%c %u:%u access %u: program returned %d, want %d",
                     cases[i].type == B ? 'b' : 'c', cases[i].major, cases[i].minor,
                     cases[i].access, got, cases[i].allow);
    }
}

/* cgroups/devices on v2 attaches a BPF program, which needs a real cgroup2 directory (and
 * root): against a fake tree apply must fail and say so, never skip the filter silently. */
static void test_v2_devices_need_a_real_cgroup(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v2_tree();
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_host *h = NULL;
    assert_int_equal(iso_host_open(t, "berth", ALL_CG, "0::/x\n", &h, &err), 0);
    struct iso_cgroup *cg = NULL;
    assert_int_equal(iso_cgroup_create(h, "c", &cg, &err), 0);
    populate(&layouts[1], t, "c");
    struct iso_limits l = {.cpus_millis = 1000, .mem_bytes = GIB};
    assert_true(iso_cgroup_apply(cg, &l, &err) < 0);
    assert_true(strncmp(berr_msg(err), "device filter: ", 15) == 0);
    assert_string_equal(get(t, "x/berth/c/memory.max"), "1073741824"); /* limits came first */
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_v2_device_program),
            cmocka_unit_test(test_v2_devices_need_a_real_cgroup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
