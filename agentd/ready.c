/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/ready.c - a launch's directories made ahead, off the loop. A launch used to create
 * eight inodes on the disk while its client waited (its sandbox dir with stdout and stderr,
 * its runtime dir with spec.json, hosts, hostname, their .tmp and executor.log) and its
 * executor a ninth at the end (status.json's .tmp): on this project's machine kind each
 * creation on the root file system costs 0.02-0.8 ms, varying by the minute (a rename
 * 0.01-0.03 ms), up to two thirds of a `berthctl run --wait` (issue #18). A thread keeps
 * READY_SLOTS pairs made in work_dir/ready/<k>/ (s: the sandbox with empty stdout and
 * stderr; r: the runtime dir with executor.log and empty spec.json.tmp, status.json.tmp
 * and, with namespaces/mount, hosts.tmp and hostname.tmp, each with the mode its writer
 * creates it with). A launch renames a pair into place (sandbox.c), and the writers'
 * write_file_replace then opens the .tmp that is there and renames it: no inode is created.
 * A pair is offered once complete. When none is made yet the launch makes its dirs itself,
 * as before; so it does for good when work_dir/ready, sandboxes and containers are not one
 * file system, or a rename fails. What a stop or a crash leaves in
 * work_dir/ready goes to the trash at the next start. The thread has a table of open files
 * (its eventfd) and a umask of its own, and blocks every signal. A launch takes a pair only
 * while no other launch's spawn is under way: in a burst the thread's creations competed
 * with the loop's (the journal's, a CPU) and 1,000 launches were 0.2-0.3 s slower with the
 * pairs than without, on a journaled ext4; the pairs are for the launch that comes alone. */
#include "agentd/ready.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "agentd/agent.h"

#define READY_SLOTS 2

/* A slot is a dir work_dir/ready/<k> of its own, made once: the loop's renames out of one
 * lock it, not work_dir/ready, in which the thread's creations would hold them up (a
 * creation holds its parent dir's lock for as long as it takes, a millisecond at times).
 * Its state is an atomic the loop and the thread hand each other: the loop never waits for
 * the thread. */
enum {
    SLOT_EMPTY,
    SLOT_MAKING,
    SLOT_MADE,
    SLOT_TAKEN,
};

static struct {
    pthread_t thread;
    bool started, off, etc;
    bool refill; /* a pair was taken: wake the thread (ready_refill) */
    atomic_bool stopping;
    mode_t umask;                  /* the agent's at ready_init: the thread's own */
    atomic_int err;                /* the thread's failure (-errno): it stopped */
    atomic_int state[READY_SLOTS]; /* SLOT_* */
    int efd;                       /* the loop wakes the thread: a slot is empty */
    char *dir;                     /* work_dir/ready */
} rq = {.efd = -1};

static void pair_path(char *buf, size_t len, unsigned k, const char *sub)
{
    snprintf(buf, len, "%s/%u%s%s", rq.dir, k, *sub ? "/" : "", sub);
}

static int touch(const char *dir, const char *name, mode_t mode)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

/* One pair in slot k, with the modes sandbox.c, launch.c, net.c and the executor create
 * them with. */
static int pair_make(unsigned k)
{
    char d[4096], s[4096], r[4096];
    pair_path(d, sizeof(d), k, "");
    pair_path(s, sizeof(s), k, "s");
    pair_path(r, sizeof(r), k, "r");
    if (mkdir(d, 0700) == 0)
        (void) dir_set_topdir(d); /* its pairs spread over the block groups (main.c) */
    else if (errno != EEXIST)
        return -errno;
    if (mkdir(r, 0700) < 0 || mkdir(s, 0755) < 0)
        return -errno;
    static const struct {
        char where;
        const char *name;
        mode_t mode;
        bool etc;
    } files[] = {
            {'s', "stdout", 0640, false},          {'s', "stderr", 0640, false},
            {'r', "executor.log", 0600, false},    {'r', "spec.json.tmp", 0600, false},
            {'r', "status.json.tmp", 0644, false}, {'r', "hosts.tmp", 0644, true},
            {'r', "hostname.tmp", 0644, true},
    };
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        if (files[i].etc && !rq.etc)
            continue;
        int e = touch(files[i].where == 's' ? s : r, files[i].name, files[i].mode);
        if (e < 0)
            return e;
    }
    return 0;
}

/* A slot in state st, or -1. */
static int slot_find(int st)
{
    for (int k = 0; k < READY_SLOTS; k++)
        if (atomic_load(&rq.state[k]) == st)
            return k;
    return -1;
}

