/* SPDX-License-Identifier: Apache-2.0 */
/* config/load.c - where the agent's settings come from, in order: defaults, the config file
 * (--config=FILE or /etc/berth/agent.conf), FILE.d/NAME.conf in name order, then --KEY=VALUE
 * flags. libinih does the INI syntax; config.c checks and stores each key (cfg_set) and
 * default-text.c holds the annotated agent.conf. Errors carry "FILE:LINE: " or "--flag: ". */
#include <dirent.h>
#include <ini.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "config/config.h"

#define INVALID(err, ...) berr_setc((err), EINVAL, BERR_INVALID_ARGUMENT, __VA_ARGS__)

/* One file being parsed. Debian's libinih (r55) is built without INI_HANDLER_LINENO, so the
 * handler cannot see line numbers; we feed inih through our own fgets-style reader
 * (ini_parse_stream) and count lines there. inih calls the reader once per line and the
 * handler right after, before reading on, so c->line is the handler's line. */
struct file_ctx {
    struct cfg_agent *cfg;
    const char *path;
    FILE *f;
    int line;         /* lines handed to inih so far */
    bool indented;    /* the current line starts with blanks: inih may take it as a continuation */
    bool too_long;    /* the reader stopped on a line longer than inih's buffer */
    int max_line;     /* inih's buffer size, for the message */
    char *prev_key;   /* "section\nkey" of the previous handler call, to spot continuations */
    int err_line;     /* line of err */
    struct berr *err; /* first error from cfg_set */
};

/* Remember where a key was set (takes where). */
static void note_where(struct cfg_agent *cfg, const char *section, const char *key, char *where)
{
    cfg->wheres = xrealloc(cfg->wheres, (cfg->n_wheres + 1) * sizeof(*cfg->wheres));
    cfg->wheres[cfg->n_wheres].key = xasprintf("%s\n%s", section, key);
    cfg->wheres[cfg->n_wheres++].where = xstrdup(where);
    static const char *const keys[] = {"cpus", "mem", "disk"};
    for (size_t i = 0; streq(section, "reserved") && i < ARRAY_SIZE(keys); i++) {
        if (streq(key, keys[i])) {
            free(cfg->reserved_where[i]);
            cfg->reserved_where[i] = TAKE_PTR(where);
        }
    }
    free(where);
}

static char *file_reader(char *str, int num, void *stream)
{
    struct file_ctx *c = stream;
    if (c->err || c->too_long)
        return NULL; /* stop: the first error is the one reported */
    long before = ftell(c->f);
    if (!fgets(str, num, c->f))
        return NULL;
    c->line++;
    size_t len = strlen(str);
    /* a NUL would end the line early for inih, and control characters are never meant:
     * "\x00\x01\xff" was silently ignored (review L4) */
    bool nul = before >= 0 && ftell(c->f) - before > (long) len;
    size_t bad = strcspn(str, "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12"
                              "\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f");
    if (nul || bad < len) {
        INVALID(&c->err, "%s in the line", nul ? "a NUL byte" : "a control character");
        c->err_line = c->line;
        return NULL;
    }
    if (len > 0 && str[len - 1] != '\n' && len + 1 == (size_t) num) {
        /* inih would parse the rest of this line as a line of its own */
        int ch = getc(c->f);
        if (ch != EOF) {
            c->too_long = true;
            c->max_line = num - 2;
            return NULL;
        }
    }
    c->indented = str[0] == ' ' || str[0] == '\t';
    return str;
}

static int file_handler(void *user, const char *section, const char *name, const char *value)
{
    struct file_ctx *c = user;
    if (c->err)
        return 0;
    _cleanup_free_ char *id = xasprintf("%s\n%s", section, name);
    /* inih joins an indented line to the previous key by calling us again with the same name
     * (INI_ALLOW_MULTILINE); for us that would silently replace the value with its tail. */
    if (c->indented && c->prev_key && streq(c->prev_key, id)) {
        INVALID(&c->err,
                "[%s] %s: continuation lines are not supported (put the value on one "
                "line)",
                section, name);
        c->err_line = c->line;
        return 0;
    }
    free(c->prev_key);
    c->prev_key = TAKE_PTR(id);
    if (cfg_set(c->cfg, section, name, value, &c->err) < 0) {
        c->err_line = c->line;
        return 0;
    }
    note_where(c->cfg, section, name, xasprintf("%s:%d", c->path, c->line));
    return 1;
}

