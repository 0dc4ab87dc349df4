/* SPDX-License-Identifier: Apache-2.0 */
/* cli/run-request.c - turns `berthctl run` options into the POST /v1/containers body and
 * `exec` arguments into its body, validating quantities before the agent sees them. Pure
 * (getopt + yajl_gen, no I/O) so tests/unit/cli_test.c covers it; verbs-run.c sends them. */
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"

int ctl_usage_error(const char *verb, int c, int argc, char **argv, struct berr **err)
{
    const char *arg = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return berr_setx(err, EINVAL, "%s: option '%s' needs a value (see 'berthctl %s --help')",
                         verb, arg, verb);
    return berr_setx(err, EINVAL, "%s: unknown option '%s' (see 'berthctl %s --help')", verb, arg,
                     verb);
}

static void push(const char ***arr, size_t *n, const char *s)
{
    *arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
    (*arr)[(*n)++] = s;
}

int ctl_run_parse(int argc, char **argv, struct ctl_run_opts *opts, struct berr **err)
{
    enum {
        O_NAME = 256,
        O_CPUS,
        O_CPUS_LIMIT,
        O_MEM,
        O_PIDS,
        O_USER,
        O_SHELL,
        O_WAIT,
        O_ROLE,
        O_PORTS,
        O_NETWORK
    };
    static const struct option longopts[] = {
            {"name", required_argument, NULL, O_NAME},
            {"cpus", required_argument, NULL, O_CPUS},
            {"cpus-limit", required_argument, NULL, O_CPUS_LIMIT},
            {"mem", required_argument, NULL, O_MEM},
            {"memory", required_argument, NULL, O_MEM},
            {"pids", required_argument, NULL, O_PIDS},
            {"user", required_argument, NULL, 'u'},
            {"env", required_argument, NULL, 'e'},
            {"volume", required_argument, NULL, 'v'},
            {"shell", required_argument, NULL, O_SHELL},
            {"role", required_argument, NULL, O_ROLE},
            {"ports", required_argument, NULL, O_PORTS},
            {"network", required_argument, NULL, O_NETWORK},
            {"publish", required_argument, NULL, 'p'},
            {"wait", no_argument, NULL, O_WAIT},
            {"output", required_argument, NULL, 'o'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    *opts = (struct ctl_run_opts){0};
    optind = 0; /* glibc: full re-initialisation, verbs parse their own argv */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:u:e:v:p:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_NAME:
            opts->name = optarg;
            break;
        case O_CPUS:
            opts->cpus = optarg;
            break;
        case O_CPUS_LIMIT:
            opts->cpus_limit = optarg;
            break;
        case O_MEM:
            opts->mem = optarg;
            break;
        case O_PIDS:
            opts->pids = optarg;
            break;
        case 'u':
            opts->user = optarg;
            break;
        case 'e':
            push(&opts->env, &opts->nenv, optarg);
            break;
        case 'v':
            push(&opts->volumes, &opts->nvolumes, optarg);
            break;
        case O_SHELL:
            opts->shell = optarg;
            break;
        case O_ROLE:
            opts->role = optarg;
            break;
        case O_PORTS:
            opts->ports = optarg;
            break;
        case O_NETWORK:
            opts->network = optarg;
            break;
        case 'p':
            push(&opts->publish, &opts->npublish, optarg);
            break;
        case O_WAIT:
            opts->wait = true;
            break;
        case 'o':
            if (!streq(optarg, "json"))
                return berr_setx(err, EINVAL, "run: unknown output format '%s' (only 'json')",
                                 optarg);
            opts->json = true;
            break;
        case 'h':
            opts->help = true;
            return 0;
        default:
            return ctl_usage_error("run", c, argc, argv, err);
        }
    }
    opts->argv = argv + optind;
    opts->argc = argc - optind;
    if (!opts->cpus)
        return berr_setx(err, EINVAL, "run: --cpus is required");
    if (!opts->mem)
        return berr_setx(err, EINVAL, "run: --mem is required");
    if (opts->shell && opts->argc > 0)
        return berr_setx(err, EINVAL, "run: give either --shell CMD or a command, not both");
    if (!opts->shell && opts->argc == 0)
        return berr_setx(err, EINVAL,
                         "run: no command given (berthctl run [OPTIONS] -- CMD ARGS...)");
    return 0;
}

