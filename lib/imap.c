/* libetpan IMAP, wrapped. libetpan 1.9.4 traps handled here (each one measured against dovecot
 * when it was written, and described again in the comment where it bites):
 *  - it verifies no certificate: we check the chain after the handshake, before LOGIN;
 *  - SNI is only sent through the *_with_callback connect functions;
 *  - after STARTTLS its capability cache is stale: query again;
 *  - mailimap_free() sends LOGOUT and waits: we close the stream first;
 *  - a plain connection cut inside a literal makes it read EOF forever at 100 % CPU: the
 *    stream's cancel flag (mailstream_cancel(), sticky on plain sockets) is the way out, and
 *    imap_session_cancel() sets it from the watchdog thread;
 *  - the parsed BODY[] section can be NULL; literals belong to the result, so FETCH goes
 *    through a msg_att handler that sees (and drops) one message at a time;
 *  - "UID n:*" always matches the highest UID, even below n: filter;
 *  - it trusts the server with memory: it allocates what a literal announces ({4294967295})
 *    and reads lines and untagged responses without limit until the tagged answer. Every
 *    stream goes through a wrapper (below) that bounds what one response may bring and turns
 *    a read after end-of-file into an error (which also ends the literal-EOF loop at once).
 *
 * libetpan result codes map to -errno here only: */
#include <arpa/inet.h>
#include <assert.h>
#include <libetpan/libetpan.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "imap.h"
#include "imap-notify.h"
#include "strv.h"
#include "imap-sasl.h"
#include "oauth2.h"
#include "secret.h"
#include "strbuf.h"
#include "tls-verify.h"

/* Exported by libetpan (what mailimap_socket_connect() uses) but declared in connect.h,
 * which Debian's libetpan-dev does not install. */
int mail_tcp_connect_timeout(const char *server, uint16_t port, time_t timeout);

#define MAX_SET_RANGES 4096 /* keeps a UID set well under servers' 64 KiB line limits */
/* What one response may bring between two points where libetpan lets go of what it holds (a
 * command's start, a message handed to the FETCH callback). libetpan's structures for small
 * untagged responses weigh 10 to 20 times their bytes (a LIST line of 37 bytes: ~400 bytes of
 * allocations), so the default is small: 2 MiB, a LIST of 50,000 folders. SEARCH (a million
 * UIDs) and BODYSTRUCTURE (100,000 parts) get 8 MiB; FETCH what it asked for, plus 1 MiB. */
#define IMAP_RESPONSE_MAX (2u << 20)
#define IMAP_RESPONSE_LARGE (8u << 20)
#define IMAP_RESPONSE_SLACK (1u << 20)

struct ImapSession {
        mailimap *imap;
        const Account *account;    /* borrowed */
        unsigned timeout_sec;
        char *error;
        char *resolve_error;       /* why the host name did not resolve, or NULL */
        int cancel_fd;             /* eventfd, readable once cancelled: ends a password_command */
        bool broken;               /* the stream can no longer be trusted */
        bool idling;
        bool no_structure;         /* FETCH BODYSTRUCTURE was refused: read whole messages */
        _Atomic(mailstream *) stream; /* published once connected, for imap_session_cancel() */
        atomic_int fd;
        atomic_bool cancelled;
        ImapProgressFunc progress;
        void *progress_userdata;
        size_t progress_last;
        /* The stream wrapper's state (session thread only). */
        mailstream_low *inner;     /* the real stream under the wrapper */
        size_t budget;             /* bytes the current response may still bring */
        size_t budget_max;         /* what it could bring at its start (for the message) */
        char held[32];             /* bytes held back by defuse (fewer than DEFUSED_LEN) */
        size_t n_held;
        bool held_dropped;
        bool over_budget;
        bool eof;
        bool mid_line;             /* the byte before the next one defuse() sees is no '\n' */
        bool listing;              /* our own LIST runs: its "* LIST" lines are left alone */
        bool notifying;            /* a NOTIFY SET was accepted */
        ImapNotifyScan notify;     /* what NOTIFY said, read from every byte received */
        /* An EXAMINE sent ahead of the next FETCH (imap_examine_ahead()), its answer not read yet. */
        bool ahead;
        int ahead_tag;
        uint32_t ahead_uidvalidity;
        ImapFolderState *ahead_ret;
};

/* libetpan only hands FETCH results to a msg_att handler when a progress callback is set; we
 * want both: the handler for bounded memory, the progress for the watchdog. Progress is only
 * reported when bytes really arrived (the literal-EOF loop calls back with nothing new). */
static void on_progress(size_t current, size_t maximum, void *userdata) {
        ImapSession *s = userdata;

        (void) maximum;
        if (current != s->progress_last && s->progress)
                s->progress(s->progress_userdata);
        s->progress_last = current;
}

void imap_session_set_progress(ImapSession *s, ImapProgressFunc f, void *userdata) {
        s->progress = f;
        s->progress_userdata = userdata;
}

static int errno_from_imap(int r) {
        switch (r) {
        case MAILIMAP_NO_ERROR:
        case MAILIMAP_NO_ERROR_AUTHENTICATED:
        case MAILIMAP_NO_ERROR_NON_AUTHENTICATED:
                return 0;
        case MAILIMAP_ERROR_CONNECTION_REFUSED:
                return -ECONNREFUSED;
        case MAILIMAP_ERROR_MEMORY:
                return -ENOMEM;
        case MAILIMAP_ERROR_LOGIN:
                return -EACCES;
        case MAILIMAP_ERROR_SSL:
                return -ECONNRESET;
        case MAILIMAP_ERROR_STARTTLS:
                return -EPROTO;
        case MAILIMAP_ERROR_STREAM:
                return -ETIMEDOUT; /* a timeout, a reset or a cancel: reconnect in every case */
        case MAILIMAP_ERROR_EXAMINE:
        case MAILIMAP_ERROR_SELECT:
        case MAILIMAP_ERROR_STATUS:
                return -ENOENT;
        case MAILIMAP_ERROR_SEARCH:
                return -EOPNOTSUPP;
        default:
                return -EPROTO;
        }
}

static int session_error(ImapSession *s, int r, const char *what) {
        const char *resp = s->imap && s->imap->imap_response ? s->imap->imap_response : NULL;
        bool cancelled = atomic_load(&s->cancelled);

        free(s->error);
        if (cancelled)
                s->error = strdup("cancelled: the server did not answer in time");
        else if (s->over_budget) {
                if (asprintf(&s->error, "%s failed: the server sent more than the %zu MiB expected",
                             what, s->budget_max >> 20) < 0)
                        s->error = NULL;
                s->broken = true;
                return -EMSGSIZE;
        } else if (s->eof && r != MAILIMAP_NO_ERROR) {
                if (asprintf(&s->error, "%s failed: the server closed the connection", what) < 0)
                        s->error = NULL;
                s->broken = true;
                return -ECONNRESET;
        } else if (r == MAILIMAP_ERROR_MEMORY) {
                /* Also how libetpan fails a literal announced larger than memory allows. */
                if (asprintf(&s->error, "%s failed: out of memory (or the server announced an absurd size)",
                             what) < 0)
                        s->error = NULL;
        } else if (r == MAILIMAP_ERROR_STREAM) {
                /* imap_response would be stale: it belongs to the previous command. */
                if (asprintf(&s->error, "%s failed: no answer within %u s, or the connection was lost",
                             what, s->timeout_sec) < 0)
                        s->error = NULL;
        } else if (asprintf(&s->error, "%s failed%s%s", what, resp ? ": " : "", resp ? resp : "") < 0)
                s->error = NULL;
        r = cancelled ? -ECANCELED : errno_from_imap(r);
        /* Anything but a plain NO/BAD may have left the stream mid-response. */
        if (r != -ENOENT && r != -EOPNOTSUPP)
                s->broken = true;
        return r;
}

/* ---- The bounded stream ----
 *
 * A mailstream_low driver stacked on the real one (socket or TLS): reads fail once the
 * current response has brought IMAP_RESPONSE_MAX bytes (budget_reset() starts a response),
 * and every read after end-of-file fails instead of returning 0 again (libetpan 1.9.4 loops
 * on 0 inside a literal). Everything else goes to the real stream. */

/* Server bytes that crash libetpan 1.9.4 are defused before it parses them: after
 * "[PERMANENTFLAGS", a malformed flag list makes its error path free a NULL list (found by
 * fuzz-imap; fixed upstream after 1.9.4). The code is renamed "[XERMANENTFLAGS", an unknown
 * response code that libetpan skips; a read-only client has no use for it. */
static const char defused[] = "[PERMANENTFLAGS";
#define DEFUSED_LEN (sizeof defused - 1)
/* A "* LIST" line outside our own LIST is a NOTIFY MailboxName event (RFC 5465 §5.4), and a
 * rename's carries extended data ("OLDNAME") that libetpan 1.9.4 cannot parse: the session
 * would fail. The ImapNotifyScan has seen it already; libetpan gets an "* OK" line it skips. */
static const char unlisted[] = "* LIST ";
#define UNLISTED_LEN (sizeof unlisted - 1)

static bool line_start(const ImapSession *s, const char *p, const char *q) {
        return q == p ? !s->mid_line : q[-1] == '\n';
}

static void defuse(ImapSession *s, char *p, size_t n) {
        for (char *q = p; (q = memchr(q, '[', (size_t) (p + n - q))); q++)
                if ((size_t) (p + n - q) >= DEFUSED_LEN && strncasecmp(q, defused, DEFUSED_LEN) == 0)
                        q[1] = 'X';
        for (char *q = p; !s->listing && (q = memchr(q, '*', (size_t) (p + n - q))); q++)
                if ((size_t) (p + n - q) >= UNLISTED_LEN && line_start(s, p, q) &&
                    strncasecmp(q, unlisted, UNLISTED_LEN) == 0)
                        memcpy(q, "* OK   ", UNLISTED_LEN);
}

/* How many bytes at the end of p could start a token: held back until the next read. */
static size_t defuse_tail(const ImapSession *s, const char *p, size_t n) {
        for (size_t m = MIN(n, DEFUSED_LEN - 1); m > 0; m--)
                if (strncasecmp(p + n - m, defused, m) == 0)
                        return m;
        for (size_t m = MIN(n, UNLISTED_LEN - 1); m > 0 && !s->listing; m--)
                if (line_start(s, p, p + n - m) && strncasecmp(p + n - m, unlisted, m) == 0)
                        return m;
        return 0;
}

static ssize_t bounded_read(mailstream_low *l, void *buf, size_t n) {
        ImapSession *s = l->data;
        char *p = buf;
        size_t have;
        ssize_t k;

        if (n < sizeof s->held) {
                /* A small read (the end of a literal): no token to find, serve what is held. */
                if (s->n_held > 0) {
                        have = MIN(n, s->n_held);
                        memcpy(p, s->held, have);
                        memmove(s->held, s->held + have, s->n_held - have);
                        s->n_held -= have;
                        s->mid_line = p[have - 1] != '\n';
                        return (ssize_t) have;
                }
        }
        for (;;) {
                have = 0;
                if (n >= sizeof s->held) {
                        memcpy(p, s->held, s->n_held);
                        have = s->n_held;
                        s->n_held = 0;
                }
                if (s->eof)
                        return have > 0 ? (ssize_t) have : -1;
                if (s->budget == 0) {
                        s->over_budget = true;
                        return -1;
                }
                k = mailstream_low_read(s->inner, p + have, MIN(n - have, s->budget));
                if (k < 0)
                        return k;
                if (k == 0) {
                        s->eof = true;
                        return have > 0 ? (ssize_t) have : 0;
                }
                s->budget -= (size_t) k;
                imap_notify_scan_feed(&s->notify, p + have, (size_t) k);
                have += (size_t) k;
                if (n < sizeof s->held) {
                        s->mid_line = p[have - 1] != '\n';
                        return (ssize_t) have;
                }
                defuse(s, p, have);
                s->n_held = defuse_tail(s, p, have);
                memcpy(s->held, p + have - s->n_held, s->n_held);
                if (have > s->n_held)
                        s->mid_line = p[have - s->n_held - 1] != '\n';
                if (have > s->n_held)
                        return (ssize_t) (have - s->n_held);
                /* All of it may be the token's start: read on. */
        }
}

static ssize_t bounded_write(mailstream_low *l, const void *buf, size_t n) {
        return mailstream_low_write(((ImapSession *) l->data)->inner, buf, n);
}

static int bounded_close(mailstream_low *l) {
        return mailstream_low_close(((ImapSession *) l->data)->inner);
}

static int bounded_get_fd(mailstream_low *l) {
        return mailstream_low_get_fd(((ImapSession *) l->data)->inner);
}

static void bounded_free(mailstream_low *l) {
        ImapSession *s = l->data;

        if (s->inner)
                mailstream_low_free(s->inner);
        s->inner = NULL;
        /* Freed by STARTTLS, which replaces the stream: bytes held back came in clear text
         * after "OK Begin TLS" and must not be served as if they came over TLS. */
        if (s->n_held > 0)
                s->held_dropped = true;
        s->n_held = 0;
        free(l);
}

static void bounded_cancel(mailstream_low *l) {
        mailstream_low_cancel(((ImapSession *) l->data)->inner);
}

static struct mailstream_cancel *bounded_get_cancel(mailstream_low *l) {
        return mailstream_low_get_cancel(((ImapSession *) l->data)->inner);
}

static carray *bounded_get_certificate_chain(mailstream_low *l) {
        return mailstream_low_get_certificate_chain(((ImapSession *) l->data)->inner);
}

static int bounded_setup_idle(mailstream_low *l) {
        return mailstream_low_setup_idle(((ImapSession *) l->data)->inner);
}

static int bounded_unsetup_idle(mailstream_low *l) {
        return mailstream_low_unsetup_idle(((ImapSession *) l->data)->inner);
}

static int bounded_interrupt_idle(mailstream_low *l) {
        return mailstream_low_interrupt_idle(((ImapSession *) l->data)->inner);
}

static mailstream_low_driver bounded_driver = {
        .mailstream_read = bounded_read,
        .mailstream_write = bounded_write,
        .mailstream_close = bounded_close,
        .mailstream_get_fd = bounded_get_fd,
        .mailstream_free = bounded_free,
        .mailstream_cancel = bounded_cancel,
        .mailstream_get_cancel = bounded_get_cancel,
        .mailstream_get_certificate_chain = bounded_get_certificate_chain,
        .mailstream_setup_idle = bounded_setup_idle,
        .mailstream_unsetup_idle = bounded_unsetup_idle,
        .mailstream_interrupt_idle = bounded_interrupt_idle,
};

/* Puts the wrapper between stream and its current low-level stream (again after STARTTLS,
 * which replaces it). One wrapper per session at a time. */
static int bounded_wrap(ImapSession *s, mailstream *stream) {
        mailstream_low *inner = mailstream_get_low(stream), *l;

        if (inner && inner->driver == &bounded_driver)
                return 0;
        l = mailstream_low_new(s, &bounded_driver);
        if (!l)
                return -ENOMEM;
        s->inner = inner;
        mailstream_set_low(stream, l);
        return 0;
}

static void caps_normalize(ImapSession *s);

/* Before every command: a new response starts. */
static void budget_reset(ImapSession *s, size_t max) {
        s->budget = s->budget_max = max;
        caps_normalize(s);
}

static int ahead_read(ImapSession *s);

