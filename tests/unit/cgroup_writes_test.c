/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/cgroup_writes_test.c - the syscalls of a v1 launch's cgroup set-up (issue #18):
 * the host's optional memory files looked up once at iso_host_open, never per launch; one
 * fd per limit file (write, then read back through it), a value a fresh cgroup holds only
 * read, memsw not read before the limit, devices.allow one fd and one write per rule; and
 * the same values and errors as before. The fake tree is cgroup-fake.h's; in front of it a
 * fake kernel: this binary's own openat, write, pread, read, faccessat and close take the
 * place of libc's for the library it links (a static archive), so every call the cgroup code
 * makes is seen per file, and can be refused or rounded as cgroupfs would. */
/* cmocka.h needs these four first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */
#include <sys/syscall.h>

#include "tests/unit/cgroup-fake.h"

/* ---- the fake kernel's syscalls ---------------------------------------------------------- */

#define MAX_FD 1024
#define MAX_CALLS 1024

struct call {
    char op; /* 'o'pen, 'w'rite, 'p'read, 'r'ead, 'a'ccess */
    char file[64];
    char data[64]; /* what a write wrote */
    int flags;     /* of an open */
};

static struct {
    bool on; /* record calls */
    struct call calls[MAX_CALLS];
    size_t n;
    char path[MAX_FD][4096]; /* what our openat opened on each fd */
    unsigned writes[MAX_FD]; /* write()s on the fd so far */
    bool trunc[MAX_FD];      /* O_TRUNC asked: done at the first write the kernel takes */
    /* faults */
    const char *rdwr_denied; /* O_RDWR on this file: EACCES (writable, not readable) */
    const char *fail_file;   /* the fail_nth write() (1-based) of one open fails fail_errno */
    unsigned fail_nth;
    int fail_errno;
    bool memsw_rule;        /* memory.limit_in_bytes above memsw: EINVAL, as the kernel */
    const char *round_file; /* a write here stores round_to instead (pages) */
    const char *round_to;
} fk;

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void note(char op, int fd_or_dir, const char *file, const void *data, size_t len, int fl)
{
    (void) fd_or_dir;
    if (!fk.on || fk.n == MAX_CALLS)
        return;
    struct call *c = &fk.calls[fk.n++];
    c->op = op;
    snprintf(c->file, sizeof(c->file), "%s", base(file));
    snprintf(c->data, sizeof(c->data), "%.*s", (int) (len < 63 ? len : 63), (const char *) data);
    c->flags = fl;
}

static bool named(int fd)
{
    return fd >= 0 && fd < MAX_FD && fk.path[fd][0];
}

int openat(int dirfd, const char *file, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t) va_arg(ap, int);
        va_end(ap);
    }
    note('o', dirfd, file, "", 0, flags);
    if (fk.rdwr_denied && (flags & O_ACCMODE) == O_RDWR && streq(base(file), fk.rdwr_denied)) {
        errno = EACCES;
        return -1;
    }
    /* cgroupfs ignores O_TRUNC and keeps a value it refuses: a plain file is emptied only
     * by a write the fake kernel takes */
    int fd = (int) syscall(SYS_openat, dirfd, file, flags & ~O_TRUNC, mode);
    if (fd >= 0 && fd < MAX_FD) {
        fk.trunc[fd] = flags & O_TRUNC;
        char link[64];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t l = readlink(link, fk.path[fd], sizeof(fk.path[fd]) - 1);
        fk.path[fd][l > 0 ? l : 0] = 0;
        fk.writes[fd] = 0;
    }
    return fd;
}

int close(int fd)
{
    if (fd >= 0 && fd < MAX_FD)
        fk.path[fd][0] = 0;
    return (int) syscall(SYS_close, fd);
}