void ctl_run_opts_free(struct ctl_run_opts *opts)
{
    free(opts->env);
    free(opts->volumes);
    free(opts->publish);
    opts->env = opts->volumes = opts->publish = NULL;
    opts->nenv = opts->nvolumes = opts->npublish = 0;
}

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *) s, strlen(s));
}

static void gen_strn(yajl_gen g, const char *s, size_t n)
{
    yajl_gen_string(g, (const unsigned char *) s, n);
}

static yajl_gen gen_new(void)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        abort();
    return g;
}

/* A port number 1-65535 of n characters at s (n 0: absent, *ret 0). */
static bool port_number(const char *s, size_t n, unsigned *ret)
{
    char buf[8];
    uint64_t v = 0;
    *ret = 0;
    if (n == 0)
        return true;
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (parse_u64(buf, &v) < 0 || v < 1 || v > 65535)
        return false;
    *ret = (unsigned) v;
    return true;
}

/* -p HOSTPORT:PORT, HOSTPORT (the same inside) or :PORT (any host port): 0 with the two
 * numbers (0 = any / the host's), or -EINVAL. */
static int parse_publish(const char *s, unsigned *ret_host, unsigned *ret_port)
{
    const char *colon = strchr(s, ':');
    size_t hl = colon ? (size_t) (colon - s) : strlen(s);
    if (!port_number(s, hl, ret_host) ||
        (colon && !port_number(colon + 1, strlen(colon + 1), ret_port)))
        return -EINVAL;
    if (!colon)
        *ret_port = 0;
    return *ret_host || *ret_port ? 0 : -EINVAL;
}

/* Check the quantities so the user hears "--mem '1XB'" rather than a JSON field name. */
static int run_validate(const struct ctl_run_opts *o, uint64_t *ret_pids, struct berr **err)
{
    uint64_t cpus, limit, mem;
    if (parse_cpus(o->cpus, &cpus) < 0)
        return berr_setx(err, EINVAL, "run: --cpus '%s': expected a decimal number > 0", o->cpus);
    if (o->cpus_limit && !streq(o->cpus_limit, "none")) {
        if (parse_cpus(o->cpus_limit, &limit) < 0)
            return berr_setx(err, EINVAL,
                             "run: --cpus-limit '%s': expected a decimal number or 'none'",
                             o->cpus_limit);
        if (limit < cpus)
            return berr_setx(err, EINVAL, "run: --cpus-limit %s is below --cpus %s", o->cpus_limit,
                             o->cpus);
    }
    if (parse_size(o->mem, &mem) < 0 || mem == 0)
        return berr_setx(err, EINVAL, "run: --mem '%s': expected a size such as 512MiB or 1GiB",
                         o->mem);
    if (o->pids && (parse_u64(o->pids, ret_pids) < 0 || *ret_pids == 0))
        return berr_setx(err, EINVAL, "run: --pids '%s': expected a whole number > 0", o->pids);
    for (size_t i = 0; i < o->nenv; i++) {
        const char *eq = strchr(o->env[i], '=');
        if (!eq || eq == o->env[i])
            return berr_setx(err, EINVAL, "run: --env '%s': expected KEY=VALUE", o->env[i]);
    }
    uint64_t nports = 0;
    if (o->ports && (parse_u64(o->ports, &nports) < 0 || nports > 64))
        return berr_setx(err, EINVAL, "run: --ports '%s': expected a count from 0 to 64", o->ports);
    if (o->network && !streq(o->network, "host") && !streq(o->network, "bridge") &&
        !streq(o->network, "none"))
        return berr_setx(err, EINVAL, "run: --network '%s': expected host, bridge or none",
                         o->network);
    for (size_t i = 0; i < o->npublish; i++) {
        unsigned h, p;
        if (parse_publish(o->publish[i], &h, &p) < 0)
            return berr_setx(err, EINVAL,
                             "run: -p '%s': expected HOSTPORT:PORT, HOSTPORT or :PORT (1-65535)",
                             o->publish[i]);
    }
    for (size_t i = 0; i < o->nvolumes; i++) {
        const char *v = o->volumes[i];
        const char *c1 = strchr(v, ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c1 || c1 == v || c1[1] == 0 || c1[1] == ':' ||
            (c2 && !streq(c2 + 1, "ro") && !streq(c2 + 1, "rw")))
            return berr_setx(err, EINVAL, "run: --volume '%s': expected HOST:CONTAINER[:ro]", v);
    }
    return 0;
}

