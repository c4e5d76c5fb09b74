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
        for tail in (b"\n>>>>>>>>", b"\n>", b"\n\r\r\n", b"\n\n>>", b"\n\r\n",
                     b"\n\nFrom x@example.net Mon Mar  2 10:00:00 2026\n\r\r\n",
                     b"\n\nFrom x@example.net Mon Mar  2 10:00:00 2026\n\r\n"):
            with self.subTest(tail=tail):
                path = self.mbox(tail)
                db = self.tmp.join("page%d.db" % next(_names))
                r = self.alcode.run("--db", db, "scan", "--store", path, check=False)
                self.assertEqual(r.returncode, 0, r.stderr)
                stored = self.alcode.run("--db", db, "list", "--json").stdout
                self.assertIn('"value":"RT58KW2M"', stored)


AR_EVIL = "dkim=pass header.d=evil.example; dmarc=pass header.from=evil.example"


class ForgedSender(HostileMail):
    """issue 11: each From below, with the receiving server's verdict on evil.example, was stored
    as a trusted code from ne-pas-repondre@actionlogement.fr."""

    CASES = [
        (["From: <x@evil.example> <%s>" % AL], "several angle addresses"),
        (["From: x@evil.example <%s>" % AL], "the display name is an address"),
        (['From: "x@evil.example" <%s>' % AL], "the display name is another address"),
        (["From: Action Logement <%s" % AL], "no closing '>'"),
        (["From: Action Logement <%s> x@evil.example" % AL], "junk after the address"),
        (["From: <%s>" % AL, "From: <x@evil.example>"], "several From fields"),
        (["from: <%s>" % AL, "From: <x@evil.example>"], "several From fields"),
        (["From: %s, x@evil.example" % AL], "several mailboxes"),
        (["From: <ne-pas-repondre@actionlogement.fr\0.evil.example>"], "a NUL or control character in the header"),
        (["From: <ne-pas-repondre(x@evil.example)@actionlogement.fr>"], "a comment inside the address"),
        (["From: <x\\@evil.example@actionlogement.fr>"], "a backslash inside the address"),
        (["From: <%s.>" % AL], "a trailing dot in the domain"),
        (["From: <@evil.example,@relay.example:%s>" % AL], "a source route before the address"),
        # Well-formed: the verdict on another domain is what refuses them.
        (["From: <ne-pas-repondre@ACTIONLOGEMENT.FR>"], "Authentication-Results judged another From domain"),
        (["from: <%s>" % AL], "Authentication-Results judged another From domain"),
    ]

    def test_forged_senders_are_untrusted_and_explained(self):
        for from_lines, why in self.CASES:
            with self.subTest(from_lines=from_lines):
                path = self.write(mail(from_lines, auth=AR_EVIL))
                codes = self.scan(path)
                # The code is still found and kept, as untrusted.
                self.assertEqual([(c["value"], c["trusted"]) for c in codes], [("RT58KW2M", False)])
                out = self.raw("scan", "--explain", path).stdout.decode()
                self.assertIn("not trustworthy: " + why, out)
                self.assertRegex(out, r"found 'RT58 KW2M' in text \d+ at \d+: accepted \(untrusted\)")

    def test_verdict_on_another_domain_is_named(self):
        out = self.raw("scan", "--explain", self.write(mail(["From: <%s>" % AL], auth=AR_EVIL))).stdout.decode()
        self.assertIn("Authentication-Results judged header.from=evil.example, not the From domain "
                      "actionlogement.fr", out)

    def test_well_formed_senders_stay_trusted(self):
        for from_lines, auth in [
                (["From: Action Logement <%s>" % AL], "dkim=pass header.d=actionlogement.fr; "
                                                      "dmarc=pass header.from=actionlogement.fr"),
                (["From: <ne-pas-repondre@ACTIONLOGEMENT.FR>"], "dmarc=pass header.from=actionlogement.fr"),
                (["from: %s (Action Logement)" % AL], None),
                (['From: "Action Logement, service" <%s>' % AL], None)]:
            with self.subTest(from_lines=from_lines):
                codes = self.scan(self.write(mail(from_lines, auth=auth)))
                self.assertEqual([(c["value"], c["trusted"], c["sender"]) for c in codes],
                                 [("RT58KW2M", True, AL)])


# What may drive a terminal: C0 controls but TAB and LF, DEL, C1 controls (UTF-8 and raw),
# bidi embeddings/overrides/isolates and marks, line/paragraph separators.
CONTROLS = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\x8e\x8f\xa8-\xae]|"
                      rb"\xe2\x81[\xa6-\xa9]|\xd8\x9c")


