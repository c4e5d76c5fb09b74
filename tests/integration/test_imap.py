"""The IMAP engine against a real dovecot holding the generated test mailbox (tests/tools/mkmail.py).

Two accounts (a personal and a work mailbox) in INBOX, Junk (found by its special-use flag,
whatever its name), a nested folder and a folder whose name needs modified UTF-7. Asserts what
a user relies on:
- `alcoded --once` stores exactly the codes `alcode scan` finds in the same files (same kind,
  value and trusted flag): no server-side narrowing loses anything;
- every message's flags are unchanged afterwards (EXAMINE and BODY.PEEK only);
- implicit TLS, STARTTLS and plain text on loopback all work;
- a changed UIDVALIDITY rescans the folder without duplicating anything;
- with the daemon running, new mail is found: by IDLE in INBOX and Junk, by polling elsewhere.
"""

import json
import os
import subprocess
import time
import unittest

from alcodetest import (Alcode, Dovecot, TempDir, corpus_employer_domains, main, read_log, require_corpus,
                        wait_for)

SAMPLE = require_corpus()
EMPLOYER = corpus_employer_domains(SAMPLE)
# corpus folder -> IMAP folder ("Envoy&AOk-s" is "Envoyés" in modified UTF-7)
PERSO = {"perso/INBOX": "INBOX", "perso/Junk": "Junk", "perso/Archives": "Archives/Perso",
         "perso/Trash": "Trash", "perso/Sent": "Envoy&AOk-s"}
TRAVAIL = {"travail/INBOX": "INBOX", "travail/Junk": "Junk", "travail/Archives": "Archives",
           "travail/Sent Items": "Sent Items"}

CODE_MAIL = (b"From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\n"
             b"To: alice@example.org\r\nSubject: Votre code\r\n"
             b"Message-ID: <%s@actionlogement.fr>\r\nDate: Mon, 02 Mar 2026 09:14:00 +0100\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
             b"Bonjour,\r\nVotre code sp\xc3\xa9cifique : %s\r\n")


def codes_of(rows):
    """{(kind, value): trusted} with trusted true when any sighting was trusted. Values compare
    caselessly (identity); a possible code, which has no value, is one per message."""
    out = {}
    for r in rows:
        k = (r["kind"], r["value"].upper() if r["value"] is not None else r.get("message_id"))
        out[k] = out.get(k, False) or r["trusted"]
    return out


