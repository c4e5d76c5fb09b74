"""Built-in OAuth2 against a provider of our own (oauthprovider.py: HTTPS on 127.0.0.1 with the
test CA) and a dovecot whose oauth2 passdb asks that provider about every bearer token: a real
IMAP server checks what alcode sends.

- the daemon: refresh grant → OAUTHBEARER (auth = oauth2 picks it from the capabilities) or
  XOAUTH2, code stored; a token close to its end is refreshed before the next login; a revoked
  refresh token → "needs you to sign in again", one notification, STATUS=, and no further
  request to the provider; no token in any log line or journal field; a provider whose
  certificate is not trusted is refused;
- alcode init: browser sign-in through the loopback redirect (the test plays the browser), the
  device grant, the refresh token in the Secret Service (gnome-keyring on a private bus) or in a
  0600 file, --reauth; then alcoded --once stores a code.
"""

import json
import os
import re
import signal
import ssl
import stat
import subprocess
import threading
import time
import unittest
import urllib.parse
import urllib.request

from alcodetest import (Alcode, BusMonitor, DBusSession, Dovecot, NotifySocket, TempDir, binary, code_mail, main,
                        make_ca, random_codes, read_log, require_tools, run_with_private_journal, start_daemon,
                        stop_daemon, wait_for)
from oauthprovider import OAuthProvider, dovecot_oauth2

CLIENT_ID = "alcode-test-client"


class Env:
    """A test CA, a provider with a certificate from it, dovecot checking tokens with it."""

    def __init__(self, test, expires_in=3600, rotate_refresh=False, device_slow_down=False, mechanisms=None):
        self.tmp = TempDir()
        test.addCleanup(self.tmp.cleanup)
        self.ca, cert, key = make_ca(self.tmp.path, name="provider")
        self.provider = OAuthProvider(cert, key, user="alice", client_id=CLIENT_ID, expires_in=expires_in,
                                      rotate_refresh=rotate_refresh, device_slow_down=device_slow_down)
        test.addCleanup(self.provider.stop)
        self.dovecot = Dovecot(self.tmp, users={"alice": "unused-password"}, ca_dir=self.tmp.path)
        dovecot_oauth2(self.dovecot, self.provider, self.ca)
        if mechanisms:
            with open(self.dovecot.conf) as f:
                text = f.read()
            text = text.replace("auth_mechanisms = plain login xoauth2 oauthbearer", "auth_mechanisms = " + mechanisms)
            with open(self.dovecot.conf, "w") as f:
                f.write(text)
        self.codes = [c.replace(" ", "") for c in random_codes(3, seed=17)]
        self.dovecot.deliver("alice", "INBOX", code_mail(self.codes[0]))
        self.dovecot.start()
        test.addCleanup(self.dovecot.stop)
        self.alcode = Alcode(self.tmp)

    def account(self, name="perso", auth=None, token_file=None, extra=""):
        p = self.provider.base
        text = ("[account %s]\nhost = 127.0.0.1\nport = %d\ntls = implicit\nuser = alice\nca_file = %s\n"
                "oauth2_client_id = %s\noauth2_authorize_url = %s/authorize\noauth2_token_url = %s/token\n"
                "oauth2_device_url = %s/device\noauth2_scope = imap offline_access\n"
                % (name, self.dovecot.tls_port, self.ca, CLIENT_ID, p, p, p))
        if auth:
            text += "auth = %s\n" % auth
        if token_file:
            text += "oauth2_token_file = %s\n" % token_file
        return text + extra

    def token_file(self, token=None):
        path = self.tmp.join("refresh-token")
        with open(path, "w") as f:
            f.write((token or self.provider.grant_new_refresh_token()) + "\n")
        os.chmod(path, 0o600)
        return path

    def stored(self):
        if not os.path.exists(self.alcode.db):
            return []
        return [r[0] for r in self.alcode.sql("SELECT value FROM codes")]

    def auth_lines(self):
        return [l for l in self.dovecot.log().splitlines() if "imap-login: Info: Login: " in l]


