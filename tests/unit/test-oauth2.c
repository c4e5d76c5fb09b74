/* oauth2.c, the parts that need no provider: the presets and what an account makes of them,
 * the SASL initial responses (decoded back and compared byte for byte with RFC 7628 §4's and
 * Google's formats), the token file's rules, the cache of access tokens, and refusals that
 * happen before anything is sent (an http:// endpoint). The grants themselves run against a
 * provider in tests/integration/test_oauth2.py. */
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-util.h"

#include "macro.h"
#include "oauth2.h"

static char *unbase64(const char *b64, size_t *ret_len) {
        gnutls_datum_t in = { .data = (unsigned char *) b64, .size = (unsigned) strlen(b64) }, out = {};
        char *r;

        assert_int_equal(gnutls_base64_decode2(&in, &out), 0);
        r = malloc(out.size + 1);
        assert_non_null(r);
        memcpy(r, out.data, out.size);
        r[out.size] = 0;
        *ret_len = out.size;
        gnutls_free(out.data);
        return r;
}

static void test_presets(void **state) {
        const OAuth2Preset *m = oauth2_preset("microsoft"), *g = oauth2_preset("Google");
        Account a = { .name = (char *) "o", .oauth2_provider = (char *) "microsoft",
                      .oauth2_client_id = (char *) "id" };
        OAuth2Client c;

        (void) state;
        assert_non_null(m);
        assert_non_null(g);
        assert_null(oauth2_preset("yahoo"));
        assert_ptr_equal(oauth2_preset_for_host("outlook.office365.com"), m);
        assert_ptr_equal(oauth2_preset_for_host("IMAP.GMAIL.COM"), g);
        assert_null(oauth2_preset_for_host("imap.orange.fr"));
        assert_string_equal(m->scope, "https://outlook.office.com/IMAP.AccessAsUser.All offline_access");
        assert_string_equal(g->scope, "https://mail.google.com/");
        assert_string_equal(m->token_url, "https://login.microsoftonline.com/consumers/oauth2/v2.0/token");
        assert_null(g->device_url);
        assert_true(g->needs_secret);

        assert_int_equal(oauth2_client_from_account(&a, &c), 0);
        assert_string_equal(c.token_url, m->token_url);
        assert_string_equal(c.device_url, m->device_url);
        /* An override wins over the preset. */
        a.oauth2_token_url = (char *) "https://127.0.0.1:1/token";
        assert_int_equal(oauth2_client_from_account(&a, &c), 0);
        assert_string_equal(c.token_url, "https://127.0.0.1:1/token");
        assert_string_equal(c.authorize_url, m->authorize_url);
        /* No client id, or no token endpoint at all: not usable. */
        a.oauth2_client_id = NULL;
        assert_int_equal(oauth2_client_from_account(&a, &c), -EINVAL);
        a = (Account) { .oauth2_client_id = (char *) "id" };
        assert_int_equal(oauth2_client_from_account(&a, &c), -EINVAL);
}

static void test_sasl(void **state) {
        _cleanup_free_ char *b = NULL, *x = NULL, *raw = NULL;
        static const char bearer[] = "n,a=us=2Cer=3Dx@example.com,\001host=imap.example.com\001port=993\001"
                                     "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\001\001";
        static const char xo[] = "user=someuser@example.com\001auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\001\001";
        size_t n;

        (void) state;
        assert_int_equal(oauth2_sasl_oauthbearer("us,er=x@example.com", "imap.example.com", 993,
                                                 "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", &b), 0);
        raw = unbase64(b, &n);
        assert_int_equal(n, sizeof bearer - 1);
        assert_memory_equal(raw, bearer, n);
        free(raw);
        raw = NULL;
        assert_int_equal(oauth2_sasl_xoauth2("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", &x),
                         0);
        /* Google's XOAUTH2 example (developers.google.com/gmail/imap/xoauth2-protocol), encoded. */
        assert_string_equal(x, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjN"
                               "SbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
        raw = unbase64(x, &n);
        assert_int_equal(n, sizeof xo - 1);
        assert_memory_equal(raw, xo, n);
}

static void test_token_file(void **state) {
        char dir[] = "/tmp/alcode-test-oauth2-XXXXXX", path[128], cmd[160];
        _cleanup_free_ char *error = NULL, *back = NULL;
        Account a = { .name = (char *) "t" };
        struct stat sb;

        (void) state;
        assert_non_null(mkdtemp(dir));
        (void) snprintf(path, sizeof path, "%s/token", dir);
        a.oauth2_token_file = path;
        assert_int_equal(oauth2_token_load(&a, &back, &error), -ENOKEY);
        free(error);
        error = NULL;
        assert_int_equal(oauth2_token_store(&a, "label", "rt-123", &error), 0);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        assert_int_equal(oauth2_token_load(&a, &back, &error), 0);
        assert_string_equal(back, "rt-123");
        free(back);
        back = NULL;
        /* Readable by others: refused, and said so. */
        assert_int_equal(chmod(path, 0640), 0);
        assert_int_equal(oauth2_token_load(&a, &back, &error), -EPERM);
        assert_non_null(strstr(error, "no one else can read"));
        assert_null(back);
        (void) snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

static void test_cache(void **state) {
        OAuth2Tokens t = { .access_token = (char *) "at-1", .expires_at = (int64_t) time(NULL) + 3600 };
        Account a = { .name = (char *) "cached", .oauth2_client_id = (char *) "id",
                      .oauth2_token_url = (char *) "https://127.0.0.1:1/token",
                      .oauth2_token_file = (char *) "/nonexistent/token" };
        _cleanup_free_ char *error = NULL;
        char *tok = NULL;

        (void) state;
        assert_int_equal(oauth2_remember("cached", &t), 0);
        assert_int_equal(oauth2_access_token(&a, &tok, &error), 0);
        assert_string_equal(tok, "at-1");
        erase_and_free(tok);
        tok = NULL;
        /* At its end: a new one is needed, and without a refresh token there is none. */
        t.access_token = (char *) "at-2";
        t.expires_at = (int64_t) time(NULL);
        assert_int_equal(oauth2_remember("cached", &t), 0);
        assert_int_equal(oauth2_access_token(&a, &tok, &error), -ENOKEY);
        assert_null(tok);
        oauth2_forget(NULL);
}

static void test_https_only(void **state) {
        OAuth2Client c = { .client_id = "id", .token_url = "http://127.0.0.1:1/token" };
        _cleanup_free_ char *error = NULL;
        OAuth2Tokens t = {};

        (void) state;
        assert_int_equal(oauth2_refresh(&c, "rt", &t, &error), -EINVAL);
        assert_non_null(strstr(error, "must be https://"));
        assert_null(t.access_token);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_presets),     cmocka_unit_test(test_sasl),
                cmocka_unit_test(test_token_file),  cmocka_unit_test(test_cache),
                cmocka_unit_test(test_https_only),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
