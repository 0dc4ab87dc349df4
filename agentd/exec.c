/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/exec.c - POST /v1/containers/{id}/exec: runs a command inside a running sandbox by
 * starting `berth-executor --exec-pid PID` in the container's cgroups; the executor joins the
 * sandbox's namespaces and applies the task's user, caps and seccomp. Output is collected
 * (1 MiB per stream) and returned with the exit status when the process ends. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>

#include "agentd/agent.h"

#define EXEC_MAX_OUTPUT (1u << 20)

struct exec_run {
    struct agent *a;
    struct evhttp_request *req; /* NULL once the client went away */
    struct evhttp_connection *conn;
    int pidfd, out_fd, err_fd;
    struct event *ev_exit, *ev_out, *ev_err;
    struct evbuffer *out, *errb;
    struct exec_run *next;
};

static void run_free(struct exec_run *r)
{
    struct agent *a = r->a;
    for (struct exec_run **p = &a->execs; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    if (r->conn && r->req)
        evhttp_connection_set_closecb(r->conn, NULL, NULL);
    if (r->ev_exit)
        event_free(r->ev_exit);
    if (r->ev_out)
        event_free(r->ev_out);
    if (r->ev_err)
        event_free(r->ev_err);
    closep(&r->pidfd);
    closep(&r->out_fd);
    closep(&r->err_fd);
    evbuffer_free(r->out);
    evbuffer_free(r->errb);
    free(r);
}

static void pipe_read(int fd, struct evbuffer *buf)
{
    char tmp[16384];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof(tmp))) > 0) {
        size_t have = evbuffer_get_length(buf);
        if (have < EXEC_MAX_OUTPUT)
            evbuffer_add(buf, tmp,
                         (size_t) n < EXEC_MAX_OUTPUT - have ? (size_t) n : EXEC_MAX_OUTPUT - have);
    }
}

static void on_out(evutil_socket_t fd, short what, void *arg)
{
    (void) what;
    struct exec_run *r = arg;
    pipe_read(fd, fd == r->out_fd ? r->out : r->errb);
}

static void gen_buf(yajl_gen g, const char *key, struct evbuffer *b)
{
    json_str(g, key);
    size_t len = evbuffer_get_length(b);
    const unsigned char *p = evbuffer_pullup(b, -1);
    yajl_gen_string(g, p ? p : (const unsigned char *) "", len);
}

