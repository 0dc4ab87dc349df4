/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/logs.c - GET /v1/containers/{id}/logs: the task's stdout/stderr files from its
 * sandbox, whole, the last N lines, or followed: a chunked reply fed by inotify on the
 * sandbox dir until the container ends and the file is drained. No polling, and bounded:
 * a follower has at most one chunk in the connection's output buffer and reads the next
 * when libevent has written it (a reader that stops reading stops us reading: review H2),
 * and it follows the file across the executor's rotations (stdout -> stdout.1). lifecycle.c
 * tells this file when a container ends (logs_container_ended). */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "agentd/agent.h"

#define FOLLOW_CHUNK (256u << 10) /* what one follower may have in its output buffer */
#define TAIL_SCAN_MAX (4u << 20)  /* how far back tail=N looks for newlines */
#define WATCH_MASK (IN_MODIFY | IN_CREATE | IN_MOVED_TO)

struct follower {
    struct agent *a;
    char id[17];
    char *path;   /* sandbox/stream */
    char *stream; /* "stdout" or "stderr": the name inotify reports */
    int fd;
    int wd;       /* the sandbox dir's watch (shared by its followers) */
    bool sending; /* a chunk is on its way: the write callback pumps again */
    bool ending;  /* the container ended: drain the file, then end the reply */
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct follower *next;
};

/* Offset where the last n lines of fd start. It looks back at most TAIL_SCAN_MAX bytes: the
 * task controls the file's size and its newlines, and this runs on the loop (review H3: a
 * 3 GB line stalled the agent 38 s); past that the answer starts there. */
static off_t tail_offset(int fd, uint64_t n)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size == 0)
        return 0;
    off_t end = st.st_size, pos = end;
    off_t floor = end > (off_t) TAIL_SCAN_MAX ? end - (off_t) TAIL_SCAN_MAX : 0;
    char buf[8192];
    uint64_t lines = 0;
    /* a final newline ends the last line; it does not start another */
    bool skip_last = true;
    while (pos > floor) {
        size_t chunk = pos - floor > (off_t) sizeof(buf) ? sizeof(buf) : (size_t) (pos - floor);
        pos -= (off_t) chunk;
        ssize_t r = pread(fd, buf, chunk, pos);
        if (r <= 0)
            return 0;
        for (ssize_t i = r - 1; i >= 0; i--) {
            if (buf[i] != '\n')
                continue;
            if (skip_last && pos + i == end - 1) {
                skip_last = false;
                continue;
            }
            if (++lines == n)
                return pos + i + 1;
        }
    }
    return floor;
}

static void follower_free(struct agent *a, struct follower *f)
{
    for (struct follower **p = &a->followers; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    bool shared = false;
    for (struct follower *o = a->followers; o; o = o->next)
        shared |= o->wd == f->wd;
    if (!shared && f->wd >= 0)
        inotify_rm_watch(a->inotify_fd, f->wd);
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f->stream);
    free(f);
}

static void follower_closed(struct evhttp_connection *conn, void *arg)
{
    (void) conn;
    struct follower *f = arg;
    api_request_gone(f->req);
    follower_free(f->a, f);
}

/* At the end of f's file: has the executor rotated it (a new file under the name)? Then
 * go on with the new one. */
static bool follower_reopen(struct follower *f)
{
    struct stat now, cur;
    if (stat(f->path, &now) < 0 || fstat(f->fd, &cur) < 0 ||
        (now.st_ino == cur.st_ino && now.st_dev == cur.st_dev))
        return false;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &now) < 0 || !S_ISREG(now.st_mode)) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    close(f->fd);
    f->fd = fd;
    return true;
}

static void follower_pump(struct follower *f);

static void on_chunk_sent(struct evhttp_connection *conn, void *arg)
{
    (void) conn;
    struct follower *f = arg;
    f->sending = false;
    follower_pump(f);
}

/* Send the next chunk of f's file, unless one is still on its way; at the end of a file
 * that will not grow (the container ended), end the reply. */
static void follower_pump(struct follower *f)
{
    if (f->sending)
        return;
    for (;;) {
        struct evbuffer *out = evbuffer_new();
        int n = evbuffer_read(out, f->fd, FOLLOW_CHUNK);
        if (n > 0) {
            f->sending = true;
            evhttp_send_reply_chunk_with_cb(f->req, out, on_chunk_sent, f);
            evbuffer_free(out);
            return;
        }
        evbuffer_free(out);
        if (n == 0 && follower_reopen(f))
            continue;
        if (f->ending) {
            evhttp_connection_set_closecb(f->conn, NULL, NULL);
            evhttp_send_reply_end(f->req);
            follower_free(f->a, f);
        }
        return; /* the next inotify event brings more */
    }
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct agent *a = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n = read(fd, buf, sizeof(buf));
    for (char *p = buf; n > 0 && p < buf + n;) {
        struct inotify_event *ev = (struct inotify_event *) p;
        for (struct follower *f = a->followers, *next; f; f = next) {
            next = f->next;
            if (f->wd == ev->wd && (ev->len == 0 || streq(ev->name, f->stream)))
                follower_pump(f);
        }
        p += sizeof(*ev) + ev->len;
    }
}