static bool tagged_ok(const struct mailimap_response *resp) {
        return resp->rsp_resp_done && resp->rsp_resp_done->rsp_type == MAILIMAP_RESP_DONE_TYPE_TAGGED &&
               resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type == MAILIMAP_RESP_COND_STATE_OK;
}

/* What every command checks first: a cancelled or broken session does not talk any more. An
 * EXAMINE sent ahead is left for the command to read (imap_fetch_parts() only). */
static int session_check_ahead(ImapSession *s) {
        if (atomic_load(&s->cancelled))
                return -ECANCELED;
        if (s->broken || !s->imap || !s->imap->imap_stream)
                return -ENOTCONN;
        budget_reset(s, IMAP_RESPONSE_MAX);
        return 0;
}

/* Every other command starts here: an EXAMINE sent ahead is answered first. */
static int session_check(ImapSession *s) {
        int r = session_check_ahead(s);

        if (r < 0 || !s->ahead)
                return r;
        if (mailstream_flush(s->imap->imap_stream) == -1)
                return session_error(s, MAILIMAP_ERROR_STREAM, "EXAMINE");
        r = ahead_read(s);
        budget_reset(s, IMAP_RESPONSE_MAX);
        return r;
}

const char *imap_last_error(const ImapSession *s) {
        return s->error ?: "no error";
}

int imap_session_new(const Account *a, unsigned timeout_sec, ImapSession **ret) {
        ImapSession *s = calloc(1, sizeof(ImapSession));

        if (!s)
                return -ENOMEM;
        s->account = a;
        s->timeout_sec = timeout_sec;
        atomic_init(&s->stream, NULL);
        atomic_init(&s->fd, -1);
        atomic_init(&s->cancelled, false);
        s->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->cancel_fd < 0) {
                free(s);
                return -errno;
        }
        s->imap = mailimap_new(0, NULL);
        if (!s->imap) {
                (void) close(s->cancel_fd);
                free(s);
                return -ENOMEM;
        }
        mailimap_set_timeout(s->imap, timeout_sec);
        mailimap_set_progress_callback(s->imap, on_progress, on_progress, s);
        *ret = s;
        return 0;
}

ImapSession *imap_session_free(ImapSession *s) {
        if (!s)
                return NULL;
        if (s->imap) {
                if (s->imap->imap_stream) {
                        /* mailimap_free() would send LOGOUT and wait for the answer. */
                        mailstream_close(s->imap->imap_stream);
                        s->imap->imap_stream = NULL;
                }
                mailimap_free(s->imap);
        }
        free(s->error);
        free(s->resolve_error);
        imap_notify_scan_clear(&s->notify);
        safe_close(s->cancel_fd);
        free(s);
        return NULL;
}

void imap_session_cancel(ImapSession *s) {
        mailstream *stream;
        int fd;

        if (!s)
                return;
        atomic_store(&s->cancelled, true);
        (void) eventfd_write(s->cancel_fd, 1);
        /* Before the stream is published, libetpan's own timeouts bound the connect. */
        stream = atomic_load(&s->stream);
        if (stream)
                mailstream_cancel(stream);
        /* And the socket itself, so that a write or a TLS read stops too. */
        fd = atomic_load(&s->fd);
        if (fd >= 0)
                (void) shutdown(fd, SHUT_RDWR);
}

void imap_logout(ImapSession *s) {
        if (s && session_check(s) == 0 && !s->idling)
                (void) mailimap_logout(s->imap);
}

bool imap_has_capability(ImapSession *s, const char *name) {
        caps_normalize(s);
        return s->imap->imap_connection_info && mailimap_has_extension(s->imap, (char *) name) != 0;
}

bool imap_has_idle(ImapSession *s) {
        caps_normalize(s);
        return s->imap->imap_connection_info && mailimap_has_idle(s->imap) != 0;
}

static bool is_ip_literal(const char *host) {
        struct in6_addr a;
        return inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1;
}

static void ssl_callback(struct mailstream_ssl_context *ctx, void *data) {
        const char *host = data;
        /* RFC 6066 §3: no SNI for IP literals. */
        if (!is_ip_literal(host))
                (void) mailstream_ssl_set_server_name(ctx, (char *) host);
}

static int verify_peer(ImapSession *s, char **ret_error) {
        const Account *a = s->account;
        carray *chain = mailstream_get_certificate_chain(s->imap->imap_stream);
        const uint8_t *certs[16];
        size_t lens[16], n = 0;
        char fp[TLS_FINGERPRINT_MAX], *reason = NULL;
        int r;

        for (unsigned i = 0; chain && i < carray_count(chain) && n < ELEMENTSOF(certs); i++) {
                MMAPString *c = carray_get(chain, i);
                certs[n] = (const uint8_t *) c->str;
                lens[n++] = c->len;
        }
        r = tls_verify(certs, lens, n, a->host, a->ca_file, a->has_fingerprint ? a->fingerprint : NULL,
                       &reason, fp);
        if (chain)
                mailstream_certificate_chain_free(chain);
        if (r == 0)
                return 0;
        if (asprintf(ret_error, "certificate of %s refused: %s%s%s", a->host, strna(reason),
                     *fp ? "; server fingerprint " : "", fp) < 0)
                *ret_error = NULL;
        free(reason);
        s->broken = true;
        return r == -ENOMEM ? r : r == -EINVAL ? -EINVAL : -EPERM;
}

/* libetpan 1.9.4 trusts its capability cache: "CAPABILITY" with no valid item after it (an
 * empty "* CAPABILITY", "[CAPABILITY ]") leaves a list of NULL that mailimap_has_extension()
 * and mailimap_capability() then walk, and mailimap_capability() copies the cache after a
 * tagged OK without checking it is there (both found by fuzz-imap; on a STARTTLS port the
 * first happens before the certificate is checked). The cache is mended before every
 * command and before we read it, and CAPABILITY is sent as a plain command. */
static void caps_normalize(ImapSession *s) {
        struct mailimap_connection_info *ci = s->imap ? s->imap->imap_connection_info : NULL;

        if (ci && ci->imap_capability && !ci->imap_capability->cap_list) {
                ci->imap_capability->cap_list = clist_new();
                if (!ci->imap_capability->cap_list) {
                        mailimap_capability_data_free(ci->imap_capability);
                        ci->imap_capability = NULL;
                }
        }
}

/* libetpan's capability cache, or NULL when it holds none. */
static const struct mailimap_capability_data *has_caps(ImapSession *s) {
        struct mailimap_connection_info *ci = s->imap ? s->imap->imap_connection_info : NULL;

        return ci && ci->imap_capability && ci->imap_capability->cap_list &&
               !clist_isempty(ci->imap_capability->cap_list) ? ci->imap_capability : NULL;
}

static int refresh_capabilities(ImapSession *s) {
        int r;

        budget_reset(s, IMAP_RESPONSE_MAX);
        /* The untagged CAPABILITY response updates the cache (RFC 3501 §7.2.1). */
        r = mailimap_custom_command(s->imap, "CAPABILITY");
        caps_normalize(s);
        return r == MAILIMAP_NO_ERROR ? 0 : session_error(s, r, "CAPABILITY");
}

/* OAUTHBEARER (RFC 7628) when auth says so or the server offers it (auth = oauth2), else
 * XOAUTH2. Returns a MAILIMAP_* code. */
static int authenticate_bearer(ImapSession *s, const char *token) {
        const Account *a = s->account;
        bool bearer = a->auth == AUTH_METHOD_OAUTHBEARER ||
                      (a->auth == AUTH_METHOD_OAUTH2 && mailimap_has_authentication(s->imap, "OAUTHBEARER"));

        if (bearer)
                return imap_authenticate_oauthbearer(s->imap, a->user, a->host, a->port, token);
        return imap_authenticate_xoauth2(s->imap, a->user, token);
}

static int login_with(ImapSession *s, const char *secret, char **ret_error);

/* Built-in OAuth2: an access token from oauth2.h, then the same login as with a token from a
 * password_command. A refused token is dropped from the cache, so that the next attempt gets a
 * new one. */
static int login_oauth2(ImapSession *s, char **ret_error) {
        const Account *a = s->account;
        _cleanup_erase_ char *token = NULL;
        _cleanup_free_ char *why = NULL;
        int r;

        oauth2_set_abort_flag(&s->cancelled);
        r = oauth2_access_token(a, &token, &why);
        oauth2_set_abort_flag(NULL);
        if (r == -ECANCELED || atomic_load(&s->cancelled)) {
                if (asprintf(ret_error, "cancelled while getting an OAuth2 access token") < 0)
                        *ret_error = NULL;
                return -ECANCELED;
        }
        if (r < 0) {
                if (asprintf(ret_error, r == -EKEYREVOKED ? "%s" : "cannot get an OAuth2 access token: %s",
                             strna(why)) < 0)
                        *ret_error = NULL;
                /* Needs the user: a revoked grant, no refresh token, a refused certificate or
                 * client. Anything else (network, provider down) is tried again later. */
                if (r == -ENOMEM || r == -EKEYREVOKED || r == -ENOKEY || r == -EPERM || r == -EINVAL)
                        return r;
                return r == -EACCES ? -EACCES : -EAGAIN;
        }
        r = login_with(s, token, ret_error);
        if (r == -EACCES)
                oauth2_forget(a->name);
        return r;
}

static int login(ImapSession *s, char **ret_error) {
        const Account *a = s->account;
        _cleanup_erase_ char *secret = NULL;
        char *why = NULL;
        int r;

        if (account_uses_oauth2(a))
                return login_oauth2(s, ret_error);
        r = secret_get_cancellable(a, s->cancel_fd, &secret, &why);
        if (r == -ECANCELED) {
                free(why);
                return r;
        }
        if (r < 0) {
                if (asprintf(ret_error, "cannot get the password: %s", strna(why)) < 0)
                        *ret_error = NULL;
                free(why);
                return r == -ENOMEM ? r : -ENOKEY;
        }
        return login_with(s, secret, ret_error);
}

static int login_with(ImapSession *s, const char *secret, char **ret_error) {
        const Account *a = s->account;
        int r;

        /* The stream logger stays off (mailstream_debug is never set): it would record this. */
        budget_reset(s, IMAP_RESPONSE_MAX);
        if (s->imap->imap_response_info) { /* the response code of this answer only, below */
                free(s->imap->imap_response_info->rsp_atom);
                s->imap->imap_response_info->rsp_atom = NULL;
        }
        switch (a->auth) {
        case AUTH_METHOD_PLAIN:
                r = mailimap_authenticate(s->imap, "PLAIN", a->host, NULL, NULL, a->user, a->user,
                                          secret, NULL);
                break;
        case AUTH_METHOD_XOAUTH2:
        case AUTH_METHOD_OAUTHBEARER:
        case AUTH_METHOD_OAUTH2:
                r = authenticate_bearer(s, secret);
                break;
        default:
                r = mailimap_login(s->imap, a->user, secret);
        }
        if (r == MAILIMAP_NO_ERROR)
                return 0;
        if (r == MAILIMAP_ERROR_LOGIN && !atomic_load(&s->cancelled)) {
                /* The server's text, never ours with the secret in it. RFC 5530 §3:
                 * [UNAVAILABLE] is a temporary failure (an authentication service not ready
                 * after a restart), not a wrong password: try again later. */
                const char *resp = s->imap->imap_response;
                const char *atom = s->imap->imap_response_info ? s->imap->imap_response_info->rsp_atom : NULL;
                bool temporary = atom && strcaseeq(atom, "UNAVAILABLE");
                /* Too many connections (RFC 5530 [LIMIT], dovecot's mail_max_userip_connections;
                 * Gmail says "[ALERT] Too many simultaneous connections") or a throttled
                 * account: the password is fine, fewer connections or a later try will do. */
                bool limit = (atom && (strcaseeq(atom, "LIMIT") || strcaseeq(atom, "THROTTLED"))) ||
                             (resp && (strcasestr(resp, "connections") || strcasestr(resp, "throttled")));
                if (asprintf(ret_error, "login as '%s' (%s) %s%s%s", a->user, auth_method_to_string(a->auth),
                             temporary || limit ? "failed for now" : "refused", resp ? ": " : "",
                             resp ? resp : "") < 0)
                        *ret_error = NULL;
                return limit ? -EUSERS : temporary ? -EAGAIN : -EACCES;
        }
        r = session_error(s, r, "login");
        *ret_error = s->error ? strdup(s->error) : NULL;
        return r;
}

static void publish_stream(ImapSession *s, mailstream *stream) {
        mailstream_low *low = mailstream_get_low(stream);

        atomic_store(&s->fd, low ? mailstream_low_get_fd(low) : -1);
        atomic_store(&s->stream, stream);
        /* A cancel that came while connecting. */
        if (atomic_load(&s->cancelled))
                imap_session_cancel(s);
}

/* What mailimap_socket_connect() and mailimap_ssl_connect_with_callback() do, with the
 * bounded stream in place before the greeting is read, and the stream published so that a
 * greeting that never comes can be cancelled. Returns a MAILIMAP_* code. */
