/* SPDX-License-Identifier: Apache-2.0 */
/* tests/helpers/probe.c - a task for the system tests: it runs inside a berth sandbox and
 * reports what it sees or what the kernel let it do, as `key=value` lines on stdout.
 * Static and unsanitised so it runs in any sandbox; it links nothing of berth. The tests in
 * tests/system/ start it through berthctl / the API and read its output from the sandbox.
 * probe-watch.c holds the modes that watch other processes (ptraceexec, chargefloor). */
#include "tests/helpers/probe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Parse a non-negative decimal; exits 2 on garbage (a usage error of the test). */
uint64_t num(const char *s)
{
    uint64_t v = 0;
    if (!s || !*s) {
        fprintf(stderr, "probe: missing number\n");
        exit(2);
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > UINT64_MAX / 10 - 10) {
            fprintf(stderr, "probe: bad number '%s'\n", s);
            exit(2);
        }
        v = v * 10 + (uint64_t) (*p - '0');
    }
    return v;
}

/* The errno's symbolic name ("EPERM"), or "OK" for 0. */
static const char *ename(int e)
{
    if (e == 0)
        return "OK";
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Sleep for s seconds of wall time, resuming after signals. */
static void sleep_s(double s)
{
    double end = mono_now() + s;
    for (;;) {
        double left = end - mono_now();
        if (left <= 0)
            return;
        struct timespec ts = {(time_t) left, (long) ((left - (double) (time_t) left) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static double spin_until;

static void *spin_thread(void *arg)
{
    volatile uint64_t n = 0;
    (void) arg;
    while (mono_now() < spin_until)
        for (int i = 0; i < 100000; i++)
            n++;
    return NULL;
}

/* spin SECONDS THREADS [HOLD]: busy loop in THREADS threads for SECONDS of wall time, then
 * (with HOLD) stay alive HOLD seconds so /proc/<pid>/stat can be read after the burn. */
static int cmd_spin(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    uint64_t secs = num(argv[0]), threads = num(argv[1]);
    if (threads < 1 || threads > 256)
        return 2;
    printf("pid=%d\nthreads=%llu\n", getpid(), (unsigned long long) threads);
    spin_until = mono_now() + (double) secs;
    pthread_t t[256];
    for (uint64_t i = 1; i < threads; i++)
        pthread_create(&t[i], NULL, spin_thread, NULL);
    spin_thread(NULL);
    for (uint64_t i = 1; i < threads; i++)
        pthread_join(t[i], NULL);
    printf("done=1\n");
    if (argc >= 3) {
        fflush(stdout);
        sleep_s((double) num(argv[2]));
    }
    return 0;
}

/* burn CPU_SECONDS HOLD: one thread busy until the process has used CPU_SECONDS of CPU
 * time (whatever else the host runs), then stay alive HOLD seconds so /proc/<pid>/stat can
 * be read. */
static int cmd_burn(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    double want = (double) num(argv[0]);
    printf("pid=%d\n", getpid());
    volatile uint64_t n = 0;
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        if ((double) ts.tv_sec + (double) ts.tv_nsec / 1e9 >= want)
            break;
        for (int i = 0; i < 100000; i++)
            n++;
    }
    printf("done=1\n");
    fflush(stdout);
    sleep_s((double) num(argv[1]));
    return 0;
}

/* alloc MiB: allocate and touch every page, then sleep 30 s. */
static int cmd_alloc(int argc, char **argv)
{
    if (argc < 1)
        return 2;
    uint64_t mib = num(argv[0]);
    long page = sysconf(_SC_PAGESIZE);
    printf("pid=%d\nwant_mib=%llu\n", getpid(), (unsigned long long) mib);
    /* each MiB is kept (chained through its first bytes) until the process ends: the
     * memory held is the point */
    static void *held;
    for (uint64_t i = 0; i < mib; i++) {
        char *p = malloc(1 << 20);
        if (!p) {
            printf("malloc_failed_at_mib=%llu\n", (unsigned long long) i);
            return 1;
        }
        for (long off = 0; off < (1 << 20); off += page)
            p[off] = 1;
        *(void **) p = held;
        held = p;
    }
    printf("allocated_mib=%llu\n", (unsigned long long) mib);
    sleep_s(30);
    return 0;
}

/* forkbomb: fork until it fails (children sleep), report, then sleep until killed. */
__attribute__((noreturn)) static void cmd_forkbomb(void)
{
    uint64_t forks = 0;
    int first_err = 0;
    printf("pid=%d\n", getpid());
    fflush(stdout);
    for (int tries = 0; tries < 200000; tries++) {
        pid_t p = fork();
        if (p == 0) {
            for (;;)
                pause();
        }
        if (p < 0) {
            first_err = errno;
            break;
        }
        forks++;
    }
    printf("forks=%llu\nfork_errno=%s\n", (unsigned long long) forks, ename(first_err));
    fflush(stdout);
    for (;;)
        pause();
}

/* Run fn in a child process and return the errno it reports (0 = success); the syscall
 * then cannot change the probe itself (namespaces). */
static int in_child(int (*fn)(void))
{
    pid_t p = fork();
    if (p < 0)
        return errno;
    if (p == 0)
        _exit(fn() < 0 ? (errno & 0xff) : 0);
    int st;
    if (waitpid(p, &st, 0) < 0)
        return errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static int do_unshare_user(void)
{
    return unshare(CLONE_NEWUSER);
}

static int do_unshare_mount(void)
{
    return unshare(CLONE_NEWNS);
}

/* Major:minor of the filesystem mounted on "/" (from /proc/self/mountinfo). */
static int root_dev(unsigned *ret_major, unsigned *ret_minor)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -1;
    char line[4096];
    int r = -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned id, parent, ma, mi;
        char root[1024], mnt[1024];
        if (sscanf(line, "%u %u %u:%u %1023s %1023s", &id, &parent, &ma, &mi, root, mnt) != 6)
            continue;
        if (strcmp(mnt, "/") == 0) {
            *ret_major = ma;
            *ret_minor = mi;
            r = 0; /* the last mount on "/" is the visible one */
        }
    }
    fclose(f);
    return r;
}

/* syscalls: try what a sandbox must deny and print the errno name of each. */
static int cmd_syscalls(void)
{
    int e;

    if (mkdir("probe-mnt", 0755) < 0 && errno != EEXIST)
        printf("mkdir_mnt=%s\n", ename(errno));
    e = mount("none", "probe-mnt", "tmpfs", 0, NULL) < 0 ? errno : 0;
    printf("mount=%s\n", ename(e));
    if (e == 0)
        umount2("probe-mnt", MNT_DETACH);
    rmdir("probe-mnt");

    printf("unshare_user=%s\n", ename(in_child(do_unshare_user)));
    printf("unshare_mount=%s\n", ename(in_child(do_unshare_mount)));

    /* CAD_OFF is harmless even if it were allowed */
    e = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF,
                NULL) < 0
                ? errno
                : 0;
    printf("reboot=%s\n", ename(e));

    e = syscall(SYS_init_module, NULL, 0UL, "") < 0 ? errno : 0;
    printf("init_module=%s\n", ename(e));

    unsigned ma = 0, mi = 0;
    if (root_dev(&ma, &mi) == 0) {
        printf("root_dev=%u:%u\n", ma, mi);
        unlink("probe-blk");
        e = mknod("probe-blk", S_IFBLK | 0600, makedev(ma, mi)) < 0 ? errno : 0;
        printf("mknod_blk=%s\n", ename(e));
        if (e == 0) {
            int fd = open("probe-blk", O_RDONLY | O_CLOEXEC);
            printf("open_blk=%s\n", ename(fd < 0 ? errno : 0));
            if (fd >= 0)
                close(fd);
            unlink("probe-blk");
        }
    }

    e = syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0UL) < 0 ? errno : 0;
    printf("kexec_load=%s\n", ename(e));

    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
    printf("bpf=%s\n", ename(fd < 0 ? errno : 0));
    if (fd >= 0)
        close((int) fd);

    /* KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3) */
    e = syscall(SYS_keyctl, 0, -3, 0) < 0 ? errno : 0;
    printf("keyctl=%s\n", ename(e));

    struct perf_event_attr pe;
    memset(&pe, 0, sizeof(pe));
    pe.type = PERF_TYPE_SOFTWARE;
    pe.size = sizeof(pe);
    pe.config = PERF_COUNT_SW_CPU_CLOCK;
    pe.disabled = 1;
    fd = syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0UL);
    printf("perf_event_open=%s\n", ename(fd < 0 ? errno : 0));
    if (fd >= 0)
        close((int) fd);
    return 0;
}

