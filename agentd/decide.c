/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/decide.c - the agent's pure decisions, apart from any I/O so that their whole
 * tables are unit-tested (tests/unit/agentd_test.c): how a task ended, from what is known
 * once its executor is gone (lifecycle.c gathers the facts and applies the outcome), and
 * which status updates the master has not had for a task (link.c sends them). */
#include <string.h>
#include <sys/wait.h>

#include "agentd/agent.h"

static void outcome(struct ctr_outcome *o, enum ml_state st, enum ml_reason reason)
{
    o->state = st;
    o->reason = reason;
}

void ctr_decide_end(const struct ctr_end_facts *f, struct ctr_outcome *ret)
{
    struct ctr_outcome o = {.exit_code = -1};
    const struct iso_status *st = f->status;
    int code = -1, sig = 0;
    if (st && st->kind == ISO_STATUS_EXITED)
        code = st->code;
    else if (st && st->kind == ISO_STATUS_SIGNALED)
        sig = st->code;
    /* a launch error: status.json's, else the status pipe's ERROR line (the same news,
     * earlier, when the executor died before writing the file) */
    const char *launch_error = st && st->kind == ISO_STATUS_LAUNCH_ERROR
                                       ? (st->message ? st->message : "launch failed")
                                       : f->pipe_error;
    if (launch_error) {
        snprintf(o.message, sizeof(o.message), "%s", launch_error);
        outcome(&o, ML_FAILED, ML_REASON_LAUNCH_FAILED);
        *ret = o;
        return;
    }
    if (!st && f->wstatus < 0 && !f->kill_requested && f->oom_kills == 0) {
        /* no status.json, and its exit status went to its new parent: saying FINISHED or
         * FAILED would be a guess */
        snprintf(o.message, sizeof(o.message),
                 "the task ended and left no exit status (berth-executor's status.json), and "
                 "the executor was not the agent's child (an agent restart came between): how "
                 "it ended is unknown");
        outcome(&o, ML_LOST, ML_REASON_AGENT_RESTARTED_LOST);
        *ret = o;
        return;
    }
    if (!st && f->wstatus >= 0) {
        /* no word from the executor: it died itself (SIGKILL by request, OOM, crash) */
        if (WIFSIGNALED(f->wstatus))
            sig = WTERMSIG(f->wstatus);
        else if (WIFEXITED(f->wstatus))
            code = WEXITSTATUS(f->wstatus);
        if (!f->kill_requested)
            snprintf(o.message, sizeof(o.message), "berth-executor ended without a status (%s %d)",
                     sig ? "signal" : "exit", sig ? sig : code);
    }
    o.exit_code = sig ? -1 : code;
    o.signal = sig;
    if (f->kill_requested) {
        /* a limit's kill (enforce_ports) says which limit; the container keeps its message */
        outcome(&o, ML_KILLED, f->limitation ? f->limitation : ML_REASON_KILLED_BY_REQUEST);
    } else if (f->oom_kills > 0 && !(code == 0 && !sig)) {
        snprintf(o.message, sizeof(o.message),
                 "the kernel OOM-killed %llu process(es) at the memory limit",
                 (unsigned long long) f->oom_kills);
        outcome(&o, ML_FAILED, ML_REASON_MEMORY_LIMIT);
    } else if (sig) {
        outcome(&o, ML_FAILED, ML_REASON_SIGNALED);
    } else {
        outcome(&o, code == 0 ? ML_FINISHED : ML_FAILED, ML_REASON_EXITED);
    }
    *ret = o;
}

size_t link_catch_up_states(int last, enum ml_state now, bool has_pid, bool has_started,
                            enum ml_state out[3])
{
    size_t n = 0;
    if (last >= 0 && ml_state_terminal((enum ml_state) last))
        return 0; /* the master has the end: nothing can follow it */
    if ((int) now <= last)
        return 0;
    /* STARTING and RUNNING only when the container really passed through them: a launch
     * that failed before its executor ran never started */
    if (now >= ML_STARTING && last < ML_STARTING && (now == ML_STARTING || has_pid))
        out[n++] = ML_STARTING;
    if (now >= ML_RUNNING && last < ML_RUNNING && (now == ML_RUNNING || has_started))
        out[n++] = ML_RUNNING;
    if (ml_state_terminal(now))
        out[n++] = now;
    return n;
}