static int stream_connect(ImapSession *s, int fd) {
        const Account *a = s->account;
        mailstream *stream;

        if (fd < 0)
                fd = mail_tcp_connect_timeout(a->host, a->port, s->timeout_sec);
        if (fd < 0) {
                /* libetpan says -1 whether the name did not resolve or the server refused:
                 * tell them apart, so that the log does not send the user to the server. */
                struct addrinfo *ai = NULL, hints = { .ai_socktype = SOCK_STREAM };
                int g = getaddrinfo(a->host, NULL, &hints, &ai);
                if (ai)
                        freeaddrinfo(ai);
                if (g != 0) {
                        free(s->resolve_error);
                        s->resolve_error = strdup(g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
                }
                return MAILIMAP_ERROR_CONNECTION_REFUSED;
        }
        if (a->tls == TLS_MODE_IMPLICIT)
                stream = mailstream_ssl_open_with_callback_timeout(fd, s->timeout_sec, ssl_callback, (void *) a->host);
        else
                stream = mailstream_socket_open_timeout(fd, s->timeout_sec);
        if (!stream) {
                (void) close(fd);
                return a->tls == TLS_MODE_IMPLICIT ? MAILIMAP_ERROR_SSL : MAILIMAP_ERROR_MEMORY;
        }
        if (bounded_wrap(s, stream) < 0) {
                mailstream_close(stream);
                return MAILIMAP_ERROR_MEMORY;
        }
        publish_stream(s, stream);
        budget_reset(s, IMAP_RESPONSE_MAX);
        return mailimap_connect(s->imap, stream);
}

static int session_connect(ImapSession *s, int fd, char **ret_error) {
        const Account *a = s->account;
        int r;

        *ret_error = NULL;
        if (a->tls == TLS_MODE_NONE && !host_is_loopback(a->host)) {
                /* config.c refuses it already; never send a password in clear over a network. */
                if (asprintf(ret_error, "tls = none is only allowed for a loopback host, not %s", a->host) < 0)
                        *ret_error = NULL;
                return -EPERM;
        }
        r = stream_connect(s, fd);
        if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
                s->broken = true;
                r = atomic_load(&s->cancelled) ? -ECANCELED : s->over_budget ? -EMSGSIZE : errno_from_imap(r);
                if (r == -ECONNREFUSED && s->resolve_error) {
                        if (asprintf(ret_error, "cannot resolve %s: %s", a->host, s->resolve_error) < 0)
                                *ret_error = NULL;
                        return -EHOSTUNREACH;
                }
                if (asprintf(ret_error, "cannot connect to %s port %u%s: %s", a->host, a->port,
                             a->tls == TLS_MODE_IMPLICIT ? " (TLS)" : "",
                             r == -ECONNREFUSED ? "connection refused"
                             : r == -ECONNRESET ? "TLS handshake failed"
                             : r == -ETIMEDOUT  ? "timed out or connection lost"
                             : r == -ECANCELED  ? "cancelled"
                             : r == -EMSGSIZE   ? "endless greeting"
                                                : "no IMAP greeting") < 0)
                        *ret_error = NULL;
                return r == 0 ? -EPROTO : r;
        }

        if (a->tls == TLS_MODE_STARTTLS) {
                r = refresh_capabilities(s);
                if (r < 0)
                        goto fail_text;
                if (!mailimap_has_extension(s->imap, "STARTTLS")) {
                        /* Never fall back to plain text. */
                        if (asprintf(ret_error, "%s does not offer STARTTLS; refusing to log in "
                                                "without TLS", a->host) < 0)
                                *ret_error = NULL;
                        s->broken = true;
                        return -EPROTONOSUPPORT;
                }
                budget_reset(s, IMAP_RESPONSE_MAX);
                r = mailimap_socket_starttls_with_callback(s->imap, ssl_callback, a->host);
                if (r != MAILIMAP_NO_ERROR) {
                        r = session_error(s, r, "STARTTLS");
                        goto fail_text;
                }
                if (s->held_dropped) {
                        /* CVE-2020-15953: libetpan checks its own buffer, we check ours. */
                        if (asprintf(ret_error, "%s sent clear-text data after 'OK Begin TLS'; refusing "
                                                "to go on", a->host) < 0)
                                *ret_error = NULL;
                        s->broken = true;
                        return -EPROTO;
                }
                /* The TLS stream replaced ours: bound it too. */
                r = bounded_wrap(s, s->imap->imap_stream);
                if (r < 0)
                        return r;
        }
        if (a->tls != TLS_MODE_NONE) {
                r = verify_peer(s, ret_error);
                if (r < 0)
                        return r;
        }
        /* Capabilities again: a STARTTLS'd cache is stale, and we need IDLE/CONDSTORE. Else
         * the greeting's [CAPABILITY ...] (libetpan keeps it) is the list CAPABILITY would
         * give: no round trip for it (a WAN's first code waits for every one of them). */
        caps_normalize(s);
        if (a->tls == TLS_MODE_STARTTLS || !has_caps(s)) {
                r = refresh_capabilities(s);
                if (r < 0)
                        goto fail_text;
        }
        if (s->imap->imap_state != MAILIMAP_STATE_AUTHENTICATED) {
                const struct mailimap_capability_data *before = has_caps(s);

                r = login(s, ret_error);
                if (r < 0)
                        return r;
                /* Asked again unless the login's answer brought a new list ("OK [CAPABILITY
                 * ...] Logged in": libetpan replaces its cache with it, the old one freed
                 * after the new one exists, so a new list is at another address). */
                caps_normalize(s);
                if (!has_caps(s) || has_caps(s) == before) {
                        r = refresh_capabilities(s);
                        if (r < 0)
                                goto fail_text;
                }
        }
        return 0;

fail_text:
        *ret_error = s->error ? strdup(s->error) : NULL;
        return r;
}

int imap_session_connect(ImapSession *s, char **ret_error) {
        return session_connect(s, -EBADF, ret_error);
}

int imap_session_connect_fd(ImapSession *s, int fd, char **ret_error) {
        assert(s->account->tls == TLS_MODE_NONE);
        return session_connect(s, fd, ret_error);
}

void imap_folders_free(ImapFolder *f, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(f[i].name);
                free(f[i].display);
        }
        free(f);
}

static const struct {
        const char *name;
        unsigned flag;
} special_use[] = {
        /* RFC 6154 §2, plus the older XLIST/"Spam" spelling some servers still send. */
        { "Junk", IMAP_FOLDER_JUNK },         { "Spam", IMAP_FOLDER_JUNK },
        { "Trash", IMAP_FOLDER_TRASH },       { "Archive", IMAP_FOLDER_ARCHIVE },
        { "All", IMAP_FOLDER_ALL },           { "Sent", IMAP_FOLDER_SENT },
        { "Drafts", IMAP_FOLDER_DRAFTS },     { "Noselect", IMAP_FOLDER_NOSELECT },
        { "NonExistent", IMAP_FOLDER_NOSELECT },
};

unsigned imap_special_use_from_string(const char *name) {
        if (*name == '\\')
                name++;
        for (size_t i = 0; i < ELEMENTSOF(special_use); i++)
                if (strcaseeq(name, special_use[i].name) && special_use[i].flag != IMAP_FOLDER_NOSELECT)
                        return special_use[i].flag;
        return 0;
}

static unsigned folder_flags(const struct mailimap_mbx_list_flags *fl) {
        unsigned flags = 0;

        if (!fl)
                return 0;
        if (fl->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG && fl->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
                flags |= IMAP_FOLDER_NOSELECT;
        for (clistiter *it = clist_begin(fl->mbf_oflags); it; it = clist_next(it)) {
                const struct mailimap_mbx_list_oflag *of = clist_content(it);
                if (of->of_type == MAILIMAP_MBX_LIST_OFLAG_NOINFERIORS || !of->of_flag_ext)
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(special_use); i++)
                        if (strcaseeq(of->of_flag_ext, special_use[i].name))
                                flags |= special_use[i].flag;
        }
        return flags;
}

/* A server that names its Sent folder (RFC 6154 \Sent) is believed; one that names none leaves
 * it to be recognised by its name. */
static void mark_sent_unknown(ImapFolder *f, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (f[i].flags & IMAP_FOLDER_SENT)
                        return;
        for (size_t i = 0; i < n; i++)
                f[i].flags |= IMAP_FOLDER_NO_SENT_FLAG;
}

int imap_list(ImapSession *s, ImapFolder **ret, size_t *ret_n) {
        clist *list = NULL;
        ImapFolder *f = NULL;
        size_t n = 0;
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        s->listing = true;
        r = mailimap_list(s->imap, "", "*", &list);
        s->listing = false;
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "LIST");
        f = calloc(clist_count(list) + 1, sizeof(ImapFolder));
        if (!f) {
                mailimap_list_result_free(list);
                return -ENOMEM;
        }
        for (clistiter *it = clist_begin(list); it; it = clist_next(it)) {
                const struct mailimap_mailbox_list *mb = clist_content(it);
                if (!mb->mb_name)
                        continue;
                f[n] = (ImapFolder) { .name = strdup(mb->mb_name), .display = imap_utf7_decode(mb->mb_name),
                                      .delimiter = mb->mb_delimiter, .flags = folder_flags(mb->mb_flag) };
                if (!f[n].name || !f[n].display) {
                        imap_folders_free(f, n + 1);
                        mailimap_list_result_free(list);
                        return -ENOMEM;
                }
                n++;
        }
        mailimap_list_result_free(list);
        mark_sent_unknown(f, n);
        /* Its own "* LIST" lines were no MailboxName notifications, and it says it all. */
        s->notify.folders_changed = false;
        *ret = f;
        *ret_n = n;
        return 0;
}

int imap_examine(ImapSession *s, const char *folder, ImapFolderState *ret) {
        uint64_t modseq = 0;
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        if (mailimap_has_condstore(s->imap))
                r = mailimap_examine_condstore(s->imap, folder, &modseq);
        else
                r = mailimap_examine(s->imap, folder);
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "EXAMINE");
        if (!s->imap->imap_selection_info)
                return session_error(s, MAILIMAP_ERROR_PARSE, "EXAMINE");
        *ret = (ImapFolderState) {
                .uidvalidity = s->imap->imap_selection_info->sel_uidvalidity,
                .uidnext = s->imap->imap_selection_info->sel_uidnext,
                .exists = s->imap->imap_selection_info->sel_exists,
                .highest_modseq = modseq,
        };
        return 0;
}

/* Not in Debian's installed headers, exported by libetpan. */
int mailimap_examine_send(mailstream *fd, const char *mb, int condstore); /* 1.9.4: 3 arguments */
int mailimap_crlf_send(mailstream *fd);

/* HIGHESTMODSEQ of the EXAMINE answer just parsed (what mailimap_examine_condstore() reads). */
static uint64_t answer_modseq(ImapSession *s) {
        clist *l = s->imap->imap_response_info ? s->imap->imap_response_info->rsp_extension_list : NULL;

        for (clistiter *it = l ? clist_begin(l) : NULL; it; it = clist_next(it)) {
                const struct mailimap_extension_data *e = clist_content(it);
                const struct mailimap_condstore_resptextcode *c = e->ext_data;
                if (e->ext_extension->ext_id == MAILIMAP_EXTENSION_CONDSTORE &&
                    e->ext_type == MAILIMAP_CONDSTORE_TYPE_RESP_TEXT_CODE && c &&
                    c->cs_type == MAILIMAP_CONDSTORE_RESPTEXTCODE_HIGHESTMODSEQ)
                        return c->cs_data.cs_modseq_value;
        }
        return 0;
}

int imap_examine_ahead(ImapSession *s, const char *folder, uint32_t uidvalidity, ImapFolderState *ret) {
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        r = mailimap_send_current_tag(s->imap);
        if (r == MAILIMAP_NO_ERROR)
                r = mailimap_examine_send(s->imap->imap_stream, folder, mailimap_has_condstore(s->imap) ? 1 : 0);
        if (r == MAILIMAP_NO_ERROR)
                r = mailimap_crlf_send(s->imap->imap_stream);
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "EXAMINE");
        s->ahead = true;
        s->ahead_tag = s->imap->imap_tag;
        s->ahead_uidvalidity = uidvalidity;
        s->ahead_ret = ret;
        return 0;
}

/* Reads the answer to the EXAMINE sent ahead (sent and flushed): 0, -ENOENT (refused: the
 * session is in step, nothing selected), -ESTALE (its UIDVALIDITY is not the one expected), or
 * an error for the connection. */
static int ahead_read(ImapSession *s) {
        struct mailimap_response *resp = NULL;
        int tag = s->imap->imap_tag;
        bool ok;
        int r;

        s->ahead = false;
        s->imap->imap_tag = s->ahead_tag;
        budget_reset(s, IMAP_RESPONSE_MAX);
        /* What mailimap_examine() does: a fresh selection to fill. */
        if (s->imap->imap_selection_info)
                mailimap_selection_info_free(s->imap->imap_selection_info);
        s->imap->imap_selection_info = mailimap_selection_info_new();
        if (!s->imap->imap_selection_info || !mailimap_read_line(s->imap))
                r = MAILIMAP_ERROR_STREAM;
        else
                r = mailimap_parse_response(s->imap, &resp);
        s->imap->imap_tag = tag;
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "EXAMINE");
        ok = tagged_ok(resp);
        mailimap_response_free(resp);
        s->imap->imap_state = ok ? MAILIMAP_STATE_SELECTED : MAILIMAP_STATE_AUTHENTICATED;
        free(s->error);
        s->error = NULL;
        if (!ok) {
                if (asprintf(&s->error, "EXAMINE failed: %s", strna(s->imap->imap_response)) < 0)
                        s->error = NULL;
                return -ENOENT;
        }
        *s->ahead_ret = (ImapFolderState) {
                .uidvalidity = s->imap->imap_selection_info->sel_uidvalidity,
                .uidnext = s->imap->imap_selection_info->sel_uidnext,
                .exists = s->imap->imap_selection_info->sel_exists,
                .highest_modseq = answer_modseq(s),
        };
        if (s->ahead_ret->uidvalidity != s->ahead_uidvalidity) {
                s->error = strdup("the folder's UIDVALIDITY changed");
                return -ESTALE;
        }
        return 0;
}

bool imap_has_new_mail(ImapSession *s, uint32_t exists) {
        return s->imap->imap_selection_info && s->imap->imap_selection_info->sel_exists > exists;
}

/* What STATUS asks for: UIDNEXT, UIDVALIDITY, MESSAGES. */
static struct mailimap_status_att_list *status_atts(void) {
        struct mailimap_status_att_list *atts = mailimap_status_att_list_new_empty();

        if (!atts || mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDNEXT) != MAILIMAP_NO_ERROR ||
            mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_UIDVALIDITY) != MAILIMAP_NO_ERROR ||
            mailimap_status_att_list_add(atts, MAILIMAP_STATUS_ATT_MESSAGES) != MAILIMAP_NO_ERROR) {
                if (atts)
                        mailimap_status_att_list_free(atts);
                return NULL;
        }
        return atts;
}

/* What a STATUS answer said (st freed; NULL: nothing). */
static ImapFolderState status_state(struct mailimap_mailbox_data_status *st) {
        ImapFolderState state = {};

        for (clistiter *it = st && st->st_info_list ? clist_begin(st->st_info_list) : NULL; it; it = clist_next(it)) {
                const struct mailimap_status_info *i = clist_content(it);
                if (i->st_att == MAILIMAP_STATUS_ATT_UIDNEXT)
                        state.uidnext = i->st_value;
                else if (i->st_att == MAILIMAP_STATUS_ATT_UIDVALIDITY)
                        state.uidvalidity = i->st_value;
                else if (i->st_att == MAILIMAP_STATUS_ATT_MESSAGES)
                        state.exists = i->st_value;
        }
        if (st)
                mailimap_mailbox_data_status_free(st);
        return state;
}

int imap_status(ImapSession *s, const char *folder, ImapFolderState *ret) {
        ImapScout x = { .folder = folder };
        int r;

        r = imap_status_all(s, &x, 1);
        if (r < 0)
                return r;
        if (x.r < 0) {
                free(s->error);
                if (asprintf(&s->error, "STATUS failed: %s", strna(s->imap->imap_response)) < 0)
                        s->error = NULL;
                return x.r;
        }
        /* Our own STATUS answered what a notification about it would have made us ask. */
        imap_notify_scan_forget(&s->notify, folder);
        *ret = x.st;
        return 0;
}

/* A UID set from ascending UIDs, runs merged into ranges: "1:500,502,510:900". */
static struct mailimap_set *set_from_uids(const uint32_t *uids, size_t n, size_t *ret_used) {
        struct mailimap_set *set = mailimap_set_new_empty();
        size_t i = 0, ranges = 0;

        if (!set)
                return NULL;
        while (i < n && ranges < MAX_SET_RANGES) {
                size_t j = i;
                while (j + 1 < n && uids[j + 1] == uids[j] + 1)
                        j++;
                if (mailimap_set_add_interval(set, uids[i], uids[j]) != MAILIMAP_NO_ERROR) {
                        mailimap_set_free(set);
                        return NULL;
                }
                ranges++;
                i = j + 1;
        }
        *ret_used = i;
        return set;
}

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

static int uids_from_search(clist *res, uint32_t first_uid, uint32_t **ret, size_t *ret_n) {
        uint32_t *uids = calloc(clist_count(res) + 1, sizeof(uint32_t));
        size_t n = 0;

        if (!uids)
                return -ENOMEM;
        for (clistiter *it = clist_begin(res); it; it = clist_next(it)) {
                uint32_t uid = *(uint32_t *) clist_content(it);
                /* RFC 3501 §6.4.8: "n:*" always includes the highest UID, even below n. */
                if (uid >= first_uid && uid > 0)
                        uids[n++] = uid;
        }
        qsort(uids, n, sizeof(uint32_t), cmp_u32);
        *ret = uids;
        *ret_n = n;
        return 0;
}

