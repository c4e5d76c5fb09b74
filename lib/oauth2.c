/* OAuth2 grants over libcurl + jansson (see oauth2.h). Every buffer that may hold a token (the
 * form we send, the body we receive, the JSON parsed from it) is wiped before it is freed: the
 * body lives in one fixed buffer that never moves (no realloc leaving copies behind), and JSON
 * strings are wiped through a jansson allocator of our own that clears every block it frees. */
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "build-config.h"
#include "oauth2.h"

#define HTTP_BODY_MAX (64u << 10)
#define HTTP_TIMEOUT_SEC 30L
#define HTTP_CONNECT_TIMEOUT_SEC 15L
#define LOOPBACK_REQUEST_MAX 8192
#define LOOPBACK_READ_TIMEOUT_MS 10000
#define DEVICE_INTERVAL_DEFAULT 5
#define DEVICE_INTERVAL_MAX 60
#define REFRESH_MARGIN_MAX 300

void oauth2_tokens_done(OAuth2Tokens *t) {
        erase_and_free(t->access_token);
        erase_and_free(t->refresh_token);
        *t = (OAuth2Tokens) {};
}

/* ---- wiping memory ---- */

/* jansson's allocator: blocks are wiped before they go back (parsed strings are tokens). */
static void *json_wiping_malloc(size_t n) {
        return malloc(n);
}

static void json_wiping_free(void *p) {
        if (p)
                explicit_bzero(p, malloc_usable_size(p));
        free(p);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool curl_ready;

static void global_init(void) {
        json_set_alloc_funcs(json_wiping_malloc, json_wiping_free);
        curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static int set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (!ret_error)
                return 0;
        free(*ret_error);
        va_start(ap, fmt);
        *ret_error = vasprintf_safe(fmt, ap);
        va_end(ap);
        return 0;
}

/* Text from the provider for a message: printable ASCII only, at most 200 bytes. */
static char *clean_text(const char *s) {
        char *out;
        size_t n = 0;

        if (!s)
                return strdup("");
        out = malloc(201);
        if (!out)
                return NULL;
        for (; *s && n < 200; s++)
                out[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        out[n] = 0;
        return out;
}

/* ---- HTTPS ---- */

typedef struct Body {
        char *data; /* HTTP_BODY_MAX + 1, wiped when done */
        size_t len;
        bool too_long;
} Body;

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        Body *b = userdata;
        size_t l = size * n;

        if (l > HTTP_BODY_MAX - b->len) {
                b->too_long = true;
                return 0; /* aborts the transfer */
        }
        memcpy(b->data + b->len, p, l);
        b->len += l;
        b->data[b->len] = 0;
        return l;
}

static int errno_from_curl(CURLcode c) {
        switch (c) {
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                return -EPERM;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        default:
                return -EPROTO;
        }
}

/* host of an https URL, for messages (borrowed into buf). */
static const char *url_host(const char *url, char *buf, size_t size) {
        const char *p = startswith(url, "https://") ?: url;
        size_t l = strcspn(p, "/?#");

        (void) snprintf(buf, size, "%.*s", (int) MIN(l, size - 1), p);
        return buf;
}

static _Thread_local const atomic_bool *abort_flag;

void oauth2_set_abort_flag(const atomic_bool *flag) {
        abort_flag = flag;
}

/* libcurl calls it about once a second even while nothing moves. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        (void) userdata, (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
        return abort_flag && atomic_load(abort_flag) ? 1 : 0;
}

/* POSTs form (application/x-www-form-urlencoded) to url and parses the JSON object it answers
 * with, whatever the HTTP status (OAuth2 errors come as 400 with a JSON body). */
static int http_post_json(const OAuth2Client *c, const char *url, const char *form, json_t **ret,
                          long *ret_status, char **ret_error) {
        char errbuf[CURL_ERROR_SIZE] = "", host[128];
        struct curl_slist *headers = NULL;
        Body body = {};
        json_error_t jerr;
        json_t *j = NULL;
        CURLcode cc;
        CURL *curl;
        long status = 0;
        int r = 0;

        pthread_once(&global_once, global_init);
        (void) url_host(url, host, sizeof host);
        if (!curl_ready)
                return set_error(ret_error, "cannot set up libcurl"), -ENOMEM;
        if (!startswith(url, "https://"))
                return set_error(ret_error, "refusing '%s': OAuth2 endpoints must be https://", host), -EINVAL;
        curl = curl_easy_init();
        body.data = malloc(HTTP_BODY_MAX + 1);
        headers = curl_slist_append(NULL, "Accept: application/json");
        if (!curl || !body.data || !headers) {
                r = -ENOMEM;
                goto finish;
        }
        body.data[0] = 0;
        /* The same checks as the IMAP connection: verified chain and name, TLS 1.2+, no
         * other scheme, no redirect (a token request never follows one). */
        if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
            (c->ca_file && curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_file) != CURLE_OK) ||
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_TIMEOUT, HTTP_TIMEOUT_SEC) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, HTTP_CONNECT_TIMEOUT_SEC) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_USERAGENT, "alcode/" ALCODE_VERSION) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK) {
                set_error(ret_error, "cannot set up the request to %s", host);
                r = -EPROTO;
                goto finish;
        }
        if (abort_flag && atomic_load(abort_flag)) {
                set_error(ret_error, "cancelled");
                r = -ECANCELED;
                goto finish;
        }
        cc = curl_easy_perform(curl);
        if (cc == CURLE_ABORTED_BY_CALLBACK) {
                set_error(ret_error, "cancelled while waiting for %s", host);
                r = -ECANCELED;
                goto finish;
        }
        if (cc != CURLE_OK) {
                r = body.too_long ? -EMSGSIZE : errno_from_curl(cc);
                if (r == -EPERM)
                        set_error(ret_error, "certificate of %s refused: %s", host, *errbuf ? errbuf : curl_easy_strerror(cc));
                else if (body.too_long)
                        set_error(ret_error, "%s answered with more than %u KiB", host, HTTP_BODY_MAX >> 10);
                else
                        set_error(ret_error, "cannot reach %s: %s", host, *errbuf ? errbuf : curl_easy_strerror(cc));
                goto finish;
        }
        (void) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        j = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j || !json_is_object(j)) {
                set_error(ret_error, "%s answered (HTTP %ld) with something that is not a JSON object", host, status);
                r = -EPROTO;
                goto finish;
        }
        *ret = TAKE_PTR(j);
        if (ret_status)
                *ret_status = status;
