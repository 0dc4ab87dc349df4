/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/config_test.c - config/: defaults, files, agent.conf.d, flags and their
 * precedence, and the "FILE:LINE: reason" / "--flag: reason" errors. Works in a temp dir;
 * needs no root. common_test.c covers the quantity parsers underneath. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
/* clang-format off: cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
#include <cmocka.h>
/* clang-format on */

#include "common/common.h"
#include "config/config.h"
#include "isolator/isolator.h"

struct fixture {
    char dir[64];
    char conf[128]; /* dir/agent.conf (not created by setup) */
    char confd[128];
};

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/berth-cfgtest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->conf, sizeof(f->conf), "%s/agent.conf", f->dir);
    snprintf(f->confd, sizeof(f->confd), "%s/agent.conf.d", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(rm_rf(f->dir), 0);
    free(f);
    return 0;
}

static void put(const char *path, const char *text)
{
    FILE *fp = fopen(path, "we");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void put_d(struct fixture *f, const char *name, const char *text)
{
    mkdir(f->confd, 0755);
    _cleanup_free_ char *p = xasprintf("%s/%s", f->confd, name);
    put(p, text);
}

/* Load with f->conf as the *default* file and the given flags. */
#define LOAD(f, cfg, err, ...)                                                                     \
    ({                                                                                             \
        char *_argv[] = {"berth-agent", __VA_ARGS__};                                              \
        cfg_load_with_default((cfg), (f)->conf, (int) ARRAY_SIZE(_argv), _argv, (err));            \
    })

/* Expect failure; the error must contain want. */
static void expect_error(int r, struct berr **err, const char *want)
{
    assert_int_equal(r, -EINVAL);
    assert_non_null(*err);
    assert_int_equal((*err)->code, BERR_INVALID_ARGUMENT);
    if (!strstr(berr_msg(*err), want))
        fail_msg("error '%s' does not contain '%s'", berr_msg(*err), want);
    berr_free(err);
}

static void check_defaults(const struct cfg_agent *cfg)
{
    assert_string_equal(cfg->master, "");
    assert_string_equal(cfg->work_dir, "/var/lib/berth");
    assert_string_equal(cfg->listen, "unix:/run/berth/agent.sock");
    assert_string_equal(cfg->token_file, "");
    assert_string_equal(cfg->isolation, ISO_DEFAULT_ISOLATION);
    assert_string_equal(cfg->cgroup_parent, "auto");
    assert_string_equal(cfg->task_user, "nobody");
    assert_string_equal(cfg->executor, "");
    assert_string_equal(cfg->cpu_limit, "hard");
    assert_string_equal(cfg->log_level, "info");
    assert_int_equal(cfg->pids_max, 1024);
    assert_int_equal(cfg->kill_grace_ms, 10000);
    assert_int_equal(cfg->stats_interval_ms, 1000);
    assert_string_equal(cfg->recover, "reconnect");
    assert_int_equal(cfg->gc_delay_ms, UINT64_C(604800000));
    assert_int_equal(cfg->gc_interval_ms, 60000);
    assert_int_equal(cfg->gc_disk_watermark, 90);
    assert_true(cfg->cpus.is_auto);
    assert_true(cfg->mem.is_auto);
    assert_true(cfg->disk.is_auto);
    assert_string_equal(cfg->ports, "[31000-32000]");
    assert_int_equal(cfg->reserved_cpus_millis, 0);
    assert_int_equal(cfg->reserved_mem, 0);
    assert_int_equal(cfg->reserved_disk, 0);
    assert_int_equal(cfg->n_roles, 0);
}

static void test_isolation_default_matches_isolator(void **state)
{
    (void) state;
    assert_string_equal(cfg_default_isolation, ISO_DEFAULT_ISOLATION);
}

static void test_defaults(void **state)
{
    (void) state;
    struct cfg_agent cfg;
    cfg_defaults(&cfg);
    check_defaults(&cfg);
    assert_string_equal(cfg.config_file, CFG_DEFAULT_FILE);
    cfg_done(&cfg);
    cfg_done(&cfg); /* idempotent */
}

static void test_missing_default_ok(void **state)
{
    struct fixture *f = *state;
    struct cfg_agent cfg;
    struct berr *err = NULL;
    char *argv[] = {"berth-agent"};
    assert_int_equal(cfg_load_with_default(&cfg, f->conf, 1, argv, &err), 0);
    assert_null(err);
    check_defaults(&cfg);
    assert_string_equal(cfg.config_file, f->conf);
    cfg_done(&cfg);
}

static void test_missing_named_file(void **state)
{
    struct fixture *f = *state;
    struct cfg_agent cfg;
    struct berr *err = NULL;
    _cleanup_free_ char *flag = xasprintf("--config=%s", f->conf);
    _cleanup_free_ char *want = xasprintf("%s: No such file or directory", f->conf);
    expect_error(LOAD(f, &cfg, &err, flag), &err, want);
    expect_error(LOAD(f, &cfg, &err, "--config", f->conf), &err, want);
    expect_error(LOAD(f, &cfg, &err, "--config"), &err, "--config: missing FILE");
    cfg_done(&cfg); /* already released by the failed load; must be harmless */
}

static void test_default_text_is_defaults(void **state)
{
    struct fixture *f = *state;
    put(f->conf, cfg_default_text);
    struct cfg_agent cfg;
    struct berr *err = NULL;
    assert_int_equal(LOAD(f, &cfg, &err), 0);
    assert_null(err);
    check_defaults(&cfg);
    cfg_done(&cfg);
}

static void test_file_values(void **state)
{
    struct fixture *f = *state;
    put(f->conf, "; comment\n"
                 "# other comment\n"
                 "[agent]\n"
                 "master = http://10.0.0.1:5050   ; inline comment\n"
                 "master_plain_http = yes\n"
                 "master_ca = /etc/berth/tls/ca.crt\n"
                 "master_pin = sha256//AAAA\n"
                 "api_token_file = /etc/berth/api.token\n"
                 "volume_paths = /srv/data, /var/lib/shared\n"
                 "local_volume_paths =\n"
                 "allow_root = all\n"
                 "allowed_users = nobody,1000\n"
                 "userns = all\n"
                 "userns_range = 200000-400000\n"
                 "mask_paths = /etc/secret,/opt/keys/*\n"
                 "work_dir = /srv/berth\n"
                 "listen = unix:/tmp/a.sock,tcp:127.0.0.1:5051\n"
                 "token_file = /etc/berth/token\n"
                 "isolation = cgroups/cpu,cgroups/mem\n"
                 "cgroup_parent = berth-test-1\n"
                 "task_user = daemon\n"
                 "executor = /opt/berth-executor\n"
                 "cpu_limit = burst\n"
                 "log_level = debug\n"
                 "pids_max = 50\n"
                 "kill_grace = 500ms\n"
                 "stats_interval = 2\n"
                 "[resources]\n"
                 "cpus = 8\n"
                 "mem = 16GiB\n"
                 "disk = 100GB\n"
                 "ports = [31000-31999, 40000-40010]\n"
                 "[reserved]\n"
                 "cpus = 0.5\n"
                 "mem = 1.5GiB\n"
                 "disk = 0\n"
                 "[role.analytics]\n"
                 "cpus = 2\n"
                 "mem = 4GiB\n"
                 "[role.web-2]\n"
                 "cpus = 0.25\n");
    struct cfg_agent cfg;
    struct berr *err = NULL;
    assert_int_equal(LOAD(f, &cfg, &err), 0);
    assert_string_equal(cfg.master, "http://10.0.0.1:5050");
    assert_true(cfg.master_plain_http);
    assert_string_equal(cfg.master_ca, "/etc/berth/tls/ca.crt");
    assert_string_equal(cfg.master_pin, "sha256//AAAA");
    assert_string_equal(cfg.api_token_file, "/etc/berth/api.token");
    assert_string_equal(cfg.volume_paths, "/srv/data, /var/lib/shared");
    assert_string_equal(cfg.local_volume_paths, "");
    assert_string_equal(cfg.allow_root, "all");
    assert_string_equal(cfg.allowed_users, "nobody,1000");
    assert_string_equal(cfg.userns, "all");
    assert_int_equal(cfg.userns_first, 200000);
    assert_int_equal(cfg.userns_last, 400000);
    assert_string_equal(cfg.mask_paths, "/etc/secret,/opt/keys/*");
    assert_string_equal(cfg.work_dir, "/srv/berth");
    assert_string_equal(cfg.listen, "unix:/tmp/a.sock,tcp:127.0.0.1:5051");
    assert_string_equal(cfg.token_file, "/etc/berth/token");
    assert_string_equal(cfg.isolation, "cgroups/cpu,cgroups/mem");
    assert_string_equal(cfg.cgroup_parent, "berth-test-1");
    assert_string_equal(cfg.task_user, "daemon");
    assert_string_equal(cfg.executor, "/opt/berth-executor");
    assert_string_equal(cfg.cpu_limit, "burst");
    assert_string_equal(cfg.log_level, "debug");
    assert_int_equal(cfg.pids_max, 50);
    assert_int_equal(cfg.kill_grace_ms, 500);
    assert_int_equal(cfg.stats_interval_ms, 2000);
    assert_false(cfg.cpus.is_auto);
    assert_int_equal(cfg.cpus.value, 8000);
    assert_false(cfg.mem.is_auto);
    assert_int_equal(cfg.mem.value, 16ULL << 30);
    assert_int_equal(cfg.disk.value, 100000000000ULL);
    assert_string_equal(cfg.ports, "[31000-31999, 40000-40010]");
    assert_int_equal(cfg.reserved_cpus_millis, 500);
    assert_int_equal(cfg.reserved_mem, 3ULL << 29);
    assert_int_equal(cfg.reserved_disk, 0);
    assert_int_equal(cfg.n_roles, 2);
    assert_string_equal(cfg.roles[0].name, "analytics");
    assert_int_equal(cfg.roles[0].cpus_millis, 2000);
    assert_int_equal(cfg.roles[0].mem_bytes, 4ULL << 30);
    assert_string_equal(cfg.roles[1].name, "web-2");
    assert_int_equal(cfg.roles[1].cpus_millis, 250);
    assert_int_equal(cfg.roles[1].mem_bytes, 0);
    cfg_done(&cfg);
}

static void test_flags_win(void **state)
{
    struct fixture *f = *state;
    put(f->conf, "[agent]\nlog_level = debug\npids_max = 10\n[reserved]\nmem = 1GiB\n");
    put_d(f, "10-a.conf", "[agent]\npids_max = 20\n");
    struct cfg_agent cfg;
    struct berr *err = NULL;
    assert_int_equal(LOAD(f, &cfg, &err, "--pids_max=30", "--reserved.mem=2GiB",
                          "--role.analytics.cpus=2", "--kill-grace=3s", "--agent.task_user=bin"),
                     0);
    assert_string_equal(cfg.log_level, "debug"); /* from the file, no flag */
    assert_int_equal(cfg.pids_max, 30);
    assert_int_equal(cfg.reserved_mem, 2ULL << 30);
    assert_int_equal(cfg.n_roles, 1);
    assert_string_equal(cfg.roles[0].name, "analytics");
    assert_int_equal(cfg.roles[0].cpus_millis, 2000);
    assert_int_equal(cfg.kill_grace_ms, 3000);
    assert_string_equal(cfg.task_user, "bin");
    cfg_done(&cfg);
}

static void test_named_config_and_confd(void **state)
{
    struct fixture *f = *state;
    _cleanup_free_ char *other = xasprintf("%s/other.conf", f->dir);
    _cleanup_free_ char *otherd = xasprintf("%s/other.conf.d", f->dir);
    put(f->conf, "[agent]\nlog_level = debug\n"); /* the default file: must be ignored */
    put(other, "[agent]\npids_max = 1\ntask_user = a\nwork_dir = /x\n");
    assert_int_equal(mkdir(otherd, 0755), 0);
    _cleanup_free_ char *p1 = xasprintf("%s/20-b.conf", otherd);
    _cleanup_free_ char *p2 = xasprintf("%s/10-a.conf", otherd);
    _cleanup_free_ char *p3 = xasprintf("%s/30-c.conf.disabled", otherd);
    _cleanup_free_ char *p4 = xasprintf("%s/.hidden.conf", otherd);
    put(p1, "[agent]\npids_max = 3\n");
    put(p2, "[agent]\npids_max = 2\ntask_user = b\n");
    put(p3, "[agent]\npids_max = 99\n");
    put(p4, "[agent]\npids_max = 98\n");
    struct cfg_agent cfg;
    struct berr *err = NULL;
    assert_int_equal(LOAD(f, &cfg, &err, "--config", other), 0);
    assert_string_equal(cfg.config_file, other);
    assert_string_equal(cfg.log_level, "info");
    assert_int_equal(cfg.pids_max, 3); /* 20-b.conf after 10-a.conf */
    assert_string_equal(cfg.task_user, "b");
    assert_string_equal(cfg.work_dir, "/x");
    cfg_done(&cfg);
}

static void test_confd_without_main_file(void **state)
{
    struct fixture *f = *state;
    put_d(f, "50-x.conf", "[resources]\ncpus = 4\n");
    struct cfg_agent cfg;
    struct berr *err = NULL;
    assert_int_equal(LOAD(f, &cfg, &err), 0);
    assert_int_equal(cfg.cpus.value, 4000);
    cfg_done(&cfg);
}

static void test_unknown_key_line(void **state)
{
    struct fixture *f = *state;
    put(f->conf, "; header\n\n[agent]\nmaster =\nfoo = 1\nbar = 2\n");
    struct cfg_agent cfg;
    struct berr *err = NULL;
    _cleanup_free_ char *want = xasprintf("%s:5: unknown key 'foo' in [agent]", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, want);

    put(f->conf, "[agent]\nmaster =\n[nope]\nx = 1\n");
    _cleanup_free_ char *want2 = xasprintf("%s:4: unknown section [nope]", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, want2);

    put(f->conf, "x = 1\n");
    _cleanup_free_ char *want3 = xasprintf("%s:1: key 'x' before any [section]", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, want3);
}

static void test_error_in_confd_names_file(void **state)
{
    struct fixture *f = *state;
    put(f->conf, "[agent]\n");
    put_d(f, "a.conf", "[agent]\n\n\npids_max = 0\n");
    struct cfg_agent cfg;
    struct berr *err = NULL;
    _cleanup_free_ char *want = xasprintf(
            "%s/a.conf:4: [agent] pids_max: bad count '0' (1 to 4194304, the kernel's limit)",
            f->confd);
    expect_error(LOAD(f, &cfg, &err), &err, want);
}

static void test_syntax_error(void **state)
{
    struct fixture *f = *state;
    struct cfg_agent cfg;
    struct berr *err = NULL;
    put(f->conf, "[agent]\nmaster =\njunk line\nfoo = 1\n");
    _cleanup_free_ char *want = xasprintf("%s:3: syntax error", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, want);

    /* a handler error before a syntax error is reported first */
    put(f->conf, "[agent]\nfoo = 1\njunk line\n");
    _cleanup_free_ char *want2 = xasprintf("%s:2: unknown key 'foo'", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, want2);

    /* inih would join an indented line to the previous value */
    put(f->conf, "[agent]\nisolation = cgroups/cpu,\n  cgroups/mem\n");
    _cleanup_free_ char *want3 = xasprintf("%s:3: [agent] isolation: continuation", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, want3);

    /* longer than inih's line buffer */
    char line[600];
    memset(line, 'a', sizeof(line));
    memcpy(line, "executor = /", 12);
    line[sizeof(line) - 1] = 0;
    _cleanup_free_ char *text = xasprintf("[agent]\n%s\n", line);
    put(f->conf, text);
    _cleanup_free_ char *want4 = xasprintf("%s:2: line too long", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, want4);

    /* 198 characters is the longest line inih takes whole (docs/config.md) */
    char ok[199];
    memset(ok, 'b', sizeof(ok));
    memcpy(ok, "executor = /", 12);
    ok[sizeof(ok) - 1] = 0;
    _cleanup_free_ char *text2 = xasprintf("[agent]\n%s\n[agent]\n", ok);
    put(f->conf, text2);
    assert_int_equal(LOAD(f, &cfg, &err), 0);
    assert_int_equal(strlen(cfg.executor), 198 - strlen("executor = "));
    cfg_done(&cfg);
    ok[197] = 0;
    _cleanup_free_ char *text3 = xasprintf("[agent]\n%sbb\n", ok); /* 199 */
    put(f->conf, text3);
    expect_error(LOAD(f, &cfg, &err), &err, "line too long (at most 198 characters)");
}

static void test_bad_values(void **state)
{
    struct fixture *f = *state;
    struct cfg_agent cfg;
    struct berr *err = NULL;
    put(f->conf, "[resources]\nmem = 12XB\n");
    _cleanup_free_ char *want =
            xasprintf("%s:2: [resources] mem: bad size '12XB' (auto, or > 0: use B, KiB, MiB, GiB, "
                      "TiB, KB, MB, GB or plain bytes)",
                      f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, want);

    put(f->conf, "[reserved]\nmem = 0.3B\n");
    expect_error(LOAD(f, &cfg, &err), &err, "[reserved] mem: bad size '0.3B' (use B, KiB");

    static const char *const bad_cpus[] = {"0", "-1", "nan", "1.0001", "inf", "1e3", "", "0.0"};
    for (size_t i = 0; i < ARRAY_SIZE(bad_cpus); i++) {
        _cleanup_free_ char *text = xasprintf("[resources]\ncpus = %s\n", bad_cpus[i]);
        put(f->conf, text);
        _cleanup_free_ char *w =
                xasprintf("%s:2: [resources] cpus: bad cpus '%s'", f->conf, bad_cpus[i]);
        expect_error(LOAD(f, &cfg, &err), &err, w);
    }

    struct {
        const char *flag, *want;
    } cases[] = {
            {"--cpu_limit=soft", "--cpu_limit=soft: [agent] cpu_limit: bad value 'soft'"},
            {"--log_level=trace", "[agent] log_level: bad level 'trace'"},
            {"--pids_max=-1", "[agent] pids_max: bad count '-1'"},
            {"--kill_grace=10x", "[agent] kill_grace: bad duration '10x'"},
            {"--stats_interval=0", "[agent] stats_interval: bad duration '0'"},
            {"--recover=maybe", "[agent] recover: bad value 'maybe'"},
            {"--gc_delay=soon", "[agent] gc_delay: bad duration 'soon'"},
            {"--gc_interval=0", "[agent] gc_interval: bad duration '0'"},
            {"--gc_disk_watermark=0%", "[agent] gc_disk_watermark: bad percentage '0%'"},
            {"--gc_disk_watermark=101", "[agent] gc_disk_watermark: bad percentage '101'"},
            {"--master=10.0.0.1:5050", "[agent] master: bad URL"},
            {"--listen=/run/x.sock", "[agent] listen: bad listen address"},
            {"--listen=tcp:127.0.0.1:0", "[agent] listen: bad listen address"},
            {"--work_dir=", "[agent] work_dir: bad path ''"},
            {"--cgroup_parent=../x", "[agent] cgroup_parent: bad cgroup"},
            {"--resources.ports=31000-32000", "[resources] ports: bad ports"},
            {"--resources.ports=[0-10]", "bad ports"},
            {"--resources.ports=[10-5]", "bad ports"},
            {"--resources.ports=[1-70000]", "bad ports"},
            {"--resources.ports=[1-10,5-20]", "bad ports"},
            {"--resources.ports=[1-10,]", "bad ports"},
            {"--resources.ports=[a-b]", "bad ports"},
            {"--reserved.cpus=-1", "[reserved] cpus: bad cpus '-1'"},
            {"--reserved.gpus=1", "--reserved.gpus=1: unknown key 'gpus' in [reserved]"},
            {"--role.analytics.disk=1", "unknown key 'disk' in [role.analytics]"},
            {"--role.Bad.cpus=1", "bad role name 'Bad'"},
            {"--role..cpus=1", "bad role name ''"},
            {"--role.x.mem=1XB", "[role.x] mem: bad size '1XB'"},
            {"--foo=bar", "--foo=bar: unknown key 'foo' in [agent]"},
            {"--foo.bar=1", "--foo.bar=1: unknown section [foo]"},
            {"--=1", "'--=1': unexpected argument"},
            {"--pids_max", "'--pids_max': unexpected argument"},
            {"positional", "'positional': unexpected argument"},
            {"-v", "'-v': unexpected argument"},
            {"--config=", "--config: empty FILE"},
            {"--master=http://10.0.0.1:5050",
             "[agent] master 'http://10.0.0.1:5050' is plain HTTP"},
            {"--master_ca=ca.pem", "[agent] master_ca: bad path 'ca.pem'"},
            {"--master_pin=AAAA", "[agent] master_pin: bad pin 'AAAA'"},
            {"--master_plain_http=maybe", "[agent] master_plain_http: bad boolean"},
            {"--token_file=token", "[agent] token_file: bad path 'token'"},
            {"--volume_paths=/srv,data", "[agent] volume_paths: bad path list"},
            {"--local_volume_paths=/srv/../etc", "bad path list"},
            {"--mask_paths=/a/..", "[agent] mask_paths: bad path list"},
            {"--allow_root=yes", "[agent] allow_root: bad value 'yes'"},
            {"--allowed_users=", "[agent] allowed_users: bad user list"},
            {"--userns=maybe", "[agent] userns: bad value 'maybe'"},
            {"--userns_range=100-200", "[agent] userns_range: bad uid range"},
            {"--userns_range=100000-110000", "[agent] userns_range: bad uid range"},
            {"--userns_range=1-x", "[agent] userns_range: bad uid range"},
    };
    unlink(f->conf);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        expect_error(LOAD(f, &cfg, &err, (char *) cases[i].flag), &err, cases[i].want);
}

static void test_good_flag_values(void **state)
{
    struct fixture *f = *state;
    struct cfg_agent cfg;
    struct berr *err = NULL;
    assert_int_equal(LOAD(f, &cfg, &err, "--reserved.cpus=0.0", "--resources.cpus=0.25",
                          "--resources.mem=auto", "--resources.ports=[]", "--kill_grace=0",
                          "--stats_interval=250ms", "--master=https://m:5050",
                          "--listen=tcp:[::1]:5051"),
                     0);
    assert_int_equal(cfg.reserved_cpus_millis, 0);
    assert_int_equal(cfg.cpus.value, 250);
    assert_true(cfg.mem.is_auto);
    assert_string_equal(cfg.ports, "[]");
    assert_int_equal(cfg.kill_grace_ms, 0);
    assert_int_equal(cfg.stats_interval_ms, 250);
    cfg_done(&cfg);
    assert_int_equal(LOAD(f, &cfg, &err, "--recover=cleanup", "--gc_delay=2s",
                          "--gc-disk-watermark=50%", "--gc_interval=500ms"),
                     0);
    assert_string_equal(cfg.recover, "cleanup");
    assert_int_equal(cfg.gc_delay_ms, 2000);
    assert_int_equal(cfg.gc_disk_watermark, 50);
    assert_int_equal(cfg.gc_interval_ms, 500);
    cfg_done(&cfg);
}

static void test_reserved_beyond_total(void **state)
{
    struct fixture *f = *state;
    struct cfg_agent cfg;
    struct berr *err = NULL;
    expect_error(
            LOAD(f, &cfg, &err, "--resources.cpus=2", "--reserved.cpus=1", "--role.a.cpus=1.5"),
            &err, "[reserved] and [role.*] cpus (2.5) exceed [resources] cpus (2)");
    expect_error(LOAD(f, &cfg, &err, "--resources.mem=1GiB", "--reserved.mem=2GiB"), &err,
                 "mem (2GiB) exceed [resources] mem (1GiB)");
    /* auto totals are checked by the agent once measured */
    assert_int_equal(LOAD(f, &cfg, &err, "--reserved.cpus=100"), 0);
    cfg_done(&cfg);
}

static void test_config_twice(void **state)
{
    struct fixture *f = *state;
    struct cfg_agent cfg;
    struct berr *err = NULL;
    put(f->conf, "");
    expect_error(LOAD(f, &cfg, &err, "--config", f->conf, "--config=/x"), &err,
                 "--config given twice");
}

static void test_durations(void **state)
{
    (void) state;
    uint64_t v;
    assert_int_equal(cfg_parse_duration_ms("10", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(cfg_parse_duration_ms("10s", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(cfg_parse_duration_ms("500ms", &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(cfg_parse_duration_ms("2m", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(cfg_parse_duration_ms("1h", &v), 0);
    assert_int_equal(v, 3600000);
    assert_int_equal(cfg_parse_duration_ms("7d", &v), 0);
    assert_int_equal(v, UINT64_C(604800000));
    assert_int_equal(cfg_parse_duration_ms("1w", &v), 0);
    assert_int_equal(v, UINT64_C(604800000));
    assert_int_equal(cfg_parse_duration_ms("", &v), -EINVAL);
    assert_int_equal(cfg_parse_duration_ms("s", &v), -EINVAL);
    assert_int_equal(cfg_parse_duration_ms("1.5s", &v), -EINVAL);
    assert_int_equal(cfg_parse_duration_ms("-1", &v), -EINVAL);
    assert_int_equal(cfg_parse_duration_ms("99999999999999999999", &v), -ERANGE);
    assert_int_equal(cfg_parse_duration_ms("18446744073709552s", &v), -ERANGE);
}

static void test_ports(void **state)
{
    (void) state;
    assert_int_equal(cfg_parse_ports("[31000-32000]"), 0);
    assert_int_equal(cfg_parse_ports("[1-1,65535-65535]"), 0);
    assert_int_equal(cfg_parse_ports("[80,443,8000-8100]"), 0);
    assert_int_equal(cfg_parse_ports(""), 0);
    assert_int_not_equal(cfg_parse_ports("[65535-65536]"), 0);
    assert_int_not_equal(cfg_parse_ports("[1-2"), 0);
    assert_int_not_equal(cfg_parse_ports("[,]"), 0);
    assert_int_not_equal(cfg_parse_ports("[-]"), 0);
    assert_int_not_equal(cfg_parse_ports("[1--2]"), 0);
    assert_int_not_equal(cfg_parse_ports("[ ]"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_isolation_default_matches_isolator),
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_durations),
            cmocka_unit_test(test_ports),
            cmocka_unit_test_setup_teardown(test_missing_default_ok, setup, teardown),
            cmocka_unit_test_setup_teardown(test_missing_named_file, setup, teardown),
            cmocka_unit_test_setup_teardown(test_default_text_is_defaults, setup, teardown),
            cmocka_unit_test_setup_teardown(test_file_values, setup, teardown),
            cmocka_unit_test_setup_teardown(test_flags_win, setup, teardown),
            cmocka_unit_test_setup_teardown(test_named_config_and_confd, setup, teardown),
            cmocka_unit_test_setup_teardown(test_confd_without_main_file, setup, teardown),
            cmocka_unit_test_setup_teardown(test_unknown_key_line, setup, teardown),
            cmocka_unit_test_setup_teardown(test_error_in_confd_names_file, setup, teardown),
            cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
            cmocka_unit_test_setup_teardown(test_good_flag_values, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reserved_beyond_total, setup, teardown),
            cmocka_unit_test_setup_teardown(test_config_twice, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
