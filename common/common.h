/* SPDX-License-Identifier: Apache-2.0 */
/* common/common.h - the one public header of common/: cleanup attributes, the error object
 * (struct berr), logging, aborting allocators, quantity parsers and small fd/string helpers.
 * Every other folder may include it; it includes only libc. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <syslog.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* ---- cleanup ---------------------------------------------------------------------------- */

static inline void freep(void *p)
{
    free(*(void **) p);
}
/* Close *fd if open and mark it closed (-1), so a second closep (cleanup at scope exit)
 * can never close a number that meanwhile belongs to another fd. */
static inline void closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
    *fd = -1;
}
static inline void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}
static inline void closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}
void killp(pid_t *pid); /* SIGKILL and reap a still-owned child; no-op for <= 0 */

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_kill_ _cleanup_(killp)

/* Hand a value on: returns it and leaves the variable empty so cleanup skips it. */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _p = (p);                                                                    \
        (p) = NULL;                                                                                \
        _p;                                                                                        \
    })
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _fd = (fd);                                                                            \
        (fd) = -1;                                                                                 \
        _fd;                                                                                       \
    })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define streq(a, b) (strcmp((a), (b)) == 0)

/* ---- errors ----------------------------------------------------------------------------- */

/* The API's error codes (docs/api.md), one list for berth-agent and berth-master: the enum
 * is what code sets, apicode.c holds the one table of their names and HTTP statuses. */
enum berr_code {
    BERR_CODE_NONE, /* not said: the reply path makes it INTERNAL */
    BERR_INVALID_ARGUMENT,
    BERR_UNAUTHORIZED,
    BERR_UNKNOWN_AGENT_KEY,
    BERR_FORBIDDEN,
    BERR_NOT_FOUND,
    BERR_UNKNOWN_AGENT,
    BERR_METHOD_NOT_ALLOWED,
    BERR_CONFLICT,
    BERR_STALE_STREAM,
    BERR_INSUFFICIENT_RESOURCES,
    BERR_BODY_TOO_LARGE,
    BERR_INTERNAL,
    BERR_UNAVAILABLE,
    _BERR_CODE_MAX,
    _BERR_CODE_INVALID = -EINVAL,
};
/* "INVALID_ARGUMENT"...; NULL for BERR_CODE_NONE or out of range. */
const char *berr_code_name(enum berr_code c);
/* The code of a name (a client reading an error answer), or _BERR_CODE_INVALID. */
enum berr_code berr_code_from_name(const char *name);
/* The HTTP status a daemon answers with for c (500 for NONE and INTERNAL). */
int berr_code_http_status(enum berr_code c);

/* One error travels up as one object; each level prepends context ("launch 'web': ...").
 * code optionally names an API error code; the daemons' reply paths (agentd/api-error.c,
 * master/reply.c) turn it into a status with berr_code_http_status. */
struct berr {
    int errnum;          /* positive errno */
    enum berr_code code; /* BERR_CODE_NONE if none */
    char msg[1024];      /* "context: context: cause" */
};

/* Set *err (if err != NULL and *err is still NULL) and return -errnum. The cause text is
 * followed by ": strerror(errnum)" unless errnum is 0 or the format already says why. */