finish:
        json_decref(j);
        if (body.data) {
                explicit_bzero(body.data, HTTP_BODY_MAX + 1);
                free(body.data);
        }
        curl_slist_free_all(headers);
        if (curl)
                curl_easy_cleanup(curl);
        return r;
}

/* ---- forms ---- */

typedef struct Form {
        char *data; /* wiped on free */
        size_t len, alloc;
        bool failed;
} Form;

static void form_done(Form *f) {
        if (f->data) {
                explicit_bzero(f->data, f->alloc);
                free(f->data);
        }
        *f = (Form) {};
}

/* Appends key=value, value percent-encoded (RFC 3986 unreserved kept). Grows by copying into a
 * new buffer and wiping the old one. */
static void form_add(Form *f, const char *key, const char *value) {
        size_t need;
        char *n;

        if (f->failed || !value)
                return;
        need = f->len + strlen(key) + 3 * strlen(value) + 3;
        if (need > f->alloc) {
                size_t a = MAX(need * 2, (size_t) 512);
                n = calloc(1, a);
                if (!n) {
                        f->failed = true;
                        return;
                }
                if (f->data) {
                        memcpy(n, f->data, f->len);
                        explicit_bzero(f->data, f->alloc);
                        free(f->data);
                }
                f->data = n;
                f->alloc = a;
        }
        if (f->len > 0)
                f->data[f->len++] = '&';
        f->len += (size_t) sprintf(f->data + f->len, "%s=", key);
        for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
                if (isalnum(*p) || strchr("-._~", *p))
                        f->data[f->len++] = (char) *p;
                else
                        f->len += (size_t) sprintf(f->data + f->len, "%%%02X", *p);
        }
        f->data[f->len] = 0;
}

/* ---- token responses ---- */

static int error_from_json(json_t *j, const char *host, long status, char **ret_error, const char **ret_code) {
        const char *code = json_string_value(json_object_get(j, "error"));
        _cleanup_free_ char *desc = clean_text(json_string_value(json_object_get(j, "error_description")));
        _cleanup_free_ char *ccode = clean_text(code);

        if (ret_code)
                *ret_code = code;
        if (!code) {
                set_error(ret_error, "%s answered HTTP %ld without a token", host, status);
                return -EPROTO;
        }
        set_error(ret_error, "%s said %s%s%s", host, strempty(ccode), isempty(desc) ? "" : ": ", strempty(desc));
        if (streq(code, "invalid_grant"))
                return -EKEYREVOKED;
        if (streq(code, "expired_token"))
                return -ECANCELED;
        if (streq(code, "temporarily_unavailable") || streq(code, "server_error"))
                return -EAGAIN;
        return -EACCES;
}

