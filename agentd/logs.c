/* agentd/logs.c - GET /v1/containers/{id}/logs: the task's stdout/stderr files from its
 * sandbox, whole, the last N lines, or followed: a chunked reply fed by inotify (IN_MODIFY)
 * until the container ends and the file is drained. No polling. lifecycle.c tells this
 * file when a container ends (logs_container_ended). */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "agentd/agent.h"

struct follower {
    struct agent *a;
    char id[17];
    int fd;
    int wd;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct follower *next;
};

/* Offset where the last n lines of fd start. */
static off_t tail_offset(int fd, uint64_t n)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size == 0)
        return 0;
    off_t end = st.st_size, pos = end;
    char buf[8192];
    uint64_t lines = 0;
    /* a final newline ends the last line; it does not start another */
    bool skip_last = true;
    while (pos > 0) {
        size_t chunk = pos > (off_t) sizeof(buf) ? sizeof(buf) : (size_t) pos;
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
    return 0;
}

/* Append what is new in fd to out; returns bytes read or -errno. */
static ssize_t drain(int fd, struct evbuffer *out)
{
    char buf[65536];
    ssize_t total = 0, n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        evbuffer_add(out, buf, (size_t) n);
        total += n;
        if (total >= 4 * 1024 * 1024)
            break; /* let the loop breathe; the next event brings the rest */
    }
    return n < 0 ? -errno : total;
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
    close(f->fd);
    free(f);
}

static void follower_closed(struct evhttp_connection *conn, void *arg)
{
    (void) conn;
    struct follower *f = arg;
    follower_free(f->a, f);
}

static void follower_push(struct follower *f, bool end)
{
    struct evbuffer *out = evbuffer_new();
    drain(f->fd, out);
    if (evbuffer_get_length(out) > 0)
        evhttp_send_reply_chunk(f->req, out);
    evbuffer_free(out);
    if (end) {
        evhttp_connection_set_closecb(f->conn, NULL, NULL);
        evhttp_send_reply_end(f->req);
        follower_free(f->a, f);
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
            if (f->wd == ev->wd)
                follower_push(f, false);
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
        if (streq(f->id, id))
            follower_push(f, true);
    }
}

static void bad(struct evhttp_request *req, const char *code, const char *msg)
{
    struct berr e = {.errnum = EINVAL};
    snprintf(e.code, sizeof(e.code), "%s", code);
    snprintf(e.msg, sizeof(e.msg), "%s", msg);
    api_reply_error(req, &e);
}

void logs_serve(struct agent *a, struct container *c, struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (evhttp_parse_query_str(query ? query : "", &q) < 0)
        return bad(req, "INVALID_ARGUMENT", "bad query string");
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
    evhttp_clear_headers(&q);
    if (bad_arg)
        return bad(req, "INVALID_ARGUMENT",
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
        struct berr e = {.errnum = errno};
        snprintf(e.code, sizeof(e.code), "%s", errno == ENOENT ? "NOT_FOUND" : "INTERNAL");
        snprintf(e.msg, sizeof(e.msg), "open '%s': %s", path, strerror(errno));
        return api_reply_error(req, &e);
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        /* the task owns its sandbox: a FIFO or device planted as "stdout" is not its output */
        close(fd);
        return bad(req, "CONFLICT", "the task's output file is not a regular file");
    }
    if (tail_s)
        lseek(fd, tail_offset(fd, tail), SEEK_SET);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    if (!follow || ctr_state_terminal(c->state)) {
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
    f->req = req;
    f->conn = evhttp_request_get_connection(req);
    f->wd = inotify_add_watch(a->inotify_fd, path, IN_MODIFY);
    f->next = a->followers;
    a->followers = f;
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(f->conn, follower_closed, f);
    follower_push(f, false);
}