/* Parse one INI file into cfg. A missing file is fine only when missing_ok. */
static int parse_file(struct cfg_agent *cfg, const char *path, bool missing_ok, struct berr **err)
{
    _cleanup_fclose_ FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT && missing_ok)
            return 0;
        return INVALID(err, "%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
        return INVALID(err, "%s: is a directory, not a config file", path);
    struct file_ctx c = {.cfg = cfg, .path = path, .f = f};
    int r = ini_parse_stream(file_reader, &c, file_handler, &c);
    free(c.prev_key);
    _cleanup_berr_ struct berr *cerr = TAKE_PTR(c.err);
    if (r == -2)
        return berr_set(err, ENOMEM, "%s", path);
    /* inih keeps parsing after a syntax error and returns the first error's line, which is
     * also the line where our handler failed, if that came first */
    if (r > 0 && (!cerr || r < c.err_line))
        return INVALID(err, "%s:%d: syntax error (expected [section] or key = value)", path, r);
    if (cerr)
        return INVALID(err, "%s:%d: %s", path, c.err_line, berr_msg(cerr));
    if (c.too_long)
        return INVALID(err, "%s:%d: line too long (at most %d characters)", path, c.line,
                       c.max_line);
    if (ferror(f))
        return INVALID(err, "%s: read error", path);
    return 0;
}

static int conf_filter(const struct dirent *de)
{
    size_t n = strlen(de->d_name);
    return de->d_name[0] != '.' && n > 5 && streq(de->d_name + n - 5, ".conf");
}

/* strcmp, not alphasort's strcoll: the order must not depend on the locale. */
static int conf_compare(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Parse DIR/NAME.conf (all *.conf files) in byte order of their names; a missing DIR is fine. */
static int parse_dir(struct cfg_agent *cfg, const char *dir, struct berr **err)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, conf_filter, conf_compare);
    if (n < 0) {
        if (errno == ENOENT)
            return 0;
        return INVALID(err, "%s: %s", dir, strerror(errno));
    }
    int r = 0;
    for (int i = 0; i < n; i++) {
        if (r == 0) {
            _cleanup_free_ char *path = xasprintf("%s/%s", dir, list[i]->d_name);
            r = parse_file(cfg, path, false, err);
        }
        free(list[i]);
    }
    free(list);
    return r;
}

/* Apply one "--KEY=VALUE" or "--SECTION.KEY=VALUE" (the last '.' splits section and key, so
 * --role.analytics.cpus=2 is [role.analytics] cpus). '-' in KEY reads as '_'. */
static int apply_flag(struct cfg_agent *cfg, const char *arg, struct berr **err)
{
    const char *eq = strchr(arg, '=');
    _cleanup_free_ char *name = xstrndup(arg + 2, (size_t) (eq - (arg + 2)));
    char *dot = strrchr(name, '.');
    const char *section = "agent";
    char *key = name;
    if (dot) {
        *dot = 0;
        section = name;
        key = dot + 1;
    }
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
    if (!*key || !*section)
        return INVALID(err, "%s: expected --KEY=VALUE or --SECTION.KEY=VALUE", arg);
    _cleanup_berr_ struct berr *e = NULL;
    if (cfg_set(cfg, section, key, eq + 1, &e) < 0)
        return INVALID(err, "%s: %s", arg, berr_msg(e));
    note_where(cfg, section, key, xstrdup(arg));
    return 0;
}

/* Cross-key checks that only make sense once everything is read. */
/* "FILE:LINE: " of the [reserved] key k, or nothing: two arguments for "%s%s" */
#define WHERE(cfg, k)                                                                              \
    (cfg)->reserved_where[k] ? (cfg)->reserved_where[k] : "", (cfg)->reserved_where[k] ? ": " : ""

