/* SPDX-License-Identifier: Apache-2.0 */
/* cli/top.c - berthctl's live views: `top` (every running container, refreshed like
 * `docker stats`) and `stats ID` on a terminal. Owns the terminal while a view runs:
 * alternate screen, hidden cursor, stdin without echo and line editing; restores it on q,
 * Ctrl-C, SIGTERM/SIGHUP, Ctrl-Z, errors and exit. top-render.c makes the text, http.c
 * fetches, verbs-ctr.c parses `stats`. Without a terminal on stdout a view prints one frame. */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

#define ESC_ENTER "\033[?1049h\033[?25l\033[H\033[2J" /* alternate screen, hide cursor, clear */
#define ESC_LEAVE "\033[?25h\033[?1049l"              /* show cursor, main screen back */
#define CALL_TIMEOUT_MS 5000L /* a hung agent must not make q and Ctrl-C wait forever */

/* The terminal as we found it, and the signals seen. This is berthctl's only file-scope
 * mutable state besides log.c's: signal handlers and the atexit hook get no argument, and
 * the terminal must come back even when something calls exit() while a view runs. */
static struct {
    bool active; /* alternate screen entered, not yet left */
    bool raw;    /* tty_fd's termios changed (saved holds the original) */
    int tty_fd;  /* stdin when it is a terminal, else -1 */
    bool hooked; /* atexit hook installed */
    struct termios saved;
} term = {.tty_fd = -1};
static volatile sig_atomic_t got_quit;  /* SIGINT, SIGTERM or SIGHUP: its number */
static volatile sig_atomic_t got_winch; /* the window changed size */
static volatile sig_atomic_t got_tstp;  /* Ctrl-Z */

static const int quit_signals[] = {SIGINT, SIGTERM, SIGHUP};

/* Handlers only note the signal; the loop acts on it after ppoll() returns. */
static void on_quit(int sig)
{
    got_quit = sig;
}

static void on_winch(int sig)
{
    (void) sig;
    got_winch = 1;
}

static void on_tstp(int sig)
{
    (void) sig;
    got_tstp = 1;
}

/* Give the terminal back: main screen, cursor, original termios. Idempotent; only
 * async-signal-safe calls (write, tcsetattr), so it is also safe from the atexit hook. */
static void term_leave(void)
{
    if (term.active) {
        term.active = false;
        (void) !write(STDOUT_FILENO, ESC_LEAVE, strlen(ESC_LEAVE));
    }
    if (term.raw) {
        term.raw = false;
        tcsetattr(term.tty_fd, TCSANOW, &term.saved);
    }
}

/* Take the terminal: stdin (when a tty) without echo and canonical mode, so single keys
 * arrive at once and are not printed; ISIG stays, so Ctrl-C and Ctrl-Z still raise signals.
 * Then the alternate screen, which keeps the user's scrollback intact. */
static int term_enter(struct berr **err)
{
    if (!term.hooked) {
        atexit(term_leave);
        term.hooked = true;
    }
    term.tty_fd = isatty(STDIN_FILENO) ? STDIN_FILENO : -1;
    if (term.tty_fd >= 0) {
        if (tcgetattr(term.tty_fd, &term.saved) < 0)
            return berr_set(err, errno, "read the terminal's settings");
        struct termios raw = term.saved;
        raw.c_lflag &= ~(tcflag_t) (ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(term.tty_fd, TCSANOW, &raw) < 0)
            return berr_set(err, errno, "set the terminal's mode");
        term.raw = true;
    }
    term.active = true;
    int r = write_all(STDOUT_FILENO, ESC_ENTER, strlen(ESC_ENTER));
    if (r < 0) {
        term_leave();
        return berr_set(err, -r, "write to the terminal");
    }
    return 0;
}

/* Install the handlers (no SA_RESTART: ppoll must wake up) and block the signals outside
 * ppoll, so one that arrives while we fetch or draw is seen by the next ppoll at once
 * instead of being lost in the gap before it. *ret_old gets the mask to restore. */
static void signals_take(struct sigaction old[5], sigset_t *ret_old)
{
    sigset_t set;
    sigemptyset(&set);
    struct sigaction sa = {.sa_handler = on_quit};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < ARRAY_SIZE(quit_signals); i++) {
        sigaction(quit_signals[i], &sa, &old[i]);
        sigaddset(&set, quit_signals[i]);
    }
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, &old[3]);
    sa.sa_handler = on_tstp;
    sigaction(SIGTSTP, &sa, &old[4]);
    sigaddset(&set, SIGWINCH);
    sigaddset(&set, SIGTSTP);
    sigprocmask(SIG_BLOCK, &set, ret_old);
    got_quit = got_winch = got_tstp = 0;
}

static void signals_give_back(const struct sigaction old[5], const sigset_t *mask)
{
    for (size_t i = 0; i < ARRAY_SIZE(quit_signals); i++)
        sigaction(quit_signals[i], &old[i], NULL);
    sigaction(SIGWINCH, &old[3], NULL);
    sigaction(SIGTSTP, &old[4], NULL);
    sigprocmask(SIG_SETMASK, mask, NULL);
}

