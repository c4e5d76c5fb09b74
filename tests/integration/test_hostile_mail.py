"""Hostile mail through `alcode scan` and the verbs that show what it stored: a sender that is
forged or ambiguous is never trusted (the code is still found, as untrusted, and --explain says
why), a body line in an mbox never becomes a trusted message, an mbox that ends on a page
boundary does not crash the scan, and no control character from a mail reaches the terminal
or a CSV export. See SECURITY.md, "Hostile mail"."""

import itertools
import json
import os
import re
import subprocess
import unittest

from alcodetest import Alcode, TempDir, binary, main

_names = itertools.count()
PAGE = os.sysconf("SC_PAGE_SIZE")
AL = "ne-pas-repondre@actionlogement.fr"
ENVELOPE = b"From ne-pas-repondre@actionlogement.fr Mon Mar  2 08:14:00 2026\n"


def mail(from_lines, auth=None, subject="Votre code", body="Votre code sp\u00e9cifique : RT58 KW2M\n",
         extra=""):
    """A plain-text mail from Action Logement: from_lines are whole header lines ("From: ...")."""
    head = ""
    if auth is not None:
        head += "Authentication-Results: mx.example.org; %s\n" % auth
    head += "".join(l + "\n" for l in from_lines)
    head += extra
    head += "To: jeanne@example.org\nSubject: %s\nMessage-ID: <m@x>\n" \
            "Content-Type: text/plain; charset=utf-8\n\n" % subject
    return (head + body).encode("utf-8", "surrogateescape")


class HostileMail(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.alcode = Alcode(cls.tmp)
        cls.alcode.write_config("")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def write(self, data, suffix=".eml"):
        path = self.tmp.join("m%d%s" % (next(_names), suffix))
        with open(path, "wb") as f:
            f.write(data)
        return path

    def scan(self, *paths, check=True):
        r = self.alcode.run("scan", "--json", *paths, check=check)
        return [json.loads(l) for l in r.stdout.splitlines()]

    def raw(self, *args, check=True):
        """alcode's output as bytes, exactly as a terminal would get it."""
        r = subprocess.run([binary("alcode")] + list(args), capture_output=True, env=self.alcode.env())
        if check and r.returncode != 0:
            raise AssertionError("alcode %s exited %d: %r" % (" ".join(args), r.returncode, r.stderr))
        return r


class MboxPageBoundary(HostileMail):
    """An mbox larger than 1 MiB is mapped; one whose size is a multiple of the page size has no
    byte after its last one. Its last line made the scan read past the mapping (SIGSEGV)."""

    def mbox(self, tail):
        first = ENVELOPE + mail(["From: Action Logement <%s>" % AL]) + b"\n"
        filler = b"From x@example.net Mon Mar  2 09:14:00 2026\nFrom: x@example.net\nSubject: f\n\n"
        size = ((len(first) + len(filler) + (1 << 20)) // PAGE + 1) * PAGE
        pad = size - len(first) - len(filler) - len(tail)
        body = (b"x" * 75 + b"\n") * (pad // 76) + b"y" * (pad % 76)
        data = first + filler + body + tail
        self.assertEqual(len(data) % PAGE, 0)
        self.assertGreater(len(data), 1 << 20)
        return self.write(data, ".mbox")

    def test_last_line_of_quote_marks(self):
        for tail in (b"\n>>>>>>>>", b"\n>", b"\n\r\r\n", b"\n\n>>", b"\n\r\n"):
            with self.subTest(tail=tail):
                path = self.mbox(tail)
                db = self.tmp.join("page%d.db" % next(_names))
                r = self.alcode.run("--db", db, "scan", "--store", path, check=False)
                self.assertEqual(r.returncode, 0, r.stderr)
                stored = self.alcode.run("--db", db, "list", "--json").stdout
                self.assertIn('"value":"RT58KW2M"', stored)


if __name__ == "__main__":
    main()