class TerminalEscapes(HostileMail):
    """ESC, BEL, C1 and bidi controls in every part of a mail that some verb prints: the display
    name, the subject, the Message-ID, a charset name, the decoded text, and the file name."""

    def hostile(self):
        evil = "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202e\u2066"
        q = "".join("=%02X" % b for b in evil.encode())
        raw = ("From: =?utf-8?q?Action_Logement_%s?= <%s>\n"
               "To: jeanne@example.org\n"
               "Subject: =?utf-8?q?Votre_code_%s?=\n"
               "Message-ID: <%s@actionlogement.fr>\n"
               "MIME-Version: 1.0\n"
               "Content-Type: multipart/mixed; boundary=b\n\n"
               "--b\n"
               "Content-Type: text/plain; charset=\"x-%s\"\n\n"
               "Code sp\u00e9cifique : RT58 KW2M %s\n"
               "--b--\n") % (q, AL, q, "id" + evil, "esc\x1b[31m\x07", evil)
        return self.write(raw.encode(), suffix="\x1b[31m\x07\u202e.eml".encode().decode("utf-8", "surrogateescape"))

    def assert_clean(self, what, data):
        m = CONTROLS.search(data)
        self.assertIsNone(m, "%s prints %r in %r" % (what, m and m.group(), data[max(0, m.start() - 40):m.end() + 40]
                                                     if m else b""))

    def test_every_verb(self):
        path = self.hostile()
        db = self.tmp.join("escapes.db")
        for args in (["scan", path], ["scan", "--explain", path], ["--db", db, "scan", "--store", path],
                     ["--db", db, "list"], ["--db", db, "list", "--untrusted"], ["--db", db, "show", "1"],
                     ["--db", db, "export", "--csv"]):
            with self.subTest(args=args[2:] if args[0] == "--db" else args):
                r = self.raw(*args)
                # RFC 4180 ends CSV records with CRLF: the only CR allowed.
                self.assert_clean("stdout", r.stdout.replace(b"\r\n", b"\n") if "--csv" in args else r.stdout)
                self.assert_clean("stderr", r.stderr)
        # What was cleaned is still there, visibly: the code, the name, the charset warning.
        out = self.raw("scan", "--explain", path).stdout
        self.assertIn(b"RT58 KW2M", out)
        self.assertIn(b"Action Logement ?]0;pwned??[2J?31m??", out)
        self.assertIn(b"unknown charset 'x-esc?[31m?'", out)
        # JSON keeps the text exactly (a JSON reader gets the same string back), escaped.
        for args in (["scan", "--json", path], ["--db", db, "list", "--json"], ["--db", db, "show", "1", "--json"],
                     ["--db", db, "export", "--json"]):
            with self.subTest(args=args):
                r = self.raw(*args)
                self.assert_clean("stdout", r.stdout)
                subject = json.loads(r.stdout.splitlines()[0])["subject"]
                self.assertEqual(subject, "Votre code \x1b]0;pwned\x07\x1b[2J\u009b31m\u202e\u2066")
        csv = self.raw("--db", db, "export", "--csv").stdout
        self.assertIn(b"RT58KW2M", csv)
        self.assertIn(b"Votre code ?]0;pwned??[2J?31m??", csv)


def with_length(headers, body):
    """An mboxcl2 message: the writer's Content-Length counts the body's bytes."""
    return headers.replace(b"\n\n", b"\nContent-Length: %d\n\n" % len(body), 1) + body


class MboxBodyLines(HostileMail):
    """A hostile mail's body holds an unquoted "From " line and a whole mail from Action
    Logement after it: that text must never become a trusted message."""

    MINTED = (b"From ne-pas-repondre@actionlogement.fr Mon Mar  2 10:00:00 2026\n"
              + mail(["From: Action Logement <%s>" % AL],
                     auth="dmarc=pass header.from=actionlogement.fr"))
    LEGIT = ENVELOPE + mail(["From: Action Logement <%s>" % AL], body="Code sp\u00e9cifique : ZQ48 TK27\n")

    def evil(self, body, length=None, multipart=False):
        head = b"From: Promo <promo@evil.example>\nSubject: offre\n"
        if multipart:
            head += b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"zz\"\n"
        if length is not None:
            head += b"Content-Length: %d\n" % length
        return b"From promo@evil.example Mon Mar  2 09:00:00 2026\n" + head + b"\n" + body

    def trusted(self, path):
        return sorted(c["value"] for c in self.scan(path) if c["trusted"])

    def test_mboxcl2_body_line_is_body(self):
        body = b"Bonjour,\n\n" + self.MINTED + b"\n"
        path = self.write(self.evil(body, length=len(body)) + b"\n" + self.LEGIT, ".mbox")
        self.assertEqual(self.trusted(path), ["ZQ48TK27"])
        out = self.raw("scan", "--explain", path).stdout.decode()
        self.assertEqual(out.count("=== " + path + ":"), 2, out)

    def test_inside_an_unclosed_mime_body(self):
        body = (b"--zz\nContent-Type: text/plain\n\nBonjour,\n\n" + self.MINTED
                + b"\n--zz--\n\n")
        path = self.write(self.evil(body, multipart=True) + self.LEGIT, ".mbox")
        self.assertEqual(self.trusted(path), ["ZQ48TK27"])
        r = self.raw("scan", "--explain", path)
        self.assertIn("not trustworthy: inside the previous message of the mbox (its MIME body is not closed)",
                      r.stdout.decode())
        self.assertIn("%s:12: this message may be text inside the one before it (MIME)" % path, r.stderr.decode())

    def test_inside_by_an_inconsistent_content_length(self):
        body = b"Bonjour,\n\n" + self.MINTED + b"\n"
        path = self.write(self.evil(body, length=len(body) + 7) + b"\n" + self.LEGIT, ".mbox")
        self.assertEqual(self.trusted(path), ["ZQ48TK27"])
        out = self.raw("scan", "--explain", path).stdout.decode()
        self.assertIn("not trustworthy: inside the previous message of the mbox by its Content-Length", out)

    def test_mboxcl2_message_with_a_from_line_stays_whole(self):
        # Action Logement's own mail quoting a "From " line, in an mboxcl2 file: one message,
        # its code trusted, and the line is not a separator.
        body = "Bonjour,\n\nFrom now on, keep this.\nCode sp\u00e9cifique : ZQ48 TK27\n".encode()
        first = with_length(ENVELOPE + mail(["From: Action Logement <%s>" % AL], body=""), body)
        path = self.write(first + b"\n" + self.LEGIT.replace(b"ZQ48 TK27", b"RT58 KW2M"), ".mbox")
        codes = self.scan(path)
        self.assertEqual([(c["source"], c["value"], c["trusted"]) for c in codes],
                         [(path + ":1", "ZQ48TK27", True), (path + ":14", "RT58KW2M", True)])


if __name__ == "__main__":
    main()
