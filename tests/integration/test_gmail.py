"""On Gmail each message is read once.

Gmail's labels are folders: a labelled message is in INBOX, in its label and in
[Gmail]/All Mail. Against a fake server that speaks as Gmail does (X-GM-EXT-1, the special-use
attributes \\All, \\Junk, \\Trash, \\Sent), `alcoded --once` opens All Mail, Spam and Trash and
nothing else: the code of the labelled message has one sighting, from All Mail, and the codes in
Spam and Trash are found too. The same server without X-GM-EXT-1 is read folder by folder, as
any server is (that message then has four sightings).

Where the code was seen keeps the message's Gmail labels (X-GM-LABELS, asked for with the
structures): `alcode show` says "labels INBOX, Important, Logement, Équipe" and the JSON has them
as an array; without X-GM-EXT-1 they are not asked for and not shown. A message read whole
(a server that refuses BODYSTRUCTURE, or one whose structure libetpan cannot parse: whole
messages from the next connection on) keeps its labels too: they are asked for with the body.
"""

import json
import sqlite3

import unittest

from alcodetest import Alcode, TempDir, main, read_log, start_daemon, stop_daemon, wait_for
from fakeimap import FakeImap


class Gmail(unittest.TestCase):
    def setup(self, mode, structure="ok"):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        fake = FakeImap(mode, structure)
        self.addCleanup(fake.stop)
        a = Alcode(tmp)
        a.write_config("[account g]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = u\npassword = p\n" % fake.port)
        self.alcode, self.fake = a, fake
        return a, fake

    def sightings(self, early=False):
        if early:  # the daemon may not have made its store yet
            try:
                return self.sightings()
            except sqlite3.OperationalError:
                return []
        return self.alcode.sql("SELECT c.value, m.folder FROM sightings s JOIN codes c ON c.id = s.code"
                               " JOIN messages m ON m.id = s.message ORDER BY 1, 2")

    def run_once(self, mode, structure="ok"):
        a, fake = self.setup(mode, structure)
        r = a.daemon("--once")
        self.assertEqual(r.returncode, 0, r.stderr)
        sightings = a.sql("SELECT c.value, m.folder FROM sightings s JOIN codes c ON c.id = s.code"
                          " JOIN messages m ON m.id = s.message ORDER BY 1, 2")
        return fake.examined, sightings

    def assert_labels_kept(self):
        code = next(c for c in self.alcode.list_json() if c["value"] == "FA7K3Q9P")
        self.assertEqual(code["folder"], "[Gmail]/All Mail")
        self.assertEqual(code["labels"], ["INBOX", "Important", "Logement", "Équipe"])
        out = self.alcode.run("show", str(code["id"])).stdout
        self.assertIn("g/[Gmail]/All Mail UID 1 (UIDVALIDITY 42), labels INBOX, Important, Logement, Équipe,", out)
        shown = json.loads(self.alcode.run("show", "--json", str(code["id"])).stdout)
        self.assertEqual(shown["labels"], code["labels"])

    def test_gmail_reads_all_mail_spam_and_trash_once(self):
        examined, sightings = self.run_once("gmail")
        self.assertEqual(sorted(set(examined)), ["[Gmail]/All Mail", "[Gmail]/Spam", "[Gmail]/Trash"])
        self.assertEqual(sightings, [("FA7K3Q9P", "[Gmail]/All Mail"), ("KX7P2M9Q", "[Gmail]/Spam"),
                                     ("ZP4L6N2B", "[Gmail]/Trash")])
        # The labels of the labelled message, where its code was seen.
        self.assert_labels_kept()
        # Spam and Trash have no labels to keep.
        spam = next(c for c in self.alcode.list_json() if c["value"] == "KX7P2M9Q")
        self.assertNotIn("labels", spam)

    def test_labels_kept_without_bodystructure(self):
        # BODYSTRUCTURE refused (NO): every message is read whole, its labels asked for with it.
        examined, sightings = self.run_once("gmail", structure="refused")
        self.assertEqual(sorted(set(examined)), ["[Gmail]/All Mail", "[Gmail]/Spam", "[Gmail]/Trash"])
        self.assertEqual(len(sightings), 3)
        self.assert_labels_kept()

    def test_labels_kept_reading_whole_messages(self):
        # A structure libetpan cannot parse: the worker reads whole messages from the next
        # connection on (imap_fetch()), labels included.
        a, fake = self.setup("gmail", structure="garbled")
        p = start_daemon(self, a, "--verbose", env={"ALCODE_TEST_BACKOFF_MIN": "1", "ALCODE_TEST_BACKOFF_MAX": "1",
                                                    "ALCODE_TEST_IMAP_TIMEOUT": "5"})
        try:
            wait_for(lambda: len(self.sightings(early=True)) == 3, timeout=30, what="the three codes")
        except TimeoutError:
            self.fail(read_log(p)[-3000:])
        self.assertIn("reading whole messages from now on", read_log(p))
        self.assertGreaterEqual(fake.connections, 2)
        self.assert_labels_kept()
        code, _ = stop_daemon(p)
        self.assertEqual(code, 0, read_log(p))

    def test_without_gmail_extension_every_folder(self):
        examined, sightings = self.run_once("labels")
        self.assertEqual(sorted(set(examined)), ["INBOX", "Logement", "[Gmail]/All Mail", "[Gmail]/Sent Mail",
                                                 "[Gmail]/Spam", "[Gmail]/Trash"])
        self.assertEqual([f for v, f in sightings if v == "FA7K3Q9P"],
                         ["INBOX", "Logement", "[Gmail]/All Mail", "[Gmail]/Sent Mail"])
        # No X-GM-EXT-1: no X-GM-LABELS asked for, none shown.
        self.assertFalse(self.fake.asked_labels)
        self.assertTrue(all("labels" not in c for c in self.alcode.list_json()))
        code = next(c for c in self.alcode.list_json() if c["value"] == "FA7K3Q9P")
        self.assertNotIn("labels", self.alcode.run("show", str(code["id"])).stdout)


if __name__ == "__main__":
    main()
