/* OAUTHBEARER and XOAUTH2 on libetpan's session: the command is written by hand (libetpan has
 * no OAUTHBEARER, and its XOAUTH2 leaves copies of the token in freed memory), the answer read
 * and parsed by libetpan as for any other command, so that the tag, the response code and
 * imap_response are what the rest of imap.c expects. */
#include <stdio.h>

#include "imap-sasl.h"
#include "macro.h"
#include "oauth2.h"

static int write_all(mailstream *s, const char *p, size_t n) {
        return mailstream_write(s, p, n) == (ssize_t) n ? 0 : -1;
}

/* AUTHENTICATE mech with the initial response ir; error_reply answers an error challenge. */
static int authenticate(mailimap *imap, const char *mech, const char *ir, const char *error_reply) {
        struct mailimap_response *resp = NULL;
        const char *line;
        int r, state;

        mailstream_set_privacy(imap->imap_stream, 0);
        r = mailimap_send_current_tag(imap);
        if (r == MAILIMAP_NO_ERROR &&
            (write_all(imap->imap_stream, "AUTHENTICATE ", 13) < 0 ||
             write_all(imap->imap_stream, mech, strlen(mech)) < 0 || write_all(imap->imap_stream, " ", 1) < 0 ||
             write_all(imap->imap_stream, ir, strlen(ir)) < 0 || write_all(imap->imap_stream, "\r\n", 2) < 0 ||
             mailstream_flush(imap->imap_stream) < 0))
                r = MAILIMAP_ERROR_STREAM;
        mailstream_set_privacy(imap->imap_stream, 1);
        if (r != MAILIMAP_NO_ERROR)
                return r;
        line = mailimap_read_line(imap);
        if (!line)
                return MAILIMAP_ERROR_STREAM;
        if (line[0] == '+') {
                /* The error comes as a challenge; the client's answer ends the exchange, which
                 * the server then fails. */
                if (write_all(imap->imap_stream, error_reply, strlen(error_reply)) < 0 ||
                    mailstream_flush(imap->imap_stream) < 0)
                        return MAILIMAP_ERROR_STREAM;
                if (!mailimap_read_line(imap))
                        return MAILIMAP_ERROR_STREAM;
        }
        r = mailimap_parse_response(imap, &resp);
        if (r != MAILIMAP_NO_ERROR)
                return r;
        state = resp->rsp_resp_done && resp->rsp_resp_done->rsp_type == MAILIMAP_RESP_DONE_TYPE_TAGGED
                        ? resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type
                        : MAILIMAP_RESP_COND_STATE_BAD;
        mailimap_response_free(resp);
        if (state != MAILIMAP_RESP_COND_STATE_OK)
                return MAILIMAP_ERROR_LOGIN;
        imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
        return MAILIMAP_NO_ERROR;
}

int imap_authenticate_oauthbearer(mailimap *imap, const char *user, const char *host, uint16_t port,
                                  const char *token) {
        _cleanup_erase_ char *ir = NULL;

        if (imap->imap_state != MAILIMAP_STATE_NON_AUTHENTICATED)
                return MAILIMAP_ERROR_BAD_STATE;
        if (oauth2_sasl_oauthbearer(user, host, port, token, &ir) < 0)
                return MAILIMAP_ERROR_MEMORY;
        /* RFC 7628 §3.2.3: %x01 after an error. */
        return authenticate(imap, "OAUTHBEARER", ir, "AQ==\r\n");
}

int imap_authenticate_xoauth2(mailimap *imap, const char *user, const char *token) {
        _cleanup_erase_ char *ir = NULL;

        if (imap->imap_state != MAILIMAP_STATE_NON_AUTHENTICATED)
                return MAILIMAP_ERROR_BAD_STATE;
        if (oauth2_sasl_xoauth2(user, token, &ir) < 0)
                return MAILIMAP_ERROR_MEMORY;
        /* Google's XOAUTH2: an empty response after the error. */
        return authenticate(imap, "XOAUTH2", ir, "\r\n");
}
