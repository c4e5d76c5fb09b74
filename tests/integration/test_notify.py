"""Notifications when things are not ideal, and logging under systemd:
- no notification server on the bus, or no session bus at all: codes are stored, one warning;
- notify_show_code = no: the code is masked on screen but can still be copied; notify = no: silence;
- under systemd (JOURNAL_STREAM names our stderr) records go to the journal socket with ACCOUNT=,
  FOLDER=, UID= fields, and no record carries a code or the password."""

import json
import os
import unittest

from alcodetest import (Alcode, BusMonitor, DBusSession, Dovecot, TempDir, binary, code_mail, main,
                        random_codes, run_with_private_journal)

PASSWORD = "pw-jude-8842"

# Runs inside a private mount namespace with a tmpfs on /run/systemd: binds the journal's native
# socket, runs the command with JOURNAL_STREAM pointing at its stderr, and writes what arrived.
class Notify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.dovecot = Dovecot(cls.tmp, users={"jude": PASSWORD})
        cls.codes = random_codes(2, seed=11)
        cls.dovecot.deliver("jude", "INBOX", code_mail(cls.codes[0]))
        cls.dovecot.deliver("jude", "Archive", code_mail(cls.codes[1]))
        cls.dovecot.start()

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.t = TempDir()
        self.addCleanup(self.t.cleanup)

    def alcode(self, bus, extra=""):
        a = Alcode(self.t, bus=bus)
        a.write_config(extra + self.dovecot.account_config("jude", user="jude"))
        return a

    def stored(self, a):
        return sorted(v for (v,) in a.sql("SELECT value FROM codes"))

    def test_no_notification_server(self):
        bus = DBusSession(self.t)
        self.addCleanup(bus.stop)
        a = self.alcode(bus)
        r = a.daemon("--once")
        self.assertEqual(self.stored(a), sorted(c.replace(" ", "") for c in self.codes))
        warnings = [l for l in r.stderr.splitlines() if "Cannot show a desktop notification" in l]
        self.assertEqual(len(warnings), 1, r.stderr)
        self.assertIn("warning:", warnings[0])
        self.assertIn("the code is stored", warnings[0])

    def test_no_session_bus(self):
        a = self.alcode(None)
        r = a.daemon("--once")
        self.assertEqual(len(self.stored(a)), 2)
        self.assertIn("warning: No session bus", r.stderr)

    def test_masked_code_can_still_be_copied(self):
        bus = DBusSession(self.t)
        self.addCleanup(bus.stop)
        monitor = BusMonitor(bus)
        self.addCleanup(monitor.stop)
        a = self.alcode(bus, "[alcode]\nnotify_show_code = no\n")
        a.daemon("--once")
        calls = monitor.notify_calls()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["summary"], "Action Logement: 2 codes found")
        for c in self.codes:
            self.assertNotIn(c, calls[0]["body"])
        # A backfill leads with the newest specific code (masked, copyable); the older one is
        # superseded: counted, not listed.
        self.assertEqual(calls[0]["body"].count("••••••••"), 1)
        self.assertTrue(calls[0]["body"].startswith("specific code: ••••••••\n"), calls[0]["body"])
        self.assertIn("Also found: specific code ×1\n", calls[0]["body"])
        self.assertIn("copy", calls[0]["actions"])

        # One code at a time: masked, yet "copy" is offered (it never shows on screen).
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(a.db + suffix):
                os.remove(a.db + suffix)
        a.write_config("[alcode]\nnotify_show_code = no\n" + self.dovecot.account_config(
            "jude", user="jude", extra="folders = INBOX\n"))
        a.daemon("--once")
        single = monitor.notify_calls()[1]
        self.assertEqual(single["summary"], "Action Logement: specific code")
        self.assertNotIn(self.codes[0], single["body"])
        self.assertTrue(single["body"].startswith("••••••••\n"))
        self.assertIn("copy", single["actions"])

    def test_notify_no_is_silent(self):
        bus = DBusSession(self.t)
        self.addCleanup(bus.stop)
        monitor = BusMonitor(bus)
        self.addCleanup(monitor.stop)
        a = self.alcode(bus, "[alcode]\nnotify = no\n")
        a.daemon("--once")
        self.assertEqual(len(self.stored(a)), 2)
        self.assertEqual(monitor.notify_calls(), [])

    def test_journal_fields(self):
        a = self.alcode(None, "[alcode]\nnotify = no\n")
        result = run_with_private_journal(self, self.t, [binary("alcoded"), "--once", "--verbose"], a.env(),
                                          timeout=120)
        self.assertEqual(result["rc"], 0, result["stderr"])
        records = result["records"]
        self.assertTrue(records, result["stderr"])
        self.assertTrue(all(rec.get("SYSLOG_IDENTIFIER") == "alcoded" for rec in records))
        found = [rec for rec in records if "found 1 code" in rec.get("MESSAGE", "")]
        self.assertEqual(len(found), 2, records)
        for rec in found:
            self.assertEqual(rec["ACCOUNT"], "jude")
            self.assertIn(rec["FOLDER"], ("INBOX", "Archive"))
            self.assertRegex(rec["UID"], r"^\d+$")
            self.assertEqual(rec["PRIORITY"], "6")
            self.assertNotIn("jude", rec["MESSAGE"])  # the context is in fields, not the text
        stored = [rec for rec in records if "code stored" in rec.get("MESSAGE", "")]
        self.assertEqual(len(stored), 2, records)
        for rec in stored:
            self.assertEqual(rec["ACCOUNT"], "jude")
            self.assertRegex(rec["UID"], r"^\d+$")
            self.assertRegex(rec["RULE"], r"^[a-z0-9-]+@\d+$")
            self.assertEqual(rec["PRIORITY"], "5")
        # Each field once; the location is the caller's, not the logging code's.
        for rec in records:
            self.assertNotIn("_REPEATED", rec, rec)
            self.assertNotEqual(rec.get("CODE_FILE", "").rsplit("/", 1)[-1], "log.c", rec)
        self.assertTrue(any(rec.get("CODE_FILE", "").endswith("worker.c") for rec in found), found)
        # Fields are present only when set.
        plain = [rec for rec in records if "ACCOUNT" not in rec]
        self.assertTrue(all("FOLDER" not in rec and "UID" not in rec for rec in plain))
        # Nothing went to stderr, and no record holds a code or the password.
        self.assertEqual(result["stderr"], "")
        dump = json.dumps(records, ensure_ascii=False)
        for secret in self.codes + [c.replace(" ", "") for c in self.codes] + [PASSWORD]:
            self.assertNotIn(secret, dump)


if __name__ == "__main__":
    main()