static int check_totals(const struct cfg_agent *cfg, struct berr **err)
{
    char a[32], b[32];
    uint64_t role_cpus = 0, role_mem = 0;
    for (size_t i = 0; i < cfg->n_roles; i++) {
        role_cpus += cfg->roles[i].cpus_millis;
        role_mem += cfg->roles[i].mem_bytes;
    }
    if (!cfg->cpus.is_auto && cfg->reserved_cpus_millis + role_cpus > cfg->cpus.value) {
        format_cpus(cfg->reserved_cpus_millis + role_cpus, a, sizeof(a));
        format_cpus(cfg->cpus.value, b, sizeof(b));
        return INVALID(err, "%s%s[reserved] and [role.*] cpus (%s) exceed [resources] cpus (%s)",
                       WHERE(cfg, 0), a, b);
    }
    if (!cfg->mem.is_auto && cfg->reserved_mem + role_mem > cfg->mem.value) {
        format_size(cfg->reserved_mem + role_mem, a, sizeof(a));
        format_size(cfg->mem.value, b, sizeof(b));
        return INVALID(err, "%s%s[reserved] and [role.*] mem (%s) exceed [resources] mem (%s)",
                       WHERE(cfg, 1), a, b);
    }
    if (!cfg->disk.is_auto && cfg->reserved_disk > cfg->disk.value) {
        format_size(cfg->reserved_disk, a, sizeof(a));
        format_size(cfg->disk.value, b, sizeof(b));
        return INVALID(err, "%s%s[reserved] disk (%s) exceeds [resources] disk (%s)", WHERE(cfg, 2),
                       a, b);
    }
    return 0;
}

static int load(struct cfg_agent *cfg, const char *default_path, int argc, char **argv,
                struct berr **err)
{
    const char *named = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *file = NULL;
        if (streq(a, "--config")) {
            if (i + 1 >= argc)
                return INVALID(err, "--config: missing FILE");
            file = argv[++i];
        } else if (str_has_prefix(a, "--config=")) {
            file = a + strlen("--config=");
        } else if (!str_has_prefix(a, "--") || !strchr(a, '=') || a[2] == '=') {
            return INVALID(err,
                           "'%s': unexpected argument (use --config=FILE, --KEY=VALUE or "
                           "--SECTION.KEY=VALUE)",
                           a);
        } else {
            continue; /* a flag: applied after the files */
        }
        if (!*file)
            return INVALID(err, "--config: empty FILE");
        if (named)
            return INVALID(err, "--config given twice ('%s' and '%s')", named, file);
        named = file;
    }

    const char *path = named ? named : default_path;
    free(cfg->config_file);
    cfg->config_file = xstrdup(path);
    int r = parse_file(cfg, path, !named, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *dir = xasprintf("%s.d", path);
    r = parse_dir(cfg, dir, err);
    if (r < 0)
        return r;

    for (int i = 1; i < argc; i++) {
        if (streq(argv[i], "--config")) {
            i++;
            continue;
        }
        if (str_has_prefix(argv[i], "--config="))
            continue;
        r = apply_flag(cfg, argv[i], err);
        if (r < 0)
            return r;
    }
    r = check_totals(cfg, err);
    if (r < 0)
        return r;
    if (str_has_prefix(cfg->master, "http://") && !cfg->master_plain_http)
        return INVALID(err,
                       "%s: [agent] master '%s' is plain HTTP: the agent could not tell the "
                       "master from anything else bound to its address; use https:// with "
                       "master_ca (docs/security.md), or set master_plain_http = true",
                       cfg_where(cfg, "agent", "master"), cfg->master);
    return 0;
}

int cfg_load_with_default(struct cfg_agent *cfg, const char *default_path, int argc, char **argv,
                          struct berr **err)
{
    cfg_defaults(cfg);
    int r = load(cfg, default_path, argc, argv, err);
    if (r < 0)
        cfg_done(cfg);
    return r;
}

int cfg_load(struct cfg_agent *cfg, int argc, char **argv, struct berr **err)
{
    return cfg_load_with_default(cfg, CFG_DEFAULT_FILE, argc, argv, err);
}