static int tokens_from_json(json_t *j, const char *host, OAuth2Tokens *ret, char **ret_error) {
        json_t *at = json_object_get(j, "access_token"), *rt = json_object_get(j, "refresh_token");
        json_t *exp = json_object_get(j, "expires_in");
        const char *type = json_string_value(json_object_get(j, "token_type"));
        OAuth2Tokens t = {};
        json_int_t e = 0;

        if (!json_is_string(at) || json_string_length(at) == 0 || json_string_length(at) > 16384)
                return set_error(ret_error, "%s sent no access token", host), -EPROTO;
        if (type && !strcaseeq(type, "bearer"))
                return set_error(ret_error, "%s sent a token of type '%.20s', not Bearer", host, type), -EPROTO;
        if (json_is_integer(exp))
                e = json_integer_value(exp);
        else if (json_is_string(exp)) /* some providers quote it */
                e = strtoll(json_string_value(exp), NULL, 10);
        if (e < 0 || e > 10 * 365 * 86400LL)
                e = 0;
        t.access_token = strdup(json_string_value(at));
        if (json_is_string(rt) && json_string_length(rt) > 0)
                t.refresh_token = strdup(json_string_value(rt));
        if (!t.access_token || (json_is_string(rt) && json_string_length(rt) > 0 && !t.refresh_token)) {
                oauth2_tokens_done(&t);
                return -ENOMEM;
        }
        t.expires_at = e > 0 ? (int64_t) time(NULL) + e : 0;
        *ret = t;
        return 0;
}

/* POSTs form to the token endpoint. ret_code: the OAuth2 error code on failure (borrowed from
 * *ret_json, which the caller frees), for the device grant's polling. */
static int token_request(const OAuth2Client *c, Form *form, OAuth2Tokens *ret, char **ret_error,
                         char *ret_code, size_t code_size) {
        char host[128];
        json_t *j = NULL;
        long status = 0;
        const char *code = NULL;
        int r;

        if (form->failed)
                return -ENOMEM;
        (void) url_host(c->token_url, host, sizeof host);
        r = http_post_json(c, c->token_url, form->data, &j, &status, ret_error);
        if (r < 0)
                return r;
        if (status == 200 && json_object_get(j, "access_token"))
                r = tokens_from_json(j, host, ret, ret_error);
        else {
                r = error_from_json(j, host, status, ret_error, &code);
                if (ret_code)
                        (void) snprintf(ret_code, code_size, "%s", strempty(code));
        }
        json_decref(j);
        return r;
}

static void form_client(Form *f, const OAuth2Client *c) {
        form_add(f, "client_id", c->client_id);
        if (c->client_secret)
                form_add(f, "client_secret", c->client_secret);
}

int oauth2_refresh(const OAuth2Client *c, const char *refresh_token, OAuth2Tokens *ret, char **ret_error) {
        Form f = {};
        int r;

        form_add(&f, "grant_type", "refresh_token");
        form_add(&f, "refresh_token", refresh_token);
        form_client(&f, c);
        /* No scope: the grant's own (RFC 6749 §6), which every provider accepts. */
        r = token_request(c, &f, ret, ret_error, NULL, 0);
        form_done(&f);
        return r;
}

/* ---- PKCE and the loopback redirect ---- */

static void base64url(const uint8_t *p, size_t n, char *out) {
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t o = 0;

        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0) |
                             (i + 2 < n ? p[i + 2] : 0);
                out[o++] = a[v >> 18 & 63];
                out[o++] = a[v >> 12 & 63];
                if (i + 1 < n)
                        out[o++] = a[v >> 6 & 63];
                if (i + 2 < n)
                        out[o++] = a[v & 63];
        }
        out[o] = 0;
}

static int random_string(char *out, size_t bytes) {
        uint8_t buf[64];

        if (bytes > sizeof buf)
                return -EINVAL;
        if (getrandom(buf, bytes, 0) != (ssize_t) bytes)
                return -errno ?: -EIO;
        base64url(buf, bytes, out);
        explicit_bzero(buf, sizeof buf);
        return 0;
}