static struct mailimap_search_key *search_key_since(int64_t since) {
        time_t t = (time_t) since;
        struct tm tm;

        if (!gmtime_r(&t, &tm))
                return NULL;
        return mailimap_search_key_new_since(mailimap_date_new(tm.tm_mday, tm.tm_mon + 1, tm.tm_year + 1900));
}

int imap_search(ImapSession *s, uint32_t first_uid, int64_t since, uint32_t **ret, size_t *ret_n) {
        struct mailimap_search_key *key = NULL, *k;
        struct mailimap_set *set;
        clist *res = NULL;
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        key = mailimap_search_key_new_multiple_empty();
        set = mailimap_set_new_interval(MAX(first_uid, 1u), 0);
        if (!key || !set || mailimap_search_key_multiple_add(key, mailimap_search_key_new_uid(set)) != MAILIMAP_NO_ERROR)
                goto oom;
        set = NULL;
        if (since > 0 && (!(k = search_key_since(since)) || mailimap_search_key_multiple_add(key, k) != MAILIMAP_NO_ERROR))
                goto oom;
        budget_reset(s, IMAP_RESPONSE_LARGE);
        r = mailimap_uid_search(s->imap, NULL, key, &res);
        mailimap_search_key_free(key);
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "UID SEARCH");
        r = uids_from_search(res, first_uid, ret, ret_n);
        mailimap_search_result_free(res);
        return r;
oom:
        if (set)
                mailimap_set_free(set);
        if (key)
                mailimap_search_key_free(key);
        return -ENOMEM;
}

static bool is_ascii(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s >= 0x80)
                        return false;
        return true;
}

static int or_add(struct mailimap_search_key **tree, struct mailimap_search_key *k) {
        if (!k)
                return -ENOMEM;
        if (!*tree) {
                *tree = k;
                return 0;
        }
        struct mailimap_search_key *o = mailimap_search_key_new_or(*tree, k);
        if (!o) {
                mailimap_search_key_free(k);
                return -ENOMEM;
        }
        *tree = o;
        return 0;
}

/* UID first_uid:last_uid (0: *) AND (FROM domain OR ... OR SUBJECT keyword OR FROM keyword
 * ...), or NULL in *ret when there is nothing to look for. */
static int candidates_key(uint32_t first_uid, uint32_t last_uid, char *const *domains, char *const *keywords,
                          struct mailimap_search_key **ret, bool *ret_ascii) {
        struct mailimap_search_key *key = NULL, *any = NULL;
        struct mailimap_set *set = NULL;
        bool ascii = true;
        char *dup;
        int r = 0;

        *ret = NULL;
        for (char *const *d = domains; d && *d && r >= 0; d++)
                r = or_add(&any, (dup = strdup(*d)) ? mailimap_search_key_new_from(dup) : NULL);
        for (char *const *k = keywords; k && *k && r >= 0; k++) {
                ascii = ascii && is_ascii(*k);
                r = or_add(&any, (dup = strdup(*k)) ? mailimap_search_key_new_subject(dup) : NULL);
                if (r >= 0)
                        r = or_add(&any, (dup = strdup(*k)) ? mailimap_search_key_new_from(dup) : NULL);
        }
        if (r < 0)
                goto finish;
        if (!any)
                return 0;
        key = mailimap_search_key_new_multiple_empty();
        set = mailimap_set_new_interval(MAX(first_uid, 1u), last_uid);
        if (!key || !set || mailimap_search_key_multiple_add(key, mailimap_search_key_new_uid(set)) != MAILIMAP_NO_ERROR) {
                r = -ENOMEM;
                goto finish;
        }
        set = NULL;
        if (mailimap_search_key_multiple_add(key, any) != MAILIMAP_NO_ERROR) {
                r = -ENOMEM;
                goto finish;
        }
        any = NULL;
        *ret = TAKE_PTR(key);
        *ret_ascii = ascii;
finish:
        if (set)
                mailimap_set_free(set);
        if (key)
                mailimap_search_key_free(key);
        if (any)
                mailimap_search_key_free(any);
        return r;
}

int imap_search_candidates(ImapSession *s, uint32_t first_uid, char *const *domains,
                           char *const *keywords, uint32_t **ret, size_t *ret_n) {
        struct mailimap_search_key *key = NULL;
        clist *res = NULL;
        bool ascii;
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        r = candidates_key(first_uid, 0, domains, keywords, &key, &ascii);
        if (r < 0)
                return r;
        if (!key) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        budget_reset(s, IMAP_RESPONSE_LARGE);
        r = mailimap_uid_search(s->imap, ascii ? NULL : "UTF-8", key, &res);
        mailimap_search_key_free(key);
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "UID SEARCH");
        r = uids_from_search(res, first_uid, ret, ret_n);
        mailimap_search_result_free(res);
        return r;
}

int mailimap_uid_search_send(mailstream *fd, const char *charset, struct mailimap_search_key *key);

#define SCOUT_WAVE 16 /* folders a wave: 32 short commands */
#define PIPELINE_STATUS 64 /* STATUS commands a wave */

static int scout_wave(ImapSession *s, ImapScout *f, size_t k, char *const *domains, char *const *keywords) {
        int tag0 = s->imap->imap_tag, r = MAILIMAP_NO_ERROR;
        bool selected = false;

        for (size_t j = 0; j < k && r == MAILIMAP_NO_ERROR; j++) {
                struct mailimap_search_key *key = NULL;
                bool ascii = true;
                int q;

                /* Each folder's own UIDs (a part of it, read first), the same words. */
                q = candidates_key(f[j].first_uid, f[j].last_uid, domains, keywords, &key, &ascii);
                if (q >= 0 && !key)
                        q = -EOPNOTSUPP;
                if (q < 0) {
                        if (key)
                                mailimap_search_key_free(key);
                        return q; /* nothing sent for this folder: the session is in step */
                }
                r = mailimap_send_current_tag(s->imap);
                if (r == MAILIMAP_NO_ERROR)
                        r = mailimap_examine_send(s->imap->imap_stream, f[j].folder, 0);
                if (r == MAILIMAP_NO_ERROR)
                        r = mailimap_crlf_send(s->imap->imap_stream);
                if (r == MAILIMAP_NO_ERROR)
                        r = mailimap_send_current_tag(s->imap);
                if (r == MAILIMAP_NO_ERROR)
                        r = mailimap_uid_search_send(s->imap->imap_stream, ascii ? NULL : "UTF-8", key);
                if (r == MAILIMAP_NO_ERROR)
                        r = mailimap_crlf_send(s->imap->imap_stream);
                mailimap_search_key_free(key);
        }
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "EXAMINE");
        if (mailstream_flush(s->imap->imap_stream) == -1)
                return session_error(s, MAILIMAP_ERROR_STREAM, "EXAMINE");
        for (size_t t = 0; t < 2 * k; t++) {
                ImapScout *x = &f[t / 2];
                struct mailimap_response *resp = NULL;
                bool ok;

                s->imap->imap_tag = tag0 + 1 + (int) t;
                budget_reset(s, IMAP_RESPONSE_LARGE);
                if (t % 2 == 0) {
                        /* What mailimap_examine() does: a fresh selection to fill. */
                        if (s->imap->imap_selection_info)
                                mailimap_selection_info_free(s->imap->imap_selection_info);
                        s->imap->imap_selection_info = mailimap_selection_info_new();
                        if (!s->imap->imap_selection_info)
                                return -ENOMEM;
                }
                if (!mailimap_read_line(s->imap))
                        return session_error(s, MAILIMAP_ERROR_STREAM, "EXAMINE");
                r = mailimap_parse_response(s->imap, &resp);
                if (r != MAILIMAP_NO_ERROR)
                        return session_error(s, r, t % 2 ? "UID SEARCH" : "EXAMINE");
                ok = tagged_ok(resp);
                mailimap_response_free(resp);
                if (t % 2 == 0) {
                        selected = ok;
                        x->r = ok ? 0 : -ENOENT;
                        if (ok)
                                x->st = (ImapFolderState) {
                                        .uidvalidity = s->imap->imap_selection_info->sel_uidvalidity,
                                        .uidnext = s->imap->imap_selection_info->sel_uidnext,
                                        .exists = s->imap->imap_selection_info->sel_exists,
                                };
                        continue;
                }
                clist *res = s->imap->imap_response_info ? s->imap->imap_response_info->rsp_search_result : NULL;
                if (res)
                        s->imap->imap_response_info->rsp_search_result = NULL;
                /* A SEARCH after a refused EXAMINE is no answer about this folder. */
                if (x->r == 0 && !ok)
                        x->r = -EOPNOTSUPP;
                if (x->r == 0 && res)
                        r = uids_from_search(res, MAX(x->first_uid, 1u), &x->uids, &x->n);
                /* "n:m" is exact; drop what a server answered beyond it all the same. */
                while (r >= 0 && x->last_uid > 0 && x->n > 0 && x->uids[x->n - 1] > x->last_uid)
                        x->n--;
                if (res)
                        mailimap_search_result_free(res);
                if (r < 0)
                        return r;
        }
        s->imap->imap_tag = tag0 + 2 * (int) k;
        s->imap->imap_state = selected ? MAILIMAP_STATE_SELECTED : MAILIMAP_STATE_AUTHENTICATED;
        return 0;
}

int mailimap_status_send(mailstream *fd, const char *mailbox, struct mailimap_status_att_list *status_att_list);

static int status_wave(ImapSession *s, ImapScout *f, size_t k, struct mailimap_status_att_list *atts) {
        int tag0 = s->imap->imap_tag, r = MAILIMAP_NO_ERROR;

        for (size_t j = 0; j < k && r == MAILIMAP_NO_ERROR; j++) {
                r = mailimap_send_current_tag(s->imap);
                if (r == MAILIMAP_NO_ERROR)
                        r = mailimap_status_send(s->imap->imap_stream, f[j].folder, atts);
                if (r == MAILIMAP_NO_ERROR)
                        r = mailimap_crlf_send(s->imap->imap_stream);
        }
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "STATUS");
        if (mailstream_flush(s->imap->imap_stream) == -1)
                return session_error(s, MAILIMAP_ERROR_STREAM, "STATUS");
        for (size_t j = 0; j < k; j++) {
                struct mailimap_response *resp = NULL;
                struct mailimap_mailbox_data_status *st;

                s->imap->imap_tag = tag0 + 1 + (int) j;
                budget_reset(s, IMAP_RESPONSE_MAX);
                if (!mailimap_read_line(s->imap))
                        return session_error(s, MAILIMAP_ERROR_STREAM, "STATUS");
                r = mailimap_parse_response(s->imap, &resp);
                if (r != MAILIMAP_NO_ERROR)
                        return session_error(s, r, "STATUS");
                f[j].r = tagged_ok(resp) ? 0 : -ENOENT;
                mailimap_response_free(resp);
                st = s->imap->imap_response_info ? s->imap->imap_response_info->rsp_status : NULL;
                if (st)
                        s->imap->imap_response_info->rsp_status = NULL;
                f[j].st = status_state(st);
        }
        s->imap->imap_tag = tag0 + (int) k;
        return 0;
}

int imap_status_all(ImapSession *s, ImapScout *f, size_t n) {
        struct mailimap_status_att_list *atts;
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        atts = status_atts();
        if (!atts)
                return -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i += PIPELINE_STATUS)
                r = status_wave(s, f + i, MIN(n - i, (size_t) PIPELINE_STATUS), atts);
        mailimap_status_att_list_free(atts);
        return r;
}

int imap_scout(ImapSession *s, ImapScout *f, size_t n, char *const *domains, char *const *keywords) {
        struct mailimap_search_key *key = NULL;
        bool ascii = true;
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        r = candidates_key(1, 0, domains, keywords, &key, &ascii);
        if (r < 0)
                return r;
        if (!key)
                return -EOPNOTSUPP;
        mailimap_search_key_free(key);
        for (size_t i = 0; i < n && r >= 0; i += SCOUT_WAVE)
                r = scout_wave(s, f + i, MIN(n - i, (size_t) SCOUT_WAVE), domains, keywords);
        return r;
}

/* ---- FETCH ---- */

typedef struct FetchState {
        ImapSession *session;
        size_t budget;            /* per message */
        ImapFetchFunc cb;
        void *userdata;
        uint32_t first_uid;
        bool labels;              /* Gmail: X-GM-LABELS asked for with each message */
        int r;
} FetchState;

static int msg_att_labels(const struct mailimap_msg_att *ma, char ***ret);

static void on_msg_att(struct mailimap_msg_att *ma, void *userdata) {
        FetchState *st = userdata;
        _cleanup_strv_free_ char **labels = NULL;
        ImapMessage m = { .data = "" };
        bool have_body = false;

        if (st->r < 0)
                return; /* a callback failed: drain the rest of the response unread */
        for (clistiter *j = clist_begin(ma->att_list); j; j = clist_next(j)) {
                const struct mailimap_msg_att_item *item = clist_content(j);
                const struct mailimap_msg_att_static *a;
                if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
                        continue;
                a = item->att_data.att_static;
                if (a->att_type == MAILIMAP_MSG_ATT_UID)
                        m.uid = a->att_data.att_uid;
                else if (a->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE)
                        m.full_size = a->att_data.att_rfc822_size;
                else if (a->att_type == MAILIMAP_MSG_ATT_BODY_SECTION && a->att_data.att_body_section) {
                        /* sec_section may be NULL for BODY[] (libetpan 1.9.4). */
                        if (a->att_data.att_body_section->sec_body_part)
                                m.data = a->att_data.att_body_section->sec_body_part;
                        m.size = a->att_data.att_body_section->sec_length;
                        have_body = true;
                }
        }
        /* Unsolicited FETCH (a flag change elsewhere), or "n:*" below n: not ours. */
        if (m.uid == 0 || m.uid < st->first_uid || !have_body)
                return;
        m.truncated = m.full_size > m.size;
        m.settled = m.uid;
        if (st->labels && msg_att_labels(ma, &labels) < 0)
                st->r = -ENOMEM;
        else {
                m.labels = labels;
                st->r = st->cb(&m, st->userdata);
        }
        /* libetpan frees this message when we return: the next one has a budget of its own. */
        budget_reset(st->session, st->budget);
}

/* The server refused a command to slow us down (Gmail, Microsoft 365: "NO [THROTTLED] Request is
 * throttled", RFC 5530 [UNAVAILABLE] or [LIMIT]): nothing is wrong with the command or with what
 * it asked for, so no fallback (whole messages, no BODYSTRUCTURE) is right; the session ends
 * and the worker comes back after its backoff, from the cursor. */
static bool throttled(ImapSession *s) {
        const char *resp = s->imap->imap_response;
        const char *atom = s->imap->imap_response_info ? s->imap->imap_response_info->rsp_atom : NULL;

        return (atom && (strcaseeq(atom, "THROTTLED") || strcaseeq(atom, "UNAVAILABLE") || strcaseeq(atom, "LIMIT"))) ||
               (resp && strcasestr(resp, "throttled"));
}

static int throttled_error(ImapSession *s, const char *what) {
        free(s->error);
        if (asprintf(&s->error, "the server asks us to slow down: %s", strna(what)) < 0)
                s->error = NULL;
        return -EBUSY;
}