int berr_set(struct berr **err, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Like berr_set but without appending strerror (the message is the whole reason). */
int berr_setx(struct berr **err, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Same as berr_setx, also records an API code. */
int berr_setc(struct berr **err, int errnum, enum berr_code code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Prepend "context: " to *err's message; returns -errnum of *err (or -EIO if none). */
int berr_wrap(struct berr **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int berr_errno(const struct berr *err);
const char *berr_msg(const struct berr *err);
void berr_free(struct berr **err);
static inline void berr_freep(struct berr **err)
{
    berr_free(err);
}
#define _cleanup_berr_ _cleanup_(berr_freep)
#ifdef __clang_analyzer__
/* The analyzer reads one file at a time and so cannot know that these always return < 0:
 * it followed failures on as successes (`make analyze`). Only its build sees this. */
#define BERR_NEG_(call)                                                                            \
    ({                                                                                             \
        int r_ = (call);                                                                           \
        if (r_ >= 0)                                                                               \
            __builtin_unreachable();                                                               \
        r_;                                                                                        \
    })
#define berr_set(...) BERR_NEG_(berr_set(__VA_ARGS__))
#define berr_setx(...) BERR_NEG_(berr_setx(__VA_ARGS__))
#define berr_setc(...) BERR_NEG_(berr_setc(__VA_ARGS__))
#define berr_wrap(...) BERR_NEG_(berr_wrap(__VA_ARGS__))
#endif

/* ---- logging ---------------------------------------------------------------------------- */

void log_set_level(int prio);
/* "error", "warning", "debug"; anything else is info (the daemons' log_level key, checked
 * when read). */
void log_set_level_name(const char *name);
int log_get_level(void);
void log_set_ident(const char *ident);
/* Write one line to stderr: "<N>" prefix when JOURNAL_STREAM matches stderr. Returns -errnum
 * when errnum > 0, else 0. */
int log_msg(int prio, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define log_error(...) log_msg(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, 0, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, 0, __VA_ARGS__)
/* r is a negative errno; returns r */
#define log_errno(prio, r, ...) (log_msg((prio), -(r), __VA_ARGS__), (r))
/* A message that may repeat without bound (a failing accept): true when it may go out now,
 * at most burst per interval_ns; *ret_suppressed gets how many were dropped before it. */
struct log_ratelimit {
    uint64_t window_start_ns;
    unsigned count, suppressed;
};
bool log_ratelimit_ok(struct log_ratelimit *rl, uint64_t interval_ns, unsigned burst,
                      unsigned *ret_suppressed);
/* log_msg, but at most 3 lines per 10 s for key (a static string), each saying how many were
 * dropped before it: for messages that may repeat without bound. */
void log_limited(const char *key, int prio, int errnum, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* event_set_log_callback()'s callback: libevent's warnings through this log, rate-limited. */
void log_libevent(int severity, const char *msg);

/* ---- allocation (abort on OOM) ---------------------------------------------------------- */

#define _nonnull_result_ __attribute__((returns_nonnull))
_nonnull_result_ void *xmalloc(size_t n);
_nonnull_result_ void *xzalloc(size_t n);
_nonnull_result_ void *xcalloc(size_t n, size_t size);
_nonnull_result_ void *xrealloc(void *p, size_t n);
_nonnull_result_ char *xstrdup(const char *s);
_nonnull_result_ char *xstrndup(const char *s, size_t n);
_nonnull_result_ char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- parsers ---------------------------------------------------------------------------- */

/* All return 0 or -EINVAL/-ERANGE and write *ret only on success. */
int parse_u64(const char *s, uint64_t *ret);
int parse_i64(const char *s, int64_t *ret);
/* Sizes: plain bytes, B, KiB/MiB/GiB/TiB (binary), KB/MB/GB/TB (decimal), K/M/G/T (binary),
 * decimals allowed ("1.5GiB"); result must fit uint64 and be a whole number of bytes. */
int parse_size(const char *s, uint64_t *ret);
/* CPUs as decimal, returned in millicores (1.5 -> 1500); > 0 and at most 1e6 cores.
 * Refuses NaN, inf, negatives and more than three decimals. */
int parse_cpus(const char *s, uint64_t *ret_millis);
int parse_bool(const char *s, bool *ret);
/* Format bytes with the largest exact binary unit ("1GiB", "1536MiB", "123B"). */
void format_size(uint64_t bytes, char *buf, size_t len);
/* Format millicores as a decimal ("2", "0.5", "1.25"). */
void format_cpus(uint64_t millis, char *buf, size_t len);

/* ---- fd, file and string helpers -------------------------------------------------------- */

/* Read at most max-1 bytes of dirfd/path into buf, NUL-terminate, strip one trailing newline.
 * Returns length or -errno. dirfd may be AT_FDCWD. */
ssize_t read_file_at(int dirfd, const char *path, char *buf, size_t max);
/* The fields of /proc/PID/stat (pid 0: our own), numbered as proc(5) numbers them, into
 * v[3] .. v[n-1]: v[3] is the state letter, the others numbers. Returns how far it got (the
 * next field's number), -ESRCH when pid is gone, or -errno. */
int proc_stat_fields(pid_t pid, unsigned long long *v, int n);
/* Read a whole (small) file into a malloc'd string; max bounds the size. */
int read_file_alloc(const char *path, size_t max, char **ret, size_t *ret_len);
/* Write value with one write(2) (O_WRONLY|O_TRUNC|O_CLOEXEC, no create). Returns 0 or -errno. */
int write_file_at(int dirfd, const char *path, const char *value);
/* Write data to dirfd/name atomically: name.tmp, fsync, rename. */
int write_file_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* The same without fsync: readers never see a partial file, and the file survives a crash
 * of the writer (the page cache keeps it), not of the machine. For files that only matter
 * while the machine stays up (spec.json, status.json: a machine crash ends the tasks). */
int write_file_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* Write all bytes, retrying on EINTR / short writes. */
int write_all(int fd, const void *data, size_t len);
/* mkdir -p with mode for created components. */
int mkdir_p(const char *path, mode_t mode);
/* Mark dir the top of unrelated hierarchies (FS_TOPDIR_FL, chattr +T): ext2/3/4's Orlov
 * allocator then spreads its subdirectories over the block groups instead of packing them
 * near it. 0, also where the file system has no such flag (a hint); else -errno. */
int dir_set_topdir(const char *path);
/* A stack of size bytes for a clone(CLONE_VM) child, with a guard page below it: its top,
 * or NULL (errno set). stack_unmap(top, size) gives it back. */
void *stack_map(size_t size);
void stack_unmap(void *top, size_t size);
/* rm -rf, without crossing mount points (fails with -EBUSY on a mount); a tree deeper than
 * RM_RF_MAX_DEPTH goes to coreutils' rm (fts walks without recursion: a task can build a
 * tree millions of levels deep in its sandbox, and a level here costs a stack frame and an
 * open directory). rm_rf_here is its part in this process: -ELOOP for such a tree (what it
 * could remove is removed), -ECANCELED once *stop is set (NULL: never). */
#define RM_RF_MAX_DEPTH 128
int rm_rf(const char *path);
int rm_rf_here(const char *path, const atomic_bool *stop);
/* pthread_create of a thread named name (/proc/PID/task/TID/comm, at most 15 characters:
 * what top -H and perf show) that runs at the process's priority (thread_priority_restore)
 * with the signals of blocked blocked; 0 or the error number. thread_start_quiet blocks
 * every signal (they stay with the caller's, an event loop's: libevent's evsignal, SIGCHLD). */
int thread_start(pthread_t *t, const char *name, const sigset_t *blocked, void *(*fn)(void *),
                 void *arg);
int thread_start_quiet(pthread_t *t, const char *name, void *(*fn)(void *), void *arg);
/* The calling thread (the agent's loop) `by` nice levels above the process's start (at most
 * -20): 0 or -errno. Threads started by thread_start_quiet and children that call
 * thread_priority_restore (async-signal-safe) run at the start's again. */
int thread_raise_priority(int by);
void thread_priority_restore(void);
/* In a thread: a table of open files of its own holding only fds a and b (a == b: one).
 * Sharing the loop's, it made each growth of that table wait for an RCU grace period (the
 * kernel's expand_fdtable; 10-17 ms turns under a burst, issue #18). Unshare failed: as is. */
void thread_own_files(int a, int b);
/* Random lowercase hex id of len chars (len <= 64) into buf (len+1 bytes). */
int random_hex(char *buf, size_t len);
/* Free a NULL-terminated vector of strings and the vector (NULL is fine). */
void strv_free(char **v);
static inline void strv_freep(char ***v)
{
    strv_free(*v);
}
bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* Seconds since the epoch as a double (CLOCK_REALTIME) and monotonic ns. */
double now_realtime(void);
uint64_t now_monotonic_ns(void);

/* ---- JSON (json.c): the one set of yajl helpers --------------------------------------- */

#define JSON_MAX_DEPTH 32
/* Parse text (len bytes, need not be NUL-terminated) with a nesting limit of JSON_MAX_DEPTH,
 * refusing NUL bytes and U+0000. NULL with err (INVALID_ARGUMENT) when it is not JSON. The
 * caller frees the tree with yajl_tree_free. */
yajl_val json_parse(const char *text, size_t len, struct berr **err);
/* The value under key in an object; NULL when obj is not an object, the key is absent or its
 * value is null (berth's JSON treats null as absent everywhere). */
yajl_val json_get(yajl_val obj, const char *key);
/* Typed getters: NULL / false when the member is absent or of another type. */
const char *json_get_str(yajl_val obj, const char *key);
bool json_get_double(yajl_val obj, const char *key, double *ret);        /* finite numbers only */
bool json_get_u64(yajl_val obj, const char *key, uint64_t *ret);         /* the whole u64 range */
bool json_get_i64(yajl_val obj, const char *key, int64_t *ret);          /* integers only */
bool json_get_cpus(yajl_val obj, const char *key, uint64_t *ret_millis); /* 1.5 or "1.5" */
bool json_get_size(yajl_val obj, const char *key, uint64_t *ret);        /* bytes or "1GiB" */
/* An array of strings as a NULL-terminated vector (owned by the caller; *ret NULL when the
 * member is absent); -EINVAL when it is not an array of strings. */
int json_get_strv(yajl_val obj, const char *key, char ***ret);
/* Emitters; a NULL string is emitted as null. */
void json_str(yajl_gen g, const char *s);
void json_u64(yajl_gen g, uint64_t v);
void json_double(yajl_gen g, double v); /* non-finite: null */
void json_cpus(yajl_gen g, uint64_t millis);
void json_kv_str(yajl_gen g, const char *k, const char *v);
void json_kv_u64(yajl_gen g, const char *k, uint64_t v);
void json_kv_i64(yajl_gen g, const char *k, int64_t v);
void json_kv_double(yajl_gen g, const char *k, double v);
void json_kv_bool(yajl_gen g, const char *k, bool v);
void json_kv_null(yajl_gen g, const char *k);
void json_kv_cpus(yajl_gen g, const char *k, uint64_t millis);
void json_kv_strv(yajl_gen g, const char *k, char *const *v); /* NULL: null */
/* Embed already-serialised JSON under k (NULL, empty or unreadable: null). */
void json_kv_raw(yajl_gen g, const char *k, const char *json);
/* Emit a parsed tree as it is (NULL: null). */
void json_gen_value(yajl_gen g, yajl_val v);
/* The generator's text (malloc'd); frees g. */
char *json_gen_take(yajl_gen g);
/* A parsed tree as text (malloc'd). */
char *json_to_text(yajl_val v);

/* ---- readiness (notify.c): the sd_notify datagram of Type=notify units ------------------ */

/* $NOTIFY_SOCKET, read and removed from the environment so that nothing the daemon starts
 * can talk to its service manager. Owned by the caller; NULL when unset or empty. */
char *notify_socket_take(void);
/* Send one datagram ("READY=1", "STOPPING=1") to socket_path (a path, or "@name" for an
 * abstract address). 0 when sent, also for a NULL socket_path (not under a service
 * manager); -errno otherwise. Logs at debug only. */
int notify_send(const char *socket_path, const char *state);
