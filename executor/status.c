/* executor/status.c - what berth-executor tells the agent: one line on the status pipe
 * (fd 3: "RUNNING" or "ERROR <errno> <msg>") while the agent waits for the launch, and
 * runtime_dir/status.json for the end, which survives an agent restart. launch.c and
 * supervise.c decide what to report; this file only formats and writes. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <yajl/yajl_gen.h>

#include "executor/executor.h"

void exe_status_init(struct exe *e)
{
    e->status_fd = -1;
    if (fcntl(EXE_STATUS_FD, F_GETFD) < 0)
        return;
    (void) fcntl(EXE_STATUS_FD, F_SETFD, FD_CLOEXEC);
    e->status_fd = EXE_STATUS_FD;
}

static void status_line(struct exe *e, const char *line)
{
    if (e->status_fd < 0)
        return;
    /* The agent may have gone away: a failed write must not kill us (SIGPIPE is ignored). */
    if (write_all(e->status_fd, line, strlen(line)) < 0)
        log_debug("status pipe write failed");
}

void exe_report_running(struct exe *e)
{
    status_line(e, "RUNNING\n");
}

/* Write a small JSON object to status.json atomically. Never fails loudly: the status
 * line and our exit status carry the same information. */
static void status_file(struct exe *e, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;
    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok || e->runtime_fd < 0)
        return;
    _cleanup_free_ char *data = xasprintf("%.*s\n", (int) len, (const char *) buf);
    int r = write_file_replace(e->runtime_fd, "status.json", data, strlen(data), 0644);
    if (r < 0)
        log_msg(LOG_WARNING, -r, "write status.json");
}

static void gen_key(yajl_gen g, const char *k)
{
    yajl_gen_string(g, (const unsigned char *) k, strlen(k));
}

void exe_report_launch_error(struct exe *e, int errnum, const char *msg)
{
    if (errnum <= 0)
        errnum = EIO;
    log_error("launch failed: %s", msg);
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g) {
        yajl_gen_map_open(g);
        gen_key(g, "launch_error");
        yajl_gen_string(g, (const unsigned char *) msg, strlen(msg));
        gen_key(g, "errno");
        yajl_gen_integer(g, errnum);
        yajl_gen_map_close(g);
        status_file(e, g);
        yajl_gen_free(g);
    }
    /* one line: newlines in the message would split the protocol */
    _cleanup_free_ char *line = xasprintf("ERROR %d %s\n", errnum, msg);
    for (char *p = line; p[0] && p[1]; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    status_line(e, line);
}

int exe_report_exit(struct exe *e, int wstatus)
{
    bool sig = WIFSIGNALED(wstatus);
    int n = sig ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus);
    log_info("task ended: %s %d", sig ? "signal" : "exit code", n);
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g) {
        yajl_gen_map_open(g);
        gen_key(g, sig ? "signal" : "exit_code");
        yajl_gen_integer(g, n);
        yajl_gen_map_close(g);
        status_file(e, g);
        yajl_gen_free(g);
    }
    return sig ? 128 + n : n;
}
