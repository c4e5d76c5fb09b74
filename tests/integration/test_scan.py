"""`alcode scan` as a user runs it: .eml files, a Maildir tree (cur/new, Maildir++ subfolders,
tmp/ skipped, a Sent folder), a Google Takeout mbox ("From " lines, ">From " quoting, the Sent
label), folders of them, --json, --explain, --store, and bad input: every error names the file
(and the line in an mbox), the rest is still scanned, and the exit status is 2."""

import json
import os
import shutil
import unittest

from alcodetest import Alcode, SOURCE_DIR, TempDir, main

DATA = os.path.join(SOURCE_DIR, "tests", "data")


def data(name):
    return os.path.join(DATA, name)


class Scan(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.alcode = Alcode(cls.tmp)
        cls.alcode.write_config("employer_domains = menuiseries-durand.example\n\n"
                                "[account work]\nhost = imap.menuiseries-durand.example\n"
                                "user = jeanne@menuiseries-durand.example\npassword_command = false\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def scan_json(self, *paths, check=True):
        r = self.alcode.run("scan", "--json", *paths, check=check)
        return r, [json.loads(l) for l in r.stdout.splitlines()]

    def test_eml_table(self):
        r = self.alcode.run("scan", data("al-combined-html-base64.eml"), data("phishing-idn.eml"))
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 3, r.stdout)
        company = next(l for l in lines if "company code" in l)
        self.assertIn("412 345 678 00012 (41234567800012)", company)
        self.assertIn("notifications@mail.al-in.fr", company)
        self.assertIn("RT58KW2", next(l for l in lines if "specific code" in l))
        phishing = next(l for l in lines if "KM82 QW4L" in l)
        self.assertIn("UNVERIFIED SENDER", phishing)
        self.assertIn("2 message(s) in 2 file(s): 3 code(s) found.", r.stderr)

    def test_json(self):
        r, codes = self.scan_json(data("al-specific-qp-latin1.eml"))
        self.assertEqual(len(codes), 1)
        c = codes[0]
        self.assertEqual(c["kind"], "specific")
        self.assertEqual(c["value"], "ZQ48TK27")
        self.assertEqual(c["display"], "ZQ48 TK27")
        self.assertIs(c["trusted"], True)
        self.assertEqual(c["sender"], "ne-pas-repondre@actionlogement.fr")
        self.assertEqual(c["date"], "2026-03-02T09:14:00+01:00")
        self.assertEqual(c["message_id"], "<t1@actionlogement.fr>")
        self.assertEqual(c["rule"], "al-specific@3")
        self.assertEqual(c["source"], data("al-specific-qp-latin1.eml"))
        self.assertNotIn("id", c)
        self.assertEqual(r.stderr, "")

    def test_maildir_tree(self):
        root = self.tmp.join("Maildir")
        layout = {
            "cur/1.eml:2,S": "al-specific-qp-latin1.eml",
            "new/2": "hr-access.eml",
            "tmp/3": "otp-english-cp1252.eml",             # being delivered: not read
            ".Sent/cur/4:2,S": "al-combined-html-base64.eml",  # Maildir++: the user's own mail
            ".Archives.2024/cur/5:2,": "rfc2047-subject.eml",
            ".Envoy&AOk-s/cur/6:2,S": "al-specific-qp-latin1.eml",  # "Envoyés" in modified UTF-7: sent mail
            "cur/.hidden": "other-otp.eml",
        }
        for rel, src in layout.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copy(data(src), path)
        r, codes = self.scan_json(root)
        got = {(c["kind"], c["value"], c["trusted"]) for c in codes}
        self.assertEqual(got, {
            ("specific", "ZQ48TK27", True),
            ("access", "HJ7K2M9P4QXW", True),
            ("company", "51248736900021", True),
            ("specific", "RT58KW2", False),
            ("company", "41234567800012", False),
            ("specific", "ZK41PQ7M", True),
            ("specific", "ZQ48TK27", False),
        })
        self.assertFalse(any(c["value"] == "482913" for c in codes))

    def test_mbox(self):
        mbox = data("takeout.mbox")
        r, codes = self.scan_json(mbox)
        self.assertEqual([(c["source"], c["value"], c["trusted"]) for c in codes],
                         [(mbox + ":1", "GH5T2KL8", True), (mbox + ":13", "GH5T2KL8", False)])
        # ">From now on" is the body's "From now on" again.
        r = self.alcode.run("scan", "--explain", mbox)
        self.assertIn("\nFrom now on, keep this message.", r.stdout)
        self.assertNotIn(">From now on", r.stdout)

    def test_mbox_crlf_and_quoting_levels(self):
        path = self.tmp.join("crlf.mbox")
        with open(path, "wb") as f:
            f.write(b"From a@b Mon Mar  2 08:14:00 2026\r\n"
                    b"From: AL'in <notifications@mail.al-in.fr>\r\nSubject: x\r\n\r\n"
                    b">>From me\r\nCode sp\xc3\xa9cifique : WX72 PL8K\r\n\r\n"
                    b"From b@c Mon Mar  2 09:14:00 2026\r\n"
                    b"From: Paul <paul@example.net>\r\nSubject: y\r\n\r\nrien\r\n")
        r, codes = self.scan_json(path)
        self.assertEqual([(c["source"], c["value"]) for c in codes], [(path + ":1", "WX72PL8K")])
        # ">>From me" lost one '>': still a quoted line, shown without its marker.
        r = self.alcode.run("scan", "--explain", path)
        self.assertIn("(body, quoted or forwarded), as the rules see it:\nFrom me\n", r.stdout)
        self.assertIn("=== %s:8" % path, r.stdout)

    def test_errors_say_where_and_scanning_goes_on(self):
        empty = self.tmp.join("empty-message.mbox")
        with open(empty, "w") as f:
            f.write("From a@b Mon Mar  2 08:14:00 2026\n\nFrom b@c Mon Mar  2 09:00:00 2026\n"
                    "From: AL'in <notifications@mail.al-in.fr>\n\nCode specifique : QM38 ZT4K\n")
        fifo = self.tmp.join("fifo")
        os.mkfifo(fifo)
        missing = self.tmp.join("missing.eml")
        r, codes = self.scan_json(missing, empty, fifo, data("al-specific-qp-latin1.eml"), check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read '%s': No such file or directory" % missing, r.stderr)
        self.assertIn("'%s' is not a file or folder" % fifo, r.stderr)
        self.assertIn("%s:1: empty message, skipping" % empty, r.stderr)
        self.assertEqual(sorted(c["value"] for c in codes), ["QM38ZT4K", "ZQ48TK27"])
        self.assertEqual([c["source"] for c in codes if c["value"] == "QM38ZT4K"], [empty + ":3"])

    def test_warnings_name_the_message(self):
        r = self.alcode.run("scan", data("unknown-charset.eml"))
        self.assertIn("%s: part 2: unknown charset 'x-unheard-of'" % data("unknown-charset.eml"), r.stderr)
        self.assertNotIn("LM47", r.stderr)

    def test_explain(self):
        r = self.alcode.run("scan", "--explain", data("al-nearmiss.eml"))
        out = r.stdout
        self.assertIn("=== %s" % data("al-nearmiss.eml"), out)
        self.assertIn("sender: info@news.actionlogement.fr", out)
        self.assertIn("as the rules see it:", out)
        # Each candidate: the rule file and line, what was found, and why it was refused.
        self.assertRegex(out, r"company\.rules:\d+: rule company@\d+ \(company\) found '824 541 148 00014' "
                              r"in text \d+ at \d+: rejected, matches a reject pattern")
        self.assertRegex(out, r"rejected, (too short|matches a reject pattern)")
        self.assertIn("=== 0 code(s)", out)

        r = self.alcode.run("scan", "--explain", data("phishing-idn.eml"))
        self.assertIn("not trustworthy: look-alike of a trusted sender", r.stdout)
        self.assertRegex(r.stdout, r"found 'KM82 QW4L' in text \d+ at \d+: accepted \(untrusted\)")
        self.assertRegex(r.stdout, r"rule al-otp@\d+ \(otp\) did not run|found")

    def test_store(self):
        db = self.tmp.join("scan.db")
        r = self.alcode.run("--db", db, "scan", "--store", data("hr-access.eml"), data("takeout.mbox"))
        self.assertIn("3 new code(s) stored", r.stderr)
        stored = [json.loads(l) for l in self.alcode.run("--db", db, "list", "--json").stdout.splitlines()]
        self.assertEqual(sorted(c["value"] for c in stored), ["51248736900021", "GH5T2KL8", "HJ7K2M9P4QXW"])
        r = self.alcode.run("--db", db, "scan", "--store", data("hr-access.eml"))
        self.assertIn("0 new code(s) stored", r.stderr)

    def test_usage(self):
        r = self.alcode.run("scan", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("expected at least one file or folder", r.stderr)
        r = self.alcode.run("scan", "--json", "--explain", data("hr-access.eml"), check=False)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    main()
