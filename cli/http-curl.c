/* SPDX-License-Identifier: Apache-2.0 */
/* cli/http-curl.c - berthctl's transport to a master (--master URL) or to berth-apps (--apps
 * URL): libcurl, for https with --cacert and the bearer token. libcurl is loaded with dlopen()
 * on the first such call
 * and the dozen functions used are looked up by name, so the verbs on the agent's socket
 * (http-local.c) never map it or the 33 libraries it pulls in (about 4 ms of every start,
 * issue #18). <curl/curl.h> still gives the types, constants and, through __typeof__, the
 * exact signature of each function. berthctl's package still depends on libcurl: berth-agent,
 * shipped with it, links it (packaging/deb/control, packaging/rpm). http.c reads the answers. */
#include <curl/curl.h>
#include <dlfcn.h>
#include <string.h>

#include "cli/cli.h"

#define CURL_SONAME "libcurl.so.4" /* the soname of every libcurl 7.16 and later */

/* Each function pointer is named after its function without "curl_" (see curl_load). */
struct ctl_curl {
    void *lib; /* dlopen handle */
    CURL *easy;
    bool global; /* curl_global_init succeeded */
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_global_cleanup) *global_cleanup;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_reset) *easy_reset;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_perform) *easy_perform;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
};

/* Load libcurl, initialise it with TLS and make the easy handle. Fails with one line naming
 * what is missing and the option that needs it (flag: "--master", "--apps"). */
static int curl_load(const char *flag, struct ctl_curl **ret, struct berr **err)
{
    struct ctl_curl *c = xmalloc(sizeof(*c));
    *c = (struct ctl_curl){.lib = dlopen(CURL_SONAME, RTLD_LAZY | RTLD_LOCAL)};
    if (!c->lib) {
        const char *why = dlerror();
        free(c);
        return berr_setx(err, ELIBACC, "%s needs libcurl (%s): %s", flag, CURL_SONAME,
                         why ? why : "cannot load it");
    }
    static const struct {
        const char *name;
        size_t offset;
    } fns[] = {
#define FN(field) {"curl_" #field, offsetof(struct ctl_curl, field)}
            FN(global_init),   FN(global_cleanup), FN(easy_init),      FN(easy_reset),
            FN(easy_cleanup),  FN(easy_setopt),    FN(easy_perform),   FN(easy_getinfo),
            FN(easy_strerror), FN(slist_append),   FN(slist_free_all),
#undef FN
    };
    for (size_t i = 0; i < ARRAY_SIZE(fns); i++) {
        void *f = dlsym(c->lib, fns[i].name);
        if (!f) {
            int r = berr_setx(err, ELIBBAD, "%s needs libcurl: %s has no %s", flag, CURL_SONAME,
                              fns[i].name);
            ctl_curl_free(c);
            return r;
        }
        memcpy((char *) c + fns[i].offset, &f, sizeof(f)); /* POSIX: void * holds a function */
    }
    /* TLS for https:// (OpenSSL's start-up is paid here only, never on the socket) */
    if (c->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ctl_curl_free(c);
        return berr_setx(err, ENOMEM, "cannot initialise libcurl");
    }
    c->global = true;
    c->easy = c->easy_init();
    if (!c->easy) {
        ctl_curl_free(c);
        return berr_setx(err, ENOMEM, "cannot initialise libcurl");
    }
    *ret = c;
    return 0;
}

static size_t sink_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct ctl_sink *s = arg;
    size_t n = size * nmemb;
    /* 0 makes curl stop with CURLE_WRITE_ERROR; the sink says why */
    return ctl_sink_put(s, data, n) < 0 ? 0 : n;
}

struct header_arg {
    struct ctl_curl *c;
    struct ctl_sink *sink;
};

/* Each header line: the status is known before the first body byte, which the sink needs
 * (a 2xx body may be streamed, others are buffered). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct header_arg *h = arg;
    long status = 0;
    h->c->easy_getinfo(h->c->easy, CURLINFO_RESPONSE_CODE, &status);
    h->sink->status = status;
    (void) data;
    return size * nmemb;
}

int ctl_curl_request(struct ctl *ctl, const char *method, const char *path, const char *body,
                     struct ctl_sink *sink, struct berr **err)
{
    int r;
    if (!ctl->curl && (r = curl_load(ctl->apps ? "--apps" : "--master", &ctl->curl, err)) < 0)
        return r;
    struct ctl_curl *c = ctl->curl;
    if (!c)
        return berr_setx(err, EIO, "libcurl is not loaded");
    /* one handle for the process: curl keeps the connection alive between calls */
    c->easy_reset(c->easy);
    CURL *curl = c->easy;
    struct header_arg harg = {.c = c, .sink = sink};
    struct curl_slist *headers = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    _cleanup_free_ char *url = xasprintf("%s%s", ctl->url, path);
    _cleanup_free_ char *auth =
            ctl->token ? xasprintf("Authorization: Bearer %s", ctl->token) : NULL;

    if (ctl->cacert)
        c->easy_setopt(curl, CURLOPT_CAINFO, ctl->cacert);
    if (auth)
        headers = c->slist_append(headers, auth);
    c->easy_setopt(curl, CURLOPT_URL, url);
    c->easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    c->easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    c->easy_setopt(curl, CURLOPT_HEADERDATA, &harg);
    c->easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
    c->easy_setopt(curl, CURLOPT_WRITEDATA, sink);
    c->easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    c->easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    if (ctl->timeout_ms > 0)
        c->easy_setopt(curl, CURLOPT_TIMEOUT_MS, ctl->timeout_ms);
    c->easy_setopt(curl, CURLOPT_NOPROGRESS, 1L);
    c->easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (streq(method, "HEAD"))
        c->easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (body) {
        headers = c->slist_append(headers, "Content-Type: application/json");
        c->easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        c->easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
    }
    headers = c->slist_append(headers, "Accept: application/json");
    headers = c->slist_append(headers, "User-Agent: berthctl/" BERTH_VERSION);
    c->easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

    CURLcode rc = c->easy_perform(curl);
    long status = 0, oserr = 0;
    c->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    c->easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
    c->slist_free_all(headers);
    sink->status = status;

    const char *why = *errbuf ? errbuf : c->easy_strerror(rc);
    if (rc == CURLE_COULDNT_CONNECT || (rc == CURLE_OPERATION_TIMEDOUT && status == 0)) {
        if (oserr > 0)
            return berr_set(err, (int) oserr, "cannot connect to %s at '%s'", ctl->peer, ctl->url);
        return berr_setx(err, ECONNREFUSED, "cannot connect to %s at '%s': %s", ctl->peer, ctl->url,
                         why);
    }
    if (rc == CURLE_WRITE_ERROR && (sink->write_errno || sink->too_big))
        return ctl_sink_error(sink, ctl->peer, method, path, err);
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
        rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
        return berr_setx(err, EACCES, "%s at '%s' is not who it should be: %s (--cacert)",
                         ctl->peer, ctl->url, why);
    if (rc != CURLE_OK)
        return berr_setx(err, EIO, "%s %s on '%s': %s", method, path, ctl->url, why);
    return 0;
}

void ctl_curl_free(struct ctl_curl *c)
{
    if (!c)
        return;
    if (c->easy)
        c->easy_cleanup(c->easy);
    if (c->global)
        c->global_cleanup();
    if (c->lib)
        dlclose(c->lib);
    free(c);
}
