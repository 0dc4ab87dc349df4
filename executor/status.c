/* SPDX-License-Identifier: Apache-2.0 */
/* executor/status.c - what berth-executor tells the agent: one line on the status pipe
 * (fd 3) while the agent waits for the launch, and runtime_dir/status.json for the end,
 * which survives an agent restart. The shapes are isolator/status.c's (the agent reads them
 * with the same codec); launch.c and supervise.c decide what to report, this file writes. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

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
    struct iso_status st = {.kind = ISO_STATUS_RUNNING};
    _cleanup_free_ char *line = iso_status_line(&st);
    status_line(e, line);
}

/* status.json, atomically. Never fails loudly: the status line and our exit status carry
 * the same information. */
static void status_file(struct exe *e, const struct iso_status *st)
{
    if (e->runtime_fd < 0)
        return;
    _cleanup_free_ char *data = iso_status_to_json(st);
    int r = write_file_replace(e->runtime_fd, "status.json", data, strlen(data), 0644);
    if (r < 0)
        log_msg(LOG_WARNING, -r, "write status.json");
}

void exe_report_launch_error(struct exe *e, int errnum, const char *msg)
{
    log_error("launch failed: %s", msg);
    struct iso_status st = {.kind = ISO_STATUS_LAUNCH_ERROR,
                            .code = errnum > 0 ? errnum : EIO,
                            .message = (char *) msg};
    status_file(e, &st);
    _cleanup_free_ char *line = iso_status_line(&st);
    status_line(e, line);
}

int exe_report_exit(struct exe *e, int wstatus)
{
    bool sig = WIFSIGNALED(wstatus);
    int n = sig ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus);
    log_info("task ended: %s %d", sig ? "signal" : "exit code", n);
    struct iso_status st = {.kind = sig ? ISO_STATUS_SIGNALED : ISO_STATUS_EXITED, .code = n};
    status_file(e, &st);
    return sig ? 128 + n : n;
}
