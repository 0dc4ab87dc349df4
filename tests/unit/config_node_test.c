/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/config_node_test.c - config/node.c: what the agent tells the master about its
 * node, [agent] hostname and the free-form [attributes] section (issue #16): defaults, file,
 * agent.conf.d and flags, and the "FILE:LINE: reason" of a bad name, a bad value, too many
 * attributes and a bad host name. config_test.c covers the other keys. Needs no root. */
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
#include "masterlink/masterlink.h"

struct fixture {
    char dir[64];
    char conf[128];
    char confd[128];
};

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/berth-cfgnode-XXXXXX");
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

#define LOAD(f, cfg, err, ...)                                                                     \
    ({                                                                                             \
        char *_argv[] = {"berth-agent", __VA_ARGS__};                                              \
        cfg_load_with_default((cfg), (f)->conf, (int) ARRAY_SIZE(_argv), _argv, (err));            \
    })

static void expect_error(int r, struct berr **err, const char *want)
{
    assert_int_equal(r, -EINVAL);
    assert_non_null(*err);
    assert_int_equal((*err)->code, BERR_INVALID_ARGUMENT);
    if (!strstr(berr_msg(*err), want))
        fail_msg("error '%s' does not contain '%s'", berr_msg(*err), want);
    berr_free(err);
}

static void test_defaults(void **state)
{
    (void) state;
    assert_int_equal(CFG_MAX_ATTRS, ML_MAX_ATTRS);
    struct cfg_agent cfg;
    cfg_defaults(&cfg);
    assert_string_equal(cfg.hostname, "");
    assert_string_equal(cfg.address, "");
    assert_int_equal(cfg.n_attrs, 0);
    assert_null(cfg.attrs);
    cfg_done(&cfg);
    cfg_done(&cfg);
}

/* The default text's example is commented out: loading it sets none. */
static void test_default_text_has_none(void **state)
{
    struct fixture *f = *state;
    put(f->conf, cfg_default_text);
    assert_non_null(strstr(cfg_default_text, "; [attributes]\n; rack = r1\n"));
    struct cfg_agent cfg;
    struct berr *err = NULL;
    assert_int_equal(LOAD(f, &cfg, &err), 0);
    assert_int_equal(cfg.n_attrs, 0);
    assert_string_equal(cfg.hostname, "");
    cfg_done(&cfg);
}

static void test_file_confd_and_flags(void **state)
{
    struct fixture *f = *state;
    put(f->conf, "[agent]\nhostname = node-a.example\n[attributes]\nrack = r1\n"
                 "zone.name = eu west-1 ; a comment\nEmpty =\nrack = r2\n");
    struct cfg_agent cfg;
    struct berr *err = NULL;
    assert_int_equal(LOAD(f, &cfg, &err), 0);
    assert_null(err);
    assert_string_equal(cfg.hostname, "node-a.example");
    assert_string_equal(cfg.address, "");
    assert_int_equal(cfg.n_attrs, 3);
    /* in the order first set; a later line of the same name replaces its value */
    assert_string_equal(cfg.attrs[0].name, "rack");
    assert_string_equal(cfg.attrs[0].value, "r2");
    assert_string_equal(cfg.attrs[1].name, "zone.name");
    assert_string_equal(cfg.attrs[1].value, "eu west-1");
    assert_string_equal(cfg.attrs[2].name, "Empty");
    assert_string_equal(cfg.attrs[2].value, "");
    _cleanup_free_ char *where = xasprintf("%s:7", f->conf);
    assert_string_equal(cfg_where(&cfg, "attributes", "rack"), where);
    cfg_done(&cfg);

    /* a drop-in adds and replaces, flags win over both */
    mkdir(f->confd, 0755);
    _cleanup_free_ char *drop = xasprintf("%s/50-site.conf", f->confd);
    put(drop, "[agent]\naddress = 198.18.0.7\n[attributes]\nrack = r3\ngpu = none\n");
    assert_int_equal(LOAD(f, &cfg, &err, "--attributes.gpu=a100", "--hostname=node-b"), 0);
    assert_string_equal(cfg.hostname, "node-b");
    assert_string_equal(cfg.address, "198.18.0.7");
    assert_int_equal(cfg.n_attrs, 4);
    assert_string_equal(cfg.attrs[0].value, "r3");
    assert_string_equal(cfg.attrs[3].name, "gpu");
    assert_string_equal(cfg.attrs[3].value, "a100");
    cfg_done(&cfg);
}

static void test_bad_lines(void **state)
{
    struct fixture *f = *state;
    struct cfg_agent cfg;
    struct berr *err = NULL;

    put(f->conf, "[attributes]\nrack = r1\nra/ck = r2\n");
    _cleanup_free_ char *w1 =
            xasprintf("%s:3: [attributes] bad name 'ra/ck' (1-63 of A-Z, a-z, 0-9, '_', '.', "
                      "'-')",
                      f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, w1);

    char line[128];
    snprintf(line, sizeof(line), "[attributes]\n%064d = 1\n", 0);
    put(f->conf, line);
    _cleanup_free_ char *w2 = xasprintf("%s:2: [attributes] bad name", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, w2);

    /* 255 characters fit no line of a file (libinih's 198), but a flag */
    char big[300], flag[320];
    memset(big, 'v', 256);
    big[256] = 0;
    snprintf(flag, sizeof(flag), "--attributes.rack=%s", big);
    put(f->conf, "");
    expect_error(LOAD(f, &cfg, &err, flag), &err, "[attributes] rack: bad value (0-255");
    big[255] = 0;
    snprintf(flag, sizeof(flag), "--attributes.rack=%s", big);
    assert_int_equal(LOAD(f, &cfg, &err, flag), 0);
    assert_int_equal(strlen(cfg.attrs[0].value), 255);
    cfg_done(&cfg);
    /* no control characters (a file refuses them before the key is read) */
    expect_error(LOAD(f, &cfg, &err, "--attributes.rack=a\tb"), &err,
                 "--attributes.rack=a\tb: [attributes] rack: bad value");
    expect_error(LOAD(f, &cfg, &err,
                      "--attributes.rack=Z\xc3\xbc"
                      "rich"),
                 &err, "bad value");

    /* at most CFG_MAX_ATTRS; the line of the one too many is named */
    char *text = xstrdup("[attributes]\n");
    for (int i = 0; i <= CFG_MAX_ATTRS; i++) {
        char *n = xasprintf("%sa%d = %d\n", text, i, i);
        free(text);
        text = n;
    }
    put(f->conf, text);
    free(text);
    _cleanup_free_ char *w3 = xasprintf("%s:%d: [attributes] a%d: too many attributes (at most 64)",
                                        f->conf, CFG_MAX_ATTRS + 2, CFG_MAX_ATTRS);
    expect_error(LOAD(f, &cfg, &err), &err, w3);

    put(f->conf, "[agent]\nhostname = node a\n");
    _cleanup_free_ char *w4 = xasprintf("%s:2: [agent] hostname: bad host name 'node a'", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, w4);
    put(f->conf, "[agent]\naddress = node-a\n");
    _cleanup_free_ char *w6 =
            xasprintf("%s:2: [agent] address: want an IPv4 or IPv6 address", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, w6);
    put(f->conf, "[agent]\n[attribute]\nrack = r1\n");
    _cleanup_free_ char *w5 = xasprintf("%s:3: unknown section [attribute]", f->conf);
    expect_error(LOAD(f, &cfg, &err), &err, w5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test_setup_teardown(test_default_text_has_none, setup, teardown),
            cmocka_unit_test_setup_teardown(test_file_confd_and_flags, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bad_lines, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
