"""Memory stays bounded whatever the mail: a 50 MB attachment, a 10 MB HTML body, 10,000 nested
multiparts, 100,000 parts. Each is scanned with `alcode scan` and fetched from dovecot by
`alcoded --once`; the peak RSS of each process (getrusage of the child, ru_maxrss) is held
under a fixed bound, the code at the start of each readable message is found, and nothing
crashes. Catastrophic regular expressions are stopped by PCRE2's limits, reported with the
rule's file:line, and do not stall the worker; the interpreter (ALCODE_PCRE2_NO_JIT=1) finds
what the JIT finds."""

import base64
import json
import os
import subprocess
import time
import unittest

from alcodetest import RULES_DIR, Alcode, Dovecot, TempDir, binary, main, require_corpus

# Fixed bounds in MiB, for the sanitizer build too (the figures measured are printed). A scan
# hands at most 64 MiB of a message to the MIME parser (mime.h), read from the mapped file into
# a padded copy: twice that, and a little. The daemon reads large messages by their text parts.
# Both include the compiled rules, once per process: 373 patterns since the rules were
# generalised (75 before), about 25 MiB more under ASan (scan of a 0.7 MB mail: 32 -> 57 MiB;
# alcoded over these four: 83 -> 126 MiB).
SCAN_RSS_MB = 220
DAEMON_RSS_MB = 150
ASAN = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"}

CODE = "Votre code sp\u00e9cifique : %s\r\n"


def headers(subject, ctype, extra=""):
    return ("From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nTo: jeanne@example.org\r\n"
            "Subject: %s\r\nDate: Mon, 02 Mar 2026 09:14:00 +0100\r\nMessage-ID: <%s@actionlogement.fr>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: %s\r\n%s\r\n" % (subject, subject.replace(" ", "-"), ctype, extra))


