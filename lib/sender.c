/* Sender trust is decided on the From addr-spec's domain only, compared label by label; the
 * display name, Return-Path and Reply-To never make a sender trusted, they can only raise
 * suspicion. The topmost Authentication-Results header is the one our own MTA added: a
 * DMARC or aligned DKIM failure there makes a trusted domain untrusted. */
#include <ctype.h>

#include "mime.h"
#include "sender.h"
#include "strv.h"

void sender_info_done(SenderInfo *s) {
        free(s->address);
        free(s->domain);
        free(s->name);
        *s = (SenderInfo) {};
}

bool domain_matches(const char *domain, const char *d) {
        size_t ld, lx;

        if (!domain || !d)
                return false;
        ld = strlen(domain);
        lx = strlen(d);
        if (ld == lx)
                return strcaseeq(domain, d);
        return ld > lx && domain[ld - lx - 1] == '.' && strcaseeq(domain + ld - lx, d);
}

static bool domain_in(const char *domain, char *const *list) {
        STRV_FOREACH(d, list)
                if (domain_matches(domain, *d))
                        return true;
        return false;
}

/* Looks for "method=result" in an Authentication-Results value and whether the property that
 * names the domain (header.d / header.from / smtp.mailfrom) is `domain`. */
static bool auth_result(const char *ar, const char *method, const char *result, const char *domain) {
        size_t ml = strlen(method);

        for (const char *p = ar; (p = strcasestr(p, method)); p += ml) {
                const char *v = p + ml, *end;

                if (p > ar && (isalnum((unsigned char) p[-1]) || p[-1] == '.'))
                        continue;
                v += strspn(v, " ");
                if (*v != '=')
                        continue;
                v++;
                v += strspn(v, " ");
                if (!startswith_no_case(v, result) || isalnum((unsigned char) v[strlen(result)]))
                        continue;
                /* The result applies up to the next ';'. */
                end = strchr(v, ';');
                if (!domain)
                        return true;
                for (const char *q = v; (q = strcasestr(q, domain)) && (!end || q < end); q++) {
                        if (q > v && (q[-1] == '=' || q[-1] == '@' || q[-1] == '.'))
                                return true;
                }
                /* No domain given for this result: it is about the message, hence the From. */
                if (!strcasestr(v, "header.") || (end && strcasestr(v, "header.") > end))
                        return true;
        }
        return false;
}

static bool auth_failed(const MimeMessage *m, const char *domain) {
        const char *top = m->auth_results ? m->auth_results[0] : NULL;

        if (!top || !domain)
                return false;
        if (auth_result(top, "dmarc", "fail", domain))
                return true;
        if (auth_result(top, "dkim", "fail", domain) && !auth_result(top, "dkim", "pass", domain))
                return true;
        return false;
}

/* Reduces a name or domain to a skeleton where common tricks vanish: case, separators,
 * digits standing for letters, "rn" for "m". */
static char *skeleton(const char *s) {
        size_t n = strlen(s);
        char *k = malloc(n + 1), *o = k;

        if (!k)
                return NULL;
        for (const char *p = s; *p; p++) {
                char c = (char) tolower((unsigned char) *p);
                if (c == '0')
                        c = 'o';
                else if (c == '1' || c == '|')
                        c = 'l';
                else if (c == '3')
                        c = 'e';
                if (c == 'r' && tolower((unsigned char) p[1]) == 'n') {
                        c = 'm';
                        p++;
                }
                if (isalpha((unsigned char) c))
                        *o++ = c;
        }
        *o = 0;
        return k;
}

static const char *const brand_tokens[] = { "actionlogement", "actionslogement", "alin", "visale",
                                            "actionlogment", NULL };

static bool skeleton_has_brand(const char *s, bool whole_labels_only) {
        _cleanup_free_ char *k = skeleton(s);

        if (!k)
                return false;
        for (const char *const *t = brand_tokens; *t; t++) {
                /* "alin" is too short to search inside other words. */
                if (streq(*t, "alin") && (whole_labels_only || !streq(k, "alin")))
                        continue;
                if (strstr(k, *t))
                        return true;
        }
        return false;
}

