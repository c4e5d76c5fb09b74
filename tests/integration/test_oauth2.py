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
import urllib.error
import urllib.parse
import urllib.request

from alcodetest import (RULES_DIR, Alcode, BusMonitor, DBusSession, Dovecot, NotifySocket, TempDir, binary, code_mail, main,
                        make_ca, random_codes, read_log, require_tools, run_with_private_journal, start_daemon,
                        stop_daemon, wait_for)
from oauthprovider import OAuthProvider, dovecot_oauth2

CLIENT_ID = "alcode-test-client"


class Env:
    """A test CA, a provider with a certificate from it, dovecot checking tokens with it."""

    def __init__(self, test, expires_in=3600, rotate_refresh=False, device_slow_down=False, mechanisms=None,
                 token_delay=0):
        self.tmp = TempDir()
        test.addCleanup(self.tmp.cleanup)
        self.ca, cert, key = make_ca(self.tmp.path, name="provider")
        self.provider = OAuthProvider(cert, key, user="alice", client_id=CLIENT_ID, expires_in=expires_in,
                                      rotate_refresh=rotate_refresh, device_slow_down=device_slow_down,
                                      token_delay=token_delay)
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
        # An installed alcode finds its rules in /usr/share; this one finds them as the user's own
        # (configs written by alcode init have no rules = line).
        os.symlink(RULES_DIR, os.path.join(self.alcode.config_dir, "rules.d"))

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
        # Access tokens that live 15 s: a login in the last fifth of that life (3 s) gets a new
        # one first, while the old one would still pass. dovecot refuses expired tokens.
        e = Env(self, expires_in=15)
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
        first = e.provider.refreshes[0][0]
        # 11.5 s into the token's life (3.5 s left): cut every session; alcoded logs in again
        # about a second later, inside the last fifth.
        time.sleep(max(0, first + 11.5 - time.time()))
        subprocess.run(["doveadm", "-c", e.dovecot.conf, "kick", "alice"], capture_output=True)
        e.dovecot.deliver("alice", "INBOX", code_mail(e.codes[1]))
        wait_for(lambda: e.codes[1] in e.stored(), timeout=30, what="the second code")
        self.assertGreaterEqual(e.provider.count("/token", "refresh_token"), 2, read_log(p))
        when, left = e.provider.refreshes[1]
        self.assertGreater(left, 0, "the refresh came after the token expired, not before")
        self.assertLess(left, 3.1)
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

    def test_stop_while_the_provider_hangs(self):
        # SIGTERM while the token request is unanswered: the request is abandoned within a
        # second and the worker exits cleanly, before the manager's 3 s limit for stuck
        # workers (not after libcurl's 30 s timeout).
        e = Env(self, token_delay=40)
        e.alcode.write_config(e.account(token_file=e.token_file()))
        p = e.alcode.spawn_daemon("--verbose")
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.logfile.close()))
        wait_for(lambda: e.provider.count("/token") == 1, timeout=20, what="the token request")
        time.sleep(0.5)
        rc, took = stop_daemon(p, timeout=20)
        self.assertEqual(rc, 0, read_log(p))
        self.assertLess(took, 2.8, read_log(p))
        self.assertNotIn("Exiting without waiting", read_log(p))

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def play_browser(url, ca):
    """What a browser does: open the provider's page (which signs in at once), follow its redirect to
    alcode's loopback listener, and return the page alcode shows."""
    ctx = ssl.create_default_context(cafile=ca)
    opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=ctx))
    try:
        opener.open(url, timeout=10)
        raise AssertionError("the provider did not redirect")
    except urllib.error.HTTPError as e:
        if e.code != 302:
            raise AssertionError("the provider answered %d: %s" % (e.code, e.read()))
        location = e.headers["Location"]
    assert location.startswith(("http://127.0.0.1:", "http://localhost:")), location
    with urllib.request.urlopen(location, timeout=10) as r:
        return r.read().decode()


