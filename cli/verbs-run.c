/* SPDX-License-Identifier: Apache-2.0 */
/* cli/verbs-run.c - the verbs that start something and report how it ended: `run` (launch,
 * optionally --wait), `wait` and `exec`. Their exit status is the task's (ctl_end_status).
 * run-request.c builds the bodies; verbs-ctr.c holds the read-only and kill/rm verbs. */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

/* Fill a ctl_end from a container object (borrowed strings). */
static void end_from_json(yajl_val ctr, struct ctl_end *e)
{
    double d;
    *e = (struct ctl_end){
            .state = json_get_str(ctr, "state"),
            .reason = json_get_str(ctr, "reason"),
            .message = json_get_str(ctr, "message"),
    };
    if (json_get_double(ctr, "exit_code", &d)) {
        e->has_exit_code = true;
        e->exit_code = (int64_t) d;
    }
    if (json_get_double(ctr, "signal", &d)) {
        e->has_signal = true;
        e->signal = (int64_t) d;
    }
}

int ctl_report_end(yajl_val ctr, const char *id)
{
    struct ctl_end e;
    end_from_json(ctr, &e);
    int status = ctl_end_status(&e);
    if (!e.state || !streq(e.state, "FINISHED")) {
        char line[1400];
        const char *name = json_get_str(ctr, "name");
        ctl_end_describe(&e, line, sizeof(line));
        fflush(stdout);
        fprintf(stderr, "berthctl: '%s' %s\n", name ? name : id, line);
    }
    return status;
}

/* GET .../wait until the container is terminal; returns its exit status (>= 0). The long
 * poll is asked again should a proxy or the agent ever answer before the end. */
static int wait_for(struct ctl *ctl, const char *id, bool json, struct berr **err)
{
    _cleanup_free_ char *path = ctl_ctr_path(id, "/wait");
    yajl_val ctr = NULL;
    for (;;) {
        int r = ctl_call(ctl, "GET", path, NULL, &ctr, err);
        if (r < 0)
            return r;
        if (!ctr || ctl_state_terminal(json_get_str(ctr, "state")))
            break;
        yajl_tree_free(ctr);
        ctr = NULL;
        sleep(1);
    }
    if (json)
        ctl_json_print(stdout, ctr);
    int r = ctl_report_end(ctr, id);
    yajl_tree_free(ctr);
    return r;
}

int ctl_verb_run(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    struct ctl_run_opts o;
    int r = ctl_run_parse(argc, argv, &o, err);
    if (r < 0 || o.help) {
        ctl_run_opts_free(&o);
        return r < 0 ? r : ctl_print_usage("run");
    }
    _cleanup_free_ char *body = NULL;
    r = ctl_run_body(&o, &body, err);
    if (r < 0) {
        ctl_run_opts_free(&o);
        return r;
    }
    yajl_val ctr = NULL;
    r = ctl_call(ctl, "POST", "/v1/containers", body, &ctr, err);
    if (r < 0) {
        ctl_run_opts_free(&o);
        return r;
    }
    const char *id = json_get_str(ctr, "id");
    if (!id) {
        yajl_tree_free(ctr);
        ctl_run_opts_free(&o);
        return berr_setx(err, EPROTO, "the agent's launch answer has no container id");
    }
    if (!o.wait) {
        if (o.json)
            ctl_json_print(stdout, ctr);
        else
            printf("%s\n", id);
        r = 0;
    } else {
        _cleanup_free_ char *idcopy = xstrdup(id);
        r = wait_for(ctl, idcopy, o.json, err);
    }
    yajl_tree_free(ctr);
    ctl_run_opts_free(&o);
    return r;
}

int ctl_verb_wait(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    bool json = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:o:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage("wait");
        if (c == 'o' && streq(optarg, "json"))
            json = true;
        else if (c == 'o')
            return berr_setx(err, EINVAL, "wait: unknown output format '%s'", optarg);
        else
            return ctl_usage_error("wait", c, argc, argv, err);
    }
    if (argc - optind != 1)
        return berr_setx(err, EINVAL, "wait: expected exactly one container ID");
    return wait_for(ctl, argv[optind], json, err);
}

int ctl_verb_exec(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"shell", required_argument, NULL, 's'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    const char *shell = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage("exec");
        if (c == 's')
            shell = optarg;
        else
            return ctl_usage_error("exec", c, argc, argv, err);
    }
    if (optind >= argc)
        return berr_setx(err, EINVAL, "exec: expected a container ID and a command");
    const char *id = argv[optind++];
    if (optind < argc && streq(argv[optind], "--"))
        optind++;
    int cargc = argc - optind;
    if ((cargc == 0) == (shell == NULL))
        return berr_setx(err, EINVAL, "exec: give a command after the ID (or --shell CMD)");

    _cleanup_free_ char *body = ctl_exec_body(cargc, argv + optind, shell);
    _cleanup_free_ char *path = ctl_ctr_path(id, "/exec");
    yajl_val res = NULL;
    int r = ctl_call(ctl, "POST", path, body, &res, err);
    if (r < 0)
        return r;
    const char *out = json_get_str(res, "stdout"), *errout = json_get_str(res, "stderr");
    int w = out ? write_all(STDOUT_FILENO, out, strlen(out)) : 0;
    if (w < 0 && w != -EPIPE) {
        r = berr_set(err, -w, "write stdout");
        yajl_tree_free(res);
        return r;
    }
    if (errout)
        (void) write_all(STDERR_FILENO, errout, strlen(errout));
    struct ctl_end e = {.state = "EXITED"};
    double d;
    if (json_get_double(res, "exit_code", &d)) {
        e.has_exit_code = true;
        e.exit_code = (int64_t) d;
    } else if (json_get_double(res, "signal", &d)) {
        e.has_signal = true;
        e.signal = (int64_t) d;
    }
    r = (e.has_exit_code || e.has_signal) ? ctl_end_status(&e) : 0;
    yajl_tree_free(res);
    return r;
}
