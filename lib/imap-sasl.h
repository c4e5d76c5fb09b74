/* SASL mechanisms libetpan 1.9.4 lacks, on its IMAP session. Internal to imap.c. */
#pragma once

#include <libetpan/libetpan.h>
#include <stdint.h>

/* AUTHENTICATE OAUTHBEARER (RFC 7628) with the initial response (RFC 4959 SASL-IR). On a
 * refusal the server sends an error challenge, answered with the %x01 the RFC asks for. The
 * token goes out with the stream marked private (a logger would see it as such). Returns a
 * MAILIMAP_* code: MAILIMAP_NO_ERROR, MAILIMAP_ERROR_LOGIN when refused, else a stream or
 * parse error. */
int imap_authenticate_oauthbearer(mailimap *imap, const char *user, const char *host, uint16_t port,
                                  const char *token);
/* The same for XOAUTH2 (Google's and Microsoft's), whose error challenge is answered with an
 * empty line. Unlike libetpan's mailimap_oauth2_authenticate(), every copy of the token is
 * wiped. */
int imap_authenticate_xoauth2(mailimap *imap, const char *user, const char *token);
