/* SPDX-License-Identifier: Apache-2.0 */
/* examples/seed-framework.c - berth-seed-framework: the seed's two tasks through offers, with
 * the scheduler library (sched/sched.h). It subscribes, waits for one offer from an agent with
 * room for both (3 CPUs and 3 GiB, declining the others), launches task 1 (2 CPUs / 1 GiB) and
 * task 2 (1 CPU / 2 GiB) on it in one ACCEPT, prints every status update until both tasks
 * ended, then ends the framework (TEARDOWN) and exits 0 when both FINISHED. When its stream
 * comes back (a master restart), it RECONCILEs both tasks and prints the answers. One line per
 * event on stdout, for people and for tests/system/test_sched_seed.py. */
#include <getopt.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "sched/sched.h"

#define GiB (1024ULL * 1024 * 1024)

static const char usage[] =
        "Usage: berth-seed-framework --master URL [--token-file FILE] [--cacert FILE]\n"
        "                            [--role ROLE] [--name NAME] [--command CMD]\n"
        "                            [--failover-timeout SECONDS]\n"
        "\n"
        "Replays the seed through berth-master's scheduler API: takes one offer with room\n"
        "for both tasks, launches task 1 (2 CPUs / 1 GiB) and task 2 (1 CPU / 2 GiB) on that\n"
        "agent, follows their updates to the end, then ends the framework. Exit status 0 when\n"
        "both tasks FINISHED. The token file defaults to $BERTH_TOKEN_FILE, the CA to\n"
        "$BERTH_CACERT; CMD (default 'sleep 10') is run by both tasks.\n";

struct seed {
    struct event_base *base;
    struct sched *s;
    const char *role, *command;
    bool launched, done;
    char ids[2][65];
    char ends[2][16];
    int exit_code;
};

static void accepted(struct sched *s, const struct berr *err, char *const *ids, size_t n, void *arg)
{
    struct seed *x = arg;
    if (err && err->errnum == ECANCELED) /* sched_free before the answer: we are ending */
        return;
    if (err || n != 2) {
        x->ids[0][0] = x->ids[1][0] = 0;
        printf("accept refused: %s\n", err ? berr_msg(err) : "no tasks");
        x->launched = false; /* the offer went back: wait for the next */
        (void) sched_revive(s);
        fflush(stdout);
        return;
    }
    for (size_t i = 0; i < 2; i++)
        printf("launched %s seed-task-%zu\n", ids[i], i + 1);
    fflush(stdout);
}

static void on_offers(struct sched *s, const struct ml_offer *offers, size_t n, void *arg)
{
    struct seed *x = arg;
    for (size_t i = 0; i < n; i++) {
        const struct ml_offer *o = &offers[i];
        const char *id = o->id;
        bool room = o->cpus_millis >= 3000 && o->mem_bytes >= 3 * GiB;
        printf("offer %s agent %s (%s) role %s cpus %.3f mem %llu%s\n", id, o->agent_id,
               o->hostname, o->role, (double) o->cpus_millis / 1000,
               (unsigned long long) o->mem_bytes, room ? "" : " (too small)");
        if (x->launched || !room) {
            (void) sched_decline(s, &id, 1, x->launched ? 3600 : 1);
            continue;
        }
        struct ml_task_spec t[2];
        char *shell = (char *) x->command;
        char *argv[] = {"/bin/sh", "-c", shell, NULL};
        for (int k = 0; k < 2; k++) {
            t[k] = (struct ml_task_spec){
                    .name = k == 0 ? "seed-task-1" : "seed-task-2",
                    .command = {.shell = shell, .argv = argv},
                    .cpus_millis = k == 0 ? 2000 : 1000,
                    .mem_bytes = k == 0 ? 1 * GiB : 2 * GiB,
                    .role = (char *) o->role,
            };
        }
        /* our own task ids: updates may arrive before ACCEPT's answer names them */
        char hex[9];
        if (random_hex(hex, 8) < 0)
            snprintf(hex, sizeof(hex), "%08x", (unsigned) getpid());
        for (int k = 0; k < 2; k++)
            snprintf(x->ids[k], sizeof(x->ids[k]), "seed-task-%d-%s", k + 1, hex);
        const char *ids[2] = {x->ids[0], x->ids[1]};
        /* what the two leave stays with the others: refuse it for an hour */
        if (sched_accept(s, &id, 1, t, ids, 2, 3600, accepted, x) == 0)
            x->launched = true;
    }
    fflush(stdout);
    if (x->launched)
        (void) sched_suppress(s); /* no more offers needed */
}

