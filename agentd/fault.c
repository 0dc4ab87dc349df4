/* SPDX-License-Identifier: Apache-2.0 */
/* agentd/fault.c - fault injection, a test hook: with BERTH_FAULT=POINT[:N] in its
 * environment the agent SIGKILLs itself the Nth time (default: the first) it reaches
 * agent_fault(a, "POINT"), so tests/system/test_recovery.py can crash it between any two
 * steps of the launch, kill, end, remove and recovery paths and check what the next start
 * makes of it. docs/design/recovery.md lists the points; lifecycle.c, launch.c and
 * recover.c place them. Without the variable agent_fault() is one NULL test. */
#include <signal.h>
#include <string.h>

#include "agentd/agent.h"

void agent_fault_init(struct agent *a)
{
    const char *v = getenv("BERTH_FAULT");
    if (!v || !*v)
        return;
    a->fault_point = xstrdup(v);
    a->fault_count = 1;
    char *colon = strchr(a->fault_point, ':');
    uint64_t n;
    if (colon) {
        *colon = 0;
        if (parse_u64(colon + 1, &n) == 0 && n > 0 && n < 1000000)
            a->fault_count = (unsigned) n;
    }
    log_warning("BERTH_FAULT: fault injection armed, the agent kills itself at '%s' (pass %u); "
                "this is a test hook",
                a->fault_point, a->fault_count);
}

void agent_fault(struct agent *a, const char *point)
{
    if (!a->fault_point || !streq(a->fault_point, point) || --a->fault_count > 0)
        return;
    log_warning("BERTH_FAULT: dying at '%s'", point);
    /* SIGKILL, not exit(): no atexit, no teardown, no flush - like a crash or an OOM kill */
    raise(SIGKILL);
}
