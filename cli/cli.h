/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cli.h - private header of berthctl (cli/): the context passed to every verb, the HTTP
 * calls (http.c) and their transports (http-local.c, http-curl.c), JSON helpers (json.c), pure
 * formatting helpers (format.c), run/exec option parsing and request bodies (run-request.c), ps
 * filters (ps-filter.c), berth-apps' texts (apps-render.c) and the verbs (verbs-*.c, master*.c,
 * apps.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"

#define CTL_DEFAULT_SOCKET "/run/berth/agent.sock"

struct ctl_local; /* http-local.c: the agent's socket */
struct ctl_curl;  /* http-curl.c: libcurl, loaded for --master */

/* One per process, built in main() and passed to every verb. */
struct ctl {
    const char *socket;      /* agent's unix socket path (borrowed from argv/env) */
    struct ctl_local *local; /* the connection to the agent, kept between calls (http-local.c) */
    struct ctl_curl *curl;   /* libcurl and its easy handle, only ever made for --master */
    long timeout_ms;         /* > 0: each call fails after this long (live views); 0: no limit */
    const char *master;      /* --master URL: calls go there over TCP instead (master.c) */
    const char *apps;        /* --apps URL: berth-apps' API (apps.c) */
    const char *url;         /* the remote peer's URL (--master or --apps), NULL: the agent */
    const char *peer;   /* who answers, for messages: "the agent", "the master", "berth-apps" */
    bool error_codes;   /* API errors read "CODE: message" (--apps) */
    char err_code[32];  /* the API code of the last error answer ("" if none) */
    char *token;        /* bearer token for the master (--token-file, $BERTH_TOKEN_FILE) */
    const char *cacert; /* CA bundle for the remote's TLS certificate (--cacert, $BERTH_CACERT) */
};
/* Free what the transports kept in ctl (connection, libcurl) and the token. */
void ctl_http_done(struct ctl *ctl);

/* ---- http.c: calls and their answers, over http-local.c or http-curl.c ------------------ */

/* Call the agent (the master with --master) and return its parsed JSON answer in *ret (NULL
 * for an empty body, e.g. 204; free with yajl_tree_free). body may be NULL. A 4xx/5xx answer
 * fails with the API error's message in err (err->code = API code); transport failures say
 * "cannot connect to the agent at '...'". Returns 0 or -errno. */
int ctl_call(struct ctl *ctl, const char *method, const char *path, const char *body, yajl_val *ret,
             struct berr **err);
/* GET path and copy the answer body to fd as it arrives (for logs -f). Error answers are
 * buffered and reported as for ctl_call. Returns 0 or -errno. */
int ctl_stream(struct ctl *ctl, const char *path, int fd, struct berr **err);

#define CTL_MAX_ANSWER (64u << 20) /* exec output is capped at 2 MiB; lists stay far below */

/* Where a transport puts the answer of one request. */
struct ctl_sink {
    int fd;          /* >= 0: copy 2xx bodies here as they arrive */
    long status;     /* the answer's HTTP status, set by the transport before any body */
    int write_errno; /* copying to fd failed: the transfer stopped */
    bool too_big;    /* the buffered body would pass CTL_MAX_ANSWER: the transfer stopped */
    char *buf;       /* buffered body, NUL-terminated (error answers; 2xx unless streamed) */
    size_t len, cap;
};
/* Take n bytes of the body: written to sink->fd for a 2xx answer when streaming, else
 * appended to sink->buf. Returns 0, or -1 when the transfer must stop (write_errno or
 * too_big says why). */
int ctl_sink_put(struct ctl_sink *sink, const void *data, size_t n);
/* The error of a transfer the sink stopped: "write output: ..." or "the agent's answer to
 * METHOD PATH is larger than 64 MiB" (peer: "the agent", ...). Returns -errno. */
int ctl_sink_error(const struct ctl_sink *sink, const char *peer, const char *method,
                   const char *path, struct berr **err);

/* The transports: one request, method and path as given, body (JSON, may be NULL) sent with
 * its length. 0 when an answer came (of any status: sink->status, the body in sink), else
 * -errno with err set. */
int ctl_local_request(struct ctl *ctl, const char *method, const char *path, const char *body,
                      struct ctl_sink *sink, struct berr **err);
void ctl_local_free(struct ctl_local *l);
int ctl_curl_request(struct ctl *ctl, const char *method, const char *path, const char *body,
                     struct ctl_sink *sink, struct berr **err);
