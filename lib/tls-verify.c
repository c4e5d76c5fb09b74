#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>

#include "macro.h"
#include "tls-verify.h"

#define TLS_MAX_CHAIN 16

static void format_fingerprint(const uint8_t *d, char out[TLS_FINGERPRINT_MAX]) {
        size_t k = (size_t) snprintf(out, TLS_FINGERPRINT_MAX, "sha256:");

        for (size_t i = 0; i < 32 && k + 3 < TLS_FINGERPRINT_MAX; i++)
                k += (size_t) snprintf(out + k, TLS_FINGERPRINT_MAX - k, i ? ":%02X" : "%02X", d[i]);
}

static char *status_text(unsigned status) {
        gnutls_datum_t out = {};
        char *s;

        /* Our own words for the common cases; GnuTLS's text for the rest. */
        if (status & GNUTLS_CERT_EXPIRED)
                return strdup("the certificate has expired");
        if (status & GNUTLS_CERT_NOT_ACTIVATED)
                return strdup("the certificate is not yet valid");
        if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
                return strdup("the certificate's issuer is unknown (self-signed or private CA: "
                              "set ca_file or pin its fingerprint)");
        if (status & GNUTLS_CERT_UNEXPECTED_OWNER)
                return NULL; /* caller words it with the host */
        if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
                return strdup("the certificate is not meant for a TLS server (key usage)");
        if (status & GNUTLS_CERT_REVOKED)
                return strdup("the certificate was revoked");
        if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) < 0)
                return strdup("the certificate is not valid");
        s = strndup((const char *) out.data, out.size);
        gnutls_free(out.data);
        return s;
}

int tls_verify(const uint8_t *const *certs, const size_t *lens, size_t n, const char *host,
               const char *ca_file, const uint8_t *pin, char **ret_reason,
               char ret_fingerprint[TLS_FINGERPRINT_MAX]) {
        gnutls_x509_crt_t crt[TLS_MAX_CHAIN] = {};
        gnutls_x509_trust_list_t tl = NULL;
        uint8_t digest[32];
        unsigned status = 0;
        size_t nc = MIN(n, (size_t) TLS_MAX_CHAIN);
        int r, ret = -EPERM;

        *ret_reason = NULL;
        ret_fingerprint[0] = 0;
        if (n == 0) {
                *ret_reason = strdup("the server sent no certificate");
                return -EPERM;
        }
        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0], lens[0], digest) < 0)
                return -ENOMEM;
        format_fingerprint(digest, ret_fingerprint);

        if (pin) {
                /* A pin names this exact certificate: nothing else to check. */
                if (memcmp(pin, digest, 32) == 0)
                        return 0;
                *ret_reason = strdup("the certificate does not match the pinned fingerprint "
                                     "(it changed since you pinned it)");
                return -EPERM;
        }

        for (size_t i = 0; i < nc; i++) {
                gnutls_datum_t d = { .data = (unsigned char *) certs[i], .size = (unsigned) lens[i] };
                if (gnutls_x509_crt_init(&crt[i]) < 0) {
                        ret = -ENOMEM;
                        goto finish;
                }
                if (gnutls_x509_crt_import(crt[i], &d, GNUTLS_X509_FMT_DER) < 0) {
                        *ret_reason = strdup("the server sent a certificate that cannot be parsed");
                        goto finish;
                }
        }
        if (gnutls_x509_trust_list_init(&tl, 0) < 0) {
                ret = -ENOMEM;
                goto finish;
        }
        if (ca_file) {
                r = gnutls_x509_trust_list_add_trust_file(tl, ca_file, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
                if (r <= 0) {
                        if (asprintf(ret_reason, "cannot read any certificate from ca_file '%s'", ca_file) < 0)
                                *ret_reason = NULL;
                        ret = -EINVAL;
                        goto finish;
                }
        } else if (gnutls_x509_trust_list_add_system_trust(tl, 0, 0) <= 0) {
                *ret_reason = strdup("the system trust store is empty (install ca-certificates)");
                goto finish;
        }

        gnutls_typed_vdata_st vdata[] = {
                { .type = GNUTLS_DT_DNS_HOSTNAME, .data = (unsigned char *) host },
                { .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (unsigned char *) GNUTLS_KP_TLS_WWW_SERVER },
        };
        r = gnutls_x509_trust_list_verify_crt2(tl, crt, (unsigned) nc, vdata, ELEMENTSOF(vdata), 0,
                                               &status, NULL);
        if (r < 0) {
                *ret_reason = strdup(gnutls_strerror(r));
                goto finish;
        }
        if (status == 0) {
                ret = 0;
                goto finish;
        }
        *ret_reason = status_text(status);
        if (!*ret_reason && asprintf(ret_reason, "the name in the certificate does not match '%s'", host) < 0)
                *ret_reason = NULL;
finish:
        if (tl)
                gnutls_x509_trust_list_deinit(tl, 1);
        for (size_t i = 0; i < nc; i++)
                if (crt[i])
                        gnutls_x509_crt_deinit(crt[i]);
        if (ret == -EPERM && !*ret_reason)
                return -ENOMEM;
        return ret;
}