static int fetch_with_handler(ImapSession *s, struct mailimap_set *set, struct mailimap_fetch_type *ft,
                              FetchState *st) {
        clist *res = NULL;
        int r;

        mailimap_set_msg_att_handler(s->imap, on_msg_att, st);
        budget_reset(s, st->budget);
        r = mailimap_uid_fetch(s->imap, set, ft, &res);
        mailimap_set_msg_att_handler(s->imap, NULL, NULL);
        /* Only on success: on a NO or BAD, libetpan 1.9.4 has freed the list already and left
         * res pointing at it (freeing it again crashed on a server's "NO [THROTTLED]"). */
        if (r == MAILIMAP_NO_ERROR && res)
                mailimap_fetch_list_free(res);
        if (r != MAILIMAP_NO_ERROR && throttled(s))
                return throttled_error(s, s->imap->imap_response);
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "UID FETCH");
        return st->r;
}

int imap_fetch(ImapSession *s, const uint32_t *uids, size_t n, uint32_t first_uid,
               size_t max_size, ImapFetchFunc cb, void *userdata) {
        FetchState st = { .session = s, .budget = MIN(max_size, (size_t) UINT32_MAX) + IMAP_RESPONSE_SLACK,
                          .cb = cb, .userdata = userdata, .first_uid = first_uid,
                          .labels = imap_has_capability(s, "X-GM-EXT-1") };
        struct mailimap_fetch_type *ft = NULL;
        size_t done = 0;
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        if (n == 0 && first_uid == 0)
                return 0;
        ft = mailimap_fetch_type_new_fetch_att_list_empty();
        if (!ft ||
            mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid()) != MAILIMAP_NO_ERROR ||
            mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size()) != MAILIMAP_NO_ERROR ||
            /* BODY.PEEK: RFC 3501 §6.4.5, does not set \Seen. Partial: bounded memory. */
            mailimap_fetch_type_new_fetch_att_list_add(
                    ft, mailimap_fetch_att_new_body_peek_section_partial(mailimap_section_new(NULL), 0,
                                                                         (uint32_t) MIN(max_size, (size_t) UINT32_MAX))) != MAILIMAP_NO_ERROR ||
            /* Gmail: the labels, where the code was seen. */
            (st.labels && mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_xgmlabels()) != MAILIMAP_NO_ERROR)) {
                if (ft)
                        mailimap_fetch_type_free(ft);
                return -ENOMEM;
        }
        do {
                struct mailimap_set *set;
                size_t used = 0;

                if (n == 0) {
                        set = mailimap_set_new_interval(first_uid, 0);
                        used = 0;
                } else
                        set = set_from_uids(uids + done, n - done, &used);
                if (!set) {
                        r = -ENOMEM;
                        break;
                }
                r = fetch_with_handler(s, set, ft, &st);
                mailimap_set_free(set);
                done += used;
        } while (r >= 0 && done < n);
        mailimap_fetch_type_free(ft);
        return r;
}

/* ---- Headers and text parts only ----
 *
 * The rules read headers and text parts; attachments are most of a real mailbox's bytes.
 * imap_fetch_parts() reads PARTS_CHUNK messages at a time:
 *  1. UID FETCH set (UID RFC822.SIZE BODYSTRUCTURE): each message's tree becomes at once a
 *     plan (the message to write back: its boundary lines, and references to the sections to
 *     fetch) and a key (those sections, space-separated);
 *  2. one UID FETCH per distinct key (most messages share their shape with many others) for
 *     the top header, every part's MIME header, attached messages' headers and the bodies of
 *     text/plain and text/html parts; all of them are sent at once (pipelined) and their
 *     answers read in turn, so that a chunk costs two round trips whatever its shapes;
 *  3. in a chunk of DEFER_MIN messages or more, a text/html part that has a text/plain sibling
 *     of ALT_PLAIN_MIN bytes or more in a multipart/alternative (RFC 2046 §5.1.4: the same
 *     content) is left out of step 2: it is half of a real mailbox's text bytes, and most mail
 *     neither comes from (nor claims) a trusted sender nor names the brand, the only mail a
 *     rule reads. The callback says which messages want it after all (IMAP_FETCH_AGAIN:
 *     Message.wants_left_out); one more round trip fetches what was left out of them, put
 *     back into what the first read gave (kept up to KEPT_MAX a chunk; past it, their whole
 *     text is read again).
 * A message is written back with the same boundaries and an empty body wherever a part was
 * skipped, so the MIME parser sees the same tree and the same texts as in the whole message.
 * A message whose structure cannot be written back (no boundary, message/rfc822 at the top,
 * too many parts) or that came without BODYSTRUCTURE is read whole, up to max_whole. */

#define PARTS_CHUNK 1000
#define WHOLE_SLACK 4096 /* read whole a message at most this much larger than its text */
#define PIPELINE_MAX 32 /* commands sent before reading answers (each under ~4 KiB) */
#define TEXTS_MAX_SECTIONS 256
#define TEXTS_MAX_BYTES (24u << 20) /* text bodies read in total for one message */
#define ALT_PLAIN_MIN 256 /* a shorter plain alternative may be a stub ("view this in a browser") */
#define DEFER_MIN 64 /* fewer messages (new mail): the round trip costs more than the bytes */
#define KEPT_MAX (16u << 20) /* a chunk's first reads kept for the messages read again (about 0.3 MiB on the realistic mailbox) */

/* Not in Debian's installed headers (mailimap_sender.h), exported by libetpan: what
 * mailimap_uid_fetch() sends, without waiting for the answer. */
int mailimap_uid_fetch_send(mailstream *fd, struct mailimap_set *set, struct mailimap_fetch_type *fetch_type);
int mailimap_crlf_send(mailstream *fd);

typedef struct PlanBuilder {
        StrBuf plan;      /* bytes to write; a section to fetch is "\0name\0", one left out
                           * unless asked again "\0?name\0" */
        StrBuf key;       /* "HEADER 1.MIME 1 ...": the FETCH items */
        StrBuf key_all;   /* the same with the sections left out */
        size_t n;         /* sections */
        size_t n_left_out;
        size_t requested; /* text body bytes asked for (but those left out) */
        size_t requested_all;
        size_t max_part;
        bool defer_html;  /* inside a multipart/alternative with a long enough text/plain */
} PlanBuilder;

static int key_add(StrBuf *key, const char *name) {
        if (key->len > 0 && strbuf_putc(key, ' ') < 0)
                return -ENOMEM;
        return strbuf_puts(key, name) < 0 ? -ENOMEM : 0;
}

static int plan_section(PlanBuilder *p, const char *path, const char *what, bool left_out) {
        char name[256];
        int r;

        if (p->n >= TEXTS_MAX_SECTIONS)
                return -EOPNOTSUPP; /* too many parts to write back: read the message whole */
        (void) snprintf(name, sizeof name, "%s%s%s", path, *path && *what ? "." : "", what);
        r = strbuf_append(&p->plan, left_out ? "\0?" : "", left_out ? 2 : 1);
        if (r >= 0)
                r = strbuf_append(&p->plan, name, strlen(name) + 1);
        if (r >= 0 && !left_out)
                r = key_add(&p->key, name);
        if (r >= 0)
                r = key_add(&p->key_all, name);
        p->n++;
        p->n_left_out += left_out;
        return r < 0 ? -ENOMEM : 0;
}

static const char *mpart_boundary(const struct mailimap_body_type_mpart *mp) {
        if (!mp->bd_ext_mpart || !mp->bd_ext_mpart->bd_parameter)
                return NULL;
        for (clistiter *it = clist_begin(mp->bd_ext_mpart->bd_parameter->pa_list); it; it = clist_next(it)) {
                const struct mailimap_single_body_fld_param *p = clist_content(it);
                if (p->pa_name && p->pa_value && strcaseeq(p->pa_name, "boundary") && *p->pa_value)
                        return p->pa_value;
        }
        return NULL;
}

static void child_path(char *buf, size_t size, const char *path, unsigned i) {
        (void) snprintf(buf, size, "%s%s%u", path, *path ? "." : "", i);
}

/* A multipart/alternative whose text/plain says it all: ALT_PLAIN_MIN bytes or more. */
static bool alternative_with_plain(const struct mailimap_body_type_mpart *mp) {
        if (!mp->bd_media_subtype || !strcaseeq(mp->bd_media_subtype, "alternative"))
                return false;
        for (clistiter *it = clist_begin(mp->bd_list); it; it = clist_next(it)) {
                const struct mailimap_body *b = clist_content(it);
                const struct mailimap_body_type_1part *one = b && b->bd_type == MAILIMAP_BODY_1PART ? b->bd_data.bd_body_1part : NULL;
                const struct mailimap_body_type_text *t;

                if (!one || one->bd_type != MAILIMAP_BODY_TYPE_1PART_TEXT || !(t = one->bd_data.bd_type_text))
                        continue;
                if (t->bd_media_text && strcaseeq(t->bd_media_text, "plain") && t->bd_fields &&
                    t->bd_fields->bd_size >= ALT_PLAIN_MIN)
                        return true;
        }
        return false;
}

static int plan_walk(const struct mailimap_body *b, const char *path, bool top, PlanBuilder *p, unsigned depth);

static int plan_children(const struct mailimap_body_type_mpart *mp, const char *path, PlanBuilder *p,
                         unsigned depth) {
        const char *boundary = mpart_boundary(mp);
        bool defer_html = p->defer_html;
        char sub[200];
        unsigned i = 1;
        int r = 0;

        if (!boundary || strlen(boundary) > 200)
                return -EOPNOTSUPP; /* cannot write it back: read the message whole */
        p->defer_html = defer_html || alternative_with_plain(mp);
        for (clistiter *it = clist_begin(mp->bd_list); it && r >= 0; it = clist_next(it), i++) {
                child_path(sub, sizeof sub, path, i);
                if (strbuf_printf(&p->plan, "%s--%s\r\n", i > 1 ? "\r\n" : "", boundary) < 0)
                        r = -ENOMEM;
                else
                        r = plan_walk(clist_content(it), sub, false, p, depth + 1);
        }
        p->defer_html = defer_html;
        if (r < 0)
                return r;
        return strbuf_printf(&p->plan, "\r\n--%s--\r\n", boundary) < 0 ? -ENOMEM : 0;
}

/* A text body the rules read (mime.c reads text/plain and text/html, and text with no type),
 * within TEXTS_MAX_BYTES by the sizes the server gives; other text (calendars, CSV) and what
 * goes past the budget stay empty, as attachments do. */
static int plan_text(const struct mailimap_body_type_text *t, const char *section, PlanBuilder *p) {
        bool html = t && t->bd_media_text && strcaseeq(t->bd_media_text, "html");
        size_t size;

        if (t && t->bd_media_text && !strcaseeq(t->bd_media_text, "plain") && !html)
                return 0;
        size = t && t->bd_fields ? MIN((size_t) t->bd_fields->bd_size, p->max_part) : p->max_part;
        if (p->requested_all + size > TEXTS_MAX_BYTES)
                return 0;
        p->requested_all += size;
        if (!(html && p->defer_html))
                p->requested += size;
        return plan_section(p, section, "", html && p->defer_html);
}

static bool encoded(const struct mailimap_body_fields *f) {
        return f && f->bd_encoding &&
               (f->bd_encoding->enc_type == MAILIMAP_BODY_FLD_ENC_BASE64 ||
                f->bd_encoding->enc_type == MAILIMAP_BODY_FLD_ENC_QUOTED_PRINTABLE);
}

static int plan_walk(const struct mailimap_body *b, const char *path, bool top, PlanBuilder *p, unsigned depth) {
        const struct mailimap_body_type_1part *one;
        char sub[200];
        int r;

        if (!b || depth > 32 || strlen(path) > 150)
                return -EOPNOTSUPP;
        /* This part's own header: the message header at the top, its MIME header below. */
        r = plan_section(p, top ? "" : path, top ? "HEADER" : "MIME", false);
        if (r < 0)
                return r;
        if (b->bd_type == MAILIMAP_BODY_MPART)
                return b->bd_data.bd_body_mpart ? plan_children(b->bd_data.bd_body_mpart, path, p, depth)
                                                : -EOPNOTSUPP;
        one = b->bd_data.bd_body_1part;
        if (!one)
                return -EOPNOTSUPP;
        /* RFC 3501 §6.4.5: a non-multipart message has only part 1. */
        if (top)
                child_path(sub, sizeof sub, path, 1);
        else
                (void) snprintf(sub, sizeof sub, "%s", path);
        switch (one->bd_type) {
        case MAILIMAP_BODY_TYPE_1PART_TEXT:
                return plan_text(one->bd_data.bd_type_text, sub, p);
        case MAILIMAP_BODY_TYPE_1PART_MSG: {
                const struct mailimap_body_type_msg *msg = one->bd_data.bd_type_msg;
                const struct mailimap_body *inner = msg ? msg->bd_body : NULL;
                if (!inner || top)
                        return -EOPNOTSUPP;
                /* Sent base64 or quoted-printable (RFC 2046 forbids it, clients do it): the
                 * server cannot see inside; mime.c decodes it, so it gets the bytes. */
                if (encoded(msg->bd_fields))
                        return plan_section(p, path, "", false);
                r = plan_section(p, path, "HEADER", false);
                if (r < 0)
                        return r;
                if (inner->bd_type == MAILIMAP_BODY_MPART)
                        return inner->bd_data.bd_body_mpart
                                       ? plan_children(inner->bd_data.bd_body_mpart, path, p, depth + 1)
                                       : -EOPNOTSUPP;
                if (!inner->bd_data.bd_body_1part)
                        return -EOPNOTSUPP;
                child_path(sub, sizeof sub, path, 1);
                switch (inner->bd_data.bd_body_1part->bd_type) {
                case MAILIMAP_BODY_TYPE_1PART_TEXT:
                        return plan_text(inner->bd_data.bd_body_1part->bd_data.bd_type_text, sub, p);
                case MAILIMAP_BODY_TYPE_1PART_MSG:
                        return -EOPNOTSUPP; /* a message that is only a message: read it whole */
                default:
                        return 0;
                }
        }
        default: {
                /* message/global and other message types the server does not open: the bytes,
                 * for mime.c to judge; anything else is an attachment, its body not read. */
                const struct mailimap_body_type_basic *basic = one->bd_data.bd_type_basic;
                const struct mailimap_media_basic *m = basic ? basic->bd_media_basic : NULL;
                if (m && m->med_type == MAILIMAP_MEDIA_BASIC_MESSAGE)
                        return plan_section(p, sub, "", false);
                if (m && m->med_type == MAILIMAP_MEDIA_BASIC_OTHER && m->med_basic_type &&
                    strcaseeq(m->med_basic_type, "message"))
                        return plan_section(p, sub, "", false);
                return 0;
        }
        }
}

static void free_ids(clist *ids) {
        for (clistiter *it = clist_begin(ids); it; it = clist_next(it))
                free(clist_content(it));
        clist_free(ids);
}

static struct mailimap_section *section_from_name(const char *name) {
        struct mailimap_section_part *part;
        const char *p = name;
        clist *ids;