class Output:
    """A running `alcode init` whose stdout is read line by line in a thread."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, text=True)
        self.lines = []
        self.err = ""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _read_err(self):
        self.err = self.proc.stderr.read()

    def wait_line(self, pattern, timeout=20):
        def found():
            if self.proc.poll() is not None and not any(re.search(pattern, l) for l in self.lines):
                time.sleep(0.2)
                if not any(re.search(pattern, l) for l in self.lines):
                    raise AssertionError("alcode init ended (%d) before %r:\n%s\n%s"
                                         % (self.proc.returncode, pattern, "\n".join(self.lines), self.err))
            return next((re.search(pattern, l) for l in self.lines if re.search(pattern, l)), None)
        return wait_for(found, timeout=timeout, what=pattern)

    def wait(self, timeout=30):
        rc = self.proc.wait(timeout=timeout)
        time.sleep(0.1)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc

    def text(self):
        return "\n".join(self.lines) + "\n" + self.err


def start_keyring(test, tmp, alcode):
    require_tools("gnome-keyring-daemon", "secret-tool", "busctl")
    bus = DBusSession(tmp)
    test.addCleanup(bus.stop)
    alcode.bus = bus
    env = alcode.env()
    keyring = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--components=secrets", "--unlock"],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    keyring.stdin.write(b"keyring-password")
    keyring.stdin.close()
    test.addCleanup(lambda: (keyring.terminate(), keyring.wait()))
    wait_for(lambda: bus.has_owner("org.freedesktop.secrets"), what="the keyring on the bus")
    return env


class Init(unittest.TestCase):
    def init_args(self, e, *extra):
        p = e.provider.base
        return [binary("alcode"), "init", "--yes", "--no-enable", "--email", "alice@example.org", "--user", "alice",
                "--host", "127.0.0.1", "--port", str(e.dovecot.tls_port), "--ca-file", e.ca, "--account", "perso",
                "--oauth2-authorize-url", p + "/authorize", "--oauth2-token-url", p + "/token",
                "--oauth2-device-url", p + "/device"] + list(extra)

    def test_browser_sign_in_keyring_to_stored_code(self):
        # End to end: alcode init (the test plays the browser) → refresh token in the Secret
        # Service → alcoded --once logs in through dovecot's oauth2 passdb → the code is stored.
        e = Env(self)
        env = start_keyring(self, e.tmp, e.alcode)
        env["DISPLAY"] = ""
        out = Output(self.init_args(e, "--oauth2", "--oauth2-client-id", CLIENT_ID), env)
        m = out.wait_line(r"^(https://127\.0\.0\.1:\d+/authorize\?.*)$")
        url = m.group(1)
        q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
        self.assertEqual(q["code_challenge_method"], ["S256"])
        self.assertEqual(q["client_id"], [CLIENT_ID])
        self.assertTrue(q["redirect_uri"][0].startswith("http://127.0.0.1:"))
        page = play_browser(url, e.ca)
        self.assertIn("alcode is signed in", page)
        self.assertEqual(out.wait(), 0, out.text())
        self.assertIn("It works", out.text())
        with open(e.alcode.config) as f:
            conf = f.read()
        self.assertIn("auth = oauth2\n", conf)
        self.assertIn("oauth2_client_id = %s\n" % CLIENT_ID, conf)
        self.assertNotIn("oauth2_token_file", conf)
        for t in e.provider.issued:
            self.assertNotIn(t, conf)
            self.assertNotIn(t, out.text())
        r = subprocess.run(["secret-tool", "lookup", "alcode-oauth2", "perso"], env=env, capture_output=True, text=True)
        self.assertIn(r.stdout.strip(), e.provider.refresh_tokens)
        self.assertEqual(e.provider.count("/token", "authorization_code"), 1)
        # The provider rotates refresh tokens (Microsoft does): alcoded puts the new one back.
        e.provider.rotate_refresh = True
        first = r.stdout.strip()
        d = e.alcode.daemon("--once", "--verbose", env={"DBUS_SESSION_BUS_ADDRESS": env["DBUS_SESSION_BUS_ADDRESS"]})
        self.assertIn(e.codes[0], e.stored(), d.stderr)
        self.assertEqual(e.provider.count("/token", "refresh_token"), 1)
        r = subprocess.run(["secret-tool", "lookup", "alcode-oauth2", "perso"], env=env, capture_output=True, text=True)
        self.assertNotEqual(r.stdout.strip(), first)
        self.assertIn(r.stdout.strip(), e.provider.refresh_tokens)

    def test_outlook_address_offers_browser_and_asks_client_id(self):
        e = Env(self)
        tf = e.tmp.join("outlook.token")
        p = e.provider.base
        t = e.alcode.terminal("init", "--no-enable", "--email", "jeanne@outlook.fr", "--user", "alice",
                              "--host", "127.0.0.1", "--port", str(e.dovecot.tls_port), "--tls", "implicit",
                              "--ca-file", e.ca, "--oauth2-authorize-url", p + "/authorize", "--oauth2-token-url", p + "/token",
                              "--token-file", tf, env={"DISPLAY": ""})
        t.expect("1  sign in in the browser (recommended)")
        t.expect("2  sign in on another device with a code")
        t.expect("Your choice [")
        t.type("")
        t.expect("alcode ships none of its")
        t.expect("Application (client) id")
        t.type(CLIENT_ID)
        t.expect("open this address:\n\n")
        url = t.expect("\n").strip()
        self.assertTrue(url.startswith(p + "/authorize?"), url)
        self.assertIn("login_hint=jeanne%40outlook.fr", url)
        # Microsoft matches a registered http://localhost whatever the port.
        self.assertRegex(url, r"redirect_uri=http%3A%2F%2Flocalhost%3A\d+%2F&")
        play_browser(url, e.ca)
        t.expect("It works", timeout=30)
        t.expect("The sign-in is kept in %s" % tf)
        t.expect("employer's mail domain")
        t.type("")
        self.assertEqual(t.wait(), 0, t.transcript)
        self.assertEqual(stat.S_IMODE(os.stat(tf).st_mode), 0o600)
        with open(tf) as f:
            self.assertIn(f.read().strip(), e.provider.refresh_tokens)
        with open(e.alcode.config) as f:
            conf = f.read()
        self.assertIn("oauth2_provider = microsoft\n", conf)
        self.assertIn("oauth2_token_file = %s\n" % tf, conf)
        e.alcode.daemon("--once")
        self.assertIn(e.codes[0], e.stored())

    def test_device_grant_with_slow_down(self):
        e = Env(self, device_slow_down=True)
        tf = e.tmp.join("device.token")
        out = Output(self.init_args(e, "--oauth2-provider", "microsoft", "--oauth2-client-id", CLIENT_ID,
                                    "--device", "--token-file", tf), e.alcode.env())
        m = out.wait_line(r"type the code (\d{4}-\d{4})")
        self.assertTrue(any(e.provider.base + "/device" in l for l in out.lines), out.text())
        self.assertTrue(e.provider.approve_device(m.group(1)))
        polls = []
        wait_for(lambda: e.provider.device_polls() and e.provider.device_polls()[0] or None, timeout=10)
        polls = e.provider.device_polls()[0][:]
        self.assertEqual(out.wait(timeout=60), 0, out.text())
        self.assertIn("It works", out.text())
        # Outside ~/.local/share/alcode the service could not store a rotated token: said.
        self.assertIn("Note: the alcoded service may write only in %s/" % os.path.dirname(e.alcode.db), out.text())
        # One poll answered slow_down: the next came at least 1 + 5 s later (RFC 8628 §3.5).
        total = e.provider.count("/token", "urn:ietf:params:oauth:grant-type:device_code")
        self.assertEqual(total, 2)
        self.assertEqual(len(polls), 1)
        with open(tf) as f:
            self.assertIn(f.read().strip(), e.provider.refresh_tokens)
        e.alcode.daemon("--once")
        self.assertIn(e.codes[0], e.stored())

    def test_reauth_after_revocation(self):
        e = Env(self)
        tf = e.token_file()
        e.alcode.write_config(e.account(token_file=tf))
        e.provider.revoke()
        r = e.alcode.daemon("--once", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("needs you to sign in again: alcode init --reauth perso", r.stderr)
        out = Output([binary("alcode"), "init", "--reauth", "perso"], dict(e.alcode.env(), DISPLAY=""))
        url = out.wait_line(r"^(https://127\.0\.0\.1:\d+/authorize\?.*)$").group(1)
        play_browser(url, e.ca)
        self.assertEqual(out.wait(), 0, out.text())
        self.assertIn("It works", out.text())
        with open(tf) as f:
            self.assertIn(f.read().strip(), e.provider.refresh_tokens)
        self.assertEqual(stat.S_IMODE(os.stat(tf).st_mode), 0o600)
        e.alcode.daemon("--once")
        self.assertIn(e.codes[0], e.stored())

    def test_second_account_reuses_the_client_id(self):
        e = Env(self)
        e.alcode.write_config(e.account(token_file=e.token_file(), extra="oauth2_provider = microsoft\n"))
        args = self.init_args(e, "--oauth2", "--oauth2-provider", "microsoft", "--token-file", e.tmp.join("second"))
        args[args.index("perso")] = "second"
        out = Output(args, dict(e.alcode.env(), DISPLAY=""))
        url = out.wait_line(r"^(https://127\.0\.0\.1:\d+/authorize\?.*)$").group(1)
        play_browser(url, e.ca)
        self.assertEqual(out.wait(), 0, out.text())
        self.assertIn("Using the application (client) id of account 'perso'.", out.text())
        with open(e.alcode.config) as f:
            conf = f.read()
        self.assertEqual(conf.count("oauth2_client_id = %s\n" % CLIENT_ID), 2, conf)

    def test_init_refuses_an_untrusted_provider(self):
        e = Env(self)
        other = TempDir()
        self.addCleanup(other.cleanup)
        _, cert, key = make_ca(other.path, name="rogue")
        rogue = OAuthProvider(cert, key, client_id=CLIENT_ID)
        self.addCleanup(rogue.stop)
        args = [a.replace(e.provider.base, rogue.base) for a in self.init_args(
            e, "--oauth2-provider", "microsoft", "--oauth2-client-id", CLIENT_ID, "--device", "--token-file",
            e.tmp.join("t"))]
        r = subprocess.run(args, env=e.alcode.env(), capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate of 127.0.0.1:%d refused" % rogue.port, r.stdout)
        self.assertIn("The provider's certificate was refused, so nothing was sent to it.", r.stdout)
        self.assertEqual(rogue.requests, [])
        self.assertFalse(os.path.exists(e.alcode.config) and "oauth2" in open(e.alcode.config).read())

    def test_token_refused_by_the_server_writes_nothing(self):
        # The provider signs in someone else than the IMAP login: dovecot refuses the token.
        e = Env(self)
        e.provider.user = "bob"
        out = Output(self.init_args(e, "--oauth2", "--oauth2-client-id", CLIENT_ID, "--token-file",
                                    e.tmp.join("t")), dict(e.alcode.env(), DISPLAY=""))
        url = out.wait_line(r"^(https://127\.0\.0\.1:\d+/authorize\?.*)$").group(1)
        play_browser(url, e.ca)
        self.assertEqual(out.wait(), 1, out.text())
        self.assertIn("It refused the access token the provider gave", out.text())
        self.assertIn("Stopped; nothing was written.", out.text())
        self.assertFalse(os.path.exists(e.tmp.join("t")))
        self.assertFalse(os.path.exists(e.alcode.config))

    def test_gmail_needs_the_client_secret(self):
        e = Env(self)
        r = e.alcode.run("init", "--yes", "--no-enable", "--email", "jeanne@gmail.com", "--oauth2",
                         "--oauth2-client-id", CLIENT_ID, check=False)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("Google (Gmail) also needs the client secret of your application: give "
                      "--oauth2-client-secret.", r.stderr)
        self.assertEqual(e.provider.requests, [])

    def test_state_mismatch_is_ignored(self):
        # A request to the loopback listener that does not carry our state (another page, a
        # forged redirect) is refused; the real one still works.
        e = Env(self)
        out = Output(self.init_args(e, "--oauth2", "--oauth2-client-id", CLIENT_ID, "--token-file",
                                    e.tmp.join("t")), dict(e.alcode.env(), DISPLAY=""))
        url = out.wait_line(r"^(https://127\.0\.0\.1:\d+/authorize\?.*)$").group(1)
        redirect = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["redirect_uri"][0]
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(redirect + "?code=forged&state=wrong", timeout=5)
        self.assertEqual(cm.exception.code, 400)
        play_browser(url, e.ca)
        self.assertEqual(out.wait(), 0, out.text())
        self.assertEqual(e.provider.count("/token", "authorization_code"), 1)


if __name__ == "__main__":
    main()