/* Ctrl-Z: give the terminal back, stop for real (default SIGTSTP action), and take it
 * again when the shell continues us with `fg`. */
static int suspend(const sigset_t *unblocked, struct berr **err)
{
    term_leave();
    struct sigaction dfl = {.sa_handler = SIG_DFL}, mine;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGTSTP, &dfl, &mine);
    raise(SIGTSTP);                            /* pending: we block it ... */
    sigprocmask(SIG_SETMASK, unblocked, NULL); /* ... until here, where we stop */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTSTP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    sigaction(SIGTSTP, &mine, NULL);
    got_tstp = 0;
    return term_enter(err);
}

static void window_size(int *rows, int *cols)
{
    struct winsize ws;
    *rows = 24;
    *cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* Draw text (lines split on '\n') over the screen from the top-left corner: each line cut
 * to the width and cleared to its end, rows beyond the height replaced by "... N more",
 * then status (may be NULL) on the last row, and the rest of the screen cleared. One
 * write(), so the terminal never shows half a frame; no full clear, so nothing flickers. */
static int draw(const char *text, const char *status, struct berr **err)
{
    int rows, cols;
    window_size(&rows, &cols);
    size_t nlines = 0;
    for (const char *p = text; *p; p++)
        nlines += *p == '\n';
    int avail = rows - 1; /* the last row is the status line */
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        abort();
    fputs("\033[H", f);
    const char *p = text;
    for (int row = 0; row < avail && *p; row++) {
        size_t n = strcspn(p, "\n");
        if (row == avail - 1 && (size_t) row + 1 < nlines) {
            fprintf(f, "... %zu more\033[K\r\n", nlines - (size_t) row);
            break;
        }
        size_t show = n < (size_t) cols ? n : (size_t) cols;
        while (show > 0 && show < n && ((unsigned char) p[show] & 0xc0) == 0x80)
            show--; /* never cut a UTF-8 character in half */
        fprintf(f, "%.*s\033[K\r\n", (int) show, p);
        p += n + (p[n] == '\n');
    }
    fputs("\033[J", f); /* clear the rest, then the status line on the last row */
    if (status && *status)
        fprintf(f, "\033[%d;1H%.*s", rows, cols, status);
    if (fclose(f) != 0)
        abort();
    int r = write_all(STDOUT_FILENO, out, len);
    free(out);
    return r < 0 ? berr_set(err, -r, "write to the terminal") : 0;
}

/* What a view shows: every non-ended container (top), or one container (stats ID). */
struct view {
    const char *id; /* NULL: top */
    char *path;     /* GET path of the containers (list or one /stats) */
    yajl_val node, ctrs;
    struct ctl_top_state rates;
};

static void view_drop(struct view *v)
{
    yajl_tree_free(v->node);
    yajl_tree_free(v->ctrs);
    v->node = v->ctrs = NULL;
}

/* Fetch the node and the containers (replacing the last answers only when both came). */
static int view_fetch(struct ctl *ctl, struct view *v, struct berr **err)
{
    yajl_val node = NULL, ctrs = NULL;
    int r = ctl_call(ctl, "GET", "/v1/node", NULL, &node, err);
    if (r < 0)
        return r;
    r = ctl_call(ctl, "GET", v->path, NULL, &ctrs, err);
    if (r < 0) {
        yajl_tree_free(node);
        return r;
    }
    yajl_val list = json_get(ctrs, "containers");
    if (!v->id && (!list || !YAJL_IS_ARRAY(list))) {
        yajl_tree_free(node);
        yajl_tree_free(ctrs);
        return berr_setx(err, EPROTO, "list containers: the agent's answer has no 'containers'");
    }
    view_drop(v);
    v->node = node;
    v->ctrs = ctrs;
    return 0;
}

/* The current frame's text. */
static char *view_text(struct view *v)
{
    char title[128], clock[16];
    time_t now = time(NULL);
    struct tm tm;
    strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&now, &tm));
    if (v->id) {
        snprintf(title, sizeof(title), "berthctl stats %s %s", v->id, clock);
        return ctl_top_frame(&v->rates, title, v->node, &v->ctrs, 1, true);
    }
    snprintf(title, sizeof(title), "berthctl top %s", clock);
    yajl_val list = json_get(v->ctrs, "containers");
    return ctl_top_frame(&v->rates, title, v->node, list->u.array.values, list->u.array.len, false);
}

/* Seconds left until the monotonic deadline, as a timespec for ppoll. */
static struct timespec until(uint64_t deadline_ns)
{
    uint64_t now = now_monotonic_ns();
    uint64_t left = deadline_ns > now ? deadline_ns - now : 0;
    return (struct timespec){.tv_sec = (time_t) (left / 1000000000u),
                             .tv_nsec = (long) (left % 1000000000u)};
}

/* The refresh loop on the terminal, entered with the first answers in v. Returns the exit
 * status (0 for q and Ctrl-C, 128+N for SIGTERM/SIGHUP) or -errno with err set. The caller
 * restores the terminal and the signals. */