/* A number from path, read with raw syscalls (not through the hooks). */
static uint64_t raw_u64(const char *path)
{
    char buf[64] = {0};
    int fd = (int) syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_true(syscall(SYS_read, fd, buf, sizeof(buf) - 1) >= 0);
    syscall(SYS_close, fd);
    return strtoull(buf, NULL, 10);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (!named(fd))
        return syscall(SYS_write, fd, buf, n);
    const char *file = base(fk.path[fd]);
    note('w', fd, file, buf, n, 0);
    fk.writes[fd]++;
    if (fk.fail_file && streq(file, fk.fail_file) && fk.writes[fd] == fk.fail_nth) {
        errno = fk.fail_errno;
        return -1;
    }
    char v[64];
    snprintf(v, sizeof(v), "%.*s", (int) (n < 63 ? n : 63), (const char *) buf);
    if (fk.memsw_rule && streq(file, "memory.limit_in_bytes")) {
        char sw[4200];
        snprintf(sw, sizeof(sw), "%.*s/memory.memsw.limit_in_bytes",
                 (int) (strlen(fk.path[fd]) - strlen(file) - 1), fk.path[fd]);
        if (strtoull(v, NULL, 10) > raw_u64(sw)) {
            errno = EINVAL;
            return -1;
        }
    }
    if (fk.trunc[fd] && syscall(SYS_ftruncate, fd, 0) < 0)
        return -1;
    fk.trunc[fd] = false;
    if (fk.round_file && streq(file, fk.round_file)) {
        ssize_t r = syscall(SYS_write, fd, fk.round_to, strlen(fk.round_to));
        return r < 0 ? r : (ssize_t) n;
    }
    return syscall(SYS_write, fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    if (named(fd))
        note('p', fd, fk.path[fd], "", 0, 0);
    return syscall(SYS_pread64, fd, buf, n, off);
}

ssize_t read(int fd, void *buf, size_t n)
{
    if (named(fd))
        note('r', fd, fk.path[fd], "", 0, 0);
    return syscall(SYS_read, fd, buf, n);
}

int faccessat(int dirfd, const char *file, int mode, int flags)
{
    note('a', dirfd, file, "", 0, 0);
    assert_int_equal(flags, 0);
    return (int) syscall(SYS_faccessat, dirfd, file, mode);
}

/* ---- what the calls were ----------------------------------------------------------------- */

static void trace_start(void)
{
    fk.n = 0;
    fk.on = true;
}

/* Calls of op on file (NULL: any file) since trace_start. */
static size_t count(char op, const char *file)
{
    size_t n = 0;
    for (size_t i = 0; i < fk.n; i++)
        n += fk.calls[i].op == op && (!file || streq(fk.calls[i].file, file));
    return n;
}

/* The files opened, with their access mode, in order: "r:cpu.cfs_period_us w+r:cpu.shares". */
static const char *opens(void)
{
    static char buf[2048];
    buf[0] = 0;
    for (size_t i = 0; i < fk.n; i++) {
        const struct call *c = &fk.calls[i];
        if (c->op != 'o' || (c->flags & O_DIRECTORY))
            continue;
        int m = c->flags & O_ACCMODE;
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof(buf) - l, "%s%s:%s", l ? " " : "",
                 m == O_RDWR     ? "w+r"
                 : m == O_WRONLY ? "w"
                                 : "r",
                 c->file);
    }
    return buf;
}

/* The data of each write to file, in order, joined by '|'. */
static const char *writes(const char *file)
{
    static char buf[2048];
    buf[0] = 0;
    for (size_t i = 0; i < fk.n; i++)
        if (fk.calls[i].op == 'w' && streq(fk.calls[i].file, file)) {
            size_t l = strlen(buf);
            snprintf(buf + l, sizeof(buf) - l, "%s%s", l ? "|" : "", fk.calls[i].data);
        }
    return buf;
}

/* The first memory file opened since trace_start. */
static const char *first_memory_open(void)
{
    for (size_t i = 0; i < fk.n; i++)
        if (fk.calls[i].op == 'o' && str_has_prefix(fk.calls[i].file, "memory."))
            return fk.calls[i].file;
    return "<none>";
}

static const struct layout *const V1 = &layouts[0];

