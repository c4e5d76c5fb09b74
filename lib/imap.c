/* libetpan IMAP, wrapped. libetpan 1.9.4 traps handled here (see ../shared/notes at the time
 * of writing, summarised in the comments where they bite):
 *  - it verifies no certificate: we check the chain after the handshake, before LOGIN;
 *  - SNI is only sent through the *_with_callback connect functions;
 *  - after STARTTLS its capability cache is stale: query again;
 *  - mailimap_free() sends LOGOUT and waits: on a broken stream close it first;
 *  - the parsed BODY[] section can be NULL; the literal belongs to the result list.
 *
 * libetpan result codes map to -errno here only: */
#include <arpa/inet.h>
#include <libetpan/libetpan.h>
#include <stdio.h>
#include <time.h>

#include "imap.h"
#include "secret.h"
#include "strbuf.h"
#include "tls-verify.h"

struct ImapSession {
        mailimap *imap;
        const Account *account; /* borrowed */
        char *error;
        bool broken;            /* the stream can no longer be trusted: no LOGOUT */
};

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
                return -ENOENT;
        default:
                return -EPROTO;
        }
}

static int session_error(ImapSession *s, int r, const char *what) {
        const char *resp = s->imap && s->imap->imap_response ? s->imap->imap_response : NULL;

        free(s->error);
        if (asprintf(&s->error, "%s failed%s%s", what, resp ? ": " : "", resp ? resp : "") < 0)
                s->error = NULL;
        r = errno_from_imap(r);
        /* Anything but a plain NO/BAD may have left the stream mid-response. */
        if (r != -ENOENT)
                s->broken = true;
        return r;
}

const char *imap_last_error(const ImapSession *s) {
        return s->error ?: "no error";
}

ImapSession *imap_session_free(ImapSession *s) {
        if (!s)
                return NULL;
        if (s->imap) {
                if (s->broken && s->imap->imap_stream) {
                        /* mailimap_free() would send LOGOUT and wait for the timeout. */
                        mailstream_close(s->imap->imap_stream);
                        s->imap->imap_stream = NULL;
                }
                mailimap_free(s->imap);
        }
        free(s->error);
        free(s);
        return NULL;
}

void imap_session_cancel(ImapSession *s) {
        if (s && s->imap && s->imap->imap_stream)
                mailstream_cancel(s->imap->imap_stream);
}

void imap_logout(ImapSession *s) {
        if (s && s->imap && s->imap->imap_stream && !s->broken)
                (void) mailimap_logout(s->imap);
}

bool imap_has_capability(ImapSession *s, const char *name) {
        return mailimap_has_extension(s->imap, (char *) name) != 0;
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
        return r == -ENOMEM ? r : -EPERM;
}

static int refresh_capabilities(ImapSession *s) {
        struct mailimap_capability_data *cap = NULL;
        int r = mailimap_capability(s->imap, &cap);

        if (cap)
                mailimap_capability_data_free(cap);
        return r == MAILIMAP_NO_ERROR ? 0 : session_error(s, r, "CAPABILITY");
}

static int login(ImapSession *s, char **ret_error) {
        const Account *a = s->account;
        _cleanup_erase_ char *secret = NULL;
        char *why = NULL;
        int r;

        r = secret_get(a, &secret, &why);
        if (r < 0) {
                if (asprintf(ret_error, "cannot get the password: %s", strna(why)) < 0)
                        *ret_error = NULL;
                free(why);
                return r == -ENOMEM ? r : -ENOKEY;
        }
        switch (a->auth) {
        case AUTH_METHOD_PLAIN:
                r = mailimap_authenticate(s->imap, "PLAIN", a->host, NULL, NULL, a->user, a->user,
                                          secret, NULL);
                break;
        case AUTH_METHOD_XOAUTH2:
                r = mailimap_oauth2_authenticate(s->imap, a->user, secret);
                break;
        default:
                r = mailimap_login(s->imap, a->user, secret);
        }
        if (r == MAILIMAP_NO_ERROR)
                return 0;
        if (r == MAILIMAP_ERROR_LOGIN) {
                /* The server's text, never ours with the secret in it. */
                const char *resp = s->imap->imap_response;
                if (asprintf(ret_error, "login as '%s' refused%s%s", a->user, resp ? ": " : "",
                             resp ? resp : "") < 0)
                        *ret_error = NULL;
                return -EACCES;
        }
        r = session_error(s, r, "login");
        *ret_error = s->error ? strdup(s->error) : NULL;
        return r;
}