static int url_add(char **url, const char *key, const char *value) {
        Form f = {};
        char *n;
        int r;

        form_add(&f, key, value);
        if (f.failed)
                return -ENOMEM;
        r = asprintf(&n, "%s%s%s", *url, strchr(*url, '?') ? "&" : "?", f.data);
        form_done(&f);
        if (r < 0)
                return -ENOMEM;
        free(*url);
        *url = n;
        return 0;
}

static int hexval(char c) {
        return isdigit((unsigned char) c) ? c - '0' : isxdigit((unsigned char) c) ? tolower((unsigned char) c) - 'a' + 10 : -1;
}

/* The value of key in a query string, percent-decoded (owned), or NULL. */
static char *query_get(const char *q, const char *key) {
        size_t kl = strlen(key);

        for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
                size_t l = strcspn(p, "&");
                char *out, *o;
                if (l <= kl || strncmp(p, key, kl) != 0 || p[kl] != '=')
                        continue;
                out = o = malloc(l - kl);
                if (!out)
                        return NULL;
                for (const char *s = p + kl + 1; s < p + l; s++) {
                        if (*s == '%' && s + 2 < p + l + 1 && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
                                *o++ = (char) (hexval(s[1]) << 4 | hexval(s[2]));
                                s += 2;
                        } else
                                *o++ = *s == '+' ? ' ' : *s;
                }
                *o = 0;
                return out;
        }
        return NULL;
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void http_reply(int fd, int status, const char *text) {
        char buf[1024];
        int n = snprintf(buf, sizeof buf,
                         "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
                         "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
                         status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request",
                         strlen(text), text);
        if (n > 0)
                (void) !send(fd, buf, (size_t) MIN((size_t) n, sizeof buf - 1), MSG_NOSIGNAL);
}

/* Reads one request line from a browser connection: returns the query string of "GET /?..."
 * (owned, may hold the code: wiped by the caller), NULL for anything else. */
