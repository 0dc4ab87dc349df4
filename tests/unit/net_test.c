/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/net_test.c - networking's pure decisions, without root (issue #15): which host
 * ports a launch gets (agentd/ports.c: ranges, named and any ports, round robin, refusals,
 * 1,001 one-port tasks on a 1,001-port range), the PORT0.. environment, which address IPAM
 * gives (agentd/ipam.c), a sandbox's /etc/hosts and resolv.conf (agentd/net-files.c), the
 * agent's nftables table and its elements as text (isolator/net-rules.c), the spec's network
 * field (isolator/spec.c) and the networking config keys (config/network.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

/* after setjmp.h, stdarg.h and stddef.h, which it needs and does not include */
#include <cmocka.h>

#include "agentd/agent.h"

/* ---- ports ------------------------------------------------------------------------------- */

static void test_ranges_parse(void **state)
{
    (void) state;
    struct port_range *r = NULL;
    size_t n = 0;
    assert_int_equal(ports_ranges_parse("[31000-32000, 40000-40010,50000]", &r, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].lo, 31000);
    assert_int_equal(r[0].hi, 32000);
    assert_int_equal(r[1].lo, 40000);
    assert_int_equal(r[2].lo, 50000);
    assert_int_equal(r[2].hi, 50000);
    assert_true(ports_in_ranges(r, n, 31000) && ports_in_ranges(r, n, 40010));
    assert_false(ports_in_ranges(r, n, 30999) || ports_in_ranges(r, n, 40011));
    free(r);
    assert_int_equal(ports_ranges_parse("[]", &r, &n), 0);
    assert_int_equal(n, 0);
    free(r);
    /* sorted, for the round robin */
    assert_int_equal(ports_ranges_parse("[200-201,100-101]", &r, &n), 0);
    assert_int_equal(r[0].lo, 100);
    assert_int_equal(r[1].lo, 200);
    uint64_t used[1024] = {0};
    uint16_t cursor = 101;
    struct ml_port p[4] = {{0}};
    assert_int_equal(ports_pick(r, n, used, &cursor, p, 4, NULL), 0);
    assert_int_equal(p[0].host_port, 101);
    assert_int_equal(p[1].host_port, 200);
    assert_int_equal(p[2].host_port, 201);
    assert_int_equal(p[3].host_port, 100); /* wrapped to the first range */
    free(r);
    assert_int_equal(ports_ranges_parse("[2-1]", &r, &n), -EINVAL);
    assert_int_equal(ports_ranges_parse("[70000]", &r, &n), -EINVAL);
}

static struct ml_port *ports_n(size_t n)
{
    return calloc(n + 1, sizeof(struct ml_port));
}

static void test_pick_any_round_robin(void **state)
{
    (void) state;
    struct port_range r[] = {{100, 104}};
    uint64_t used[1024] = {0};
    uint16_t cursor = 100;
    struct ml_port *p = ports_n(2);
    assert_int_equal(ports_pick(r, 1, used, &cursor, p, 2, NULL), 0);
    assert_int_equal(p[0].host_port, 100);
    assert_int_equal(p[1].host_port, 101);
    assert_int_equal(cursor, 102);
    /* the next launch goes on from there, not back to the first free port */
    memset(p, 0, 2 * sizeof(*p));
    used[100 / 64] &= ~(UINT64_C(1) << (100 % 64)); /* 100 was freed meanwhile */
    assert_int_equal(ports_pick(r, 1, used, &cursor, p, 2, NULL), 0);
    assert_int_equal(p[0].host_port, 102);
    assert_int_equal(p[1].host_port, 103);
    /* and wraps around the end of the ranges */
    memset(p, 0, 2 * sizeof(*p));
    assert_int_equal(ports_pick(r, 1, used, &cursor, p, 2, NULL), 0);
    assert_int_equal(p[0].host_port, 104);
    assert_int_equal(p[1].host_port, 100);
    free(p);
}

static void test_pick_named_and_refusals(void **state)
{
    (void) state;
    struct port_range r[] = {{31000, 31002}, {40000, 40000}};
    uint64_t used[1024] = {0};
    uint16_t cursor = 31000;
    struct berr *err = NULL;
    struct ml_port *p = ports_n(3);
    /* a named port is taken first, so "any" never takes it */
    p[1].host_port = 31000;
    assert_int_equal(ports_pick(r, 2, used, &cursor, p, 3, NULL), 0);
    assert_int_equal(p[1].host_port, 31000);
    assert_int_equal(p[0].host_port, 31001);
    assert_int_equal(p[2].host_port, 31002);
    /* a port outside the ranges, one in use, more than are free: INSUFFICIENT_RESOURCES
     * naming ports */
    struct ml_port q = {.host_port = 80};
    assert_int_equal(ports_pick(r, 2, used, &cursor, &q, 1, &err), -ERANGE);
    assert_int_equal(err->code, BERR_INSUFFICIENT_RESOURCES);
    assert_non_null(strstr(berr_msg(err), "ports: host port 80 is not in"));
    berr_free(&err);
    q.host_port = 31001;
    assert_int_equal(ports_pick(r, 2, used, &cursor, &q, 1, &err), -EADDRINUSE);
    assert_non_null(strstr(berr_msg(err), "ports: host port 31001"));
    berr_free(&err);
    memset(p, 0, 3 * sizeof(*p));
    assert_int_equal(ports_pick(r, 2, used, &cursor, p, 2, &err), -ENOSPC);
    assert_string_equal(berr_msg(err),
                        "ports: asked 2, 1 free of [resources] ports [31000-31002,...]");
    assert_int_equal(err->code, BERR_INSUFFICIENT_RESOURCES);
    berr_free(&err);
    free(p);
}

/* Issue #15's test 2 in miniature: 1,001 one-port tasks on a 1,001-port range all get a port,
 * none twice; the next is refused naming ports. */
static void test_pick_1001(void **state)
{
    (void) state;
    struct port_range r[] = {{31000, 32000}};
    uint64_t used[1024] = {0};
    uint16_t cursor = 31000;
    uint8_t seen[65536] = {0};
    for (int i = 0; i < 1001; i++) {
        struct ml_port p = {0};
        assert_int_equal(ports_pick(r, 1, used, &cursor, &p, 1, NULL), 0);
        assert_true(p.host_port >= 31000 && p.host_port <= 32000);
        assert_int_equal(seen[p.host_port]++, 0);
    }
    assert_int_equal(ports_count_free(r, 1, used), 0);
    struct ml_port p = {0};
    struct berr *err = NULL;
    assert_int_equal(ports_pick(r, 1, used, &cursor, &p, 1, &err), -ENOSPC);
    assert_non_null(strstr(berr_msg(err), "ports: asked 1, 0 free"));
    berr_free(&err);
}

static void test_ranges_text(void **state)
{
    (void) state;
    uint64_t used[1024] = {0};
    char *t = ports_ranges_text(used);
    assert_string_equal(t, "[]");
    free(t);
    unsigned ports[] = {31000, 31001, 31002, 31005, 65535};
    for (size_t i = 0; i < ARRAY_SIZE(ports); i++)
        used[ports[i] / 64] |= UINT64_C(1) << (ports[i] % 64);
    t = ports_ranges_text(used);
    assert_string_equal(t, "[31000-31002,31005-31005,65535-65535]");
    free(t);
}

static bool has(char **env, const char *kv)
{
    for (; env && *env; env++)
        if (strcmp(*env, kv) == 0)
            return true;
    return false;
}

static void test_env(void **state)
{
    (void) state;
    char *user[] = {(char *) "A=1", (char *) "PORT0=9", (char *) "PORTAL=x", NULL};
    struct ml_port p[] = {{.host_port = 31000, .container_port = 8080, .name = (char *) "web.ui"},
                          {.host_port = 31001, .container_port = 31001}};
    struct ml_task_spec s = {.env = user, .ports = p, .n_ports = 2};
    char **env = ports_env(&s);
    assert_true(has(env, "A=1") && has(env, "PORTAL=x"));
    assert_false(has(env, "PORT0=9")); /* ours win: getenv() would return the first */
    assert_true(has(env, "PORT0=8080") && has(env, "PORT1=31001"));
    assert_true(has(env, "HOST_PORT0=31000") && has(env, "HOST_PORT1=31001"));
    assert_true(has(env, "PORT_WEB_UI=8080"));
    assert_true(has(env, "PORTS=8080,31001"));
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
    s.n_ports = 0;
    env = ports_env(&s);
    assert_true(has(env, "PORT0=9")); /* no ports: the task's own env untouched */
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

/* ---- IPAM -------------------------------------------------------------------------------- */

static void test_ipam(void **state)
{
    (void) state;
    uint32_t size = ipam_size(29); /* 8 addresses: network, gateway, 5 tasks, broadcast */
    uint64_t used[1] = {0};
    ipam_reserve(used, size);
    uint32_t cursor = 2, got[5];
    for (int i = 0; i < 5; i++)
        got[i] = ipam_pick(used, size, &cursor), ipam_mark(used, got[i]);
    for (int i = 0; i < 5; i++)
        assert_int_equal(got[i], (uint32_t) (2 + i));
    assert_int_equal(ipam_pick(used, size, &cursor), 0); /* full */
    used[0] &= ~(UINT64_C(1) << 3);                      /* .3 is free again */
    assert_int_equal(ipam_pick(used, size, &cursor), 3);
    assert_true(ipam_in_subnet(0xc6120000, 24, 0xc61200fe));
    assert_false(ipam_in_subnet(0xc6120000, 24, 0xc6120100));
    assert_int_equal(ipam_size(16), 65536);
}

/* ---- /etc files -------------------------------------------------------------------------- */

static void test_hosts(void **state)
{
    (void) state;
    char *h = netfiles_hosts(NULL, "web", 0xc6120002);
    assert_non_null(strstr(h, "127.0.0.1\tlocalhost\n"));
    assert_non_null(strstr(h, "198.18.0.2\tweb\n"));
    free(h);
    h = netfiles_hosts("10.0.0.1 db", "web", 0); /* host mode: the host's, plus its name */
    assert_non_null(strstr(h, "10.0.0.1 db\n127.0.1.1\tweb\n"));
    free(h);
}

static void test_resolv(void **state)
{
    (void) state;
    const char *host = "search example.org\nnameserver 127.0.0.53\nnameserver ::1\n"
                       "nameserver 10.0.0.2\noptions edns0\n";
    char *r = netfiles_resolv(ISO_NET_BRIDGE, host, NULL);
    assert_non_null(strstr(r, "search example.org\n"));
    assert_non_null(strstr(r, "\nnameserver 10.0.0.2\n"));
    assert_null(strstr(r, "\nnameserver 127.0.0.53"));
    assert_non_null(strstr(r, "out of reach) nameserver 127.0.0.53"));
    assert_null(strstr(r, "\nnameserver ::1"));
    free(r);
    /* only the host's own stub resolver: systemd-resolved's upstream servers instead */
    r = netfiles_resolv(ISO_NET_BRIDGE, "nameserver 127.0.0.53\n",
                        "# comment\nnameserver 9.9.9.9\nsearch lan\n");
    assert_non_null(strstr(r, "\nnameserver 9.9.9.9\n"));
    assert_null(strstr(r, "search lan"));
    free(r);
    r = netfiles_resolv(ISO_NET_NONE, host, NULL);
    assert_null(strstr(r, "nameserver"));
    free(r);
}

/* ---- the nftables table ----------------------------------------------------------------- */

static void test_table_text(void **state)
{
    (void) state;
    struct iso_nat_net net = {"berth0", 0xc6120000, 24};
    struct iso_nat_map m[] = {{31000, 0xc6120002, 8080}, {31001, 0xc6120003, 31001}};
    char *t = iso_nat_table_text(&net, m, 2);
    /* replaced atomically, created if missing */
    assert_true(strncmp(t, "table inet berth\ndelete table inet berth\ntable inet berth {\n", 58) ==
                0);
    assert_non_null(strstr(t, "elements = { tcp . 31000 : 198.18.0.2 . 8080, "
                              "udp . 31000 : 198.18.0.2 . 8080, tcp . 31001 : 198.18.0.3 . 31001, "
                              "udp . 31001 : 198.18.0.3 . 31001 }"));
    assert_non_null(strstr(t, "type nat hook prerouting priority dstnat;"));
    assert_non_null(strstr(t, "fib daddr type local meta l4proto { tcp, udp } dnat ip to meta "
                              "l4proto . th dport map @ports"));
    assert_non_null(strstr(t, "ip daddr != 127.0.0.0/8 fib daddr type local"));
    assert_non_null(strstr(t, "ip saddr 198.18.0.0/24 oifname != \"berth0\" masquerade"));
    assert_non_null(strstr(t, "oifname \"berth0\" ct status dnat ip saddr 198.18.0.0/24 "
                              "masquerade"));
    assert_non_null(strstr(t, "iifname \"berth0\" ip daddr 127.0.0.0/8 drop"));
    assert_non_null(strstr(t, "iifname \"berth0\" ct state established,related accept\n"
                              "\t\tiifname \"berth0\" drop\n"));
    free(t);
    t = iso_nat_table_text(&net, NULL, 0);
    assert_null(strstr(t, "elements"));
    free(t);
}

static void test_elements_text(void **state)
{
    (void) state;
    struct iso_nat_map m[] = {{31000, 0xc6120002, 8080}};
    char *t = iso_nat_elements_text(true, m, 1);
    assert_string_equal(t, "add element inet berth ports { tcp . 31000 : 198.18.0.2 . 8080, "
                           "udp . 31000 : 198.18.0.2 . 8080 }\n");
    free(t);
    t = iso_nat_elements_text(false, m, 1);
    assert_string_equal(t, "delete element inet berth ports { tcp . 31000, udp . 31000 }\n");
    free(t);
    assert_null(iso_nat_elements_text(true, m, 0));
    t = iso_nat_delete_text();
    assert_string_equal(t, "table inet berth\ndelete table inet berth\n");
    free(t);
}

/* ---- the spec and the config ------------------------------------------------------------- */

static void test_spec_network(void **state)
{
    (void) state;
    char *argv[] = {(char *) "true", NULL}, *none[] = {NULL};
    struct iso_spec s = {.id = (char *) "x",
                         .sandbox_dir = (char *) "/s",
                         .runtime_dir = (char *) "/r",
                         .argv = argv,
                         .env = none,
                         .mask_dirs = none,
                         .net = ISO_NET_BRIDGE,
                         .etc_dir = (char *) "/r/etc"};
    char *json = iso_spec_to_json(&s);
    struct iso_spec back;
    assert_int_equal(iso_spec_from_json(json, &back, NULL), 0);
    assert_int_equal(back.net, ISO_NET_BRIDGE);
    assert_string_equal(back.etc_dir, "/r/etc");
    iso_spec_done(&back);
    free(json);
    /* a spec of an older agent has no network: the host's */
    assert_int_equal(iso_spec_from_json("{\"id\": \"x\", \"sandbox_dir\": \"/s\", "
                                        "\"runtime_dir\": \"/r\", \"uid\": 65534, \"gid\": "
                                        "65534, \"argv\": [\"true\"]}",
                                        &back, NULL),
                     0);
    assert_int_equal(back.net, ISO_NET_HOST);
    iso_spec_done(&back);
    assert_int_equal(iso_net_mode_from_name("bridge"), ISO_NET_BRIDGE);
    assert_int_equal(iso_net_mode_from_name("nat"), _ISO_NET_INVALID);
}

static void test_config_keys(void **state)
{
    (void) state;
    struct cfg_agent cfg;
    struct berr *err = NULL;
    cfg_defaults(&cfg);
    assert_string_equal(cfg.network, "host");
    assert_true(cfg.allow_host_network);
    assert_false(cfg.enforce_ports);
    assert_string_equal(cfg.net_bridge, "berth0");
    assert_int_equal(cfg_set(&cfg, "agent", "network", "bridge", NULL), 0);
    assert_int_equal(cfg_set(&cfg, "network", "subnet", "198.18.0.0/24", NULL), 0);
    assert_int_equal(cfg.net_addr, 0xc6120000);
    assert_int_equal(cfg.net_prefix, 24);
    assert_int_equal(cfg_set(&cfg, "agent", "enforce_ports_interval", "500ms", NULL), 0);
    assert_int_equal(cfg.enforce_ports_interval_ms, 500);
    assert_int_equal(cfg_set(&cfg, "network", "subnet", "198.18.0.5/24", &err), -EINVAL);
    assert_non_null(strstr(berr_msg(err), "[network] subnet: bad subnet '198.18.0.5/24'"));
    berr_free(&err);
    assert_int_equal(cfg_set(&cfg, "network", "subnet", "10.0.0.0/8", NULL), -EINVAL);
    assert_int_equal(cfg_set(&cfg, "agent", "network", "nat", NULL), -EINVAL);
    assert_int_equal(cfg_set(&cfg, "network", "bridge", "a-very-long-bridge", NULL), -EINVAL);
    assert_int_equal(cfg_set(&cfg, "network", "mtu", "1500", &err), -EINVAL);
    assert_non_null(strstr(berr_msg(err), "unknown key 'mtu' in [network]"));
    berr_free(&err);
    cfg_done(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ranges_parse),
            cmocka_unit_test(test_pick_any_round_robin),
            cmocka_unit_test(test_pick_named_and_refusals),
            cmocka_unit_test(test_pick_1001),
            cmocka_unit_test(test_ranges_text),
            cmocka_unit_test(test_env),
            cmocka_unit_test(test_ipam),
            cmocka_unit_test(test_hosts),
            cmocka_unit_test(test_resolv),
            cmocka_unit_test(test_table_text),
            cmocka_unit_test(test_elements_text),
            cmocka_unit_test(test_spec_network),
            cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
