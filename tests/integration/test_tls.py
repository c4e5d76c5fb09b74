"""Connecting safely: certificate verification before any credential, pins, STARTTLS that is
not offered, refused logins, XOAUTH2 and password commands, each against a real dovecot.

A refused certificate must say why and print the server's fingerprint, and dovecot's own log
must show that no login was attempted: the password never left the machine."""

import os
import subprocess
import time
import unittest

from alcodetest import (Alcode, DEMO_MAIL_DIR, Dovecot, TempDir, cert_fingerprint, main, make_ca,
                        read_log, self_signed, wait_for)


def expired_cert(directory, ca_pem, ca_key):
    """A leaf for localhost/127.0.0.1 signed by the test CA that expired yesterday."""
    key, csr, pem, ext = (os.path.join(directory, "expired" + s) for s in (".key", ".csr", ".pem", ".ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", pem, "-days", "-1", "-extfile", ext], check=True, capture_output=True)
    return pem, key


class Tls(unittest.TestCase):
    def server(self, cert=None, starttls=True, users=None):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        d = Dovecot(tmp, cert=cert, starttls=starttls, users=users)
        if "alice" in d.users:
            d.load_tree("alice", DEMO_MAIL_DIR)
        d.start()
        self.addCleanup(d.stop)
        return d

    def client(self, text):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        a = Alcode(tmp)
        a.write_config(text)
        return a

    @staticmethod
    def account(d, tls="implicit", extra="", user="alice"):
        port = d.tls_port if tls == "implicit" else d.port
        return ("[account t]\nhost = 127.0.0.1\nport = %d\ntls = %s\nuser = %s\npassword = %s\n%s"
                % (port, tls, user, d.users[user], extra))

    def assert_no_login(self, d):
        log = d.log()
        self.assertNotIn("user=<alice>", log)
        self.assertNotIn("passwd-file(alice", log)

    def assert_refused(self, d, a, why, fingerprint_of=None):
        r = a.daemon("--once", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("certificate of 127.0.0.1 refused", r.stderr)
        self.assertIn(why, r.stderr)
        if fingerprint_of:
            self.assertIn("server fingerprint " + cert_fingerprint(fingerprint_of), r.stderr)
        self.assertEqual(a.list_json(), [])
        self.assert_no_login(d)
        return r

    def test_self_signed_refused_then_pinned(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        pem, key = self_signed(tmp.path)
        d = self.server(cert=(pem, pem, key))
        for tls in ("implicit", "starttls"):
            with self.subTest(tls=tls):
                self.assert_refused(d, self.client(self.account(d, tls)), "issuer is unknown", pem)
        # Pinned knowingly: accepted, with or without a CA.
        a = self.client(self.account(d, extra="fingerprint = %s\n" % cert_fingerprint(pem)))
        r = a.daemon("--once")
        self.assertIn("R7KD2M9Q", {c["value"] for c in a.list_json()})
        # A pin that does not match refuses even a valid certificate.
        a = self.client(self.account(d, extra="fingerprint = sha256:" + ":".join(["AB"] * 32) + "\n"))
        r = a.daemon("--once", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not match the pinned fingerprint", r.stderr)

    def test_unknown_ca_wrong_host_expired(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        ca, _, _ = make_ca(tmp.path)
        ca_key = os.path.join(tmp.path, "ca.key")
        # A certificate from a CA the system does not know (no ca_file).
        d = self.server(cert=make_ca(tmp.path, name="good", ca=(ca, ca_key)))
        self.assert_refused(d, self.client(self.account(d)), "issuer is unknown")
        # With ca_file: accepted.
        a = self.client(self.account(d, extra="ca_file = %s\n" % ca))
        self.assertEqual(a.daemon("--once").returncode, 0)
        # A valid certificate for another name.
        other = make_ca(tmp.path, hosts=("imap.example.org",), ips=(), name="other", ca=(ca, ca_key))
        d = self.server(cert=other)
        self.assert_refused(d, self.client(self.account(d, extra="ca_file = %s\n" % ca)),
                            "does not match '127.0.0.1'")
        # Expired.
        pem, key = expired_cert(tmp.path, ca, ca_key)
        d = self.server(cert=(ca, pem, key))
        self.assert_refused(d, self.client(self.account(d, extra="ca_file = %s\n" % ca)), "expired")

    def test_starttls_not_offered(self):
        d = self.server(starttls=False)
        a = self.client(self.account(d, "starttls", extra="ca_file = %s\n" % d.ca))
        r = a.daemon("--once", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not offer STARTTLS", r.stderr)
        self.assert_no_login(d)

    def test_wrong_password_fails_once_and_stops(self):
        d = self.server()
        a = self.client(self.account(d, extra="ca_file = %s\n" % d.ca).replace("password = secret1", "password = wrong"))
        p = a.spawn_daemon()
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.logfile.close()))
        wait_for(lambda: "refused" in read_log(p), timeout=20, what="the refused login")
        self.assertIn("login as 'alice' (login) refused", read_log(p))
        # No retry storm: the daemon stays up, and the server saw one attempt, not more.
        with self.assertRaises(TimeoutError):
            wait_for(lambda: d.log().count("Password mismatch") > 1, timeout=4, what="a second attempt")
        self.assertEqual(d.log().count("Password mismatch"), 1, d.log())
        self.assertIsNone(p.poll())
        self.assertNotIn("wrong", read_log(p))

    def test_xoauth2_and_password_command(self):
        d = self.server(users={"alice": "secret1", "carol": "tok-123.abc"})
        d.load_tree("carol", DEMO_MAIL_DIR)
        base = ("[account t]\nhost = 127.0.0.1\nport = %d\ntls = implicit\nuser = carol\n"
                "ca_file = %s\nauth = xoauth2\n" % (d.tls_port, d.ca))
        a = self.client(base + "password_command = sh -c 'echo tok-123.abc; echo second line'\n")
        r = a.daemon("--once")
        self.assertIn("R7KD2M9Q", {c["value"] for c in a.list_json()})
        self.assertIn("method=XOAUTH2", d.log())
        self.assertNotIn("tok-123", r.stderr)
        # A failing command: its status, never its output, and nothing sent to the server.
        a = self.client(base + "password_command = sh -c 'echo tok-123.abc; exit 3'\n")
        r = a.daemon("--once", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("password_command exited with status 3", r.stderr)
        self.assertNotIn("tok-123", r.stderr)
        self.assertEqual(d.log().count("method=XOAUTH2"), 1)


if __name__ == "__main__":
    main()