static char *read_request(int fd) {
        char buf[LOOPBACK_REQUEST_MAX + 1];
        size_t len = 0;
        int64_t deadline = now_ms() + LOOPBACK_READ_TIMEOUT_MS;
        char *q = NULL;

        while (len < LOOPBACK_REQUEST_MAX && !memmem(buf, len, "\r\n\r\n", 4)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = deadline - now_ms();
                ssize_t n;
                if (left <= 0 || poll(&p, 1, (int) left) <= 0)
                        break;
                n = recv(fd, buf + len, LOOPBACK_REQUEST_MAX - len, 0);
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        buf[len] = 0;
        if (startswith(buf, "GET /?") || startswith(buf, "GET /oauth2?")) {
                const char *s = strchr(buf, '?') + 1;
                q = strndup(s, strcspn(s, " \r\n"));
        }
        explicit_bzero(buf, len);
        return q;
}

static const char page_ok[] =
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>alcode</title></head><body>"
        "<h1>alcode is signed in</h1><p>You can close this page and go back to the terminal.</p></body></html>";
static const char page_error[] =
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>alcode</title></head><body>"
        "<h1>The sign-in did not work</h1><p>Go back to the terminal: alcode says why.</p></body></html>";

/* Listens on 127.0.0.1 (and, for a "localhost" redirect, on ::1 with the same port when it
 * can, since a browser may resolve localhost to either). fds[1] is -EBADF when there is only
 * one. */
static int listen_loopback(bool localhost, int fds[2], uint16_t *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        socklen_t sl = sizeof sa;
        int one = 1;

        fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[0] < 0 || bind(fds[0], (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fds[0], 4) < 0 ||
            getsockname(fds[0], (struct sockaddr *) &sa, &sl) < 0)
                return -errno;
        *ret_port = ntohs(sa.sin_port);
        if (!localhost)
                return 0;
        fds[1] = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sa6.sin6_port = sa.sin_port;
        if (fds[1] >= 0 && (setsockopt(fds[1], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0 ||
                            bind(fds[1], (struct sockaddr *) &sa6, sizeof sa6) < 0 || listen(fds[1], 4) < 0))
                fds[1] = safe_close(fds[1]); /* no IPv6 here: 127.0.0.1 alone */
        return 0;
}

/* The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636 §4.3) the browser opens. */
static int browser_url(const OAuth2Client *c, const char *login_hint, const char *redirect, const char *state,
                       const char *challenge, char **ret) {
        _cleanup_free_ char *url = strdup(c->authorize_url);
        const OAuth2Preset *google = oauth2_preset("google");

        if (!url || url_add(&url, "response_type", "code") < 0 || url_add(&url, "client_id", c->client_id) < 0 ||
            url_add(&url, "redirect_uri", redirect) < 0 || (c->scope && url_add(&url, "scope", c->scope) < 0) ||
            url_add(&url, "state", state) < 0 || url_add(&url, "code_challenge", challenge) < 0 ||
            url_add(&url, "code_challenge_method", "S256") < 0 ||
            (login_hint && url_add(&url, "login_hint", login_hint) < 0) ||
            /* Google gives a refresh token only when asked for offline access. */
            (streq(c->authorize_url, google->authorize_url) &&
             (url_add(&url, "access_type", "offline") < 0 || url_add(&url, "prompt", "consent") < 0)))
                return -ENOMEM;
        *ret = TAKE_PTR(url);
        return 0;
}

/* Answers the browser connections on lfd until one brings the answer to our request (its
 * state): the code (wiped and freed by the caller) to *ret_code, or why not. */
static int browser_wait_code(const int lfd[2], unsigned timeout_sec, const char *state, char **ret_code,
                             char **ret_error) {
        int64_t deadline = now_ms() + (int64_t) timeout_sec * 1000;

        for (;;) {
                struct pollfd p[2] = { { .fd = lfd[0], .events = POLLIN }, { .fd = lfd[1], .events = POLLIN } };
                _cleanup_close_ int fd = -EBADF;
                int64_t left = deadline - now_ms();
                char *q, *got_state, *err, *code;
                int r;

                if (left <= 0)
                        return set_error(ret_error, "no answer from the browser within %u s", timeout_sec), -ECANCELED;
                r = poll(p, lfd[1] >= 0 ? 2 : 1, (int) MIN(left, (int64_t) INT32_MAX));
                if (r < 0 && errno == EINTR)
                        return set_error(ret_error, "interrupted"), -ECANCELED;
                if (r <= 0)
                        continue;
                fd = accept4((p[0].revents & POLLIN) ? lfd[0] : lfd[1], NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                q = read_request(fd);
                if (!q) {
                        http_reply(fd, 404, "not found");
                        continue;
                }
                got_state = query_get(q, "state");
                err = query_get(q, "error");
                code = query_get(q, "code");
                explicit_bzero(q, strlen(q));
                free(q);
                if (!got_state || !streq(got_state, state)) {
                        /* Not the answer to our request (CSRF, RFC 6749 §10.12): ignore it. */
                        http_reply(fd, 400, page_error);
                        free(got_state);
                        free(err);
                        erase_and_free(code);
                        continue;
                }
                free(got_state);
                if (err || !code) {
                        _cleanup_free_ char *e = clean_text(err);
                        http_reply(fd, 400, page_error);
                        free(err);
                        erase_and_free(code);
                        return set_error(ret_error, "the provider did not sign you in: %s", e ? e : "no code"),
                               -EACCES;
                }
                http_reply(fd, 200, page_ok);
                *ret_code = code;
                return 0;
        }
}

/* The code for tokens (RFC 6749 §4.1.3), proven by the PKCE verifier. */
static int browser_redeem_code(const OAuth2Client *c, const char *code, const char *redirect, const char *verifier,
                               OAuth2Tokens *ret, char **ret_error) {
        Form f = {};
        int r;

        form_add(&f, "grant_type", "authorization_code");
        form_add(&f, "code", code);
        form_add(&f, "redirect_uri", redirect);
        form_add(&f, "code_verifier", verifier);
        form_client(&f, c);
        r = token_request(c, &f, ret, ret_error, NULL, 0);
        form_done(&f);
        if (r >= 0 && !ret->refresh_token) {
                oauth2_tokens_done(ret);
                set_error(ret_error, "the provider gave no refresh token (is offline_access in the scope?)");
                r = -EPROTO;
        }
        return r;
}

int oauth2_sign_in_browser(const OAuth2Client *c, const char *login_hint, unsigned timeout_sec,
                           OAuth2ShowFunc show, void *userdata, OAuth2Tokens *ret, char **ret_error) {
        int lfd[2] = { -EBADF, -EBADF };
        char verifier[64], challenge[64], state[32], redirect[64];
        uint8_t digest[32];
        _cleanup_free_ char *url = NULL;
        bool localhost = c->redirect_host && streq(c->redirect_host, "localhost");
        uint16_t port = 0;
        char *code = NULL;
        int r;

        if (!c->authorize_url)
                return set_error(ret_error, "no oauth2_authorize_url for this account"), -EINVAL;
        if (!startswith(c->authorize_url, "https://"))
                return set_error(ret_error, "oauth2_authorize_url must be https://"), -EINVAL;
        /* RFC 7636 §4.1: 32 random octets → 43 characters; S256 challenge. */
        r = random_string(verifier, 32);
        if (r >= 0)
                r = random_string(state, 16);
        if (r < 0)
                return set_error(ret_error, "no random numbers: %s", strerror(-r)), r;
        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, verifier, strlen(verifier), digest) < 0)
                return -ENOMEM;
        base64url(digest, sizeof digest, challenge);

        r = listen_loopback(localhost, lfd, &port);
        if (r < 0) {
                safe_close(lfd[0]);
                safe_close(lfd[1]);
                return set_error(ret_error, "cannot listen on 127.0.0.1: %s", strerror(-r)), r;
        }
        (void) snprintf(redirect, sizeof redirect, "http://%s:%u/", localhost ? "localhost" : "127.0.0.1", port);

        r = browser_url(c, login_hint, redirect, state, challenge, &url);
        if (r >= 0) {
                show(url, NULL, userdata);
                r = browser_wait_code(lfd, timeout_sec, state, &code, ret_error);
        }
        lfd[0] = safe_close(lfd[0]);
        lfd[1] = safe_close(lfd[1]);
        if (r >= 0)
                r = browser_redeem_code(c, code, redirect, verifier, ret, ret_error);
        erase_and_free(code);
        explicit_bzero(verifier, sizeof verifier);
        return r;
}

/* ---- the device grant ---- */

int oauth2_sign_in_device(const OAuth2Client *c, OAuth2ShowFunc show, void *userdata, OAuth2Tokens *ret,
                          char **ret_error) {
        char host[128];
        json_t *j = NULL;
        long status = 0;
        _cleanup_erase_ char *device_code = NULL;
        const char *uri, *user_code;
        json_int_t interval = DEVICE_INTERVAL_DEFAULT, expires = 900;
        int64_t deadline;
        Form f = {};
        int r;

        if (!c->device_url)
                return set_error(ret_error, "this provider has no device sign-in (set oauth2_device_url)"), -EOPNOTSUPP;
        (void) url_host(c->device_url, host, sizeof host);
        form_add(&f, "client_id", c->client_id);
        if (c->scope)
                form_add(&f, "scope", c->scope);
        if (f.failed) {
                form_done(&f);
                return -ENOMEM;
        }
        r = http_post_json(c, c->device_url, f.data, &j, &status, ret_error);
        form_done(&f);
        if (r < 0)
                return r;
        if (status != 200 || !json_is_string(json_object_get(j, "device_code"))) {
                r = error_from_json(j, host, status, ret_error, NULL);
                json_decref(j);
                return r;
        }
        device_code = strdup(json_string_value(json_object_get(j, "device_code")));
        user_code = json_string_value(json_object_get(j, "user_code"));
        uri = json_string_value(json_object_get(j, "verification_uri")) ?: json_string_value(json_object_get(j, "verification_url"));
        if (json_is_integer(json_object_get(j, "interval")))
                interval = json_integer_value(json_object_get(j, "interval"));
        if (json_is_integer(json_object_get(j, "expires_in")))
                expires = json_integer_value(json_object_get(j, "expires_in"));
        interval = interval < 1 ? 1 : MIN(interval, (json_int_t) DEVICE_INTERVAL_MAX);
        expires = expires < 1 ? 1 : MIN(expires, (json_int_t) 3600);
        if (!device_code || !user_code || !uri) {
                json_decref(j);
                return device_code ? (set_error(ret_error, "%s sent no user code or address", host), -EPROTO) : -ENOMEM;
        }
        {
                _cleanup_free_ char *u = clean_text(uri), *uc = clean_text(user_code);
                json_decref(j);
                if (!u || !uc)
                        return -ENOMEM;
                show(u, uc, userdata);
        }

        deadline = now_ms() + expires * 1000;
        for (;;) {
                char code[64] = "";
                if (now_ms() + interval * 1000 > deadline)
                        return set_error(ret_error, "the code was not entered in time"), -ECANCELED;
                (void) usleep((useconds_t) interval * 1000000u);
                form_add(&f, "grant_type", "urn:ietf:params:oauth:grant-type:device_code");
                form_add(&f, "device_code", device_code);
                form_client(&f, c);
                r = token_request(c, &f, ret, ret_error, code, sizeof code);
                form_done(&f);
                if (r >= 0)
                        break;
                if (streq(code, "authorization_pending"))
                        continue;
                if (streq(code, "slow_down")) {
                        /* RFC 8628 §3.5: 5 seconds more from now on. */
                        interval = MIN(interval + 5, (json_int_t) DEVICE_INTERVAL_MAX);
                        continue;
                }
                if (streq(code, "access_denied"))
                        set_error(ret_error, "the sign-in was refused at %s", host);
                return r;
        }
        free(*ret_error);
        *ret_error = NULL;
        if (!ret->refresh_token) {
                oauth2_tokens_done(ret);
                return set_error(ret_error, "the provider gave no refresh token (is offline_access in the scope?)"),
                       -EPROTO;
        }
        return 0;
}

/* ---- the cache of access tokens ---- */

typedef struct CacheEntry {
        char *account;
        char *token;         /* secret */
        int64_t expires_at;  /* realtime seconds, 0 unknown */
        int64_t obtained_at;
        bool revoked;
        uint8_t revoked_hash[32]; /* SHA-256 of the refresh token the provider refused */
} CacheEntry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static CacheEntry *cache;
static size_t n_cache;

static CacheEntry *cache_find(const char *account, bool create) {
        CacheEntry *n;

        for (size_t i = 0; i < n_cache; i++)
                if (streq(cache[i].account, account))
                        return &cache[i];
        if (!create)
                return NULL;
        n = reallocarray(cache, n_cache + 1, sizeof(CacheEntry));
        if (!n)
                return NULL;
        cache = n;
        cache[n_cache] = (CacheEntry) { .account = strdup(account) };
        if (!cache[n_cache].account)
                return NULL;
        return &cache[n_cache++];
}

static void cache_set(CacheEntry *e, const OAuth2Tokens *t) {
        erase_and_free(e->token);
        e->token = strdup(t->access_token);
        e->obtained_at = (int64_t) time(NULL);
        e->expires_at = t->expires_at;
        e->revoked = false;
}

/* Still good for this login: more than a fifth of its life (at most 5 minutes) left. */
static bool cache_fresh(const CacheEntry *e) {
        int64_t now = (int64_t) time(NULL), margin;

        if (!e->token)
                return false;
        if (e->expires_at == 0)
                return now - e->obtained_at < 30 * 60; /* unknown life: an hour is the norm */
        margin = MIN((e->expires_at - e->obtained_at) / 5, (int64_t) REFRESH_MARGIN_MAX);
        return e->expires_at - now > margin;
}

int oauth2_remember(const char *account, const OAuth2Tokens *t) {
        CacheEntry *e;
        int r = 0;

        pthread_mutex_lock(&cache_lock);
        e = cache_find(account, true);
        if (!e)
                r = -ENOMEM;
        else {
                cache_set(e, t);
                if (!e->token)
                        r = -ENOMEM;
        }
        pthread_mutex_unlock(&cache_lock);
        return r;
}

void oauth2_forget(const char *account) {
        pthread_mutex_lock(&cache_lock);
        for (size_t i = 0; i < n_cache;) {
                if (account && !streq(cache[i].account, account)) {
                        i++;
                        continue;
                }
                erase_and_free(cache[i].token);
                free(cache[i].account);
                memmove(&cache[i], &cache[i + 1], (n_cache - i - 1) * sizeof(CacheEntry));
                n_cache--;
        }
        if (n_cache == 0) {
                free(cache);
                cache = NULL;
        }
        pthread_mutex_unlock(&cache_lock);
}

int oauth2_access_token(const Account *a, char **ret_token, char **ret_error) {
        _cleanup_erase_ char *refresh = NULL;
        uint8_t digest[32];
        OAuth2Tokens t = {};
        OAuth2Client c;
        CacheEntry *e;
        int r;

        *ret_error = NULL;
        if (oauth2_client_from_account(a, &c) < 0)
                return set_error(ret_error, "oauth2_client_id or the token endpoint is missing"), -EINVAL;
        /* One refresh at a time in the process: the accounts are few and a refresh is short. */
        pthread_mutex_lock(&cache_lock);
        e = cache_find(a->name, true);
        if (!e) {
                r = -ENOMEM;
                goto finish;
        }
        if (!e->revoked && cache_fresh(e)) {
                *ret_token = strdup(e->token);
                r = *ret_token ? 0 : -ENOMEM;
                goto finish;
        }
        r = oauth2_token_load(a, &refresh, ret_error);
        if (r < 0)
                goto finish;
        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, refresh, strlen(refresh), digest) < 0) {
                r = -ENOMEM;
                goto finish;
        }
        if (e->revoked && memcmp(digest, e->revoked_hash, sizeof digest) == 0) {
                /* The provider refused this very token: sending it again would only add failures
                 * there. A new sign-in (alcode init --reauth) stores another one. */
                set_error(ret_error, "needs you to sign in again: alcode init --reauth %s", a->name);
                r = -EKEYREVOKED;
                goto finish;
        }
        r = oauth2_refresh(&c, refresh, &t, ret_error);
        if (r == -EKEYREVOKED) {
                _cleanup_free_ char *why = TAKE_PTR(*ret_error);
                e->revoked = true;
                memcpy(e->revoked_hash, digest, sizeof digest);
                erase_and_free(e->token);
                e->token = NULL;
                set_error(ret_error, "needs you to sign in again: alcode init --reauth %s (%s)", a->name,
                          strna(why));
                goto finish;
        }
        if (r < 0)
                goto finish;
        if (t.refresh_token && !streq(t.refresh_token, refresh)) {
                /* The provider rotated it (Microsoft does): the old one may stop working. */
                _cleanup_free_ char *why = NULL, *label = NULL;
                if (asprintf(&label, "alcode OAuth2: %s", a->user) < 0)
                        label = NULL;
                if (oauth2_token_store(a, label ?: "alcode OAuth2", t.refresh_token, &why) < 0)
                        set_error(ret_error, "warning: could not keep the new refresh token: %s", strna(why));
        }
        cache_set(e, &t);
        *ret_token = e->token ? strdup(e->token) : NULL;
        r = *ret_token ? 0 : -ENOMEM;