void ctl_curl_free(struct ctl_curl *c);

/* ---- json.c: berthctl's JSON output (common/json.c has the helpers) ---------------------- */

/* Print v to f, pretty (indent 2) and newline-terminated. Returns 0 or -EIO. */
int ctl_json_print(FILE *f, yajl_val v);
/* Short one-line text of a command object: shell string or argv joined by spaces.
 * Returns a malloc'd string ("" if absent). */
char *ctl_command_text(yajl_val command);
/* The PORTS column of ps: "31000,31001" (host network), "172.31.0.2 31000->8080" (bridge:
 * its address, host port -> port inside when they differ), "none", or "-". malloc'd. */
char *ctl_ports_text(yajl_val ctr);

/* ---- format.c: pure helpers (unit-tested, no I/O) ------------------------------------- */

/* "5s", "3m", "2h", "4d"; negative or NaN -> "0s". */
void ctl_format_age(double seconds, char *buf, size_t len);
/* Human size with one decimal under 100 of a unit: "123B", "12.3MiB", "512MiB", "1.0GiB". */
void ctl_format_human(double bytes, char *buf, size_t len);
/* Decimal cores (double) as "2", "0.5", "1.25": rounded to millicores. */
void ctl_format_cores(double cores, char *buf, size_t len);
/* Average CPU use in percent of one core: cpu_seconds over elapsed; -1 when elapsed <= 0. */
double ctl_cpu_percent(double cpu_seconds, double elapsed);
/* Copy s into buf truncated to max display chars, ending with "..." when cut. */
void ctl_truncate(const char *s, size_t max, char *buf, size_t len);
/* Percent-encode s for a URL path segment or query value (RFC 3986 unreserved kept).
 * Returns a malloc'd string. */
char *ctl_url_escape(const char *s);
/* "/v1/containers/<escaped id><suffix>" (suffix may be NULL), malloc'd. */
char *ctl_ctr_path(const char *id, const char *suffix);
/* True for the terminal states FINISHED FAILED KILLED LOST. */
bool ctl_state_terminal(const char *state);

/* How a container ended, as the CLI's exit status: FINISHED -> 0; else exit_code when set,
 * 128+signal when set, 137 for MEMORY_LIMIT, else 1. */
struct ctl_end {
    const char *state;  /* may be NULL */
    const char *reason; /* may be NULL */
    const char *message;
    bool has_exit_code;
    int64_t exit_code;
    bool has_signal;
    int64_t signal;
};
int ctl_end_status(const struct ctl_end *e);
/* One line describing a non-successful end: "FAILED (EXITED, exit code 3)". */
void ctl_end_describe(const struct ctl_end *e, char *buf, size_t len);

/* A text table: left-aligned columns, 3 spaces apart, the last column unpadded. */
struct ctl_table {
    size_t ncols;
    size_t nrows; /* including the header row */
    char **cells; /* nrows * ncols, owned */
};
/* Start a table whose header row is the ncols given names. */
void ctl_table_init(struct ctl_table *t, size_t ncols, const char *const *header);
/* Append a row of t->ncols strings (copied; NULL prints as "-"). */
void ctl_table_add(struct ctl_table *t, const char *const *row);
/* Print the table to f. */
void ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* ---- top-render.c: text of the live views (pure; top.c owns the terminal) -------------- */

/* A container's last CPU sample seen by a live view. */
struct ctl_top_rate {
    char id[40];
    double cpu_seconds, sampled_at, cores;
};
/* What a live view remembers between frames (zero-initialise; free with ctl_top_state_free). */
struct ctl_top_state {
    struct ctl_top_rate *rates;
    size_t nrates;
};
void ctl_top_state_free(struct ctl_top_state *s);
/* Busy cores of ctr (a container object or a /stats answer): Δusage.cpu_seconds over
 * Δusage.sampled_at since the sample remembered in s, else the agent's usage.cpu_cores;
 * -1 when unknown. Remembers this sample in s. */
double ctl_top_cores(struct ctl_top_state *s, yajl_val ctr);
/* Drop remembered samples of containers not among ctrs[0..n). */
void ctl_top_forget(struct ctl_top_state *s, yajl_val *ctrs, size_t n);
/* The cores ctr's CPU% is measured against: cpus_limit, or cpus when it is "none"; -1 if
 * neither is known. Reads "resources" (container object) or "limits" (/stats answer). */
