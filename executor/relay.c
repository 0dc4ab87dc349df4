/* SPDX-License-Identifier: Apache-2.0 */
/* executor/relay.c - the task's output, capped (review M3: 3 GB of stdout in 2.6 s filled the
 * disk). With spec.log_max_bytes the task writes into two pipes and berth-executor copies
 * them into sandbox/stdout and stderr; a file that reaches the cap is rotated, as docker's
 * json-file max-size/max-file and conmon do: stdout.1 .. stdout.(log_max_files-1) keep the
 * older output, the oldest is dropped (one file only: it starts over). A full pipe blocks
 * the task's write: the back-pressure of a slow disk reaches the writer, memory never grows.
 * Without a cap the task writes the files directly (launch.c). supervise.c polls the pipes. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "executor/executor.h"

static const char *const names[2] = {"stdout", "stderr"};

int exe_relay_setup(struct exe *e, struct berr **err)
{
    if (!e->spec.log_max_bytes)
        return 0;
    e->sandbox_fd = open(e->spec.sandbox_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (e->sandbox_fd < 0)
        return berr_set(err, errno, "open '%s'", e->spec.sandbox_dir);
    for (int i = 0; i < 2; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return berr_set(err, errno, "pipe for %s", names[i]);
        e->relay[i].rd = p[0];
        e->relay[i].wr = p[1];
        (void) fcntl(p[0], F_SETFL, O_NONBLOCK);
        int fd = i ? e->err_fd : e->out_fd;
        struct stat st;
        e->relay[i].size = fstat(fd, &st) == 0 ? (uint64_t) st.st_size : 0;
    }
    return 0;
}

/* The file is full: shift the older ones up, drop the oldest, start a new one. Renames in the
 * sandbox dir by its fd: the task owns the dir and may have put anything under these names,
 * and renameat replaces a link without following it. */
static void rotate(struct exe *e, int i)
{
    int *fd = i ? &e->err_fd : &e->out_fd;
    uint64_t keep = e->spec.log_max_files ? e->spec.log_max_files - 1 : 0;
    if (keep == 0) {
        if (ftruncate(*fd, 0) == 0)
            e->relay[i].size = 0;
        return;
    }
    char from[32], to[32];
    for (uint64_t n = keep; n >= 1; n--) {
        if (n == 1)
            snprintf(from, sizeof(from), "%s", names[i]);
        else
            snprintf(from, sizeof(from), "%s.%llu", names[i], (unsigned long long) n - 1);
        snprintf(to, sizeof(to), "%s.%llu", names[i], (unsigned long long) n);
        if (renameat(e->sandbox_fd, from, e->sandbox_fd, to) < 0 && errno != ENOENT)
            log_msg(LOG_WARNING, errno, "rotate '%s'", from);
    }
    int nfd = -1;
    for (int attempt = 0; attempt < 2 && nfd < 0; attempt++) {
        nfd = openat(e->sandbox_fd, names[i],
                     O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
                     0640);
        if (nfd < 0 && errno == EEXIST)
            (void) unlinkat(e->sandbox_fd, names[i], 0); /* the task was quicker */
    }
    if (nfd < 0 ||
        fchown(nfd, iso_host_id(&e->spec, e->user.uid), iso_host_id(&e->spec, e->user.gid)) < 0) {
        /* keep writing the old (renamed) file rather than lose output */
        log_msg(LOG_WARNING, errno, "new '%s' after rotation", names[i]);
        if (nfd >= 0)
            close(nfd);
        return;
    }
    close(*fd);
    *fd = nfd;
    e->relay[i].size = 0;
}

int exe_relay_pump(struct exe *e, int i)
{
    char buf[65536];
    for (int rounds = 0; rounds < 16; rounds++) { /* then let signals in */
        ssize_t n = read(e->relay[i].rd, buf, sizeof(buf));
        if (n == 0)
            return 0;
        if (n < 0)
            return errno == EINTR ? 1 : -EAGAIN;
        ssize_t off = 0;
        while (off < n) {
            uint64_t room = e->spec.log_max_bytes > e->relay[i].size
                                    ? e->spec.log_max_bytes - e->relay[i].size
                                    : 0;
            if (room == 0) {
                rotate(e, i);
                room = e->spec.log_max_bytes;
            }
            size_t len = (size_t) (n - off) < room ? (size_t) (n - off) : (size_t) room;
            int fd = i ? e->err_fd : e->out_fd;
            if (write_all(fd, buf + off, len) < 0) {
                log_limited("relay", LOG_WARNING, errno, "write the task's %s", names[i]);
                break; /* disk full: this output is lost, the task goes on */
            }
            e->relay[i].size += len;
            off += (ssize_t) len;
        }
    }
    return 1;
}

void exe_relay_drain(struct exe *e)
{
    for (int i = 0; i < 2; i++) {
        if (e->relay[i].rd < 0)
            continue;
        while (exe_relay_pump(e, i) > 0)
            ;
        close(e->relay[i].rd);
        e->relay[i].rd = -1;
    }
}