def attachment_50mb():
    blob = base64.encodebytes(os.urandom(50 << 20)).replace(b"\n", b"\r\n")
    return (headers("pj", 'multipart/mixed; boundary="b1"').encode()
            + b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + (CODE % "PJ5A 7K2M").encode() + b"\r\n--b1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=\"scan.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + blob + b"\r\n--b1--\r\n")


def html_10mb():
    para = "<p style=\"margin:0\">Lorem ipsum dolor sit amet, <b>consectetur</b> adipiscing elit &eacute;&nbsp;.</p>\r\n"
    body = "<html><body><p>" + (CODE % "HT8M 2L4Q") + "</p>\r\n" + para * ((10 << 20) // len(para)) + "</body></html>\r\n"
    return (headers("html", "text/html; charset=utf-8", "Content-Transfer-Encoding: 8bit\r\n") + body).encode()


def nested_10000():
    depth = 10000
    out = [headers("nested", 'multipart/mixed; boundary="n0"')]
    for i in range(1, depth):
        out.append('--n%d\r\nContent-Type: multipart/mixed; boundary="n%d"\r\n\r\n' % (i - 1, i))
    out.append("--n%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n" % (depth - 1, CODE % "NS3T 9D6K"))
    for i in range(depth - 1, -1, -1):
        out.append("--n%d--\r\n" % i)
    return "".join(out).encode()


def parts_100000():
    out = [headers("parts", 'multipart/mixed; boundary="p"'),
           "--p\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n" % (CODE % "PT6R 4W8Z")]
    out += ["--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(1, 100000)]
    out.append("--p--\r\n")
    return "".join(out).encode()


CASES = [  # name, builder, code expected (None: not asserted)
    ("attachment-50MB", attachment_50mb, "PJ5A7K2M"),
    ("html-10MB", html_10mb, "HT8M2L4Q"),
    ("nested-10000", nested_10000, None),
    ("parts-100000", parts_100000, "PT6R4W8Z"),
]


def peak_rss(args, env, timeout=600):
    """Runs args in a child of a small Python helper, which reports the child's ru_maxrss: the
    peak RSS of exactly that process."""
    helper = ("import json, os, resource, subprocess, sys, time\n"
              "t = time.monotonic()\n"
              "p = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True)\n"
              "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
              "json.dump({'rc': p.returncode, 'out': p.stdout.decode(errors='replace'),"
              " 'err': p.stderr.decode(errors='replace'), 'rss': ru.ru_maxrss / 1024.0,"
              " 'sec': time.monotonic() - t}, sys.stdout)\n")
    r = subprocess.run(["python3", "-c", helper] + list(args), env=env, capture_output=True, text=True,
                       timeout=timeout)
    return json.loads(r.stdout)


class Memory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.files = {}
        for name, build, _ in CASES:
            path = cls.tmp.join(name + ".eml")
            with open(path, "wb") as f:
                f.write(build())
            cls.files[name] = path

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.own = TempDir()
        self.addCleanup(self.own.cleanup)
        self.alcode = Alcode(self.own)

    def test_scan(self):
        self.alcode.write_config("")
        for name, _, code in CASES:
            with self.subTest(name):
                r = peak_rss([binary("alcode"), "scan", "--json", self.files[name]], self.alcode.env(ASAN))
                print("alcode scan %s (%.1f MB): peak RSS %.1f MiB, %.2f s"
                      % (name, os.path.getsize(self.files[name]) / 1e6, r["rss"], r["sec"]))
                self.assertEqual(r["rc"], 0, r["err"][-3000:])
                self.assertNotIn("AddressSanitizer", r["err"])
                if code:
                    self.assertIn(code, [json.loads(l)["value"] for l in r["out"].splitlines() if l.strip()])
                self.assertLess(r["rss"], SCAN_RSS_MB, name)

    def test_daemon_fetches_them(self):
        d = Dovecot(self.own)
        for name, _, _ in CASES:
            with open(self.files[name], "rb") as f:
                d.deliver("alice", "INBOX", f.read(), name=name)
        d.start()
        self.addCleanup(d.stop)
        self.alcode.write_config(d.account_config("big", extra="folders = INBOX\n"))
        r = peak_rss([binary("alcoded"), "--once", "--verbose"], self.alcode.env(ASAN))
        print("alcoded --once over the four messages: peak RSS %.1f MiB, %.2f s" % (r["rss"], r["sec"]))
        self.assertEqual(r["rc"], 0, r["err"][-3000:])
        self.assertNotIn("AddressSanitizer", r["err"])
        got = {c["value"] for c in self.alcode.list_json()}
        for name, _, code in CASES:
            if code:
                self.assertIn(code, got, name)
        self.assertEqual(self.alcode.sql("SELECT messages_seen FROM cursors WHERE folder = 'INBOX'"), [(4,)])
        self.assertLess(r["rss"], DAEMON_RSS_MB)


EVIL_RULES = """[rules]
version = 1

[rule evil]
kind = specific
senders = actionlogement.fr
; Nested quantifiers: exponential backtracking before the ':' fails to find 8 digits.
pattern = (?<code>(?:\\w+\\s?)+:[0-9]{8})
"""


def evil_mail(i):
    return (headers("evil %d" % i, "text/plain; charset=utf-8")
            + " ".join(["motlong"] * 40) + " :AB\r\n").encode()


class Regex(unittest.TestCase):
    """PCRE2's match, depth and heap limits stop a catastrophic pattern; the rule is named
    with its file:line; the rest of the mail and of the rules go on."""

    def setUp(self):
        self.own = TempDir()
        self.addCleanup(self.own.cleanup)
        self.alcode = Alcode(self.own)
        self.rules = self.own.join("evil-rules")
        os.makedirs(self.rules)
        self.rule_file = os.path.join(self.rules, "evil.rules")
        with open(self.rule_file, "w") as f:
            f.write(EVIL_RULES)
        self.alcode.write_config("[alcode]\nrules = %s, %s\n" % (RULES_DIR, self.rules), rules=False)

    def test_scan(self):
        path = self.own.join("evil.eml")
        with open(path, "wb") as f:
            f.write(evil_mail(0))
        for env in ({}, {"ALCODE_PCRE2_NO_JIT": "1"}):
            r = self.alcode.run("scan", path, env=env, timeout=60)
            self.assertIn("%s:8: rule 'evil': match limit exceeded, skipping this pattern" % self.rule_file, r.stderr)

    def test_daemon_not_stalled(self):
        d = Dovecot(self.own)
        for i in range(50):
            d.deliver("alice", "INBOX", evil_mail(i))
        d.deliver("alice", "INBOX", headers("code", "text/plain; charset=utf-8").encode()
                  + (CODE % "RX4B 8N2V").encode())
        d.start()
        self.addCleanup(d.stop)
        with open(self.alcode.config, "a") as f:
            f.write(d.account_config("big", extra="folders = INBOX\n"))
        t0 = time.monotonic()
        r = self.alcode.daemon("--once", "--verbose", timeout=120)
        took = time.monotonic() - t0
        print("51 messages, 50 of them hitting the match limit: %.2f s" % took)
        self.assertIn("evil.rules:8: rule 'evil': match limit exceeded", r.stderr)
        self.assertIn("RX4B8N2V", {c["value"] for c in self.alcode.list_json()})

    def test_interpreter_finds_what_the_jit_finds(self):
        sample = require_corpus()
        jit = self.alcode.run("scan", "--json", sample, timeout=300).stdout
        interp = self.alcode.run("scan", "--json", sample, env={"ALCODE_PCRE2_NO_JIT": "1"}, timeout=300).stdout
        self.assertGreater(len(jit.splitlines()), 100)
        self.assertEqual(jit, interp)


if __name__ == "__main__":
    main()