static struct iso_cgroup *launch(struct iso_host *h, const char *t, const char *name,
                                 const struct iso_limits *l)
{
    struct iso_cgroup *cg = ctr_create(V1, h, t, name, true);
    _cleanup_berr_ struct berr *err = NULL;
    if (iso_cgroup_apply(cg, l, &err) < 0)
        fail_msg("apply '%s': %s", name, berr_msg(err));
    return cg;
}

static int setup(void **state)
{
    (void) state;
    memset(&fk, 0, sizeof(fk));
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

/* The memory files a host has are looked up once, at iso_host_open, on the parent. */
static void test_probe_once(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree();
    host_files(V1, t);
    trace_start();
    struct iso_host *h = host_open(V1, t, "berth");
    assert_int_equal(count('a', "memory.memsw.limit_in_bytes"), 1);
    assert_int_equal(count('a', "memory.swappiness"), 1);
    struct iso_limits l = {.mem_bytes = GIB};
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "c%d", i);
        trace_start();
        struct iso_cgroup *cg = launch(h, t, name, &l);
        assert_int_equal(count('a', NULL), 0); /* no per-launch look-up */
        assert_string_equal(value_of(cg, "memory.memsw.limit_in_bytes"), "1073741824");
        assert_string_equal(getc_(V1, t, name, "memory.memsw.limit_in_bytes"), "1073741824");
        assert_string_equal(getc_(V1, t, name, "memory.swappiness"), "0");
        iso_cgroup_free(cg);
    }
    fk.on = false;
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* A host without swap accounting: memsw is never opened, even where a container has it. */
static void test_host_without_memsw(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree(); /* no host_files: the parent has neither file */
    struct iso_host *h = host_open(V1, t, "berth");
    struct iso_limits l = {.mem_bytes = GIB, .pids_max = 64};
    trace_start();
    struct iso_cgroup *cg = launch(h, t, "c", &l);
    assert_int_equal(count('o', "memory.memsw.limit_in_bytes"), 0);
    assert_int_equal(count('o', "memory.swappiness"), 0);
    assert_int_equal(count('a', NULL), 0);
    assert_string_equal(getc_(V1, t, "c", "memory.memsw.limit_in_bytes"), "9223372036854771712");
    assert_string_equal(getc_(V1, t, "c", "memory.swappiness"), "60");
    assert_string_equal(value_of(cg, "memory.memsw.limit_in_bytes"), "<none>");
    assert_string_equal(value_of(cg, "memory.limit_in_bytes"), "1073741824");
    assert_string_equal(value_of(cg, "pids.max"), "64");
    fk.on = false;
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* One fd per file, the read-back through it; the kernel's value (rounded) is what is
 * reported; values a fresh cgroup holds are read, not written; devices one fd. */
static void test_one_fd_per_file(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree();
    host_files(V1, t);
    struct iso_host *h = host_open(V1, t, "berth");
    fk.round_file = "memory.limit_in_bytes"; /* the kernel keeps whole pages */
    fk.round_to = "1073741824\n";
    struct iso_limits l = {.cpus_millis = 2000, .cpu_limit_millis = 2000, .mem_bytes = GIB + 1};
    trace_start();
    struct iso_cgroup *cg = launch(h, t, "c", &l);
    fk.on = false;
    assert_string_equal(opens(), "r:cpu.cfs_period_us w+r:cpu.cfs_quota_us w+r:cpu.shares "
                                 "w+r:memory.limit_in_bytes w+r:memory.memsw.limit_in_bytes "
                                 "w+r:memory.swappiness r:pids.max w:devices.deny "
                                 "w:devices.allow");
    assert_int_equal(count('w', NULL), 16); /* 5 limits, deny, 10 allow rules */
    assert_int_equal(count('p', NULL), 7);  /* one read-back per limit file */
    assert_int_equal(count('r', NULL), 0);
    assert_int_equal(count('a', NULL), 0);
    assert_string_equal(writes("cpu.cfs_period_us"), "");
    assert_string_equal(writes("pids.max"), "");
    assert_string_equal(writes("memory.limit_in_bytes"), "1073741825");
    assert_string_equal(writes("devices.deny"), "a");
    assert_string_equal(writes("devices.allow"), "c 1:3 rwm|c 1:5 rwm|c 1:7 rwm|c 1:8 rwm|"
                                                 "c 1:9 rwm|c 5:0 rwm|c 5:2 rwm|c 136:* rwm|"
                                                 "c *:* m|b *:* m");
    /* reported: what the files hold, as read back */
    assert_string_equal(value_of(cg, "memory.limit_in_bytes"), "1073741824");
    assert_string_equal(value_of(cg, "cpu.cfs_period_us"), "100000");
    assert_string_equal(value_of(cg, "cpu.cfs_quota_us"), "200000");
    assert_string_equal(value_of(cg, "cpu.shares"), "2048");
    assert_string_equal(value_of(cg, "pids.max"), "max");
    assert_string_equal(value_of(cg, "memory.swappiness"), "0");
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* A file not holding the fresh value is written: read, then written and read back. */
static void test_written_when_different(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree();
    struct iso_host *h = host_open(V1, t, "berth");
    struct iso_cgroup *cg = ctr_create(V1, h, t, "c", true);
    putc_(V1, t, "c", "cpu.cfs_period_us", "50000\n");
    putc_(V1, t, "c", "cpu.cfs_quota_us", "300000\n");
    putc_(V1, t, "c", "cpu.shares", "2\n");
    putc_(V1, t, "c", "pids.max", "64\n");
    struct iso_limits l = {.cpus_millis = 1000}; /* quota -1, shares 1024, pids max */
    _cleanup_berr_ struct berr *err = NULL;
    trace_start();
    assert_int_equal(iso_cgroup_apply(cg, &l, &err), 0);
    fk.on = false;
    static const char *const files[][2] = {{"cpu.cfs_period_us", "100000"},
                                           {"cpu.cfs_quota_us", "-1"},
                                           {"cpu.shares", "1024"},
                                           {"pids.max", "max"}};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        assert_string_equal(writes(files[i][0]), files[i][1]);
        assert_string_equal(getc_(V1, t, "c", files[i][0]), files[i][1]);
        assert_string_equal(value_of(cg, files[i][0]), files[i][1]);
        assert_int_equal(count('p', files[i][0]), 2); /* the look, the read-back */
    }
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* limit <= memsw at every step, without reading memsw first: raising above memsw is
 * refused (EINVAL), then memsw goes first; the errors name the file that failed. */
static void test_memsw_order(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree();
    host_files(V1, t);
    struct iso_host *h = host_open(V1, t, "berth");
    struct iso_cgroup *cg = ctr_create(V1, h, t, "c", true);
    putc_(V1, t, "c", "memory.limit_in_bytes", "536870912\n");
    putc_(V1, t, "c", "memory.memsw.limit_in_bytes", "536870912\n");
    fk.memsw_rule = true;
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_limits up = {.mem_bytes = GIB}, down = {.mem_bytes = GIB / 4};
    trace_start();
    assert_int_equal(iso_cgroup_apply(cg, &up, &err), 0);
    assert_string_equal(writes("memory.limit_in_bytes"), "1073741824|1073741824");
    assert_int_equal(count('o', "memory.memsw.limit_in_bytes"), 1); /* written, never read */
    assert_string_equal(first_memory_open(), "memory.limit_in_bytes");
    assert_string_equal(getc_(V1, t, "c", "memory.memsw.limit_in_bytes"), "1073741824");
    assert_string_equal(getc_(V1, t, "c", "memory.limit_in_bytes"), "1073741824");
    assert_string_equal(value_of(cg, "memory.limit_in_bytes"), "1073741824");
    assert_string_equal(value_of(cg, "memory.memsw.limit_in_bytes"), "1073741824");
    const struct iso_cg_value *v;
    size_t n = iso_cgroup_values(cg, &v);
    for (size_t i = 0; i + 1 < n; i++) /* recorded as written: memsw first */
        if (str_has_prefix(v[i].file, "memory.memsw"))
            assert_string_equal(v[i + 1].file, "memory.limit_in_bytes");
    /* lowering: the limit first, one write each */
    trace_start();
    assert_int_equal(iso_cgroup_apply(cg, &down, &err), 0);
    assert_string_equal(writes("memory.limit_in_bytes"), "268435456");
    assert_string_equal(writes("memory.memsw.limit_in_bytes"), "268435456");
    assert_string_equal(first_memory_open(), "memory.limit_in_bytes");
    assert_int_equal(count('o', "memory.memsw.limit_in_bytes"), 1);
    /* raising, memsw refused: its error, and the limit left alone */
    fk.fail_file = "memory.memsw.limit_in_bytes";
    fk.fail_nth = 1;
    fk.fail_errno = EBUSY;
    assert_int_equal(iso_cgroup_apply(cg, &up, &err), -EBUSY);
    assert_string_equal(berr_msg(err), "write 'memory.memsw.limit_in_bytes' = '1073741824': "
                                       "Device or resource busy");
    berr_free(&err);
    assert_string_equal(getc_(V1, t, "c", "memory.limit_in_bytes"), "268435456");
    /* the limit refused otherwise (EBUSY: the usage is above it): its error, no memsw */
    fk.fail_file = "memory.limit_in_bytes";
    trace_start();
    assert_int_equal(iso_cgroup_apply(cg, &down, &err), -EBUSY);
    assert_string_equal(berr_msg(err), "write 'memory.limit_in_bytes' = '268435456': "
                                       "Device or resource busy");
    assert_int_equal(count('o', "memory.memsw.limit_in_bytes"), 0);
    fk.on = false;
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

/* Errors name the file and value as before; a file we may write but not read is written
 * and read back through two opens. */
static void test_errors_and_fallback(void **state)
{
    (void) state;
    _cleanup_free_ char *t = v1_tree();
    host_files(V1, t);
    struct iso_host *h = host_open(V1, t, "berth");
    _cleanup_berr_ struct berr *err = NULL;
    struct iso_limits l = {.cpus_millis = 500, .mem_bytes = GIB};
    struct iso_cgroup *cg = ctr_create(V1, h, t, "c", true);
    fk.fail_file = "devices.allow";
    fk.fail_nth = 3;
    fk.fail_errno = EINVAL;
    assert_int_equal(iso_cgroup_apply(cg, &l, &err), -EINVAL);
    assert_string_equal(berr_msg(err), "write 'devices.allow' = 'c 1:7 rwm': Invalid argument");
    berr_free(&err);
    fk.fail_file = NULL;
    char *allow = v1_path("c", "devices.allow");
    char *p = xasprintf("%s/%s", t, allow);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(iso_cgroup_apply(cg, &l, &err), -ENOENT);
    assert_string_equal(berr_msg(err),
                        "write 'devices.allow' = 'c 1:3 rwm': No such file or directory");
    berr_free(&err);
    put(t, allow, "");
    free(p);
    free(allow);

    fk.rdwr_denied = "cpu.shares";
    fk.round_file = "cpu.shares"; /* what is reported is still read from the file */
    fk.round_to = "510\n";
    trace_start();
    assert_int_equal(iso_cgroup_apply(cg, &l, &err), 0);
    fk.on = false;
    assert_non_null(strstr(opens(), "w+r:cpu.shares w:cpu.shares r:cpu.shares w+r:memory"));
    assert_string_equal(writes("cpu.shares"), "512");
    assert_string_equal(value_of(cg, "cpu.shares"), "510");
    /* swappiness is optional: refused, the launch goes on */
    fk.fail_file = "memory.swappiness";
    fk.fail_nth = 1;
    fk.fail_errno = EINVAL;
    assert_int_equal(iso_cgroup_apply(cg, &l, &err), 0);
    iso_cgroup_free(cg);
    iso_host_free(h);
    assert_int_equal(rm_rf(t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup(test_probe_once, setup),
            cmocka_unit_test_setup(test_host_without_memsw, setup),
            cmocka_unit_test_setup(test_one_fd_per_file, setup),
            cmocka_unit_test_setup(test_written_when_different, setup),
            cmocka_unit_test_setup(test_memsw_order, setup),
            cmocka_unit_test_setup(test_errors_and_fallback, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