int imap_connect(const Account *a, unsigned timeout_sec, ImapSession **ret, char **ret_error) {
        _cleanup_(imap_session_freep) ImapSession *s = calloc(1, sizeof(ImapSession));
        int r;

        *ret_error = NULL;
        if (!s)
                return -ENOMEM;
        s->account = a;
        s->imap = mailimap_new(0, NULL);
        if (!s->imap)
                return -ENOMEM;
        mailimap_set_timeout(s->imap, timeout_sec);

        if (a->tls == TLS_MODE_IMPLICIT)
                r = mailimap_ssl_connect_with_callback(s->imap, a->host, a->port, ssl_callback, a->host);
        else
                r = mailimap_socket_connect(s->imap, a->host, a->port);
        if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
                s->broken = true;
                r = errno_from_imap(r);
                if (asprintf(ret_error, "cannot connect to %s port %u%s: %s", a->host, a->port,
                             a->tls == TLS_MODE_IMPLICIT ? " (TLS)" : "",
                             r == -ECONNREFUSED ? "connection refused"
                             : r == -ECONNRESET ? "TLS handshake failed"
                             : r == -ETIMEDOUT  ? "timed out"
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
                r = mailimap_socket_starttls_with_callback(s->imap, ssl_callback, a->host);
                if (r != MAILIMAP_NO_ERROR) {
                        r = session_error(s, r, "STARTTLS");
                        goto fail_text;
                }
        }
        if (a->tls != TLS_MODE_NONE) {
                r = verify_peer(s, ret_error);
                if (r < 0)
                        return r;
        }
        /* Capabilities again: a STARTTLS'd cache is stale, and we need IDLE/CONDSTORE. */
        r = refresh_capabilities(s);
        if (r < 0)
                goto fail_text;
        if (s->imap->imap_state != MAILIMAP_STATE_AUTHENTICATED) {
                r = login(s, ret_error);
                if (r < 0)
                        return r;
                (void) refresh_capabilities(s);
        }
        *ret = TAKE_PTR(s);
        return 0;

fail_text:
        *ret_error = s->error ? strdup(s->error) : NULL;
        return r;
}

void imap_folders_free(ImapFolder *f, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(f[i].name);
                free(f[i].display);
        }
        free(f);
}

static unsigned folder_flags(const struct mailimap_mbx_list_flags *fl) {
        static const struct {
                const char *name;
                unsigned flag;
        } special[] = {
                { "Junk", IMAP_FOLDER_JUNK },       { "Spam", IMAP_FOLDER_JUNK },
                { "Trash", IMAP_FOLDER_TRASH },     { "Archive", IMAP_FOLDER_ARCHIVE },
                { "All", IMAP_FOLDER_ALL },         { "Sent", IMAP_FOLDER_SENT },
                { "Drafts", IMAP_FOLDER_DRAFTS },   { "Noselect", IMAP_FOLDER_NOSELECT },
                { "NonExistent", IMAP_FOLDER_NOSELECT },
        };
        unsigned flags = 0;

        if (!fl)
                return 0;
        if (fl->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG && fl->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
                flags |= IMAP_FOLDER_NOSELECT;
        for (clistiter *it = clist_begin(fl->mbf_oflags); it; it = clist_next(it)) {
                const struct mailimap_mbx_list_oflag *of = clist_content(it);
                if (of->of_type == MAILIMAP_MBX_LIST_OFLAG_NOINFERIORS || !of->of_flag_ext)
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(special); i++)
                        if (strcaseeq(of->of_flag_ext, special[i].name))
                                flags |= special[i].flag;
        }
        return flags;
}

int imap_list(ImapSession *s, ImapFolder **ret, size_t *ret_n) {
        clist *list = NULL;
        ImapFolder *f = NULL;
        size_t n = 0;
        int r;

        r = mailimap_list(s->imap, "", "*", &list);
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
        *ret = f;
        *ret_n = n;
        return 0;
}