/* caps: the capability, no_new_privs and seccomp lines of /proc/self/status, uid, gid. */
static int cmd_caps(void)
{
    static const char *keys[] = {"CapInh", "CapPrm",     "CapEff", "CapBnd",
                                 "CapAmb", "NoNewPrivs", "Seccomp"};
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) {
        printf("status=%s\n", ename(errno));
        return 1;
    }
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            size_t n = strlen(keys[i]);
            if (strncmp(line, keys[i], n) == 0 && line[n] == ':') {
                char *v = line + n + 1;
                v += strspn(v, " \t");
                v[strcspn(v, "\n")] = '\0';
                printf("%s=%s\n", keys[i], v);
            }
        }
    }
    fclose(f);
    printf("uid=%u\neuid=%u\ngid=%u\negid=%u\n", getuid(), geteuid(), getgid(), getegid());
    return 0;
}

/* write PATH: create PATH and write a line; prints write=OK or the errno name. */
static int cmd_write(int argc, char **argv)
{
    if (argc < 1)
        return 2;
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0) {
        if (write(fd, "probe\n", 6) != 6)
            e = errno ? errno : EIO;
        close(fd);
    }
    printf("path=%s\nwrite=%s\n", argv[0], ename(e));
    return 0;
}

/* escape PATH: the classic chroot escape - chroot into a subdirectory of the cwd (which
 * leaves the cwd outside the new root), walk up from there, chroot to where the walk ends -
 * then whether PATH exists, a path the sandbox hides and the host's root holds. Prints
 * chroot=OK or the errno name, and exists=yes|no. */