        if (streq(name, "HEADER"))
                return mailimap_section_new_header();
        ids = clist_new();
        if (!ids)
                return NULL;
        while (*p >= '0' && *p <= '9') {
                uint32_t *id = malloc(sizeof(uint32_t));
                if (!id || clist_append(ids, id) < 0) {
                        free(id);
                        free_ids(ids);
                        return NULL;
                }
                *id = (uint32_t) strtoul(p, (char **) &p, 10);
                if (*p == '.')
                        p++;
        }
        part = mailimap_section_part_new(ids);
        if (!part) {
                free_ids(ids);
                return NULL;
        }
        if (streq(p, "MIME"))
                return mailimap_section_new_part_mime(part);
        if (streq(p, "HEADER"))
                return mailimap_section_new_part_header(part);
        return mailimap_section_new_part(part);
}

static void section_name(const struct mailimap_section *sec, char *buf, size_t size) {
        const struct mailimap_section_spec *spec = sec ? sec->sec_spec : NULL;
        const struct mailimap_section_msgtext *mt = NULL;
        size_t k = 0;

        buf[0] = 0;
        if (!spec)
                return;
        if (spec->sec_type == MAILIMAP_SECTION_SPEC_SECTION_MSGTEXT)
                mt = spec->sec_data.sec_msgtext;
        else if (spec->sec_data.sec_part) {
                for (clistiter *it = clist_begin(spec->sec_data.sec_part->sec_id); it && k < size; it = clist_next(it))
                        k += (size_t) snprintf(buf + k, size - k, "%s%u", k ? "." : "", *(uint32_t *) clist_content(it));
                if (spec->sec_text && spec->sec_text->sec_type == MAILIMAP_SECTION_TEXT_MIME) {
                        (void) snprintf(buf + MIN(k, size), size - MIN(k, size), ".MIME");
                        return;
                }
                if (spec->sec_text)
                        mt = spec->sec_text->sec_msgtext;
        }
        if (mt && k < size)
                (void) snprintf(buf + k, size - k, "%s%s", k ? "." : "",
                                mt->sec_type == MAILIMAP_SECTION_MSGTEXT_HEADER ? "HEADER" : "TEXT");
}

typedef struct PartsMsg {
        uint32_t uid;
        uint32_t full_size;
        char **labels; /* X-GM-LABELS (Gmail), or NULL */
        char *plan;    /* NULL: read whole */
        size_t plan_len;
        char *key;
        char *key_all; /* with the sections left out */
        bool left_out; /* the plan leaves sections out (key_all says which)... */
        bool all;      /* ...but they are read: key is key_all, or the left-out ones (kept) */
        char *kept;    /* read again: what the first read gave, written back... */
        size_t kept_len;
        char *holes;   /* ...and where the left-out sections go: (size_t offset, "name\0")... */
        size_t holes_len;
        bool again;    /* wants what was left out */
        bool done;
} PartsMsg;

typedef struct PartsState {
        ImapSession *session;
        PartsMsg *msgs; /* the chunk, ascending UIDs */
        size_t n;
        size_t max_part;
        size_t max_whole;
        size_t budget;  /* per message */
        uint32_t settled;
        ImapFetchFunc cb;
        void *userdata;
        int r;
        /* "first:*" read without a SEARCH first (a small folder): msgs grows as answers come. */
        bool open_ended;
        size_t capacity;
        uint32_t first_uid;
        const uint32_t *skip;  /* ascending: not to be read */
        size_t n_skip;
        bool overflow;         /* more answers than room */
        bool labels;           /* Gmail: X-GM-LABELS asked for with the structures */
        bool defer;            /* may leave HTML alternatives out (step 3 above) */
        size_t kept;           /* bytes in msgs[].kept */
        uint32_t last;         /* the highest UID a chunk held */
        /* What the answers said (parts_result()). */
        bool refused;
        char *refusal;
        char *slow_down;       /* a refusal that asks us to slow down */
        int unselected;        /* the EXAMINE before them refused: -ENOENT or -ESTALE */
} PartsState;

static void parts_done(PartsState *st) {
        free(TAKE_PTR(st->slow_down));
        free(TAKE_PTR(st->refusal));
        for (size_t i = 0; i < st->n; i++) {
                free(st->msgs[i].plan);
                free(st->msgs[i].key);
                free(st->msgs[i].key_all);
                free(st->msgs[i].kept);
                free(st->msgs[i].holes);
                strv_free(st->msgs[i].labels);
        }
        free(st->msgs);
        st->msgs = NULL;
        st->n = 0;
        st->kept = 0;
}