int imap_examine(ImapSession *s, const char *folder, ImapFolderState *ret) {
        uint64_t modseq = 0;
        int r;

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

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

int imap_search(ImapSession *s, uint32_t first_uid, int64_t since, uint32_t **ret, size_t *ret_n) {
        struct mailimap_search_key *key = mailimap_search_key_new_multiple_empty();
        struct mailimap_set *set = NULL;
        clist *res = NULL;
        uint32_t *uids;
        size_t n = 0;
        int r;

        if (!key)
                return -ENOMEM;
        set = mailimap_set_new_interval(MAX(first_uid, 1u), 0);
        if (!set || mailimap_search_key_multiple_add(key, mailimap_search_key_new_uid(set)) != MAILIMAP_NO_ERROR) {
                mailimap_search_key_free(key);
                return -ENOMEM;
        }
        if (since > 0) {
                time_t t = (time_t) since;
                struct tm tm;
                gmtime_r(&t, &tm);
                if (mailimap_search_key_multiple_add(
                            key, mailimap_search_key_new_since(mailimap_date_new(tm.tm_mday, tm.tm_mon + 1,
                                                                                 tm.tm_year + 1900))) != MAILIMAP_NO_ERROR) {
                        mailimap_search_key_free(key);
                        return -ENOMEM;
                }
        }
        r = mailimap_uid_search(s->imap, NULL, key, &res);
        mailimap_search_key_free(key);
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "UID SEARCH");
        uids = calloc(clist_count(res) + 1, sizeof(uint32_t));
        if (!uids) {
                mailimap_search_result_free(res);
                return -ENOMEM;
        }
        for (clistiter *it = clist_begin(res); it; it = clist_next(it)) {
                uint32_t uid = *(uint32_t *) clist_content(it);
                /* RFC 3501: "n:*" always includes the highest UID, even below n. */
                if (uid >= first_uid && uid > 0)
                        uids[n++] = uid;
        }
        mailimap_search_result_free(res);
        qsort(uids, n, sizeof(uint32_t), cmp_u32);
        *ret = uids;
        *ret_n = n;
        return 0;
}

int imap_fetch(ImapSession *s, const uint32_t *uids, size_t n, size_t max_size, ImapFetchFunc cb,
               void *userdata) {
        struct mailimap_fetch_type *ft = NULL;
        struct mailimap_set *set = NULL;
        clist *res = NULL;
        int r;

        if (n == 0)
                return 0;
        set = mailimap_set_new_empty();
        ft = mailimap_fetch_type_new_fetch_att_list_empty();
        if (!set || !ft)
                goto oom;
        for (size_t i = 0; i < n; i++)
                if (mailimap_set_add_single(set, uids[i]) != MAILIMAP_NO_ERROR)
                        goto oom;
        if (mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid()) != MAILIMAP_NO_ERROR ||
            mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size()) != MAILIMAP_NO_ERROR ||
            /* BODY.PEEK: RFC 3501 §6.4.5, does not set \Seen. Partial: bounded memory. */
            mailimap_fetch_type_new_fetch_att_list_add(
                    ft, mailimap_fetch_att_new_body_peek_section_partial(mailimap_section_new(NULL), 0,
                                                                         (uint32_t) max_size)) != MAILIMAP_NO_ERROR)
                goto oom;

        r = mailimap_uid_fetch(s->imap, set, ft, &res);
        mailimap_set_free(set);
        mailimap_fetch_type_free(ft);
        if (r != MAILIMAP_NO_ERROR)
                return session_error(s, r, "UID FETCH");

        r = 0;
        for (clistiter *it = clist_begin(res); it && r >= 0; it = clist_next(it)) {
                const struct mailimap_msg_att *ma = clist_content(it);
                ImapMessage m = {};
                uint32_t size = 0;

                for (clistiter *j = clist_begin(ma->att_list); j; j = clist_next(j)) {
                        const struct mailimap_msg_att_item *item = clist_content(j);
                        const struct mailimap_msg_att_static *st;
                        if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
                                continue;
                        st = item->att_data.att_static;
                        if (st->att_type == MAILIMAP_MSG_ATT_UID)
                                m.uid = st->att_data.att_uid;
                        else if (st->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE)
                                size = st->att_data.att_rfc822_size;
                        else if (st->att_type == MAILIMAP_MSG_ATT_BODY_SECTION && st->att_data.att_body_section) {
                                /* sec_section may be NULL for BODY[] (libetpan 1.9.4). */
                                m.data = st->att_data.att_body_section->sec_body_part;
                                m.size = st->att_data.att_body_section->sec_length;
                        }
                }
                if (m.uid == 0)
                        continue; /* an unsolicited FETCH (flags change): not ours */
                m.truncated = size > m.size;
                if (!m.data)
                        m.data = (char *) "";
                r = cb(&m, userdata);
        }
        mailimap_fetch_list_free(res);
        return r;
oom:
        if (set)
                mailimap_set_free(set);
        if (ft)
                mailimap_fetch_type_free(ft);
        return -ENOMEM;
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
