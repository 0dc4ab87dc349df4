/* SPDX-License-Identifier: Apache-2.0 */
/* common/util.c - small fd, file and string helpers shared by every binary: bounded reads,
 * single-write(2) writes for cgroupfs, atomic file replacement, mkdir -p, rm -rf that never
 * crosses a mount, random ids and clocks. */
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common/common.h"

ssize_t read_file_at(int dirfd, const char *path, char *buf, size_t max)
{
    if (max == 0)
        return -EINVAL;
    _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len < max - 1) {
        ssize_t n = read(fd, buf + len, max - 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        len += (size_t) n;
    }
    buf[len] = 0;
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = 0;
    return (ssize_t) len;
}

int read_file_alloc(const char *path, size_t max, char **ret, size_t *ret_len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, len = 0;
    _cleanup_free_ char *buf = xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= max)
                return -EFBIG;
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        len += (size_t) n;
    }
    buf[len] = 0;
    if (ret_len)
        *ret_len = len;
    *ret = TAKE_PTR(buf);
    return 0;
}

int write_file_at(int dirfd, const char *path, const char *value)
{
    _cleanup_close_ int fd = openat(dirfd, path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len); /* cgroupfs parses each write() on its own */
    if (n < 0)
        return -errno;
    if ((size_t) n != len)
        return -EIO;
    return 0;
}

int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

static int write_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         bool sync)
{
    char tmp[256];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int) sizeof(tmp))
        return -ENAMETOOLONG;
    /* No O_TRUNC: on ext4 a truncation to 0 (even of an empty file, as ready.c makes them)
     * marks the file for ext4's auto_da_alloc, and its close then starts the writeback of
     * its data, 20 us on the caller's thread and an I/O queued ahead of the WAL's fsync (a
     * launch writes three such files, the executor's end a fourth). The rename of a file
     * over an existing one still does that, which is what that heuristic is for. A longer
     * .tmp left by a crash is cut to the new length below. */
    _cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : write_all(fd, data, len);
    if (r == 0 && st.st_size > (off_t) len && ftruncate(fd, (off_t) len) < 0)
        r = -errno;
    if (r == 0 && sync && fsync(fd) < 0)
        r = -errno;
    if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
        r = -errno;
    if (r < 0)
        unlinkat(dirfd, tmp, 0); /* leave no half-written name.tmp behind */
    return r;
}

int write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
    return write_replace(dirfd, name, data, len, mode, true);
}

int write_file_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
    return write_replace(dirfd, name, data, len, mode, false);
}

int mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    if (!path || !*path)
        return -EINVAL; /* buf + 1 below would read past the terminator */
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
            *p = c;
            if (c == 0)
                break;
        }
    }
    return 0;
}