static bool domain_lookalike(const char *domain, char *const *trusted) {
        _cleanup_free_ char *copy = strdup(domain);
        char *label, *save = NULL;

        if (!copy)
                return false;
        if (skeleton_has_brand(domain, true))
                return true;
        /* A trusted domain as left-hand labels: "actionlogement.fr.espace-securise.example". */
        STRV_FOREACH(t, trusted) {
                const char *p = strcasestr(domain, *t);
                if (p && (p == domain || p[-1] == '.' || p[-1] == '-') && p[strlen(*t)] != 0)
                        return true;
        }
        /* IDN labels (punycode) carrying a brand-like ASCII part: "xn--actionlogment-43k". */
        for (label = strtok_r(copy, ".", &save); label; label = strtok_r(NULL, ".", &save))
                if (startswith_no_case(label, "xn--") && skeleton_has_brand(label + 4, false))
                        return true;
        /* "al-in" / "alin" as a whole label or a label prefix. */
        for (const char *p = domain; p && *p; p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL) {
                if (startswith_no_case(p, "alin") || startswith_no_case(p, "al-in"))
                        return true;
        }
        return false;
}

static bool name_claims_brand(const char *name, char *const *trusted) {
        _cleanup_free_ char *k = NULL;

        if (!name)
                return false;
        STRV_FOREACH(t, trusted)
                if (strcasestr(name, *t))
                        return true;
        k = skeleton(name);
        if (!k)
                return false;
        return strstr(k, "actionlogement") || strstr(k, "visale") || strcasestr(name, "al'in") ||
               strcasestr(name, "al\xe2\x80\x99in") || strcasestr(name, "alin ") || endswith(k, "alin");
}

int sender_analyze(const MimeMessage *m, char *const *trusted_domains,
                   char *const *employer_domains, SenderInfo *ret) {
        SenderInfo s = {};
        int r;

        if (m->from.address) {
                s.address = strdup(m->from.address);
                if (!s.address)
                        goto oom;
                r = mail_address_domain(m->from.address, &s.domain);
                if (r == -ENOMEM)
                        goto oom;
        }
        if (m->from.name && !(s.name = strdup(m->from.name)))
                goto oom;

        if (s.domain) {
                bool trusted_domain = domain_in(s.domain, trusted_domains);

                s.employer = domain_in(s.domain, employer_domains);
                s.auth_failed = auth_failed(m, s.domain);
                if (!trusted_domain && !s.employer)
                        s.lookalike = domain_lookalike(s.domain, trusted_domains) ||
                                      name_claims_brand(s.name, trusted_domains);

                /* Sender:/Reply-To: elsewhere than a trusted From: suspicious, not trusted. */
                const MailAddress *others[9] = { &m->sender };
                size_t n_others = 1;
                for (size_t i = 0; i < m->n_reply_to && n_others < ELEMENTSOF(others); i++)
                        others[n_others++] = &m->reply_to[i];
                for (size_t i = 0; i < n_others; i++) {
                        _cleanup_free_ char *d = NULL;
                        if (!others[i]->address || mail_address_domain(others[i]->address, &d) < 0)
                                continue;
                        if (!domain_in(d, trusted_domains) && !domain_in(d, employer_domains) &&
                            trusted_domain)
                                s.mismatch = true;
                }
        } else if (m->from.name)
                s.lookalike = name_claims_brand(m->from.name, trusted_domains);

        *ret = s;
        return 0;
oom:
        sender_info_done(&s);
        return -ENOMEM;
}

bool sender_trusted(const SenderInfo *s, char *const *domains, bool employer) {
        if (!s || !s->domain || s->auth_failed || s->lookalike || s->mismatch)
                return false;
        if (domain_in(s->domain, domains))
                return true;
        return employer && s->employer;
}