static PartsMsg *parts_find(PartsState *st, uint32_t uid) {
        size_t lo = 0, hi = st->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (st->msgs[mid].uid == uid)
                        return &st->msgs[mid];
                if (st->msgs[mid].uid < uid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static uint32_t msg_att_uid(const struct mailimap_msg_att *ma) {
        for (clistiter *j = clist_begin(ma->att_list); j; j = clist_next(j)) {
                const struct mailimap_msg_att_item *item = clist_content(j);
                if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
                    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_UID)
                        return item->att_data.att_static->att_data.att_uid;
        }
        return 0;
}

/* Gmail's X-GM-LABELS of a FETCH answer: each label decoded from modified UTF-7, the system
 * labels named as Gmail shows them (\Inbox: "INBOX", \Important: "Important"), control
 * characters replaced by '?' (a label is the server's text). NULL when there are none. */
static int msg_att_labels(const struct mailimap_msg_att *ma, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        *ret = NULL;
        for (clistiter *j = clist_begin(ma->att_list); j; j = clist_next(j)) {
                const struct mailimap_msg_att_item *item = clist_content(j);
                const struct mailimap_msg_att_xgmlabels *x;

                if (item->att_type != MAILIMAP_MSG_ATT_ITEM_EXTENSION || !item->att_data.att_extension_data ||
                    item->att_data.att_extension_data->ext_extension != &mailimap_extension_xgmlabels ||
                    !(x = item->att_data.att_extension_data->ext_data) || !x->att_labels)
                        continue;
                for (clistiter *k = clist_begin(x->att_labels); k; k = clist_next(k)) {
                        const char *raw = clist_content(k);
                        char *label;

                        if (!raw || !*raw)
                                continue;
                        if (strcaseeq(raw, "\\Inbox"))
                                label = strdup("INBOX");
                        else
                                label = imap_utf7_decode(raw[0] == '\\' ? raw + 1 : raw);
                        if (!label)
                                return -ENOMEM;
                        for (char *c = label; *c; c++)
                                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                        *c = '?';
                        r = strv_consume(&l, label);
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* Phase 1: a message's structure becomes its plan and key. */
static void on_structure(struct mailimap_msg_att *ma, void *userdata) {
        PartsState *st = userdata;
        const struct mailimap_body *body = NULL;
        uint32_t uid = msg_att_uid(ma), size = 0;
        PartsMsg *m = st->r < 0 ? NULL : parts_find(st, uid);
        int r;

        /* "n:*" also matches the highest UID below n (RFC 3501 §6.4.8): not ours. */
        if (!m && st->open_ended && st->r >= 0 && uid >= st->first_uid && uid > 0 &&
            !(st->n_skip > 0 && bsearch(&uid, st->skip, st->n_skip, sizeof(uint32_t), cmp_u32))) {
                if (st->n < st->capacity) {
                        /* Kept in UID order (servers answer in it: the move is rare). */
                        size_t at = st->n;
                        while (at > 0 && st->msgs[at - 1].uid > uid)
                                at--;
                        memmove(&st->msgs[at + 1], &st->msgs[at], (st->n - at) * sizeof(PartsMsg));
                        st->n++;
                        m = &st->msgs[at];
                        *m = (PartsMsg) { .uid = uid };
                } else
                        st->overflow = true;
        }

        if (!m || m->plan)
                goto next;
        for (clistiter *j = clist_begin(ma->att_list); j; j = clist_next(j)) {
                const struct mailimap_msg_att_item *item = clist_content(j);
                if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
                        continue;
                const struct mailimap_msg_att_static *a = item->att_data.att_static;
                if (a->att_type == MAILIMAP_MSG_ATT_BODYSTRUCTURE)
                        body = a->att_data.att_bodystructure;
                else if (a->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE)
                        size = a->att_data.att_rfc822_size;
        }
        m->full_size = size;
        if (st->labels && !m->labels && msg_att_labels(ma, &m->labels) < 0) {
                st->r = -ENOMEM;
                goto next;
        }
        if (!body)
                goto next; /* read whole */
        PlanBuilder p = { .max_part = st->max_part };
        r = plan_walk(body, "", true, &p, 0);
        if (r >= 0 && (strbuf_ensure(&p.plan) < 0 || strbuf_ensure(&p.key) < 0 || strbuf_ensure(&p.key_all) < 0))
                r = -ENOMEM;
        /* Little besides its text (a plain mail, a short HTML one): whole is as cheap, and
         * saves the MIME headers' framing. */
        if (r >= 0 && size <= p.requested + WHOLE_SLACK && size <= st->max_whole)
                r = -EOPNOTSUPP;
        if (r >= 0) {
                m->key = strbuf_take(&p.key, NULL);
                m->left_out = p.n_left_out > 0;
                m->key_all = m->left_out ? strbuf_take(&p.key_all, NULL) : NULL;
                m->plan = strbuf_take(&p.plan, &m->plan_len);
        }
        strbuf_done(&p.plan);
        strbuf_done(&p.key);
        strbuf_done(&p.key_all);
        if (r == -ENOMEM)
                st->r = r;
next:
        budget_reset(st->session, st->budget);
}

static const struct mailimap_msg_att_body_section *msg_att_section(const struct mailimap_msg_att *ma, const char *name) {
        for (clistiter *j = clist_begin(ma->att_list); j; j = clist_next(j)) {
                const struct mailimap_msg_att_item *item = clist_content(j);
                char n[256];
                if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC ||
                    item->att_data.att_static->att_type != MAILIMAP_MSG_ATT_BODY_SECTION ||
                    !item->att_data.att_static->att_data.att_body_section)
                        continue;
                const struct mailimap_msg_att_body_section *bs = item->att_data.att_static->att_data.att_body_section;
                section_name(bs->sec_section, n, sizeof n); /* BODY[]: NULL section, "" */
                if (streq(n, name))
                        return bs;
        }
        return NULL;
}

/* A message written back from its plan and the sections that came, a left-out one empty unless
 * m->all; where a left-out one would go is added to holes: its offset, then its name. */
static int write_back(const PartsMsg *m, struct mailimap_msg_att *ma, StrBuf *out, StrBuf *holes) {
        for (size_t i = 0; i < m->plan_len;) {
                const char *z = memchr(m->plan + i, 0, m->plan_len - i);
                size_t lit = z ? (size_t) (z - (m->plan + i)) : m->plan_len - i;
                if (strbuf_append(out, m->plan + i, lit) < 0)
                        return -ENOMEM;
                i += lit;
                if (i >= m->plan_len)
                        break;
                const char *name = m->plan + i + 1;
                i += strlen(name) + 2;
                if (*name == '?' && !m->all) {
                        /* Left out: an empty body. */
                        if (strbuf_append(holes, &out->len, sizeof(size_t)) < 0 ||
                            strbuf_append(holes, name + 1, strlen(name)) < 0)
                                return -ENOMEM;
                        continue;
                }
                const struct mailimap_msg_att_body_section *bs = msg_att_section(ma, name + (*name == '?'));
                if (bs && bs->sec_body_part && strbuf_append(out, bs->sec_body_part, bs->sec_length) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The second read of a message kept from the first: the left-out sections put in their holes. */
static int write_back_kept(const PartsMsg *m, struct mailimap_msg_att *ma, StrBuf *out) {
        size_t from = 0;

        for (size_t i = 0; i + sizeof(size_t) < m->holes_len;) {
                size_t at;
                memcpy(&at, m->holes + i, sizeof(size_t));
                const char *name = m->holes + i + sizeof(size_t);
                i += sizeof(size_t) + strlen(name) + 1;
                const struct mailimap_msg_att_body_section *bs = msg_att_section(ma, name);
                if (strbuf_append(out, m->kept + from, at - from) < 0 ||
                    (bs && bs->sec_body_part && strbuf_append(out, bs->sec_body_part, bs->sec_length) < 0))
                        return -ENOMEM;
                from = at;
        }
        return strbuf_append(out, m->kept + from, m->kept_len - from) < 0 ? -ENOMEM : 0;
}

static size_t kept_max(void) {
#ifdef ALCODE_TEST_HOOKS
        /* A test's way to the other path: the whole text read again. */
        const char *e = getenv("ALCODE_TEST_KEPT_MAX");
        if (e)
                return (size_t) strtoull(e, NULL, 10);
#endif
        return KEPT_MAX;
}

/* Keeps what the first read of m gave (out, holes: write_back()), so that the second asks for
 * the left-out sections only. */
static int parts_keep(PartsState *st, PartsMsg *m, StrBuf *out, StrBuf *holes) {
        _cleanup_strbuf_ StrBuf key = STRBUF_INIT(0);

        for (size_t i = 0; i + sizeof(size_t) < holes->len;) {
                const char *name = holes->data + i + sizeof(size_t);
                if (key_add(&key, name) < 0)
                        return -ENOMEM;
                i += sizeof(size_t) + strlen(name) + 1;
        }
        if (strbuf_ensure(&key) < 0 || strbuf_ensure(holes) < 0)
                return -ENOMEM;
        st->kept += out->len;
        free(m->key);
        m->key = strbuf_take(&key, NULL);
        m->kept = strbuf_take(out, &m->kept_len);
        m->holes = strbuf_take(holes, &m->holes_len);
        m->all = true;
        return 0;
}

/* Phase 2: a message's sections came; write it back and hand it over. */
static void on_sections(struct mailimap_msg_att *ma, void *userdata) {
        PartsState *st = userdata;
        _cleanup_strbuf_ StrBuf out = STRBUF_INIT(0), holes = STRBUF_INIT(0);
        PartsMsg *m = st->r < 0 ? NULL : parts_find(st, msg_att_uid(ma));
        ImapMessage msg;
        int r = 0;

        if (!m || m->done)
                goto next; /* not ours (an unsolicited FETCH), or already handed over */
        if (!m->plan) {
                const struct mailimap_msg_att_body_section *bs = msg_att_section(ma, "");
                if (!bs)
                        goto next;
                if (st->labels && !m->labels && msg_att_labels(ma, &m->labels) < 0) {
                        st->r = -ENOMEM;
                        goto next;
                }
                msg = (ImapMessage) { .uid = m->uid, .data = bs->sec_body_part ?: "", .size = bs->sec_length,
                                      .full_size = m->full_size, .settled = st->settled, .labels = m->labels };
                msg.truncated = msg.full_size > msg.size;
        } else {
                r = m->kept ? write_back_kept(m, ma, &out) : write_back(m, ma, &out, &holes);
                if (r >= 0)
                        r = strbuf_ensure(&out);
                if (r < 0) {
                        st->r = -ENOMEM;
                        goto next;
                }
                msg = (ImapMessage) { .uid = m->uid, .data = out.data, .size = out.len, .full_size = m->full_size,
                                      .settled = st->settled, .labels = m->labels,
                                      .alternatives_left_out = m->left_out && !m->all };
        }
        m->done = true;
        st->r = st->cb(&msg, st->userdata);
        if (st->r == IMAP_FETCH_AGAIN && msg.alternatives_left_out) {
                /* Read again with what was left out (parts_chunk()): only that, when what
                 * came now can be kept. */
                m->again = true;
                m->done = false;
                st->r = st->kept + out.len > kept_max() ? 0 : parts_keep(st, m, &out, &holes);
        } else if (st->r == IMAP_FETCH_AGAIN)
                st->r = -EINVAL; /* nothing was left out: it cannot be read again */
next:
        budget_reset(st->session, st->budget);
}

/* One FETCH of a pipeline: its messages go to handler with ps; examine: the folder opened
 * first, in the same flush (its UIDVALIDITY must be uidvalidity, its state goes to *st). */
typedef struct FetchCmd {
        struct mailimap_set *set;
        struct mailimap_fetch_type *ft;
        mailimap_msg_att_handler *handler;
        PartsState *ps;
        const char *examine;
        uint32_t uidvalidity;
        ImapFolderState *st;
} FetchCmd;

static int cmd_send(ImapSession *s, const FetchCmd *c) {
        int r = MAILIMAP_NO_ERROR;

        if (c->examine) {
                r = mailimap_send_current_tag(s->imap);
                if (r == MAILIMAP_NO_ERROR)
                        r = mailimap_examine_send(s->imap->imap_stream, c->examine, mailimap_has_condstore(s->imap) ? 1 : 0);
                if (r == MAILIMAP_NO_ERROR)
                        r = mailimap_crlf_send(s->imap->imap_stream);
                if (r != MAILIMAP_NO_ERROR)
                        return r;
                s->ahead_tag = s->imap->imap_tag;
        }
        r = mailimap_send_current_tag(s->imap);
        if (r == MAILIMAP_NO_ERROR)
                r = mailimap_uid_fetch_send(s->imap->imap_stream, c->set, c->ft);
        if (r == MAILIMAP_NO_ERROR)
                r = mailimap_crlf_send(s->imap->imap_stream);
        return r;
}

/* Reads the answer to one FETCH, its messages going to the command's handler. */
static int cmd_read(ImapSession *s, const FetchCmd *c, int tag) {
        struct mailimap_response *resp = NULL;
        int r;

        mailimap_set_msg_att_handler(s->imap, c->handler, c->ps);
        s->imap->imap_tag = tag;
        budget_reset(s, c->ps->budget);
        r = mailimap_read_line(s->imap) ? mailimap_parse_response(s->imap, &resp) : MAILIMAP_ERROR_STREAM;
        mailimap_set_msg_att_handler(s->imap, NULL, NULL);
        if (s->imap->imap_response_info && s->imap->imap_response_info->rsp_fetch_list) {
                mailimap_fetch_list_free(s->imap->imap_response_info->rsp_fetch_list);
                s->imap->imap_response_info->rsp_fetch_list = NULL;
        }
        if (r != MAILIMAP_NO_ERROR)
                return r;
        if (!tagged_ok(resp)) {
                /* Refused (NO, BAD): the other answers are read all the same. */
                c->ps->refused = true;
                if (throttled(s) && !c->ps->slow_down)
                        c->ps->slow_down = strdup(strna(s->imap->imap_response));
                if (!c->ps->refusal)
                        c->ps->refusal = strdup(strna(s->imap->imap_response));
        }
        mailimap_response_free(resp);
        return MAILIMAP_NO_ERROR;
}

/* Sends the k commands at once (an EXAMINE sent ahead before them answers first), then reads
 * their answers in turn. A refused EXAMINE or FETCH is its command's PartsState's (ps->r,
 * ps->refused); the result is an error for the connection only. */
static int fetch_cmds(ImapSession *s, FetchCmd *c, size_t k) {
        int tag0, r = MAILIMAP_NO_ERROR;
        _cleanup_free_ int *tags = calloc(k, 2 * sizeof(int));

        if (!tags)
                return -ENOMEM;
        for (size_t i = 0; i < k && r == MAILIMAP_NO_ERROR; i++) {
                tag0 = s->imap->imap_tag;
                r = cmd_send(s, &c[i]);
                tags[2 * i] = c[i].examine ? tag0 + 1 : 0;
                tags[2 * i + 1] = s->imap->imap_tag;
        }
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "UID FETCH");
        tag0 = s->imap->imap_tag;
        if (mailstream_flush(s->imap->imap_stream) == -1)
                return session_error(s, MAILIMAP_ERROR_STREAM, "UID FETCH");
        for (size_t i = 0; i < k; i++) {
                int ahead = 0;

                if (c[i].examine) {
                        s->ahead = true;
                        s->ahead_tag = tags[2 * i];
                        s->ahead_uidvalidity = c[i].uidvalidity;
                        s->ahead_ret = c[i].st;
                }
                /* The EXAMINE first. Refused or another UIDVALIDITY: no message of this
                 * command's answer is ours, but it is read all the same. */
                if (s->ahead)
                        ahead = ahead_read(s);
                if (ahead < 0 && s->broken)
                        return ahead;
                if (ahead < 0 && c[i].ps->r >= 0)
                        c[i].ps->r = ahead;
                if (ahead < 0)
                        c[i].ps->unselected = ahead;
                r = cmd_read(s, &c[i], tags[2 * i + 1]);
                if (r != MAILIMAP_NO_ERROR) {
                        s->imap->imap_tag = tag0;
                        return session_error(s, r, "UID FETCH");
                }
        }
        s->imap->imap_tag = tag0;
        return 0;
}

/* What the answers of one PartsState's commands come to: its callback's error, a refused EXAMINE
 * (-ENOENT, -ESTALE), the server asking us to slow down (-EBUSY), or a refused FETCH (-EREMOTEIO). */
static int parts_result(ImapSession *s, PartsState *st) {
        int r = st->unselected < 0 ? st->unselected : st->r;

        if (r >= 0 && st->refused && st->slow_down)
                r = throttled_error(s, st->slow_down);
        else if (r >= 0 && st->refused) {
                free(s->error);
                if (asprintf(&s->error, "UID FETCH refused: %s", strna(st->refusal)) < 0)
                        s->error = NULL;
                r = -EREMOTEIO;
        }
        st->refused = false;
        st->unselected = 0;
        free(TAKE_PTR(st->slow_down));
        free(TAKE_PTR(st->refusal));
        return r;
}

static struct mailimap_fetch_type *parts_fetch_type(const PartsMsg *m, size_t max_part, size_t max_whole, bool labels) {
        struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
        _cleanup_free_ char *key = NULL;
        char *save = NULL;

        if (!ft || mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid()) != MAILIMAP_NO_ERROR)
                goto oom;
        if (!m->plan) {
                if (mailimap_fetch_type_new_fetch_att_list_add(
                            ft, mailimap_fetch_att_new_body_peek_section_partial(
                                        mailimap_section_new(NULL), 0, (uint32_t) MIN(max_whole, (size_t) UINT32_MAX))) !=
                    MAILIMAP_NO_ERROR)
                        goto oom;
                /* Read whole, maybe without its structure (refused): the labels come with it. */
                if (labels && mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_xgmlabels()) !=
                                      MAILIMAP_NO_ERROR)
                        goto oom;
                return ft;
        }
        key = strdup(m->key);
        if (!key)
                goto oom;
        for (char *name = strtok_r(key, " ", &save); name; name = strtok_r(NULL, " ", &save)) {
                struct mailimap_section *sec = section_from_name(name);
                /* Headers whole; bodies up to max_part (BODY.PEEK: \Seen untouched). */
                bool body_part = !endswith(name, "MIME") && !endswith(name, "HEADER");
                if (!sec || mailimap_fetch_type_new_fetch_att_list_add(
                                    ft, body_part ? mailimap_fetch_att_new_body_peek_section_partial(sec, 0, (uint32_t) max_part)
                                                  : mailimap_fetch_att_new_body_peek_section(sec)) != MAILIMAP_NO_ERROR)
                        goto oom;
        }
        return ft;
oom:
        if (ft)
                mailimap_fetch_type_free(ft);
        return NULL;
}

static int cmp_key(const void *a, const void *b) {
        const PartsMsg *x = *(const PartsMsg *const *) a, *y = *(const PartsMsg *const *) b;
        int c = strcmp(x->key ?: "", y->key ?: "");
        return c ? c : (x->uid > y->uid) - (x->uid < y->uid);
}

/* A chunk's messages (the UIDs given, or none yet when uids is NULL: what "first_uid:*" brings,
 * up to n), and the FETCH of their structures in *c. */
static int chunk_begin(PartsState *st, const uint32_t *uids, size_t n, FetchCmd *c) {
        size_t used;

        assert(n <= 2 * PARTS_CHUNK);
        *c = (FetchCmd) { .handler = on_structure, .ps = st };
        st->msgs = calloc(MAX(n, 1u), sizeof(PartsMsg));
        if (!st->msgs)
                return -ENOMEM;
        st->open_ended = !uids;
        st->capacity = n;
        for (size_t i = 0; uids && i < n; i++)
                st->msgs[i].uid = uids[i];
        st->n = uids ? n : 0;
        st->budget = IMAP_RESPONSE_LARGE;
        c->ft = mailimap_fetch_type_new_fetch_att_list_empty();
        if (!c->ft || mailimap_fetch_type_new_fetch_att_list_add(c->ft, mailimap_fetch_att_new_uid()) != MAILIMAP_NO_ERROR ||
            mailimap_fetch_type_new_fetch_att_list_add(c->ft, mailimap_fetch_att_new_rfc822_size()) != MAILIMAP_NO_ERROR ||
            mailimap_fetch_type_new_fetch_att_list_add(c->ft, mailimap_fetch_att_new_bodystructure()) != MAILIMAP_NO_ERROR ||
            /* Gmail: the labels, where the code was seen (one folder, All Mail, holds them all). */
            (st->labels && mailimap_fetch_type_new_fetch_att_list_add(c->ft, mailimap_fetch_att_new_xgmlabels()) != MAILIMAP_NO_ERROR) ||
            !(c->set = uids ? set_from_uids(uids, n, &used) : mailimap_set_new_interval(st->first_uid, 0)))
                return -ENOMEM;
        return 0;
}

/* What the structures answered: BODYSTRUCTURE refused (-EREMOTEIO) means whole messages, on
 * this session and after. */
static int chunk_structures(PartsState *st, int r) {
        if (r != -EREMOTEIO)
                return r;
        st->session->no_structure = true;
        for (size_t i = 0; i < st->n; i++) {
                free(TAKE_PTR(st->msgs[i].plan));
                free(TAKE_PTR(st->msgs[i].key));
                free(TAKE_PTR(st->msgs[i].key_all));
                st->msgs[i].left_out = false;
        }
        return 0;
}

static void cmds_free(FetchCmd *c, size_t k) {
        for (size_t i = 0; c && i < k; i++) {
                if (c[i].ft)
                        mailimap_fetch_type_free(c[i].ft);
                if (c[i].set)
                        mailimap_set_free(c[i].set);
        }
        free(c);
}

/* From now on, message m is read with what was left out of it. */
static void parts_msg_all(PartsMsg *m) {
        if (!m->left_out || m->all)
                return;
        free(m->key);
        m->key = TAKE_PTR(m->key_all);
        m->all = true;
}

/* Then the sections, one FETCH per shape (most messages share theirs with many others): *ret
 * (*ret_k of them) to cmds_free(). again: only the messages that want what was left out. */
static int chunk_sections(PartsState *st, bool again, FetchCmd **ret, size_t *ret_k) {
        size_t n = 0, k = 0, used;
        _cleanup_free_ PartsMsg **order = calloc(MAX(st->n, 1u), sizeof(PartsMsg *));
        _cleanup_free_ uint32_t *group = calloc(MAX(st->n, 1u), sizeof(uint32_t));
        FetchCmd *c = calloc(MAX(st->n, 1u), sizeof(FetchCmd));

        *ret = c;
        *ret_k = 0;
        if (!order || !group || !c)
                return -ENOMEM;
        for (size_t i = 0; i < st->n; i++) {
                PartsMsg *m = &st->msgs[i];
                if (again && !m->again)
                        continue;
                /* All of it: read again, or nothing is left out (the first look; a few
                 * messages, new mail, where the round trip costs more than the bytes). */
                if (again || !st->defer || st->n < DEFER_MIN)
                        parts_msg_all(m);
                m->again = false;
                order[n++] = m;
        }
        qsort(order, n, sizeof(PartsMsg *), cmp_key);
        for (size_t i = 0; i < n;) {
                size_t j = i, g = 0;
                while (j < n && streq(order[j]->key ?: "", order[i]->key ?: ""))
                        group[g++] = order[j++]->uid;
                c[k] = (FetchCmd) { .handler = on_sections, .ps = st };
                c[k].ft = parts_fetch_type(order[i], st->max_part, st->max_whole, st->labels);
                c[k].set = c[k].ft ? set_from_uids(group, g, &used) : NULL;
                *ret_k = ++k;
                if (!c[k - 1].set)
                        return -ENOMEM;
                i = j;
        }
        st->budget = MAX(st->max_whole, (size_t) TEXTS_MAX_BYTES) + IMAP_RESPONSE_MAX;
        return 0;
}

/* Sends the commands in waves and reads their answers: commands the server has not read yet
 * must fit in the sockets' buffers, or both sides would wait for the other to read. */
static int fetch_waves(ImapSession *s, FetchCmd *c, size_t k) {
        int r = 0;

        for (size_t i = 0; i < k && r >= 0; i += PIPELINE_MAX)
                r = fetch_cmds(s, c + i, MIN(k - i, (size_t) PIPELINE_MAX));
        return r;
}

static void chunk_end(PartsState *st) {
        if (st->n > 0)
                st->last = MAX(st->last, st->msgs[st->n - 1].uid);
        parts_done(st);
}

/* The sections of a chunk's messages (again: of those that want what was left out). */
static int chunk_read_sections(PartsState *st, bool again) {
        FetchCmd *c = NULL;
        size_t k = 0;
        int r;

        r = chunk_sections(st, again, &c, &k);
        if (r >= 0)
                r = fetch_waves(st->session, c, k);
        if (r >= 0)
                r = parts_result(st->session, st);
        cmds_free(c, k);
        return r == -EREMOTEIO ? -EPROTO : r; /* a message the server cannot give: as imap_fetch() says it */
}

static bool chunk_wants_again(const PartsState *st) {
        for (size_t i = 0; i < st->n; i++)
                if (st->msgs[i].again)
                        return true;
        return false;
}

/* One chunk: the UIDs given, or (uids NULL) what "first_uid:*" brings, up to n messages. */
static int parts_chunk(PartsState *st, const uint32_t *uids, size_t n) {
        ImapSession *s = st->session;
        FetchCmd structure = {};
        int r;

        r = chunk_begin(st, uids, n, &structure);
        if (r >= 0 && !s->no_structure) {
                r = fetch_cmds(s, &structure, 1);
                r = chunk_structures(st, r < 0 ? r : parts_result(s, st));
        }
        if (r >= 0 && !uids && s->no_structure)
                r = -EREMOTEIO; /* the caller lists the UIDs with SEARCH instead */
        else if (r >= 0) {
                r = chunk_read_sections(st, false);
                if (r >= 0 && chunk_wants_again(st))
                        r = chunk_read_sections(st, true);
        }
        if (structure.ft)
                mailimap_fetch_type_free(structure.ft);
        if (structure.set)
                mailimap_set_free(structure.set);
        chunk_end(st);
        return r;
}

static int fetch_parts(ImapSession *s, const uint32_t *uids, size_t n, uint32_t first_uid, const uint32_t *skip,
                       size_t n_skip, size_t max_part, size_t max_whole, ImapFetchFunc cb, void *userdata) {
        _cleanup_free_ uint32_t *found = NULL;
        PartsState st = { .session = s, .max_part = max_part, .max_whole = max_whole, .cb = cb,
                          .userdata = userdata, .settled = first_uid > 0 ? first_uid - 1 : 0,
                          .first_uid = first_uid, .skip = skip, .n_skip = n_skip,
                          .labels = imap_has_capability(s, "X-GM-EXT-1"), .defer = true };
        size_t done = 0;
        int r;

        r = session_check_ahead(s);
        if (r < 0)
                return r;
        if (n == 0 && first_uid == 0)
                return 0;
        if (n == 0 && !s->no_structure &&
            (s->ahead ? s->ahead_ret->exists
                      : s->imap->imap_selection_info ? s->imap->imap_selection_info->sel_exists : UINT32_MAX) <= PARTS_CHUNK) {
                /* A small folder: its structures straight away, no SEARCH (one round trip
                 * less). Room for twice what EXAMINE counted; mail arriving beyond it waits
                 * for the next round. */
                r = parts_chunk(&st, NULL, 2 * PARTS_CHUNK);
                if (r >= 0 && st.overflow) {
                        /* Nothing is settled: the caller drops what it got and reads again. */
                        free(s->error);
                        s->error = strdup("the folder grew by more than 1,000 messages while it was read");
                        return -EAGAIN;
                }
                if (r != -EREMOTEIO) {
                        if (r < 0)
                                return r;
                        return cb(&(ImapMessage) { .data = "", .settled = MAX(st.settled, st.last) }, userdata);
                }
        }
        if (n == 0) {
                size_t k = 0;
                r = imap_search(s, first_uid, 0, &found, &n);
                if (r < 0)
                        return r;
                for (size_t i = 0, j = 0; i < n; i++) {
                        while (j < n_skip && skip[j] < found[i])
                                j++;
                        if (j >= n_skip || skip[j] != found[i])
                                found[k++] = found[i];
                }
                n = k;
                uids = found;
        }
        while (done < n && uids[done] < first_uid)
                done++;
        while (done < n) {
                size_t k = MIN(n - done, (size_t) PARTS_CHUNK);
                r = parts_chunk(&st, uids + done, k);
                if (r < 0)
                        return r;
                done += k;
                st.settled = uids[done - 1];
                /* Every UID of the chunk is done (handed over, or gone from the server). */
                r = cb(&(ImapMessage) { .data = "", .settled = st.settled }, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

int imap_fetch_parts(ImapSession *s, const uint32_t *uids, size_t n, uint32_t first_uid, const uint32_t *skip,
                     size_t n_skip, size_t max_part, size_t max_whole, ImapFetchFunc cb, void *userdata) {
        int r = fetch_parts(s, uids, n, first_uid, skip, n_skip, max_part, max_whole, cb, userdata);

        /* Nothing was asked after an EXAMINE sent ahead: its answer all the same. */
        if (r >= 0 && s->ahead)
                r = session_check(s);
        return r;
}

int imap_fetch_parts_folders(ImapSession *s, ImapPartsJob *jobs, size_t n, size_t max_part, size_t max_whole) {
        _cleanup_free_ PartsState *st = NULL;
        _cleanup_free_ FetchCmd *c = NULL;
        FetchCmd *all = NULL;
        size_t k = 0, n_all = 0;
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        for (size_t j = 0; j < n; j++) {
                if (jobs[j].n > IMAP_PARTS_JOB_MAX || jobs[j].n == 0)
                        return -EINVAL;
                jobs[j].r = 0;
        }
        st = calloc(MAX(n, 1u), sizeof(PartsState));
        c = calloc(MAX(n, 1u), sizeof(FetchCmd));
        if (!st || !c)
                return -ENOMEM;
        /* 1: every folder's EXAMINE and structures, at once. */
        for (size_t j = 0; j < n && r >= 0; j++) {
                st[j] = (PartsState) { .session = s, .max_part = max_part, .max_whole = max_whole, .cb = jobs[j].cb,
                                       .userdata = jobs[j].userdata, .first_uid = 1,
                                       .labels = imap_has_capability(s, "X-GM-EXT-1") };
                r = chunk_begin(&st[j], jobs[j].uids, jobs[j].n, &c[j]);
                c[j].examine = jobs[j].folder;
                c[j].uidvalidity = jobs[j].uidvalidity;
                c[j].st = jobs[j].st;
                k = j + 1;
        }
        if (r >= 0 && !s->no_structure) {
                r = fetch_waves(s, c, k);
                for (size_t j = 0; j < n && r >= 0; j++)
                        jobs[j].r = chunk_structures(&st[j], parts_result(s, &st[j]));
        }
        /* 2: every folder's sections, each folder's EXAMINE before its first. */
        for (size_t j = 0; j < n && r >= 0; j++) {
                FetchCmd *l = NULL, *m;
                size_t q = 0;

                if (jobs[j].r < 0)
                        continue;
                r = chunk_sections(&st[j], false, &l, &q);
                m = r >= 0 ? reallocarray(all, n_all + q, sizeof(FetchCmd)) : NULL;
                if (!m) {
                        cmds_free(l, q);
                        r = -ENOMEM;
                        break;
                }
                all = m;
                memcpy(all + n_all, l, q * sizeof(FetchCmd));
                free(l);
                all[n_all] = (FetchCmd) { .set = all[n_all].set, .ft = all[n_all].ft, .handler = on_sections, .ps = &st[j],
                                          .examine = jobs[j].folder, .uidvalidity = jobs[j].uidvalidity,
                                          .st = jobs[j].st };
                n_all += q;
        }
        if (r >= 0)
                r = fetch_waves(s, all, n_all);
        for (size_t j = 0; j < n && r >= 0; j++) {
                if (jobs[j].r < 0)
                        continue;
                jobs[j].r = parts_result(s, &st[j]);
                if (jobs[j].r == -EREMOTEIO)
                        jobs[j].r = -EPROTO;
                if (jobs[j].r >= 0 && st[j].n > 0)
                        /* Every UID asked for is done (handed over, or gone from the server). */
                        jobs[j].r = jobs[j].cb(&(ImapMessage) { .data = "", .settled = jobs[j].uids[jobs[j].n - 1] },
                                               jobs[j].userdata);
        }
        cmds_free(all, n_all);
        for (size_t j = 0; j < k; j++)
                chunk_end(&st[j]);
        cmds_free(TAKE_PTR(c), k);
        return r;
}

/* ---- IDLE (RFC 2177) ---- */

int imap_idle_start(ImapSession *s, int *ret_fd) {
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        r = mailimap_idle(s->imap);
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "IDLE");
        s->idling = true;
        *ret_fd = mailimap_idle_get_fd(s->imap);
        return *ret_fd >= 0 ? 0 : -EBADF;
}

bool imap_idle_pending(ImapSession *s) {
        /* The server may send "+ idling" and "* 3 EXISTS" in one segment: libetpan then holds
         * the EXISTS in its buffer and poll() on the socket never fires. */
        return s->imap->imap_stream && s->imap->imap_stream->read_buffer_len > 0;
}

int imap_idle_read(ImapSession *s) {
        MMAPString *line;
        int news = 0;

        if (!s->idling || !s->imap->imap_stream)
                return -ENOTCONN;
        line = mmap_string_new("");
        if (!line)
                return -ENOMEM;
        /* One line at least (the fd was readable), then whatever else is already buffered. */
        do {
                const char *l = mailstream_read_line_remove_eol(s->imap->imap_stream, line);
                if (!l) {
                        mmap_string_free(line);
                        return session_error(s, MAILIMAP_ERROR_STREAM, "IDLE");
                }
                if (!startswith(l, "* OK"))
                        news = 1; /* what it was does not matter: the folder is read again */
        } while (!news && imap_idle_pending(s));
        mmap_string_free(line);
        /* "* OK [NOTIFICATIONOVERFLOW]" starts like a keep-alive but is not one. */
        return news || s->notify.all;
}

int imap_idle_done(ImapSession *s) {
        int r;

        if (!s->idling)
                return 0;
        s->idling = false;
        r = session_check(s);
        if (r < 0)
                return r;
        r = mailimap_idle_done(s->imap);
        return r == MAILIMAP_NO_ERROR ? 0 : session_error(s, r, "IDLE DONE");
}

/* ---- NOTIFY (RFC 5465) ---- */

bool imap_has_notify(ImapSession *s) {
        return imap_has_capability(s, "NOTIFY");
}

/* A mailbox name as an IMAP astring: an atom when it can be one, else a quoted string; a name
 * that would need a literal (CR, LF, NUL, 8-bit) returns -EINVAL. */
static int put_mailbox(StrBuf *b, const char *name) {
        bool atom = *name != 0;
        int r;

        for (const char *p = name; *p; p++) {
                unsigned char c = (unsigned char) *p;
                if (c < 0x20 || c >= 0x7f)
                        return -EINVAL;
                if (strchr("(){ %*\"\\]", c))
                        atom = false;
        }
        if (atom)
                return strbuf_puts(b, name);
        r = strbuf_putc(b, '"');
        for (const char *p = name; *p && r >= 0; p++) {
                if (strchr("\"\\", *p))
                        r = strbuf_putc(b, '\\');
                if (r >= 0)
                        r = strbuf_putc(b, *p);
        }
        return r < 0 ? r : strbuf_putc(b, '"');
}

/* Sends one command (without its tag and CRLF) and reads its answer; *ret_ok: tagged OK. */
static int notify_command(ImapSession *s, const char *cmd, size_t len, bool *ret_ok) {
        struct mailimap_response *resp = NULL;
        int r;

        r = mailimap_send_current_tag(s->imap);
        if (r == MAILIMAP_NO_ERROR && mailstream_write(s->imap->imap_stream, cmd, len) != (ssize_t) len)
                r = MAILIMAP_ERROR_STREAM;
        if (r == MAILIMAP_NO_ERROR)
                r = mailimap_crlf_send(s->imap->imap_stream);
        if (r == MAILIMAP_NO_ERROR && mailstream_flush(s->imap->imap_stream) == -1)
                r = MAILIMAP_ERROR_STREAM;
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "NOTIFY");
        /* The tagged answer, after any untagged lines (libetpan reads until it). */
        if (!mailimap_read_line(s->imap))
                return session_error(s, MAILIMAP_ERROR_STREAM, "NOTIFY");
        r = mailimap_parse_response(s->imap, &resp);
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "NOTIFY");
        *ret_ok = tagged_ok(resp);
        mailimap_response_free(resp);
        return 0;
}

int imap_notify_set(ImapSession *s, char *const *folders, bool mailbox_names) {
        /* Under servers' line limits (dovecot: 64 kB); more folders than fit: no NOTIFY. */
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(60000);
        bool ok = false;
        int r;

        r = session_check(s);
        if (r < 0)
                return r;
        if (!imap_has_notify(s))
                return -EOPNOTSUPP;
        /* RFC 5465 §5: MessageNew and MessageExpunge go together. */
        r = strbuf_puts(&b, "NOTIFY SET (selected (MessageNew MessageExpunge)) (mailboxes (");
        for (size_t i = 0; folders && folders[i] && r >= 0; i++) {
                if (i > 0)
                        r = strbuf_putc(&b, ' ');
                if (r >= 0)
                        r = put_mailbox(&b, folders[i]);
        }
        /* MailboxName (a folder created, deleted or renamed) for the folders read and every
         * other of the user's: the new one is read and watched at once. */
        if (r >= 0)
                r = strbuf_puts(&b, mailbox_names ? ") (MessageNew MessageExpunge MailboxName)) (personal (MailboxName))"
                                                  : ") (MessageNew MessageExpunge))");
        if (r == -EINVAL || r == -E2BIG) {
                free(s->error);
                s->error = strdup(r == -EINVAL ? "NOTIFY: a folder name would need a literal"
                                               : "NOTIFY: too many folders for one command");
                return -EOPNOTSUPP;
        }
        if (r < 0)
                return r;
        /* dovecot 2.3 sends nothing more after a second NOTIFY SET on a session (the first
         * one's watches are dropped, the new ones never start): NOTIFY NONE first. */
        if (s->notifying) {
                r = notify_command(s, "NOTIFY NONE", strlen("NOTIFY NONE"), &ok);
                if (r < 0)
                        return r;
                s->notifying = false;
        }
        /* Only what the server says from now on counts (our own commands' answers before it
         * are no notifications). */
        imap_notify_scan_clear(&s->notify);
        r = notify_command(s, b.data, b.len, &ok);
        if (r < 0)
                return r;
        if (!ok) {
                free(s->error);
                if (asprintf(&s->error, "NOTIFY refused: %s", strna(s->imap->imap_response)) < 0)
                        s->error = NULL;
                return -EOPNOTSUPP;
        }
        s->notifying = true;
        return 0;
}

bool imap_notify_pending(ImapSession *s) {
        /* Names, not events: the answers to our own STATUS commands count as events too, and
         * imap_status() forgets their names. */
        return s->notify.n_names > 0 || s->notify.all || s->notify.folders_changed;
}

bool imap_notify_folders_changed(ImapSession *s) {
        return s->notify.folders_changed;
}

unsigned imap_throttled_take(ImapSession *s) {
        unsigned n = s->notify.throttled;

        s->notify.throttled = 0;
        return n;
}

bool imap_notify_take(ImapSession *s, char ***ret_names, bool *ret_all) {
        bool any = imap_notify_pending(s);

        *ret_all = s->notify.all;
        *ret_names = TAKE_PTR(s->notify.names);
        s->notify.n_names = 0;
        imap_notify_scan_clear(&s->notify);
        return any;
}


/* RFC 3501 §5.1.3: "&" starts modified BASE64 of UTF-16BE (',' for '/'), "-" ends it,
 * "&-" is "&". */
char *imap_utf7_decode(const char *name) {
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
        _cleanup_strbuf_ StrBuf b = STRBUF_INIT(4096);

        for (const char *p = name; *p; p++) {
                if (*p != '&') {
                        if (strbuf_putc(&b, *p) < 0)
                                return NULL;
                        continue;
                }
                if (p[1] == '-') {
                        if (strbuf_putc(&b, '&') < 0)
                                return NULL;
                        p++;
                        continue;
                }
                uint32_t bits = 0, high = 0;
                int nbits = 0;
                const char *q;
                for (q = p + 1; *q && *q != '-'; q++) {
                        const char *c = strchr(b64, *q);
                        if (!c || !*q)
                                return strdup(name); /* not modified UTF-7: show as is */
                        bits = (bits << 6) | (uint32_t) (c - b64);
                        nbits += 6;
                        if (nbits >= 16) {
                                uint32_t u = (bits >> (nbits - 16)) & 0xFFFF;
                                nbits -= 16;
                                if (u >= 0xD800 && u <= 0xDBFF)
                                        high = u;
                                else if (u >= 0xDC00 && u <= 0xDFFF && high) {
                                        if (strbuf_put_utf8(&b, 0x10000 + ((high - 0xD800) << 10) + (u - 0xDC00)) < 0)
                                                return NULL;
                                        high = 0;
                                } else if (strbuf_put_utf8(&b, u) < 0)
                                        return NULL;
                        }
                }
                if (!*q)
                        return strdup(name);
                p = q;
        }
        if (strbuf_ensure(&b) < 0)
                return NULL;
        return strbuf_take(&b, NULL);
}