static void on_exit_run(evutil_socket_t fd, short what, void *arg)
{
    (void) fd, (void) what;
    struct exec_run *r = arg;
    siginfo_t si = {0};
    if (waitid(P_PIDFD, (id_t) r->pidfd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
        return;
    pipe_read(r->out_fd, r->out);
    pipe_read(r->err_fd, r->errb);
    if (r->req) {
        yajl_gen g = yajl_gen_alloc(NULL);
        /* output may be any bytes: yajl would refuse invalid UTF-8 only when validating */
        yajl_gen_map_open(g);
        /* the exec helper ends the way the command did: by its signal, or its exit code */
        int code = si.si_code == CLD_EXITED ? si.si_status : -1;
        int sig = si.si_code == CLD_EXITED ? 0 : si.si_status;
        if (code >= 0)
            json_kv_i64(g, "exit_code", code);
        else
            json_kv_null(g, "exit_code");
        if (sig)
            json_kv_i64(g, "signal", sig);
        else
            json_kv_null(g, "signal");
        gen_buf(g, "stdout", r->out);
        gen_buf(g, "stderr", r->errb);
        yajl_gen_map_close(g);
        evhttp_connection_set_closecb(r->conn, NULL, NULL);
        api_reply_json(r->req, 200, g);
        r->req = NULL;
        yajl_gen_free(g);
    }
    run_free(r);
}

static void on_client_gone(struct evhttp_connection *conn, void *arg)
{
    (void) conn;
    struct exec_run *r = arg;
    api_request_gone(r->req);
    r->req = NULL; /* the process still gets reaped when it ends */
}

void exec_serve(struct agent *a, struct container *c, struct evhttp_request *req)
{
    _cleanup_berr_ struct berr *err = NULL;
    if (c->state != ML_RUNNING || !c->cg || c->pid <= 0)
        return api_fail(req, BERR_CONFLICT, "container '%s' is %s, not RUNNING", c->id,
                        ml_state_name(c->state));
    size_t len;
    _cleanup_free_ char *body = api_read_body(req, &len);
    if (!body)
        return;
    yajl_val v = json_parse(body, len, &err);
    struct ml_command cmd = {0};
    if (!v || ml_command_parse(v, &cmd, &err) < 0) {
        yajl_tree_free(v);
        berr_wrap(&err, "exec");
        return api_reply_error(req, err);
    }
    yajl_tree_free(v);
    _cleanup_free_ char *rdir = xasprintf("%s/%s", a->runtime_root, c->id);
    char pidbuf[16];
    snprintf(pidbuf, sizeof(pidbuf), "%d", (int) c->pid);
    char **args = agent_exec_argv(a, rdir, pidbuf, cmd.argv);
    int op[2] = {-1, -1}, ep[2] = {-1, -1};
    _cleanup_close_ int devnull = agent_dup_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0 || devnull < 0) {
        berr_setc(&err, errno, BERR_INTERNAL, "exec pipes: %s", strerror(errno));
        goto fail;
    }
    for (int i = 0; i < 2; i++) {
        op[i] = agent_dup_high(op[i]);
        ep[i] = agent_dup_high(ep[i]);
    }
    struct spawn sp = {
            .path = a->executor_path,
            .argv = args,
            .fd = {devnull, op[1], ep[1], -1},
            .cg = c->cg,
    };
    pid_t pid;
    int pidfd;
    if (agent_spawn(a, &sp, &pid, &pidfd, &err) < 0)
        goto fail;
    close(op[1]);
    close(ep[1]);
    struct exec_run *r = xzalloc(sizeof(*r));
    r->a = a;
    r->req = req;
    r->conn = evhttp_request_get_connection(req);
    r->pidfd = pidfd;
    r->out_fd = op[0];
    r->err_fd = ep[0];
    fcntl(r->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(r->err_fd, F_SETFL, O_NONBLOCK);
    r->out = evbuffer_new();
    r->errb = evbuffer_new();
    r->ev_exit = event_new(a->base, pidfd, EV_READ | EV_PERSIST, on_exit_run, r);
    r->ev_out = event_new(a->base, r->out_fd, EV_READ | EV_PERSIST, on_out, r);
    r->ev_err = event_new(a->base, r->err_fd, EV_READ | EV_PERSIST, on_out, r);
    event_add(r->ev_exit, NULL);
    event_add(r->ev_out, NULL);
    event_add(r->ev_err, NULL);
    r->next = a->execs;
    a->execs = r;
    evhttp_connection_set_closecb(r->conn, on_client_gone, r);
    free(args);
    ml_command_done(&cmd);
    return;
fail:
    for (int i = 0; i < 2; i++) {
        if (op[i] >= 0)
            close(op[i]);
        if (ep[i] >= 0)
            close(ep[i]);
    }
    free(args);
    ml_command_done(&cmd);
    api_reply_error(req, err);
}

void exec_free_all(struct agent *a)
{
    while (a->execs) {
        struct exec_run *r = a->execs;
        a->execs = r->next; /* unlinked here: run_free finds it in no list */
        r->next = NULL;
        if (r->req) {
            evhttp_connection_set_closecb(r->conn, NULL, NULL);
            evhttp_send_error(r->req, 503, "agent stopping");
            r->req = NULL;
        }
        /* the exec'd command stays in the sandbox: it ends with the task */
        run_free(r);
    }
}

char **agent_exec_argv(const struct agent *a, char *rdir, char *pid, char *const *cmd)
{
    size_t n = 0;
    while (cmd[n])
        n++;
    char **args = xcalloc(n + 7, sizeof(char *));
    size_t k = 0;
    args[k++] = a->executor_path;
    args[k++] = (char *) "--runtime-dir";
    args[k++] = rdir;
    args[k++] = (char *) "--exec-pid";
    args[k++] = pid;
    args[k++] = (char *) "--";
    for (size_t i = 0; i < n; i++)
        args[k++] = cmd[i];
    return args;
}
