/* SPDX-License-Identifier: Apache-2.0 */
/* executor/main.c - berth-executor's entry: arguments, --help/--version, and the choice
 * between starting a sandbox (launch.c, then supervise.c as pid 1), running a command
 * in a running one (exec.c) and building the agent's sandbox template (template.c). The
 * agent starts it; docs/design/sandbox.md has the contract. */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <string.h>

#include "executor/executor.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: berth-executor --runtime-dir DIR\n"
               "       berth-executor --runtime-dir DIR --exec-pid PID -- CMD [ARGS...]\n"
               "       berth-executor --template DIR\n"
               "       berth-executor --spare net|host\n"
               "\n"
               "Started by berth-agent: sets up the sandbox described by DIR/spec.json, runs\n"
               "the task in it as pid 1, and reports through fd 3 and DIR/status.json.\n"
               "With --exec-pid, runs CMD inside the running sandbox whose executor is PID.\n"
               "With --template, builds the agent's sandbox template from DIR/spec.json in its\n"
               "mount namespace and sends the agent that namespace over fd 3.\n"
               "With --spare, starts ahead of its launch and waits on fd 0 for the agent to\n"
               "send the runtime directory (net: it has its own network namespace).\n"
               "\n"
               "  --runtime-dir DIR  the container's runtime directory\n"
               "  --exec-pid PID     exec mode (berthctl exec)\n"
               "  --template DIR     template mode (berth-agent, at start and on mount changes)\n"
               "  --spare MODE       spare mode (berth-agent, ahead of launches)\n"
               "  --debug            log at debug level\n"
               "  --help, --version\n");
}

void exe_done(struct exe *e)
{
    iso_spec_done(&e->spec);
    iso_task_plan_done(&e->plan);
    for (size_t i = 0; e->envp && e->envp[i]; i++)
        free(e->envp[i]);
    free(e->envp);
    e->envp = NULL;
    const int fds[] = {e->template_fd, e->runtime_fd,  e->out_fd,     e->err_fd,
                       e->sig_fd,      e->timer_fd,    e->sandbox_fd, e->relay[0].rd,
                       e->relay[0].wr, e->relay[1].rd, e->relay[1].wr};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static const int exe_ignored[] = {SIGPIPE};

void exe_signals_own(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(exe_ignored); i++)
        signal(exe_ignored[i], SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
}

void exe_signals_default(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(exe_ignored); i++)
        signal(exe_ignored[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int main(int argc, char **argv)
{
    struct exe e = {.runtime_fd = -1,
                    .status_fd = -1,
                    .out_fd = -1,
                    .err_fd = -1,
                    .sig_fd = -1,
                    .timer_fd = -1,
                    .sandbox_fd = -1,
                    .relay = {{-1, -1, 0}, {-1, -1, 0}}};
    /* First, before any open(): a closed fd 3 must not be mistaken for the status pipe. */
    exe_status_init(&e);
    e.template_fd = -1;
    if (fcntl(EXE_TEMPLATE_FD, F_SETFD, FD_CLOEXEC) == 0)
        e.template_fd = EXE_TEMPLATE_FD;
    log_set_ident("berth-executor");
    exe_signals_own();

    static const struct option opts[] = {
            {"runtime-dir", required_argument, NULL, 'r'},
            {"exec-pid", required_argument, NULL, 'p'},
            {"template", required_argument, NULL, 't'},
            {"spare", required_argument, NULL, 's'},
            {"debug", no_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {0},
    };
    const char *exec_pid = NULL, *template_dir = NULL, *spare = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            e.runtime_dir = optarg;
            break;
        case 'p':
            exec_pid = optarg;
            break;
        case 't':
            template_dir = optarg;
            break;
        case 's':
            spare = optarg;
            break;
        case 'd':
            log_set_level(LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("berth-executor %s\n", BERTH_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (template_dir) {
        int rc = exe_template(&e, template_dir);
        exe_done(&e);
        return rc;
    }
    if (spare) {
        if (!streq(spare, "net") && !streq(spare, "host")) {
            fprintf(stderr, "berth-executor: bad --spare '%s' (net or host)\n", spare);
            return 2;
        }
        int rc = exe_spare(&e, argv[0], streq(spare, "net"));
        exe_done(&e);
        return rc;
    }
    if (!e.runtime_dir) {
        fprintf(stderr, "berth-executor: --runtime-dir is required\n");
        return 2;
    }
    int rc;
    if (exec_pid) {
        uint64_t pid;
        if (parse_u64(exec_pid, &pid) < 0 || pid == 0 || pid > INT32_MAX) {
            fprintf(stderr, "berth-executor: bad --exec-pid '%s'\n", exec_pid);
            return 2;
        }
        if (optind >= argc) {
            fprintf(stderr, "berth-executor: --exec-pid needs a command after --\n");
            return 2;
        }
        rc = exe_exec(&e, (pid_t) pid, argv + optind);
    } else {
        if (optind < argc) {
            fprintf(stderr, "berth-executor: unexpected argument '%s'\n", argv[optind]);
            return 2;
        }
        rc = exe_run(&e);
    }
    exe_done(&e);
    return rc;
}