class Daemon(unittest.TestCase):
    def test_oauthbearer_from_capabilities_and_code_stored(self):
        e = Env(self)
        e.alcode.write_config(e.account(token_file=e.token_file()))
        r = e.alcode.daemon("--once", "--verbose")
        self.assertIn(e.codes[0], e.stored(), r.stderr)
        self.assertEqual(e.provider.count("/token", "refresh_token"), 1)
        logins = e.auth_lines()
        self.assertTrue(logins and "method=OAUTHBEARER" in logins[-1], e.dovecot.log()[-2000:])
        # dovecot asked the provider, which said the token was live.
        self.assertIn((True, True), e.provider.introspections)

    def test_xoauth2_when_only_that_is_offered(self):
        e = Env(self, mechanisms="plain login xoauth2")
        e.alcode.write_config(e.account(token_file=e.token_file()))
        r = e.alcode.daemon("--once")
        self.assertIn(e.codes[0], e.stored(), r.stderr)
        self.assertIn("method=XOAUTH2", e.auth_lines()[-1])

    def test_explicit_oauthbearer_and_xoauth2(self):
        e = Env(self)
        tf = e.token_file()
        e.alcode.write_config(e.account(name="a", auth="xoauth2", token_file=tf))
        e.alcode.daemon("--once")
        self.assertIn("method=XOAUTH2", e.auth_lines()[-1])
        e.alcode.write_config(e.account(name="b", auth="oauthbearer", token_file=tf))
        e.alcode.daemon("--once")
        self.assertIn("method=OAUTHBEARER", e.auth_lines()[-1])

    def test_untrusted_provider_certificate_is_refused(self):
        e = Env(self)
        # A provider whose certificate comes from another CA: nothing may be sent to it.
        other = TempDir()
        self.addCleanup(other.cleanup)
        _, cert, key = make_ca(other.path, name="rogue")
        rogue = OAuthProvider(cert, key, client_id=CLIENT_ID)
        self.addCleanup(rogue.stop)
        rt = rogue.grant_new_refresh_token()
        e.alcode.write_config(e.account(token_file=e.token_file(rt)).replace(e.provider.base, rogue.base))
        r = e.alcode.daemon("--once", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate of 127.0.0.1:%d refused" % rogue.port, r.stderr)
        self.assertEqual(rogue.requests, [], "a request reached a provider with an untrusted certificate")
        self.assertEqual(e.stored(), [])

    def test_token_file_must_be_private(self):
        e = Env(self)
        tf = e.token_file()
        os.chmod(tf, 0o644)
        e.alcode.write_config(e.account(token_file=tf))
        r = e.alcode.daemon("--once", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no one else can read", r.stderr)
        self.assertEqual(e.provider.count("/token"), 0)

    def test_refresh_before_expiry(self):
        # Access tokens that live 6 s: a login within the last fifth of that life (1.2 s) gets
        # a new one first; dovecot refuses expired ones, so a stale token would fail the login.
        e = Env(self, expires_in=6)
        e.alcode.write_config(e.account(token_file=e.token_file(),
                                        extra="poll_interval = 10\nidle = Nothing\n"))
        bus = DBusSession(e.tmp)
        self.addCleanup(bus.stop)
        e.alcode.bus = bus
        notify = NotifySocket(e.tmp)
        self.addCleanup(notify.close)
        p = start_daemon(self, e.alcode, "--verbose", notify=notify,
                         env={"ALCODE_TEST_POLL_INTERVAL": "1", "ALCODE_TEST_BACKOFF_MAX": "1"})
        wait_for(lambda: e.codes[0] in e.stored(), timeout=20, what="the first code")
        self.assertEqual(e.provider.count("/token", "refresh_token"), 1)
        # Cut every session: alcoded logs in again; past 4.8 s it must refresh first.
        time.sleep(5.5)
        subprocess.run(["doveadm", "-c", e.dovecot.conf, "kick", "alice"], capture_output=True)
        e.dovecot.deliver("alice", "INBOX", code_mail(e.codes[1]))
        wait_for(lambda: e.codes[1] in e.stored(), timeout=30, what="the second code")
        self.assertGreaterEqual(e.provider.count("/token", "refresh_token"), 2)
        self.assertEqual([i for i in e.provider.introspections if i[0] and not i[1]], [],
                         "alcoded sent an expired access token")
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))


    def test_revoked_refresh_token_needs_sign_in_once(self):
        e = Env(self)
        e.alcode.write_config(e.account(token_file=e.token_file()))
        e.provider.revoke()
        bus = DBusSession(e.tmp)
        self.addCleanup(bus.stop)
        monitor = BusMonitor(bus)
        self.addCleanup(monitor.stop)
        e.alcode.bus = bus
        notify = NotifySocket(e.tmp)
        self.addCleanup(notify.close)
        p = start_daemon(self, e.alcode, "--verbose", notify=notify, env={"ALCODE_TEST_BACKOFF_MAX": "1"})
        hint = "needs you to sign in again: alcode init --reauth perso"
        notify.wait("STATUS", lambda v: hint in v, timeout=20)
        st = e.alcode.run("status").stdout
        self.assertIn(hint, st)
        row = json.loads(e.alcode.run("status", "--json").stdout.splitlines()[0])
        self.assertEqual(row["state"], "failed")
        # Several backoff periods: no login loop, no second token request.
        time.sleep(4)
        calls = [n for n in monitor.notify_calls() if "sign in again" in n["summary"]]
        self.assertEqual(len(calls), 1, monitor.notify_calls())
        self.assertEqual(calls[0]["summary"], "alcode: sign in again for 'perso'")
        self.assertIn(hint, calls[0]["body"])
        self.assertEqual(e.provider.count("/token"), 1)
        self.assertEqual(e.auth_lines(), [])
        self.assertNotIn("method=", e.dovecot.log())
        # A reload restarts the account, which does not send the refused token again.
        p.send_signal(signal.SIGHUP)
        time.sleep(3)
        self.assertEqual(e.provider.count("/token"), 1)
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))
        self.assertIn(hint, read_log(p))

    def test_rotated_refresh_token_is_kept(self):
        e = Env(self, rotate_refresh=True)
        tf = e.token_file()
        with open(tf) as f:
            first = f.read().strip()
        e.alcode.write_config(e.account(token_file=tf))
        e.alcode.daemon("--once")
        with open(tf) as f:
            second = f.read().strip()
        self.assertNotEqual(first, second)
        self.assertIn(second, e.provider.refresh_tokens)
        self.assertEqual(stat.S_IMODE(os.stat(tf).st_mode), 0o600)
        # The next run works with the new one (the old one is dead at the provider).
        e.dovecot.deliver("alice", "INBOX", code_mail(e.codes[1]))
        e.alcode.daemon("--once")
        self.assertIn(e.codes[1], e.stored())

    def test_no_token_in_log_or_journal(self):
        e = Env(self, rotate_refresh=True)
        e.alcode.write_config(e.account(token_file=e.token_file()))
        r = e.alcode.daemon("--once", "--verbose")
        self.assertIn(e.codes[0], e.stored(), r.stderr)
        lines = r.stderr.splitlines()
        self.assertGreater(len(lines), 3)
        e.dovecot.deliver("alice", "INBOX", code_mail(e.codes[1]))
        result = run_with_private_journal(self, e.tmp, [binary("alcoded"), "--once", "--verbose"], e.alcode.env(),
                                          timeout=120)
        self.assertEqual(result["rc"], 0, result["stderr"][-3000:])
        self.assertIn(e.codes[1], e.stored())
        secrets = list(e.provider.issued)
        self.assertGreaterEqual(len(secrets), 4)  # two refresh tokens, two access tokens at least
        leaks = [(s, l) for l in lines for s in secrets if s in l]
        leaks += [(s, k, v) for rec in result["records"] for k, v in rec.items() for s in secrets if s in v]
        self.assertEqual(leaks, [], "a token in the log or the journal")
        self.assertGreater(len(result["records"]), 3)


if __name__ == "__main__":
    main()
