/* SPDX-License-Identifier: Apache-2.0 */
/* cli/main.c - berthctl's entry point: global options (--socket, --master, --apps, --help,
 * --version), verb dispatch, and the one place that prints an error and picks the exit
 * status. The verbs live in verbs-*.c, master*.c and apps.c; http.c talks to the agent (or
 * the master, or berth-apps). */
#include <getopt.h>
#include <signal.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    ctl_verb_fn fn;
} verbs[] = {
        {"run", ctl_verb_run},   {"ps", ctl_verb_ps},       {"inspect", ctl_verb_inspect},
        {"logs", ctl_verb_logs}, {"stats", ctl_verb_stats}, {"exec", ctl_verb_exec},
        {"kill", ctl_verb_kill}, {"wait", ctl_verb_wait},   {"rm", ctl_verb_rm},
        {"node", ctl_verb_node}, {"top", ctl_verb_top},
};

/* Parse the global options; returns the index of the verb in argv, 0 when main should exit
 * 0 (help/version printed), or -errno with err set. */
static int parse_global(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"socket", required_argument, NULL, 's'}, {"master", required_argument, NULL, 'm'},
            {"apps", required_argument, NULL, 'a'},   {"token-file", required_argument, NULL, 't'},
            {"cacert", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},      {0},
    };
    const char *token_file = NULL;
    const char *env = getenv("BERTH_SOCKET");
    ctl->socket = env && *env ? env : CTL_DEFAULT_SOCKET;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (!*optarg)
                return berr_setx(err, EINVAL, "--socket: empty path");
            ctl->socket = optarg;
            break;
        case 'm':
        case 'a':
            if (!str_has_prefix(optarg, "http://") && !str_has_prefix(optarg, "https://"))
                return berr_setx(err, EINVAL, "--%s: '%s' is not an http:// or https:// URL",
                                 c == 'm' ? "master" : "apps", optarg);
            if (c == 'm')
                ctl->master = optarg;
            else
                ctl->apps = optarg;
            break;
        case 't':
            token_file = optarg;
            break;
        case 'c':
            ctl->cacert = optarg;
            break;
        case 'h':
            ctl_print_usage(NULL);
            return 0;
        case 'V':
            printf("berthctl %s\n", BERTH_VERSION);
            return 0;
        case ':':
            return berr_setx(err, EINVAL, "option '%s' needs a value (see 'berthctl --help')",
                             argv[optind - 1]);
        default:
            return berr_setx(err, EINVAL, "unknown option '%s' (see 'berthctl --help')",
                             argv[optind - 1]);
        }
    }
    if (ctl->master && ctl->apps)
        return berr_setx(err, EINVAL, "--master and --apps: one peer at a time");
    if (optind >= argc)
        return berr_setx(err, EINVAL, "no verb given (see 'berthctl --help')");
    /* berth-apps has a token of its own: another variable, so both can be exported */
    const char *env_ca = getenv("BERTH_CACERT");
    const char *env_token = getenv(ctl->apps ? "BERTH_APPS_TOKEN_FILE" : "BERTH_TOKEN_FILE");
    if (!ctl->cacert && env_ca && *env_ca)
        ctl->cacert = env_ca;
    if (!token_file && env_token && *env_token)
        token_file = env_token;
    if (token_file) {
        int r = read_file_alloc(token_file, 4096, &ctl->token, NULL);
        if (r < 0)
            return berr_set(err, -r, "--token-file '%s'", token_file);
        ctl->token[strcspn(ctl->token, "\r\n")] = 0;
    }
    ctl->url = ctl->apps ? ctl->apps : ctl->master;
    ctl->peer = ctl->apps ? "berth-apps" : ctl->master ? "the master" : "the agent";
    ctl->error_codes = ctl->apps != NULL;
    return optind;
}

static int dispatch(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    const char *verb = argv[0];
    if (streq(verb, "help"))
        return ctl_print_usage(argc > 1 ? argv[1] : NULL);
    if (ctl->apps)
        return ctl_apps_dispatch(ctl, argc, argv, err);
    if (ctl->master)
        return ctl_master_dispatch(ctl, argc, argv, err);
    for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
        if (streq(verbs[i].name, verb))
            return verbs[i].fn(ctl, argc, argv, err);
    if (streq(verb, "agents") || streq(verb, "tasks"))
        return berr_setx(err, EINVAL, "%s: needs --master URL", verb);
    if (streq(verb, "app") && argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h")))
        return ctl_print_usage("app");
    if (streq(verb, "app"))
        return berr_setx(err, EINVAL, "app: needs --apps URL (berth-apps)");
    return berr_setx(err, EINVAL, "unknown verb '%s' (see 'berthctl --help')", verb);
}

int main(int argc, char **argv)
{
    struct ctl ctl = {0};
    _cleanup_berr_ struct berr *err = NULL;
    log_set_ident("berthctl");
    /* a closed pipe (`berthctl logs -f x | head`) must be an EPIPE we can handle, not death */
    signal(SIGPIPE, SIG_IGN);

    /* nothing is set up before a verb calls: the transports connect (and load libcurl for
     * --master) on their first call, so --help and --version cost a bare process start */
    int r = parse_global(&ctl, argc, argv, &err);
    if (r > 0)
        r = dispatch(&ctl, argc - r, argv + r, &err);
    ctl_http_done(&ctl);
    if (fflush(stdout) != 0 && errno != EPIPE && r >= 0)
        r = berr_set(&err, errno, "write stdout");
    if (r < 0) {
        log_error("%s", err ? berr_msg(err) : strerror(-r));
        return 1;
    }
    return r > 255 ? 255 : r;
}