int dir_set_topdir(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    int flags = 0; /* an int, whatever the ioctl's declared type (e2fsprogs' chattr does so) */
    if (fd < 0)
        return -errno;
    int r = ioctl(fd, FS_IOC_GETFLAGS, &flags);
    if (r == 0 && !(flags & FS_TOPDIR_FL)) {
        flags |= FS_TOPDIR_FL;
        r = ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    /* no inode flags (ENOTTY) or not this one (EOPNOTSUPP, EINVAL: tmpfs, xfs, btrfs) */
    return r == 0 || errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL ? 0 : -errno;
}

static int rm_rf_at(int dfd, const char *name, dev_t dev, unsigned depth, const atomic_bool *stop)
{
    struct stat st;
    if (depth > RM_RF_MAX_DEPTH)
        return -ELOOP;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    if (st.st_dev != dev)
        return -EBUSY; /* a mount point: never delete through it */
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
            continue;
        if (stop && atomic_load_explicit(stop, memory_order_relaxed)) {
            r = -ECANCELED;
            break;
        }
        int q = rm_rf_at(dirfd(d), de->d_name, dev, depth + 1, stop);
        if (q < 0 && r == 0)
            r = q;
        if (q == -ECANCELED)
            break;
    }
    closedir(d);
    if (r < 0)
        return r;
    return unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

/* rm -rf --one-file-system PATH in a child, for trees too deep for rm_rf_at. */
static int rm_rf_spawn(const char *path)
{
    char *argv[] = {(char *) "rm", (char *) "-rf", (char *) "--one-file-system",
                    (char *) "--", (char *) path,  NULL};
    char *envp[] = {(char *) "PATH=/usr/bin:/bin", NULL};
    pid_t pid;
    int r = posix_spawn(&pid, "/bin/rm", NULL, NULL, argv, envp);
    if (r != 0)
        return -r;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int rm_rf_here(const char *path, const atomic_bool *stop)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    return rm_rf_at(AT_FDCWD, path, st.st_dev, 0, stop);
}

int rm_rf(const char *path)
{
    int r = rm_rf_here(path, NULL);
    return r == -ELOOP ? rm_rf_spawn(path) : r;
}

int random_hex(char *buf, size_t len)
{
    uint8_t raw[32];
    if (len > 64)
        return -EINVAL;
    size_t need = (len + 1) / 2;
    if (getrandom(raw, need, 0) != (ssize_t) need)
        return -errno;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++)
        buf[i] = hex[(raw[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
    buf[len] = 0;
    return 0;
}

void strv_free(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

bool str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && streq(s + n - m, suffix);
}

double now_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

uint64_t now_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

/* The nice value the process started with, once thread_raise_priority changed a thread's. */
static atomic_bool prio_raised;
static int prio_base;

int thread_raise_priority(int by)
{
    errno = 0;
    int base = getpriority(PRIO_PROCESS, 0); /* Linux: the calling thread's */
    if (base == -1 && errno)
        return -errno;
    prio_base = base;
    atomic_store(&prio_raised, true);
    return setpriority(PRIO_PROCESS, 0, base - by < -20 ? -20 : base - by) < 0 ? -errno : 0;
}

void thread_priority_restore(void)
{
    if (atomic_load(&prio_raised))
        (void) setpriority(PRIO_PROCESS, 0, prio_base); /* a lower priority needs no right */
}

struct thread_start {
    void *(*fn)(void *);
    void *arg;
};

static void *thread_trampoline(void *p)
{
    struct thread_start ts = *(struct thread_start *) p;
    free(p);
    thread_priority_restore(); /* a thread the loop started runs at the process's priority */
    return ts.fn(ts.arg);
}

int thread_start(pthread_t *t, const char *name, const sigset_t *blocked, void *(*fn)(void *),
                 void *arg)
{
    struct thread_start *ts = malloc(sizeof(*ts));
    if (!ts)
        return ENOMEM;
    *ts = (struct thread_start){fn, arg};
    sigset_t old; /* the new thread inherits the mask it is created with */
    pthread_sigmask(SIG_SETMASK, blocked, &old);
    int r = pthread_create(t, NULL, thread_trampoline, ts);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        free(ts);
    else
        (void) pthread_setname_np(*t, name); /* a name is for people: without one, as is */
    return r;
}

int thread_start_quiet(pthread_t *t, const char *name, void *(*fn)(void *), void *arg)
{
    sigset_t all;
    sigfillset(&all);
    return thread_start(t, name, &all, fn, arg);
}

void thread_own_files(int a, int b)
{
    if (unshare(CLONE_FILES) < 0)
        return;
    unsigned lo = (unsigned) (a < b ? a : b), hi = (unsigned) (a < b ? b : a);
    if (lo > 0)
        close_range(0, lo - 1, 0);
    if (hi > lo + 1)
        close_range(lo + 1, hi - 1, 0);
    close_range(hi + 1, ~0U, 0);
}

int proc_stat_fields(pid_t pid, unsigned long long *v, int n)
{
    char path[64], buf[1024];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    else
        snprintf(path, sizeof(path), "/proc/self/stat");
    ssize_t len = read_file_at(AT_FDCWD, path, buf, sizeof(buf));
    if (len == -ENOENT || len == -ESRCH)
        return -ESRCH;
    if (len < 0)
        return (int) len;
    /* "pid (comm) S ppid ..." - comm may hold spaces and ')': fields count from the last ')' */
    char *p = strrchr(buf, ')'), *save = NULL;
    if (!p || p[1] != ' ')
        return -EIO;
    int k = 3;
    for (char *tok = strtok_r(p + 1, " \n", &save); tok && k < n;
         tok = strtok_r(NULL, " \n", &save), k++)
        v[k] = k == 3 ? (unsigned char) tok[0] : strtoull(tok, NULL, 10);
    return k;
}

void *stack_map(size_t size)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (mprotect(p, page, PROT_NONE) < 0) {
        int e = errno;
        munmap(p, size + page);
        errno = e;
        return NULL;
    }
    return p + page + size;
}

void stack_unmap(void *top, size_t size)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE);
    munmap((char *) top - size - page, size + page);
}
