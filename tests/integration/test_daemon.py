"""alcoded as a service: READY=1/STATUS=/WATCHDOG=1/STOPPING=1 on a NOTIFY_SOCKET, `alcode status`,
new mail → stored code + desktop notification (dunst under Xvfb, on a private bus), untrusted
look-alikes, grouped backfills, refused logins, a clean SIGTERM and no secret in the log.

One dovecot serves the whole file; each test uses its own user (mailbox), bus, dunst and daemon."""

import os
import json
import subprocess

from alcodetest import (BusMonitor, DaemonTestCase, Notifications, code_mail, main, random_codes, read_log,
                        start_daemon, stop_daemon, wait_for)

USERS = {"alice": "pw-alice-7261", "carol": "pw-carol-0937", "erin": "pw-erin-5518"}


def find_code(alcode, value):
    if not os.path.exists(alcode.db):
        return None
    rows = alcode.sql("SELECT value FROM codes WHERE value = '%s'" % value)
    return rows[0][0] if rows else None


class Daemon(DaemonTestCase):
    USERS = USERS

    @classmethod
    def fill(cls):
        cls.codes = random_codes(20, seed=6)
        # carol: a backfill of 12 code mails (and some without).
        for i, c in enumerate(cls.codes[8:20]):
            cls.dovecot.deliver("carol", "INBOX", code_mail(c))
            cls.dovecot.deliver("carol", "Archive" if i % 2 else "INBOX",
                                b"From: a@b.example\r\nSubject: hello\r\n\r\nnothing here %d\r\n" % i)

    def setUp(self):
        super().setUp()
        self.notifications = Notifications(self.t, self.bus)
        self.addCleanup(self.notifications.stop)
        self.monitor = BusMonitor(self.bus)
        self.addCleanup(self.monitor.stop)

    def configure(self, user, name=None, extra=""):
        self.alcode.write_config(self.dovecot.account_config(name or user, user=user, extra=extra))

    def wait_code(self, value, timeout=20):
        """Waits for a code to be stored: pushed by the daemon (IDLE or poll), or after one
        `alcode rescan` if it does not come by itself within a few seconds."""
        try:
            return wait_for(lambda: find_code(self.alcode, value), timeout=2, what="code by itself")
        except TimeoutError:
            self.alcode.run("rescan")
            return wait_for(lambda: find_code(self.alcode, value), timeout=timeout, what="code " + value)

    def shown(self, predicate, timeout=10):
        return wait_for(lambda: [n for n in self.monitor.notify_calls() if predicate(n)], timeout=timeout,
                        what="a notification")

    def test_service_lifecycle_and_new_mail(self):
        self.configure("alice", "perso")
        p = start_daemon(self, self.alcode, notify=self.notify, watchdog_usec=400000)

        # READY=1 came from the daemon itself, then STATUS= says how each account is.
        self.notify.wait("STATUS", lambda v: v == "perso: watching")
        self.notify.wait("WATCHDOG", "1")
        self.assertGreaterEqual(len(self.notify.values("WATCHDOG")), 1)

        st = self.alcode.run("status")
        self.assertIn("perso", st.stdout)
        self.assertIn("watching", st.stdout)
        js = self.alcode.run("status", "--json").stdout.splitlines()
        self.assertEqual(len(js), 1)
        row = json.loads(js[0])
        self.assertEqual(row["account"], "perso")
        self.assertEqual(row["state"], "idle")
        self.assertIsNone(row["error"])
        self.assertRegex(row["last_sync"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

        # New mail: stored, announced on the bus, shown.
        code = self.codes[0]
        value = code.replace(" ", "")
        self.dovecot.append("alice", "INBOX", code_mail(code, date="Tue, 03 Mar 2026 09:14:00 +0100"))
        self.wait_code(value)
        n = self.shown(lambda n: code in n["body"])[0]
        self.assertEqual(n["app"], "alcode")
        self.assertEqual(n["summary"], "Action Logement: specific code")
        self.assertIn("notifications@al-in.fr", n["body"])
        self.assertIn("2026-03-03", n["body"])
        self.assertEqual(set(n["actions"]), {"default", "copy"})
        self.assertEqual(n["hints"], {"desktop-entry": "alcode", "category": "email.arrived", "urgency": 1})
        found = self.monitor.signals("CodeFound", "io.github.alcode.Daemon1")
        self.assertIn([value], [[f[2]] for f in found])
        self.assertTrue([f for f in found if f[2] == value][0][3])  # trusted
        # A click (dunst's default action) replaces our notification with where the code came from.
        subprocess.run(["dunstctl", "action", "0"], env=dict(os.environ, **self.bus.env()), check=True)
        d = self.shown(lambda d: d["replaces"] != 0)[0]
        self.assertIn("Account: perso / INBOX", d["body"])
        self.assertIn("From: notifications@al-in.fr", d["body"])
        # What the user saw, read back from dunst (which lists closed notifications only).
        subprocess.run(["dunstctl", "close-all"], env=dict(os.environ, **self.bus.env()), check=True)
        h = wait_for(lambda: [h for h in self.notifications.history() if h["id"] == d["replaces"]],
                     what="dunst history")[0]
        self.assertEqual(h["summary"], "Action Logement: specific code")
        self.assertEqual(h["appname"], "alcode")

        # A look-alike sender: stored untrusted, shown with a warning and no copy action.
        fake = self.codes[1]
        self.dovecot.append("alice", "Junk", code_mail(fake, sender="service@al-in-fr.example",
                                                       auth_domain="al-in-fr.example"))
        self.wait_code(fake.replace(" ", ""))
        w = self.shown(lambda n: fake in n["body"])[0]
        self.assertEqual(w["summary"], "⚠ Unverified sender: specific code")
        self.assertIn("not Action Logement's", w["body"])
        self.assertNotIn("copy", w["actions"])
        self.assertEqual(self.alcode.sql("SELECT trusted FROM codes WHERE value = '%s'" % fake.replace(" ", "")),
                         [(0,)])

        # SIGTERM: STOPPING=1, exit 0, promptly.
        rc, took = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))
        self.assertLess(took, 5)
        self.notify.wait("STOPPING", "1", timeout=1)

        # Nothing secret in the log of the whole run.
        log = read_log(p)
        for secret in (code, value, fake, fake.replace(" ", ""), USERS["alice"]):
            self.assertNotIn(secret, log)

    def test_backfill_is_one_notification(self):
        self.configure("carol")
        p = start_daemon(self, self.alcode, notify=self.notify)
        self.notify.wait("STATUS", "carol: watching", timeout=30)
        self.assertEqual(self.alcode.sql("SELECT count(*) FROM codes")[0][0], 12)
        calls = self.shown(lambda n: True)
        self.assertEqual(calls[0]["summary"], "Action Logement: 12 codes found")
        # The newest specific code leads, with Copy; the 11 it supersedes are only counted.
        latest = self.alcode.run("latest").stdout.strip()
        first = calls[0]["body"].splitlines()[0]
        self.assertTrue(first.startswith("specific code: "), calls[0]["body"])
        self.assertEqual(first.split(": ", 1)[1].replace(" ", ""), latest)
        self.assertEqual(calls[0]["body"].count("specific code: "), 1)
        self.assertIn("Also found: specific code ×11\n", calls[0]["body"])
        self.assertIn("copy", calls[0]["actions"])
        # The pass is over: a code that comes now is shown by a notification of its own, sent
        # on the same connection after any the backfill made. Once it is seen, the backfill's
        # notifications are all in, and there must be only the one.
        late = self.codes[7]
        self.dovecot.append("carol", "INBOX", code_mail(late))
        self.wait_code(late.replace(" ", ""))
        self.shown(lambda n: late in n["body"])
        calls = self.monitor.notify_calls()
        self.assertEqual(len(calls), 2, calls)
        self.assertEqual(calls[0]["summary"], "Action Logement: 12 codes found")
        self.assertIn(late, calls[1]["body"])
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0)

    def test_refused_login_and_certificate_are_shown(self):
        self.alcode.write_config(self.dovecot.account_config("erin", user="erin").replace(
            USERS["erin"], "wrong-password-1234") + self.dovecot.account_config(
            "pinned", user="alice", extra="fingerprint = sha256:" + ":".join(["AB"] * 32) + "\n"))
        p = start_daemon(self, self.alcode, notify=self.notify)
        n = self.shown(lambda n: "login refused" in n["summary"], timeout=20)[0]
        self.assertEqual(n["summary"], "alcode: login refused for 'erin'")
        self.assertEqual(n["hints"]["urgency"], 2)
        self.assertIn("systemctl --user reload alcoded", n["body"])
        self.notify.wait("STATUS", lambda v: v.startswith("erin: error (") and "; pinned: error (" in v)
        row = json.loads(self.alcode.run("status", "--json").stdout.splitlines()[0])
        self.assertEqual(row["state"], "failed")
        self.assertTrue(row["error"])
        self.assertIn(["erin", "failed"], self.monitor.signals("AccountStateChanged"))
        # A certificate that does not match the pin: refused before any password is sent.
        c = self.shown(lambda n: "certificate" in n["summary"], timeout=20)[0]
        self.assertEqual(c["summary"], "alcode: the certificate of 'pinned' was refused")
        self.assertIn("No password was sent", c["body"])
        self.assertEqual(c["hints"]["urgency"], 2)
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0)
        self.assertNotIn("wrong-password-1234", read_log(p))


if __name__ == "__main__":
    main()
