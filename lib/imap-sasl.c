/* OAUTHBEARER on libetpan's session: the command is written by hand (libetpan has XOAUTH2
 * only), the answer read and parsed by libetpan as for any other command, so that the tag,
 * the response code and imap_response are what the rest of imap.c expects. */
#include <stdio.h>

#include "imap-sasl.h"
#include "macro.h"
#include "oauth2.h"

static int write_all(mailstream *s, const char *p, size_t n) {
        return mailstream_write(s, p, n) == (ssize_t) n ? 0 : -1;
}

int imap_authenticate_oauthbearer(mailimap *imap, const char *user, const char *host, uint16_t port,
                                  const char *token) {
        struct mailimap_response *resp = NULL;
        _cleanup_erase_ char *ir = NULL;
        const char *line;
        int r, state;

        if (imap->imap_state != MAILIMAP_STATE_NON_AUTHENTICATED)
                return MAILIMAP_ERROR_BAD_STATE;
        if (oauth2_sasl_oauthbearer(user, host, port, token, &ir) < 0)
                return MAILIMAP_ERROR_MEMORY;
        mailstream_set_privacy(imap->imap_stream, 0);
        r = mailimap_send_current_tag(imap);
        if (r == MAILIMAP_NO_ERROR &&
            (write_all(imap->imap_stream, "AUTHENTICATE OAUTHBEARER ", 25) < 0 ||
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
                /* RFC 7628 §3.2.3: the error is a challenge; the client answers %x01 and the
                 * server then fails the exchange. */
                if (write_all(imap->imap_stream, "AQ==\r\n", 6) < 0 || mailstream_flush(imap->imap_stream) < 0)
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