double ctl_top_limit_cores(yajl_val ctr);
/* One frame as text: "<title> - N containers", the node line (GET /v1/node answer), a blank
 * line and the table ID NAME STATE CPU% "CPU% HOST" "MEM USAGE / LIMIT" MEM% PIDS of ctrs
 * (ended ones only when all). Updates s. Returns a malloc'd string. */
char *ctl_top_frame(struct ctl_top_state *s, const char *title, yajl_val node, yajl_val *ctrs,
                    size_t n, bool all);

/* ---- top.c: the live views on a terminal ----------------------------------------------- */

/* Refresh interval in seconds: decimal, 0.1 to 3600. Returns 0 or -EINVAL. */
int ctl_parse_interval(const char *s, double *ret);
/* `stats ID` on a terminal: one container, refreshed every interval seconds until q,
 * Ctrl-C or a signal. Returns the exit status, or -errno with err set (e.g. the container
 * was removed); the terminal is restored in every case. */
int ctl_stats_live(struct ctl *ctl, const char *id, double interval, struct berr **err);

/* ---- run-request.c: run/exec option parsing and request bodies ------------------------- */

struct ctl_run_opts {
    const char *name, *cpus, *cpus_limit, *mem, *pids, *user, *shell, *role;
    const char **env; /* "K=V" strings, nenv of them (array owned, strings borrowed) */
    size_t nenv;
    const char **volumes; /* "H:C[:ro]" strings */
    size_t nvolumes;
    const char *ports;    /* --ports N: that many ports, any numbers */
    const char *network;  /* --network host|bridge|none */
    const char **publish; /* -p HOSTPORT:PORT, HOSTPORT or :PORT (repeatable) */
    size_t npublish;
    bool wait, json, help;
    char **argv; /* command, argc of them (borrowed from the command line) */
    int argc;
};
/* Parse `run` options (argv[0] is "run"). Sets opts->help for --help and returns 0. Fails with
 * a usage message in err. Free with ctl_run_opts_free. */
int ctl_run_parse(int argc, char **argv, struct ctl_run_opts *opts, struct berr **err);
void ctl_run_opts_free(struct ctl_run_opts *opts);
/* Build the POST /v1/containers body. Validates quantities locally. Returns 0 and a malloc'd
 * JSON string in *ret, or -EINVAL with err set. */
int ctl_run_body(const struct ctl_run_opts *opts, char **ret, struct berr **err);
/* Build {"argv": [...]} (or {"shell": s} when shell != NULL) for exec. */
char *ctl_exec_body(int argc, char *const *argv, const char *shell);
/* getopt_long wrapper state helper: turn a '?' / ':' from getopt_long into a usage error. */
int ctl_usage_error(const char *verb, int c, int argc, char **argv, struct berr **err);

/* ---- ps-filter.c: `ps --filter KEY=VALUE` (pure, unit-tested) ---------------------------- */

enum ctl_filter_key {
    CTL_FILTER_ID,     /* prefix of the id */
    CTL_FILTER_NAME,   /* part of the name */
    CTL_FILTER_STATE,  /* state, exactly (state=, or status= with docker's words) */
    CTL_FILTER_REASON, /* reason, exactly */
    CTL_FILTER_MAX,
};
#define CTL_FILTER_KEYS "state, status, name, id, reason"
/* The filters given; zero-initialise, free with ctl_ps_filter_free. Values of one key are
 * alternatives, different keys must all match. */
struct ctl_ps_filter {
    char **values[CTL_FILTER_MAX];
    size_t n[CTL_FILTER_MAX];
};
/* Add one "KEY=VALUE". Unknown keys, a missing '=' or value and unknown states fail with
 * -EINVAL and one line in err naming the accepted keys or states. */
int ctl_ps_filter_add(struct ctl_ps_filter *f, const char *arg, struct berr **err);
/* True when the container object ctr passes every filter (true for none). */
bool ctl_ps_filter_match(const struct ctl_ps_filter *f, yajl_val ctr);
void ctl_ps_filter_free(struct ctl_ps_filter *f);

/* ---- apps-render.c: `--apps URL app ...` (pure, unit-tested) --------------------------- */