static void *ready_main(void *arg)
{
    (void) arg;
    /* a table of open files of its own, its eventfd alone, and a umask of its own (api.c
     * narrows the process's around the socket's bind, which made a pair's files 0640 when
     * the two met) */
    thread_own_files(rq.efd, rq.efd);
    if (unshare(CLONE_FS) < 0) {
        atomic_store(&rq.err, -errno);
        return NULL;
    }
    umask(rq.umask);
    /* SCHED_IDLE: the pair is made while the launch that took the last one has its executor
     * start; at the same priority the executor, woken on the other CPU, waited there for
     * this thread (the hand-over 0.2 ms at the median instead of 0.1). Lowering the policy
     * needs no privilege; should a seccomp filter refuse it, the thread runs as before. */
    if (sched_setscheduler(0, SCHED_IDLE, &(struct sched_param){0}) < 0)
        log_msg(LOG_DEBUG, errno, "the ready thread at SCHED_IDLE");
    while (!atomic_load(&rq.stopping)) {
        int k = slot_find(SLOT_EMPTY);
        if (k < 0) {
            uint64_t v;
            if (read(rq.efd, &v, sizeof(v)) < 0 && errno != EINTR)
                break;
            continue;
        }
        atomic_store(&rq.state[k], SLOT_MAKING);
        int r = pair_make((unsigned) k);
        if (r < 0) {
            atomic_store(&rq.err, r); /* the loop says so (ready_take); launches make theirs */
            break;
        }
        atomic_store(&rq.state[k], SLOT_MADE);
    }
    return NULL;
}

static dev_t dev_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_dev : 0;
}

int ready_init(struct agent *a, struct berr **err)
{
    rq.dir = xasprintf("%s/ready", a->cfg.work_dir);
    rq.etc = a->iso_flags & ISO_NS_MOUNT;
    rq.umask = umask(0); /* no other thread of ours creates files */
    umask(rq.umask);
    /* an earlier run's pairs to the trash (unless work_dir/ready is a mount of its own) */
    dev_t dev = dev_of(a->sandboxes_dir);
    int r = dev && dev_of(rq.dir) == dev ? trash_move(a, rq.dir) : 0;
    if (r < 0 && r != -ENOENT)
        return berr_set(err, -r, "move '%s' to the trash", rq.dir);
    if (mkdir(rq.dir, 0700) < 0 && errno != EEXIST)
        return berr_set(err, errno, "create '%s'", rq.dir);
    (void) dir_set_topdir(rq.dir);
    if (!dev || dev_of(rq.dir) != dev || dev_of(a->runtime_root) != dev) {
        log_info("'%s', '%s' and '%s' are not on one file system: launches make their dirs", rq.dir,
                 a->sandboxes_dir, a->runtime_root);
        rq.off = true;
        return 0;
    }
    if ((rq.efd = eventfd(0, EFD_CLOEXEC)) < 0) {
        log_warning("eventfd: %s: launches make their dirs", strerror(errno));
        rq.off = true;
        return 0;
    }
    if ((r = thread_start_quiet(&rq.thread, "berth-ready", ready_main, NULL)) != 0) {
        log_warning("start the thread that makes sandbox dirs ahead: %s: launches make them",
                    strerror(r));
        rq.off = true;
        return 0;
    }
    rq.started = true;
    return 0;
}

static void wake(void)
{
    uint64_t one = 1;
    (void) !write(rq.efd, &one, sizeof(one));
}

bool ready_take(struct agent *a, const char *sandbox, const char *rdir)
{
    if (rq.off || !rq.started || agent_spawns_in_flight() > 0)
        return false;
    int k = slot_find(SLOT_MADE);
    if (k < 0 || !atomic_compare_exchange_strong(&rq.state[k], &(int){SLOT_MADE}, SLOT_TAKEN)) {
        int failed = atomic_load(&rq.err);
        if (failed) {
            log_warning("make sandbox dirs ahead in '%s': %s: launches make them", rq.dir,
                        strerror(-failed));
            rq.off = true;
        }
        return false;
    }
    char s[4096], r[4096];
    pair_path(s, sizeof(s), (unsigned) k, "s");
    pair_path(r, sizeof(r), (unsigned) k, "r");
    bool ok = false;
    int e = 0;
    if (rename(r, rdir) == 0) {
        if (rename(s, sandbox) == 0)
            ok = true;
        else
            e = errno, (void) trash_move(a, rdir); /* the caller makes both itself */
    } else {
        e = errno;
    }
    if (!ok) { /* a rename of dirs on one file system failed: no more of them (the slot
                * stays taken: the thread leaves it alone while the trash removes it) */
        (void) trash_move(a, s);
        (void) trash_move(a, r);
        log_warning("rename a pair of '%s' into place: %s: launches make their dirs", rq.dir,
                    strerror(e));
        rq.off = true;
        return false;
    }
    atomic_store(&rq.state[k], SLOT_EMPTY); /* the thread makes it again: ready_refill */
    rq.refill = true;
    return true;
}

void ready_refill(void)
{
    if (rq.refill)
        wake();
    rq.refill = false;
}

void ready_free(struct agent *a)
{
    (void) a;
    if (rq.started) {
        atomic_store(&rq.stopping, true);
        wake();
        pthread_join(rq.thread, NULL);
    }
    closep(&rq.efd);
    rq.efd = -1;
    free(rq.dir);
    rq.dir = NULL;
    for (int k = 0; k < READY_SLOTS; k++)
        atomic_store(&rq.state[k], SLOT_EMPTY);
    atomic_store(&rq.err, 0);
    atomic_store(&rq.stopping, false);
    rq.started = rq.off = false;
}
