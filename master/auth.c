/* SPDX-License-Identifier: Apache-2.0 */
/* master/auth.c - who may call the master (docs/security.md): bearer tokens with rights
 * (admin; submit in given roles; read; join for agents to register), the static ones from
 * token_file and join_token_file and those made through /v1/tokens (kept in master.db as
 * their SHA-256, never their text), and the check every client call passes before the
 * router acts on it. Agents never send a bearer token: handshake.c runs their handshake with
 * the keys this file finds. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <string.h>

#include "master/master.h"

static const char *const rights_names[_M_RIGHTS_MAX] = {
        [M_RIGHTS_READ] = "read",
        [M_RIGHTS_SUBMIT] = "submit",
        [M_RIGHTS_ADMIN] = "admin",
        [M_RIGHTS_JOIN] = "join",
};

const char *master_rights_name(enum m_rights r)
{
    return r >= 0 && r < _M_RIGHTS_MAX ? rights_names[r] : "none";
}

enum m_rights master_rights_from_name(const char *s)
{
    for (int i = 0; s && i < _M_RIGHTS_MAX; i++)
        if (streq(rights_names[i], s))
            return (enum m_rights) i;
    return _M_RIGHTS_INVALID;
}

static struct m_token *token_free(struct m_token *t)
{
    if (!t)
        return NULL;
    free(t->name);
    for (char **r = t->roles; r && *r; r++)
        free(*r);
    free(t->roles);
    free(t);
    return NULL;
}

void master_tokens_free(struct master *m)
{
    while (m->tokens) {
        struct m_token *t = m->tokens;
        m->tokens = t->next;
        token_free(t);
    }
}

/* Roles from a comma list ("" or "*" = every role: NULL). */
static char **roles_split(const char *csv)
{
    if (!csv || !csv[0] || streq(csv, "*"))
        return NULL;
    size_t n = 1;
    for (const char *p = csv; *p; p++)
        n += *p == ',';
    char **roles = xcalloc(n + 1, sizeof(char *));
    _cleanup_free_ char *copy = xstrdup(csv);
    char *save = NULL;
    size_t k = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        roles[k++] = xstrdup(tok);
    return roles;
}

static char *roles_join(char *const *roles)
{
    if (!roles)
        return xstrdup("*");
    size_t len = 1;
    for (char *const *r = roles; *r; r++)
        len += strlen(*r) + 1;
    char *out = xzalloc(len);
    for (char *const *r = roles; *r; r++) {
        if (r != roles)
            strcat(out, ",");
        strcat(out, *r);
    }
    return out;
}

static struct m_token *token_add(struct master *m, const char *id, const uint8_t key[ML_KEY_LEN],
                                 const char *name, enum m_rights rights, const char *roles,
                                 double created_at, bool is_static)
{
    struct m_token *t = xzalloc(sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    memcpy(t->key, key, ML_KEY_LEN);
    t->name = xstrdup(name ? name : "");
    t->rights = rights;
    t->roles = roles_split(roles);
    t->created_at = created_at;
    t->is_static = is_static;
    t->next = m->tokens;
    m->tokens = t;
    return t;
}

/* A token file: its first line, at least 16 characters. */
static int read_token_file(const char *path, char **ret, struct berr **err)
{
    _cleanup_free_ char *text = NULL;
    int r = read_file_alloc(path, 4096, &text, NULL);
    if (r < 0)
        return berr_set(err, -r, "read '%s'", path);
    text[strcspn(text, "\r\n")] = 0;
    if (strlen(text) < 16)
        return berr_setx(err, EINVAL, "'%s': a token must be at least 16 characters", path);
    *ret = TAKE_PTR(text);
    return 0;
}

static int load_static(struct master *m, const char *path, const char *what, enum m_rights rights,
                       struct berr **err)
{
    _cleanup_free_ char *text = NULL;
    if (read_token_file(path, &text, err) < 0 || !text)
        return berr_wrap(err, "[master] %s", what);
    uint8_t key[ML_KEY_LEN];
    char id[ML_TOKEN_ID_LEN + 1];
    ml_token_key(text, key, id);
    explicit_bzero(text, strlen(text));
    token_add(m, id, key, what, rights, "*", 0, true);
    return 0;
}

static int load_row(struct master *m, const char *id, const char *key_hex, const char *name,
                    const char *rights, const char *roles, double created_at)
{
    uint8_t key[ML_KEY_LEN];
    enum m_rights r = master_rights_from_name(rights);
    if (!id || strlen(id) != ML_TOKEN_ID_LEN || ml_unhex(key_hex, key, ML_KEY_LEN) < 0 ||
        (int) r < 0) {
        log_warning("master.db: token '%s' is malformed: ignored", id ? id : "?");
        return 0;
    }
    token_add(m, id, key, name, r, roles, created_at, false);
    return 0;
}

int master_auth_load(struct master *m, struct berr **err)
{
    if (!m->cfg.token_file[0])
        return berr_setx(err, EINVAL,
                         "[master] token_file is not set: the master needs an admin token "
                         "(docs/security.md)");
    int r = load_static(m, m->cfg.token_file, "token_file", M_RIGHTS_ADMIN, err);
    if (r < 0)
        return r;
    if (m->cfg.join_token_file[0] &&
        (r = load_static(m, m->cfg.join_token_file, "join_token_file", M_RIGHTS_JOIN, err)) < 0)
        return r;
    return master_store_tokens_load(m, load_row, err);
}

struct m_token *master_token_find(struct master *m, const char *text)
{
    uint8_t key[ML_KEY_LEN];
    char id[ML_TOKEN_ID_LEN + 1];
    ml_token_key(text, key, id);
    for (struct m_token *t = m->tokens; t; t = t->next)
        if (streq(t->id, id) && CRYPTO_memcmp(t->key, key, ML_KEY_LEN) == 0)
            return t;
    return NULL;
}

struct m_token *master_join_token_by_id(struct master *m, const char *id)
{
    for (struct m_token *t = m->tokens; t; t = t->next)
        if (t->rights == M_RIGHTS_JOIN && streq(t->id, id))
            return t;
    return NULL;
}

bool master_token_may(const struct m_token *t, enum m_rights need, const char *role)
{
    if (!t || t->rights == M_RIGHTS_JOIN)
        return false;
    if (t->rights == M_RIGHTS_ADMIN)
        return true;
    if (need == M_RIGHTS_READ)
        return true;
    if (need != M_RIGHTS_SUBMIT || t->rights != M_RIGHTS_SUBMIT)
        return false;
    if (!t->roles || !role)
        return true;
    for (char **r = t->roles; *r; r++)
        if (streq(*r, role))
            return true;
    return false;
}

struct m_token *master_auth_client(struct master *m, struct evhttp_request *req)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!auth) {
        master_refuse(m, req, BERR_UNAUTHORIZED,
                      "no bearer token: send \"Authorization: Bearer <token>\"");
        return NULL;
    }
    struct m_token *t = str_has_prefix(auth, "Bearer ") ? master_token_find(m, auth + 7) : NULL;
    if (!t) {
        master_refuse(m, req, BERR_UNAUTHORIZED, "wrong bearer token");
        return NULL;
    }
    if (t->rights == M_RIGHTS_JOIN) {
        /* a join token only registers agents through the agent protocol */
        master_refuse(m, req, BERR_FORBIDDEN, "a join token cannot call the client API");
        return NULL;
    }
    return t;
}