class Imap(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.dovecot = Dovecot(cls.tmp, users={"alice": "secret1", "bob": "secret2"})
        for user, mapping in (("alice", PERSO), ("bob", TRAVAIL)):
            for src, dst in mapping.items():
                cls._load(user, os.path.join(SAMPLE, src), dst)
        cls.dovecot.start()

    @classmethod
    def _load(cls, user, src, folder):
        for name in sorted(os.listdir(src)):
            with open(os.path.join(src, name), "rb") as f:
                cls.dovecot.deliver(user, folder, f.read(), name=name[:-4] + ".%s" % user)

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        cls.tmp.cleanup()

    def alcode(self, accounts, extra=""):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        a = Alcode(tmp)
        # The corpus's one-time codes expired long ago: keep them, to compare with `scan`.
        a.write_config("employer_domains = %s\notp_retention = 3650\n" % EMPLOYER + extra + "".join(accounts))
        return a

    def expected(self, a, dirs):
        r = a.run("scan", "--json", *[os.path.join(SAMPLE, d) for d in dirs])
        return codes_of(json.loads(l) for l in r.stdout.splitlines() if l.strip())

    def test_once_finds_what_scan_finds_and_changes_nothing(self):
        before = {u: self.dovecot.all_flags(u) for u in ("alice", "bob")}
        a = self.alcode([self.dovecot.account_config("perso", "alice"),
                         self.dovecot.account_config("travail", "bob")])
        start = time.monotonic()
        r = a.daemon("--once")
        self.assertEqual(r.returncode, 0, r.stderr)
        elapsed = time.monotonic() - start

        stored = a.list_json()
        expected = self.expected(a, list(PERSO) + list(TRAVAIL))
        self.assertGreater(len(expected), 50)
        self.assertEqual(codes_of(stored), expected)
        self.assertEqual(len(stored), len(expected), "a code stored twice")

        folders = {(c["account"], c["folder"]) for c in stored}
        for f in ("INBOX", "Junk", "Archives/Perso"):
            self.assertIn(("perso", f), folders)
        self.assertIn(("travail", "INBOX"), folders)
        # Provenance points at a real message.
        c = stored[0]
        self.assertGreater(c["uid"], 0)
        self.assertGreater(c["uidvalidity"], 0)

        # Read-only: every flag as it was, nothing added or removed.
        for u in ("alice", "bob"):
            self.assertEqual(self.dovecot.all_flags(u), before[u])
        # No code or password in what the daemon printed.
        for (kind, value) in list(expected)[:50]:
            self.assertNotIn(value, r.stderr)
        self.assertNotIn("secret1", r.stderr)
        print("\n  %d codes from %d messages in %.2f s" % (len(stored), sum(len(v) for v in before.values()),
                                                         elapsed))

        # A second run reads nothing again and adds nothing.
        r = a.daemon("--once", "--verbose")
        self.assertNotIn("new message", r.stderr)
        self.assertEqual(len(a.list_json()), len(stored))

    def test_starttls_and_plain_loopback(self):
        for tls in ("starttls", "none"):
            with self.subTest(tls=tls):
                a = self.alcode([self.dovecot.account_config("travail", "bob", tls=tls)])
                r = a.daemon("--once")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(codes_of(a.list_json()), self.expected(a, list(TRAVAIL)))

    def test_uidvalidity_change_rescans_without_duplicates(self):
        a = self.alcode([self.dovecot.account_config("travail", "bob", extra="folders = INBOX\n")])
        a.daemon("--once")
        first = a.list_json()
        validity = a.sql("SELECT uidvalidity FROM cursors WHERE folder = 'INBOX'")[0][0]

        # Dovecot gives the folder a new UIDVALIDITY when its uidlist is lost.
        inbox = self.dovecot.maildir("bob", "INBOX")
        for name in os.listdir(inbox):
            if name.startswith("dovecot"):
                os.unlink(os.path.join(inbox, name))
        self.dovecot.deliver("bob", "INBOX", CODE_MAIL % (b"uidv", b"UV7K 2P9Q"))
        r = a.daemon("--once", "--verbose")
        self.assertIn("UIDVALIDITY changed", r.stderr)
        after = a.list_json()
        self.assertNotEqual(a.sql("SELECT uidvalidity FROM cursors WHERE folder = 'INBOX'")[0][0], validity)
        self.assertEqual(len(after), len(first) + 1)
        self.assertIn("UV7K2P9Q", {c["value"] for c in after})

    def test_running_daemon_sees_new_mail(self):
        a = self.alcode([self.dovecot.account_config(
            "perso", "alice", extra="folders = INBOX, Junk, Archives/*\n")])
        p = a.spawn_daemon("--verbose", env={"ALCODE_TEST_POLL_INTERVAL": "1"})
        self.addCleanup(lambda: (p.poll() is None and p.terminate(), p.wait(), p.logfile.close()))
        try:
            wait_for(lambda: p.poll() is not None or read_log(p).count("watching with IDLE") >= 2, timeout=60, what="IDLE on INBOX and Junk")
        except TimeoutError:
            print(read_log(p))
            raise
        self.assertIsNone(p.poll(), read_log(p))

        def stored(value):
            return any(c["value"] == value for c in a.list_json())

        # IDLE: INBOX and Junk (by its special-use flag), one connection each.
        for folder, (mid, code) in (("INBOX", (b"idle1", b"ID1E 7K2Q")), ("Junk", (b"idle2", b"ID2E 7K2Q"))):
            t = time.monotonic()
            self.dovecot.append("alice", folder, CODE_MAIL % (mid, code))
            wait_for(lambda: stored(code.replace(b" ", b"").decode()), timeout=10, what="the code from " + folder)
            print("\n  %s: APPEND -> stored in %.0f ms" % (folder, 1000 * (time.monotonic() - t)))
        # Polled with STATUS.
        self.dovecot.append("alice", "Archives/Perso", CODE_MAIL % (b"poll1", b"PO11 7K2Q"))
        try:
            wait_for(lambda: stored("PO117K2Q"), timeout=10, what="the code from a polled folder")
        except TimeoutError:
            print(read_log(p)[-3000:])
            raise

        # The mail is still unread on the server.
        flags = self.dovecot.all_flags("alice")
        newest = max((int(u), f) for (m, u), f in flags.items() if m == "INBOX")
        self.assertNotIn("\\Seen", newest[1])
        p.terminate()
        self.assertEqual(p.wait(timeout=15), 0, read_log(p))
        log = read_log(p)
        self.assertNotIn("ID1E", log)
        self.assertNotIn("secret1", log)


if __name__ == "__main__":
    main()