static int cmd_escape(int argc, char **argv)
{
    if (argc < 1)
        return 2;
    int e = 0;
    if (mkdir("escape.d", 0700) < 0 && errno != EEXIST)
        e = errno;
    else if (chroot("escape.d") < 0)
        e = errno;
    else {
        for (int i = 0; i < 64; i++)
            if (chdir("..") < 0)
                break;
        if (chroot(".") < 0)
            e = errno;
    }
    struct stat st;
    printf("chroot=%s\nexists=%s\n", ename(e), stat(argv[0], &st) == 0 ? "yes" : "no");
    return 0;
}

/* ignoreterm SECONDS: ignore SIGTERM and sleep. */
static int cmd_ignoreterm(int argc, char **argv)
{
    if (argc < 1)
        return 2;
    signal(SIGTERM, SIG_IGN);
    printf("pid=%d\nignoring=SIGTERM\n", getpid());
    fflush(stdout);
    sleep_s((double) num(argv[0]));
    return 0;
}

/* daemonize: a child setsid()s and sleeps 300 s; the parent prints its pid and sleeps. */
static int cmd_daemonize(void)
{
    fflush(stdout);
    pid_t p = fork();
    if (p < 0) {
        printf("fork=%s\n", ename(errno));
        return 1;
    }
    if (p == 0) {
        setsid();
        signal(SIGHUP, SIG_IGN);
        sleep_s(300);
        _exit(0);
    }
    printf("pid=%d\nchild_pid=%d\n", getpid(), p);
    fflush(stdout);
    sleep_s(300);
    return 0;
}

/* kill SIG: kill itself with SIG (number or name without SIG: KILL, TERM, SEGV ...). */
static int cmd_kill(int argc, char **argv)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ABRT", SIGABRT},
                {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"TERM", SIGTERM}, {"USR1", SIGUSR1}};
    if (argc < 1)
        return 2;
    const char *s = argv[0];
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    int sig = 0;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (strcmp(s, sigs[i].name) == 0)
            sig = sigs[i].sig;
    if (!sig)
        sig = (int) num(s);
    printf("signal=%d\n", sig);
    fflush(stdout);
    signal(sig, SIG_DFL);
    kill(getpid(), sig);
    sleep_s(5);
    return 1;
}