int master_token_create(struct master *m, const char *name, enum m_rights rights, const char *roles,
                        char **ret_text, struct m_token **ret, struct berr **err)
{
    char text[49];
    if (random_hex(text, 48) < 0)
        return berr_setc(err, EIO, BERR_INTERNAL, "no randomness for a token");
    uint8_t key[ML_KEY_LEN];
    char id[ML_TOKEN_ID_LEN + 1];
    ml_token_key(text, key, id);
    char key_hex[ML_HEX_LEN + 1];
    ml_hex(key, ML_KEY_LEN, key_hex);
    double now = now_realtime();
    struct m_token probe = {.roles = roles_split(roles)};
    _cleanup_free_ char *csv = roles_join(probe.roles);
    for (char **r = probe.roles; r && *r; r++)
        free(*r);
    free(probe.roles);
    if (master_store_token_put(m, id, key_hex, name, master_rights_name(rights), csv, now) < 0)
        return berr_setc(err, EIO, BERR_INTERNAL, "cannot record the token in master.db");
    *ret = token_add(m, id, key, name, rights, csv, now, false);
    *ret_text = xstrdup(text);
    explicit_bzero(text, sizeof(text));
    return 0;
}

int master_token_remove(struct master *m, const char *id, struct berr **err)
{
    for (struct m_token **p = &m->tokens; *p; p = &(*p)->next) {
        struct m_token *t = *p;
        if (!streq(t->id, id))
            continue;
        if (t->is_static)
            return berr_setc(err, EPERM, BERR_CONFLICT,
                             "token '%s' comes from the master's configuration (%s): change "
                             "the file instead",
                             id, t->name);
        if (master_store_token_delete(m, id) < 0)
            return berr_setc(err, EIO, BERR_INTERNAL, "cannot remove the token from master.db");
        *p = t->next;
        token_free(t);
        return 0;
    }
    return berr_setc(err, ENOENT, BERR_NOT_FOUND, "no token '%s'", id);
}

void master_token_json(const struct m_token *t, yajl_gen g)
{
    yajl_gen_map_open(g);
    json_kv_str(g, "id", t->id);
    json_kv_str(g, "name", t->name);
    json_kv_str(g, "rights", master_rights_name(t->rights));
    json_str(g, "roles");
    yajl_gen_array_open(g);
    if (!t->roles)
        json_str(g, "*");
    for (char **r = t->roles; r && *r; r++)
        json_str(g, *r);
    yajl_gen_array_close(g);
    json_kv_bool(g, "static", t->is_static);
    if (t->created_at > 0)
        json_kv_double(g, "created_at", t->created_at);
    else
        json_kv_null(g, "created_at");
    yajl_gen_map_close(g);
}