int logs_init(struct agent *a, struct berr **err)
{
    a->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (a->inotify_fd < 0)
        return berr_set(err, errno, "inotify_init1");
    a->ev_inotify = event_new(a->base, a->inotify_fd, EV_READ | EV_PERSIST, on_inotify, a);
    event_add(a->ev_inotify, NULL);
    return 0;
}

void logs_free(struct agent *a)
{
    while (a->followers) {
        struct follower *f = a->followers;
        evhttp_connection_set_closecb(f->conn, NULL, NULL);
        evhttp_send_reply_end(f->req);
        follower_free(a, f);
    }
    if (a->ev_inotify)
        event_free(a->ev_inotify);
    if (a->inotify_fd >= 0)
        close(a->inotify_fd);
}

void logs_container_ended(struct agent *a, const char *id)
{
    for (struct follower *f = a->followers, *next; f; f = next) {
        next = f->next;
        if (streq(f->id, id)) {
            f->ending = true;
            follower_pump(f);
        }
    }
}

void logs_serve(struct agent *a, struct container *c, struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (evhttp_parse_query_str(query ? query : "", &q) < 0)
        return api_fail(req, BERR_INVALID_ARGUMENT, "bad query string");
    const char *stream = evhttp_find_header(&q, "stream");
    const char *follow_s = evhttp_find_header(&q, "follow");
    const char *tail_s = evhttp_find_header(&q, "tail");
    bool follow = false;
    uint64_t tail = 0;
    int bad_arg = 0;
    if (!stream)
        stream = "stdout";
    if (!streq(stream, "stdout") && !streq(stream, "stderr"))
        bad_arg = 1;
    if (follow_s && parse_bool(follow_s, &follow) < 0)
        bad_arg = 2;
    if (tail_s && parse_u64(tail_s, &tail) < 0)
        bad_arg = 3;
    _cleanup_free_ char *path = xasprintf("%s/%s/%s", a->sandboxes_dir, c->id, stream);
    const char *stream_name = streq(stream, "stderr") ? "stderr" : "stdout";
    evhttp_clear_headers(&q);
    if (bad_arg)
        return api_fail(req, BERR_INVALID_ARGUMENT,
                        "logs takes stream=stdout|stderr, follow=0|1 and tail=N (lines)");
    /* the task owns its sandbox: never follow a link it planted */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT && !follow) {
        /* nothing written yet (or the launch failed before the executor made it) */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    if (fd < 0) {
        return api_fail(req, errno == ENOENT ? BERR_NOT_FOUND : BERR_INTERNAL, "open '%s': %s",
                        path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        /* the task owns its sandbox: a FIFO or device planted as "stdout" is not its output */
        close(fd);
        return api_fail(req, BERR_CONFLICT, "the task's output file is not a regular file");
    }
    if (tail_s)
        lseek(fd, tail_offset(fd, tail), SEEK_SET);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    if (!follow || ml_state_terminal(c->state)) {
        /* the file as it is now, without copying it into memory: libevent sends it with
         * sendfile/mmap as the client reads (a task may write gigabytes) */
        struct evbuffer *out = evbuffer_new();
        off_t pos = lseek(fd, 0, SEEK_CUR);
        if (st.st_size > pos)
            evbuffer_add_file(out, fd, pos, st.st_size - pos); /* takes fd */
        else
            close(fd);
        evhttp_send_reply(req, 200, "OK", out);
        evbuffer_free(out);
        return;
    }
    struct follower *f = xzalloc(sizeof(*f));
    f->a = a;
    snprintf(f->id, sizeof(f->id), "%s", c->id);
    f->fd = fd;
    f->path = TAKE_PTR(path);
    f->stream = xstrdup(stream_name);
    f->req = req;
    f->conn = evhttp_request_get_connection(req);
    /* the sandbox dir, not the file: the executor's rotation puts a new file under the name */
    _cleanup_free_ char *dir = xasprintf("%s/%s", a->sandboxes_dir, c->id);
    f->wd = inotify_add_watch(a->inotify_fd, dir, WATCH_MASK);
    f->next = a->followers;
    a->followers = f;
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(f->conn, follower_closed, f);
    follower_pump(f);
}