int ctl_run_body(const struct ctl_run_opts *o, char **ret, struct berr **err)
{
    uint64_t pids = 0;
    int r = run_validate(o, &pids, err);
    if (r < 0)
        return r;
    yajl_gen g = gen_new();
    yajl_gen_map_open(g);
    if (o->name) {
        gen_str(g, "name");
        gen_str(g, o->name);
    }
    gen_str(g, "command");
    yajl_gen_map_open(g);
    if (o->shell) {
        gen_str(g, "shell");
        gen_str(g, o->shell);
    } else {
        gen_str(g, "argv");
        yajl_gen_array_open(g);
        for (int i = 0; i < o->argc; i++)
            gen_str(g, o->argv[i]);
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);

    /* quantities go as the user's strings so the agent parses units ("1GiB") itself */
    gen_str(g, "resources");
    yajl_gen_map_open(g);
    gen_str(g, "cpus");
    gen_str(g, o->cpus);
    if (o->cpus_limit) {
        gen_str(g, "cpus_limit");
        gen_str(g, o->cpus_limit);
    }
    gen_str(g, "mem");
    gen_str(g, o->mem);
    if (o->pids) {
        gen_str(g, "pids");
        yajl_gen_integer(g, (long long) pids);
    }
    yajl_gen_map_close(g);

    if (o->user) {
        gen_str(g, "user");
        gen_str(g, o->user);
    }
    if (o->role) {
        gen_str(g, "role");
        gen_str(g, o->role);
    }
    if (o->network) {
        gen_str(g, "network");
        gen_str(g, o->network);
    }
    uint64_t nports = 0;
    if (o->ports)
        (void) parse_u64(o->ports, &nports); /* checked by run_validate */
    if (o->npublish) {
        /* the named ones, then --ports more of any number */
        gen_str(g, "ports");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < o->npublish + nports; i++) {
            unsigned h = 0, p = 0;
            if (i < o->npublish)
                (void) parse_publish(o->publish[i], &h, &p);
            yajl_gen_map_open(g);
            if (h) {
                gen_str(g, "host_port");
                yajl_gen_integer(g, h);
            }
            if (p) {
                gen_str(g, "container_port");
                yajl_gen_integer(g, p);
            }
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
    } else if (o->ports) {
        gen_str(g, "ports");
        yajl_gen_integer(g, (long long) nports);
    }
    if (o->nenv) {
        gen_str(g, "env");
        yajl_gen_map_open(g);
        for (size_t i = 0; i < o->nenv; i++) {
            const char *eq = strchr(o->env[i], '=');
            gen_strn(g, o->env[i], (size_t) (eq - o->env[i]));
            gen_str(g, eq + 1);
        }
        yajl_gen_map_close(g);
    }
    if (o->nvolumes) {
        gen_str(g, "volumes");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < o->nvolumes; i++) {
            const char *v = o->volumes[i];
            const char *c1 = strchr(v, ':');
            const char *c2 = strchr(c1 + 1, ':');
            yajl_gen_map_open(g);
            gen_str(g, "host");
            gen_strn(g, v, (size_t) (c1 - v));
            gen_str(g, "container");
            gen_strn(g, c1 + 1, c2 ? (size_t) (c2 - c1 - 1) : strlen(c1 + 1));
            gen_str(g, "readonly");
            yajl_gen_bool(g, c2 && streq(c2 + 1, "ro"));
            yajl_gen_map_close(g);
        }
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);
    *ret = json_gen_take(g);
    return 0;
}

char *ctl_exec_body(int argc, char *const *argv, const char *shell)
{
    yajl_gen g = gen_new();
    yajl_gen_map_open(g);
    if (shell) {
        gen_str(g, "shell");
        gen_str(g, shell);
    } else {
        gen_str(g, "argv");
        yajl_gen_array_open(g);
        for (int i = 0; i < argc; i++)
            gen_str(g, argv[i]);
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);
    char *out = json_gen_take(g);
    return out;
}
