"""End to end: a private dovecot holding the demo mailbox, `alcoded --once`, then `alcode list`.

Asserts what a user sees: the codes found in INBOX, Junk, Trash and a nested folder, the
look-alike sender flagged, the database file private, and every message's flags unchanged."""

import email.utils
import os
import stat
import time
import unittest

from alcodetest import (Alcode, BusMonitor, DBusSession, DEMO_MAIL_DIR, Dovecot, TempDir, main)


class DemoMailbox(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.dovecot = Dovecot(self.tmp)
        self.dovecot.load_tree("alice", DEMO_MAIL_DIR)
        self.dovecot.start()
        self.addCleanup(self.dovecot.stop)
        self.alcode = Alcode(self.tmp)
        self.alcode.write_config("employer_domains = menuiseries-durand.example\n"
                                 + self.dovecot.account_config("demo"))

    def test_once_finds_codes_and_changes_nothing(self):
        before = self.dovecot.all_flags()
        self.assertEqual(len(before), 9)

        r = self.alcode.daemon("--once")
        self.assertEqual(r.returncode, 0, r.stderr)

        codes = {c["value"]: c for c in self.alcode.list_json()}
        self.assertIn("R7KD2M9Q", codes)
        c = codes["R7KD2M9Q"]
        self.assertEqual(c["kind"], "specific")
        self.assertTrue(c["trusted"])
        self.assertEqual(c["display"], "R7KD 2M9Q")
        self.assertEqual(c["sender"], "notifications@al-in.fr")
        self.assertEqual(c["account"], "demo")
        self.assertEqual(c["folder"], "INBOX")
        self.assertEqual(c["date"], "2026-03-03T09:14:00+01:00")
        self.assertEqual(c["message_id"], "<demo-0001@al-in.fr>")
        self.assertIsInstance(c["uid"], int)
        self.assertIsInstance(c["uidvalidity"], int)

        # The phishing mail in Junk: stored, but never as trusted.
        self.assertIn("ZQ817TXB", codes)
        self.assertFalse(codes["ZQ817TXB"]["trusted"])
        self.assertEqual(codes["ZQ817TXB"]["folder"], "Junk")

        # The bank's one-time code is not Action Logement's.
        self.assertNotIn("482913", codes)

        # Read-only: no flag changed, no message added or removed.
        self.assertEqual(self.dovecot.all_flags(), before)

        # Private files.
        self.assertEqual(stat.S_IMODE(os.stat(self.alcode.db).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.alcode.db)).st_mode), 0o700)

        # The table a person reads, and the value a script reads.
        table = self.alcode.run("list").stdout
        self.assertIn("R7KD 2M9Q", table)
        self.assertIn("UNVERIFIED", table.split("ZQ81 7TXB")[1].splitlines()[0])
        self.assertEqual(self.alcode.run("latest").stdout, "R7KD2M9Q\n")

    def test_backfill_notification_leads_with_the_answer(self):
        # The first notification of a backfill: the newest trusted specific code first (with
        # Copy), then the employer's codes, then counts; never an expired login code or a
        # superseded code.
        bus = DBusSession(self.tmp)
        self.addCleanup(bus.stop)
        monitor = BusMonitor(bus)
        self.addCleanup(monitor.stop)
        # A login code of two hours ago: expired (they last 30 minutes), still in the store.
        self.dovecot.deliver("alice", "INBOX", (
            "From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nTo: alice@test.example\r\n"
            "Subject: Votre code de connexion\r\nDate: %s\r\n"
            "Message-ID: <otp-old@actionlogement.fr>\r\nAuthentication-Results: mx.test.example; "
            "dkim=pass header.d=actionlogement.fr; dmarc=pass header.from=actionlogement.fr\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "Bonjour,\r\nVotre code de connexion : 739251\r\nIl est valable 10 minutes.\r\n"
            % email.utils.formatdate(time.time() - 7200, localtime=True)).encode())
        self.alcode.bus = bus
        self.alcode.daemon("--once")
        calls = monitor.notify_calls()
        self.assertEqual(len(calls), 1, calls)
        body = calls[0]["body"]
        lines = body.splitlines()
        self.assertEqual(lines[0], "specific code: R7KD 2M9Q", body)
        self.assertIn("copy", calls[0]["actions"])
        codes = self.alcode.list_json()
        kinds = [c["kind"] for c in codes]
        self.assertIn("otp", kinds)
        for c in codes:
            if c.get("expired") or c.get("superseded") or not c["trusted"]:
                self.assertNotIn(c["display"], body, c)
        self.assertNotIn("739251", body)
        employer = [l for l in lines if l.startswith(("access code", "company code"))]
        for l in employer:
            self.assertLess(lines.index(l), len(lines) - 1)
        self.assertTrue(any(l.startswith("Also found: ") for l in lines), body)
        self.assertIn("from senders that are not trusted", body)

    def test_second_run_adds_nothing(self):
        self.alcode.daemon("--once")
        first = self.alcode.list_json()
        r = self.alcode.daemon("--once")
        self.assertNotIn("new", r.stderr.lower().replace("new message", ""))
        self.assertEqual(self.alcode.list_json(), first)
        self.assertEqual(self.alcode.sql("SELECT count(*) FROM codes")[0][0], len(first))

    def test_no_secret_or_code_in_the_log(self):
        r = self.alcode.daemon("--once", "--verbose")
        for secret in ("R7KD", "2M9Q", "ZQ81", self.dovecot.users["alice"]):
            self.assertNotIn(secret, r.stderr)


if __name__ == "__main__":
    main()