#define CTL_APP_MAX_INSTANCES 1000 /* docs/apps.md: instances 0-1000 */
/* `app scale ID N`: N a decimal 0-1000. Returns 0 or -EINVAL. */
int ctl_app_parse_instances(const char *s, uint64_t *ret);
/* {"instances": N}, malloc'd. */
char *ctl_app_scale_body(uint64_t instances);
/* The "id" of an app file's text (for the PUT of `app deploy` after a 409 CONFLICT), a
 * malloc'd copy in *ret. Fails with -EINVAL and "not JSON: ..." or "no "id" in it". */
int ctl_app_file_id(const char *text, char **ret, struct berr **err);
/* "/v1/apps/<escaped id><suffix>" (suffix may be NULL), malloc'd. */
char *ctl_app_path(const char *id, const char *suffix);
/* `app ls` of a GET /v1/apps answer: ID INSTANCES RUNNING HEALTHY VERSION WAITING (the
 * instances the "waiting" entries count) DEPLOYMENTS (ids, comma-separated). Initialises t. */
void ctl_apps_table(yajl_val answer, struct ctl_table *t);
/* A TASK's "host:port,port" ("host" else "hostname"; "[v6]:port"; the host alone without
 * ports; "-" without a host). malloc'd. */
char *ctl_app_task_address(yajl_val task);
/* `app tasks` of a GET /v1/apps/{id}/tasks answer: ID AGENT (hostname, else 12 chars of the
 * agent id) ADDRESS STATE ("RUNNING (killing)" once berth-apps asked it to end) HEALTHY (yes,
 * no, - while unknown) VERSION. Initialises t. */
void ctl_app_tasks_table(yajl_val answer, struct ctl_table *t);
/* `app endpoints` (issue #17) of GET /v1/apps/{id} and GET /v1/apps/{id}/tasks answers: what
 * berth-lb routes to, a row per port of the app and serving instance (RUNNING, healthy, not
 * killing): SERVICE_PORT (the port's service_port, else "#INDEX") ADDRESS:PORT (the task's
 * "address", else its "host"; "[v6]:port") TASK_ID. Initialises t. */
void ctl_app_endpoints_table(yajl_val app, yajl_val tasks, struct ctl_table *t);
/* The same as {"endpoints": [{"service_port" (null: none), "port_index", "address", "port",
 * "task_id"}, ...]}, malloc'd. */
char *ctl_app_endpoints_json(yajl_val app, yajl_val tasks);
/* One "waiting" entry as a line people read: "2 instances wait: CONSTRAINT hostname UNIQUE:
 * ...", "1 instance waits: BACKOFF until ...". malloc'd, no newline. */
char *ctl_app_waiting_line(yajl_val waiting);
/* Every "waiting" entry of an APP, a line each ("" when nothing waits). malloc'd. */
char *ctl_app_waiting_text(yajl_val app);

/* ---- usage.c: help texts --------------------------------------------------------------- */

/* Print the usage of verb (NULL: of berthctl itself) to stdout; returns 0 (exit status). */
int ctl_print_usage(const char *verb);
/* True when verb names a known verb's help text. */
bool ctl_has_usage(const char *verb);

/* ---- verbs ------------------------------------------------------------------------------ */

/* Every verb gets argv with argv[0] = verb name and returns the process exit status (>= 0),
 * or -errno with err set (main prints it and exits 1). */
typedef int (*ctl_verb_fn)(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_run(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_wait(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_exec(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_ps(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_inspect(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_logs(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_kill(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_rm(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_stats(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_node(struct ctl *ctl, int argc, char **argv, struct berr **err);
int ctl_verb_top(struct ctl *ctl, int argc, char **argv, struct berr **err);
/* master.c: the verbs with --master URL (agents, tasks, run, kill, inspect, wait). */
int ctl_master_dispatch(struct ctl *ctl, int argc, char **argv, struct berr **err);
/* master-sched.c: frameworks, offers, roles, role set; -ENOENT for another verb. */
int ctl_master_sched_dispatch(struct ctl *ctl, int argc, char **argv, struct berr **err);
/* apps.c: the verbs with --apps URL (app deploy|ls|inspect|scale|restart|update|rm|tasks|
 * endpoints). */
int ctl_apps_dispatch(struct ctl *ctl, int argc, char **argv, struct berr **err);

/* Exit status of a terminal container object (see ctl_end_status); prints the end line on
 * stderr unless it FINISHED. */
int ctl_report_end(yajl_val ctr, const char *id);