static void on_update(struct sched *s, const struct sched_status *st, void *arg)
{
    (void) s;
    struct seed *x = arg;
    char code[32] = "";
    if (st->has_exit_code)
        snprintf(code, sizeof(code), " %lld", (long long) st->exit_code);
    printf("%s %s %s%s%s%s\n", st->reconciliation ? "reconcile" : "update", st->task_id, st->state,
           st->reason ? " " : "", st->reason ? st->reason : "", code);
    bool terminal = streq(st->state, "FINISHED") || streq(st->state, "FAILED") ||
                    streq(st->state, "KILLED") || streq(st->state, "LOST");
    for (int k = 0; terminal && k < 2; k++)
        if (streq(x->ids[k], st->task_id))
            snprintf(x->ends[k], sizeof(x->ends[k]), "%s", st->state);
    if (x->ends[0][0] && x->ends[1][0] && !x->done) {
        x->done = true;
        x->exit_code = streq(x->ends[0], "FINISHED") && streq(x->ends[1], "FINISHED") ? 0 : 1;
        printf("done: %s %s\n", x->ends[0], x->ends[1]);
        if (sched_teardown(x->s) < 0)
            event_base_loopexit(x->base, NULL);
    }
    fflush(stdout);
}

static void on_subscribed(struct sched *s, const char *id, bool again, void *arg)
{
    struct seed *x = arg;
    printf("subscribed %s%s\n", id, again ? " again" : "");
    fflush(stdout);
    if (again && x->ids[0][0]) { /* what became of the tasks while we were away? */
        const char *ids[2] = {x->ids[0], x->ids[1]};
        (void) sched_reconcile(s, ids, 2);
    }
}

static void on_error(struct sched *s, const char *call, enum berr_code code, const char *msg,
                     bool fatal, void *arg)
{
    (void) s, (void) code;
    struct seed *x = arg;
    if (fatal && x->done) { /* our own TEARDOWN ended the stream */
        event_base_loopexit(x->base, NULL);
        return;
    }
    fprintf(stderr, "berth-seed-framework: %s: %s%s\n", call, msg, fatal ? " (giving up)" : "");
    if (fatal) {
        x->exit_code = 1;
        event_base_loopexit(x->base, NULL);
    }
}

static void on_disconnected(struct sched *s, const char *why, void *arg)
{
    (void) s, (void) arg;
    printf("disconnected: %s\n", why);
    fflush(stdout);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void) sig, (void) what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
            {"master", required_argument, NULL, 'm'},
            {"token-file", required_argument, NULL, 't'},
            {"cacert", required_argument, NULL, 'c'},
            {"role", required_argument, NULL, 'r'},
            {"name", required_argument, NULL, 'n'},
            {"command", required_argument, NULL, 'x'},
            {"failover-timeout", required_argument, NULL, 'f'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {0},
    };
    const char *master = NULL, *token_file = getenv("BERTH_TOKEN_FILE");
    const char *cacert = getenv("BERTH_CACERT"), *name = "berth-seed";
    struct seed x = {.role = "*", .command = "sleep 10", .exit_code = 1};
    double failover = -1;
    int c;
    log_set_ident("berth-seed-framework");
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'm')
            master = optarg;
        else if (c == 't')
            token_file = optarg;
        else if (c == 'c')
            cacert = optarg;
        else if (c == 'r')
            x.role = optarg;
        else if (c == 'n')
            name = optarg;
        else if (c == 'x')
            x.command = optarg;
        else if (c == 'f')
            failover = strtod(optarg, NULL);
        else if (c == 'V')
            return printf("berth-seed-framework %s\n", BERTH_VERSION) < 0;
        else
            return fputs(usage, c == 'h' ? stdout : stderr), c == 'h' ? 0 : 1;
    }
    _cleanup_free_ char *token = NULL;
    if (!master || !token_file || read_file_alloc(token_file, 4096, &token, NULL) < 0) {
        fprintf(stderr, "berth-seed-framework: --master URL and a readable --token-file are "
                        "needed (see --help)\n");
        return 1;
    }
    token[strcspn(token, "\r\n")] = 0;
    signal(SIGPIPE, SIG_IGN);
    x.base = event_base_new();
    const char *roles[] = {x.role, NULL};
    struct sched_config cfg = {.master = master,
                               .token = token,
                               .cacert = cacert && cacert[0] ? cacert : NULL,
                               .name = name,
                               .roles = roles,
                               .failover_timeout = failover};
    struct sched_callbacks cb = {.subscribed = on_subscribed,
                                 .offers = on_offers,
                                 .update = on_update,
                                 .error = on_error,
                                 .disconnected = on_disconnected};
    _cleanup_berr_ struct berr *err = NULL;
    if (!x.base || sched_new(x.base, &cfg, &cb, &x, &x.s, &err) < 0) {
        fprintf(stderr, "berth-seed-framework: %s\n", err ? berr_msg(err) : "no event base");
        return 1;
    }
    struct event *sigs[] = {evsignal_new(x.base, SIGINT, on_signal, x.base),
                            evsignal_new(x.base, SIGTERM, on_signal, x.base)};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        event_add(sigs[i], NULL);
    sched_start(x.s);
    event_base_dispatch(x.base);
    sched_free(x.s);
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        event_free(sigs[i]);
    event_base_free(x.base);
    return x.exit_code;
}