static int view_loop(struct ctl *ctl, struct view *v, double interval, const sigset_t *unblocked,
                     struct berr **err)
{
    _cleanup_free_ char *status = NULL;
    bool stdin_open = term.tty_fd >= 0;
    for (;;) {
        _cleanup_free_ char *text = view_text(v);
        int r = draw(text, status ? status : "q: quit", err);
        if (r < 0)
            return r;
        uint64_t deadline = now_monotonic_ns() + (uint64_t) (interval * 1e9);
        for (;;) {
            struct pollfd pfd = {.fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN};
            struct timespec left = until(deadline);
            int n = ppoll(&pfd, 1, &left, unblocked); /* signals arrive only in here */
            if (n < 0 && errno != EINTR)
                return berr_set(err, errno, "wait for input");
            if (got_quit)
                return got_quit == SIGINT ? 0 : 128 + got_quit;
            bool redraw = got_winch;
            got_winch = 0;
            if (got_tstp) {
                if ((r = suspend(unblocked, err)) < 0)
                    return r;
                redraw = true;
            }
            if (redraw) {
                free(text);
                text = view_text(v);
                if ((r = draw(text, status ? status : "q: quit", err)) < 0)
                    return r;
            }
            if (n > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
                return 0; /* the terminal went away */
            if (n > 0 && (pfd.revents & POLLIN)) {
                char keys[64];
                ssize_t k = read(STDIN_FILENO, keys, sizeof(keys));
                if (k == 0)
                    stdin_open = false;
                for (ssize_t i = 0; i < k; i++)
                    if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 /* ^C without ISIG */)
                        return 0;
            }
            if (now_monotonic_ns() >= deadline)
                break;
        }
        _cleanup_berr_ struct berr *ferr = NULL;
        if (view_fetch(ctl, v, &ferr) < 0) {
            /* the container is gone: nothing left to watch. Anything else (the agent
             * restarting, a timeout) is shown and retried: tasks outlive the agent */
            if (v->id && berr_errno(ferr) == ENOENT) {
                *err = TAKE_PTR(ferr);
                return -ENOENT;
            }
            free(status);
            status = xasprintf("error: %s (retrying every %gs)", berr_msg(ferr), interval);
        } else {
            free(status);
            status = NULL;
        }
    }
}

/* Run a view: first answers (errors here are plain errors, before the screen changes);
 * then one frame on stdout when once or stdout is not a terminal, else the live loop. */
static int view_run(struct ctl *ctl, struct view *v, double interval, bool once, struct berr **err)
{
    ctl->timeout_ms = CALL_TIMEOUT_MS;
    int r = view_fetch(ctl, v, err);
    if (r < 0)
        return r;
    if (once || !isatty(STDOUT_FILENO)) {
        _cleanup_free_ char *text = view_text(v);
        if (fputs(text, stdout) == EOF)
            return berr_set(err, errno, "write stdout");
        return 0;
    }
    struct sigaction old[5];
    sigset_t unblocked;
    signals_take(old, &unblocked);
    r = term_enter(err);
    if (r >= 0)
        r = view_loop(ctl, v, interval, &unblocked, err);
    term_leave();
    signals_give_back(old, &unblocked);
    return r;
}

int ctl_parse_interval(const char *s, double *ret)
{
    uint64_t millis; /* parse_cpus reads a decimal with up to three decimals: milliseconds */
    if (parse_cpus(s, &millis) < 0 || millis < 100 || millis > 3600 * 1000)
        return -EINVAL;
    *ret = (double) millis / 1000.0;
    return 0;
}

int ctl_stats_live(struct ctl *ctl, const char *id, double interval, struct berr **err)
{
    struct view v = {.id = id, .path = ctl_ctr_path(id, "/stats")};
    int r = view_run(ctl, &v, interval, false, err);
    view_drop(&v);
    ctl_top_state_free(&v.rates);
    free(v.path);
    return r;
}

int ctl_verb_top(struct ctl *ctl, int argc, char **argv, struct berr **err)
{
    static const struct option longopts[] = {
            {"interval", required_argument, NULL, 'i'},
            {"no-stream", no_argument, NULL, 'n'},
            {"help", no_argument, NULL, 'h'},
            {0},
    };
    double interval = 1.0;
    bool once = false;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:i:h", longopts, NULL)) != -1) {
        if (c == 'h')
            return ctl_print_usage("top");
        else if (c == 'i' && ctl_parse_interval(optarg, &interval) < 0)
            return berr_setx(err, EINVAL, "top: --interval '%s': expected seconds from 0.1 to 3600",
                             optarg);
        else if (c == 'n')
            once = true;
        else if (c != 'i')
            return ctl_usage_error("top", c, argc, argv, err);
    }
    if (optind < argc)
        return berr_setx(err, EINVAL, "top: unexpected argument '%s'", argv[optind]);
    struct view v = {.path = xstrdup("/v1/containers")};
    int r = view_run(ctl, &v, interval, once, err);
    view_drop(&v);
    ctl_top_state_free(&v.rates);
    free(v.path);
    return r;
}
