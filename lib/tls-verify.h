/* Server certificate verification, which libetpan 1.9.4 does not do: the peer chain against
 * the system trust store (or ca_file), the host name (or IP SAN) and the TLS server key
 * purpose; or a SHA-256 pin of the leaf certificate. Called after the handshake and before any
 * credential is sent. Pure; callable from any thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define TLS_FINGERPRINT_MAX 104 /* "sha256:" + 32 × "XX:" */

/* certs: DER, leaf first. pin: 32-byte SHA-256 of the leaf, or NULL. On success returns 0.
 * On refusal returns -EPERM with *ret_reason (owned) in words ("the certificate's issuer is
 * unknown", "the name in the certificate does not match 'imap.example.org'", "expired").
 * ret_fingerprint always receives the leaf's "sha256:AB:CD:..." when there is a leaf, so the
 * user can pin it knowingly. -EINVAL when ca_file cannot be read, -ENOMEM. */
int tls_verify(const uint8_t *const *certs, const size_t *lens, size_t n, const char *host,
               const char *ca_file, const uint8_t *pin, char **ret_reason,
               char ret_fingerprint[TLS_FINGERPRINT_MAX]);