/* ps: the pids visible in /proc, and its own. */
static int cmd_ps(void)
{
    DIR *d = opendir("/proc");
    if (!d) {
        printf("proc=%s\n", ename(errno));
        return 1;
    }
    printf("self=%d\npids=", getpid());
    bool first = true;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        printf("%s%s", first ? "" : ",", de->d_name);
        first = false;
    }
    printf("\n");
    closedir(d);
    return 0;
}

static int cmd_hostname(void)
{
    struct utsname u;
    if (uname(&u) < 0)
        return 1;
    printf("hostname=%s\n", u.nodename);
    return 0;
}

/* dev b|c MAJOR MINOR: create a node for that device in the cwd and try to open it (the
 * device filter must deny it); then read and write /dev/null, which must work. */
static int cmd_dev(int n, char **a)
{
    if (n < 3 || (a[0][0] != 'b' && a[0][0] != 'c'))
        return 2;
    mode_t type = a[0][0] == 'b' ? S_IFBLK : S_IFCHR;
    dev_t dev = makedev((unsigned) num(a[1]), (unsigned) num(a[2]));
    unlink("probe-dev");
    int e = mknod("probe-dev", type | 0600, dev) < 0 ? errno : 0;
    printf("mknod=%s\n", ename(e));
    if (e == 0) {
        int fd = open("probe-dev", O_RDONLY | O_CLOEXEC);
        printf("open=%s\n", ename(fd < 0 ? errno : 0));
        if (fd >= 0) {
            char b[512];
            printf("read=%s\n", ename(read(fd, b, sizeof(b)) < 0 ? errno : 0));
            close(fd);
        }
        unlink("probe-dev");
    }
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    e = fd < 0 ? errno : (write(fd, "x", 1) == 1 ? 0 : errno);
    printf("null=%s\n", ename(e));
    if (fd >= 0)
        close(fd);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: probe spin SECONDS THREADS | alloc MiB | forkbomb | syscalls | caps |\n"
                    "       write PATH | ignoreterm SECONDS | daemonize | exit N | kill SIG |\n"
                    "       ps | hostname | dev b|c MAJOR MINOR | ptraceexec SECONDS |\n"
                    "       escape PATH | chargefloor N USAGE_FILE JOIN_FILE...\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *cmd = argv[1];
    int n = argc - 2;
    char **a = argv + 2;
    if (strcmp(cmd, "burn") == 0)
        return cmd_burn(n, a);
    if (strcmp(cmd, "spin") == 0)
        return cmd_spin(n, a);
    if (strcmp(cmd, "alloc") == 0)
        return cmd_alloc(n, a);
    if (strcmp(cmd, "forkbomb") == 0)
        cmd_forkbomb();
    if (strcmp(cmd, "syscalls") == 0)
        return cmd_syscalls();
    if (strcmp(cmd, "caps") == 0)
        return cmd_caps();
    if (strcmp(cmd, "dev") == 0)
        return cmd_dev(n, a);
    if (strcmp(cmd, "write") == 0)
        return cmd_write(n, a);
    if (strcmp(cmd, "ignoreterm") == 0)
        return cmd_ignoreterm(n, a);
    if (strcmp(cmd, "daemonize") == 0)
        return cmd_daemonize();
    if (strcmp(cmd, "exit") == 0 && n >= 1)
        return (int) (num(a[0]) & 0xff);
    if (strcmp(cmd, "kill") == 0)
        return cmd_kill(n, a);
    if (strcmp(cmd, "ps") == 0)
        return cmd_ps();
    if (strcmp(cmd, "hostname") == 0)
        return cmd_hostname();
    if (strcmp(cmd, "ptraceexec") == 0)
        return cmd_ptraceexec(n, a);
    if (strcmp(cmd, "escape") == 0)
        return cmd_escape(n, a);
    if (strcmp(cmd, "chargefloor") == 0)
        return cmd_chargefloor(n, a);
    usage();
    return 2;
}
