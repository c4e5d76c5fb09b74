"""On Gmail each message is read once.

Gmail's labels are folders: a labelled message is in INBOX, in its label and in
[Gmail]/All Mail. Against a fake server that speaks as Gmail does (X-GM-EXT-1, the special-use
attributes \\All, \\Junk, \\Trash, \\Sent), `alcoded --once` opens All Mail, Spam and Trash and
nothing else: the code of the labelled message has one sighting, from All Mail, and the codes in
Spam and Trash are found too. The same server without X-GM-EXT-1 is read folder by folder, as
any server is (that message then has four sightings).

Where the code was seen keeps the message's Gmail labels (X-GM-LABELS, asked for with the
structures): `alcode show` says "labels INBOX, Important, Logement, Équipe" and the JSON has them
as an array; without X-GM-EXT-1 they are not asked for and not shown.
"""

import json

import unittest

from alcodetest import Alcode, TempDir, main
from fakeimap import FakeImap


class Gmail(unittest.TestCase):
    def run_once(self, mode):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        fake = FakeImap(mode)
        self.addCleanup(fake.stop)
        a = Alcode(tmp)
        a.write_config("[account g]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = u\npassword = p\n" % fake.port)
        r = a.daemon("--once")
        self.assertEqual(r.returncode, 0, r.stderr)
        sightings = a.sql("SELECT c.value, m.folder FROM sightings s JOIN codes c ON c.id = s.code"
                          " JOIN messages m ON m.id = s.message ORDER BY 1, 2")
        self.alcode, self.fake = a, fake
        return fake.examined, sightings

    def test_gmail_reads_all_mail_spam_and_trash_once(self):
        examined, sightings = self.run_once("gmail")
        self.assertEqual(sorted(set(examined)), ["[Gmail]/All Mail", "[Gmail]/Spam", "[Gmail]/Trash"])
        self.assertEqual(sightings, [("FA7K3Q9P", "[Gmail]/All Mail"), ("KX7P2M9Q", "[Gmail]/Spam"),
                                     ("ZP4L6N2B", "[Gmail]/Trash")])
        # The labels of the labelled message, where its code was seen.
        code = next(c for c in self.alcode.list_json() if c["value"] == "FA7K3Q9P")
        self.assertEqual(code["folder"], "[Gmail]/All Mail")
        self.assertEqual(code["labels"], ["INBOX", "Important", "Logement", "Équipe"])
        out = self.alcode.run("show", str(code["id"])).stdout
        self.assertIn("g/[Gmail]/All Mail UID 1 (UIDVALIDITY 42), labels INBOX, Important, Logement, Équipe,", out)
        shown = json.loads(self.alcode.run("show", "--json", str(code["id"])).stdout)
        self.assertEqual(shown["labels"], code["labels"])
        # Spam and Trash have no labels to keep.
        spam = next(c for c in self.alcode.list_json() if c["value"] == "KX7P2M9Q")
        self.assertNotIn("labels", spam)

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