finish:
        pthread_mutex_unlock(&cache_lock);
        oauth2_tokens_done(&t);
        return r;
}

/* ---- SASL ---- */

static int base64_of(const char *s, size_t n, char **ret) {
        gnutls_datum_t in = { .data = (unsigned char *) s, .size = (unsigned) n }, out = {};
        char *r;

        if (gnutls_base64_encode2(&in, &out) < 0)
                return -ENOMEM;
        r = malloc(out.size + 1);
        if (r) {
                memcpy(r, out.data, out.size);
                r[out.size] = 0;
        }
        explicit_bzero(out.data, out.size);
        gnutls_free(out.data);
        if (!r)
                return -ENOMEM;
        *ret = r;
        return 0;
}

int oauth2_sasl_oauthbearer(const char *user, const char *host, uint16_t port, const char *token, char **ret) {
        _cleanup_erase_ char *raw = NULL;
        _cleanup_free_ char *u = NULL;
        size_t o = 0;
        int n;

        /* RFC 5801 saslname: ',' and '=' escaped. */
        u = malloc(strlen(user) * 3 + 1);
        if (!u)
                return -ENOMEM;
        for (const char *p = user; *p; p++) {
                if (*p == ',')
                        o += (size_t) sprintf(u + o, "=2C");
                else if (*p == '=')
                        o += (size_t) sprintf(u + o, "=3D");
                else
                        u[o++] = *p;
        }
        u[o] = 0;
        n = asprintf(&raw, "n,a=%s,\001host=%s\001port=%u\001auth=Bearer %s\001\001", u, host, port, token);
        if (n < 0)
                return -ENOMEM;
        return base64_of(raw, (size_t) n, ret);
}

int oauth2_sasl_xoauth2(const char *user, const char *token, char **ret) {
        _cleanup_erase_ char *raw = NULL;
        int n = asprintf(&raw, "user=%s\001auth=Bearer %s\001\001", user, token);

        if (n < 0)
                return -ENOMEM;
        return base64_of(raw, (size_t) n, ret);
}
