"""Look-alike senders as a stranger writes them, arriving as new mail while alcoded watches (the
path the user trial of 2026-12-03 walked in a systemd session): a domain that ends in another
one, a Cyrillic homograph raw (RFC 6532) and as punycode, the real address in the display name
(plain and as an encoded-word), the real From with a Reply-To elsewhere, a friend's forward
(inline and as message/rfc822), and a real From with an escape in the raw Subject. What the
user sees: each notification says "Unverified sender", names the address the mail really came
from (a domain in other letters with its xn-- form beside it), warns, and offers no Copy; `alcode latest` gives the real code only; `alcode list
--untrusted` lists every look-alike. The mails are written here by hand, not by the generator."""

import base64
import json

from alcodetest import DaemonTestCase, main, start_daemon, wait_for
import test_children

PASSWORD = "pw-lea-6021"
REAL_CODE = "K4TP 8WQ2"


def mail(frm, code, subject=b"Votre code specifique", extra=b"", body=None, n=[0]):
    n[0] += 1
    body = body if body is not None else b"Bonjour,\r\n\r\nVotre code specifique : " + code.encode() + b"\r\n"
    return (b"From: " + frm + b"\r\nTo: lea@example.org\r\nSubject: " + subject +
            b"\r\nDate: Thu, 03 Dec 2026 15:10:00 +0100\r\nMessage-ID: <stranger-%d@mx.example.net>\r\n" % n[0] +
            b"MIME-Version: 1.0\r\n" + extra + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)


def forward_rfc822(code):
    inner = (b"From: AL'in <notifications@al-in.fr>\r\nSubject: Votre code specifique\r\n"
             b"Content-Type: text/plain\r\n\r\nVotre code specifique : " + code.encode() + b"\r\n")
    return (b"From: Paul Durand <paul.durand@gmail.com>\r\nTo: lea@example.org\r\nSubject: Fwd: code\r\n"
            b"Date: Thu, 03 Dec 2026 15:10:00 +0100\r\nMessage-ID: <stranger-fwd@gmail.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b8\"\r\n\r\n--b8\r\nContent-Type: text/plain\r\n\r\n"
            b"Voir ci-joint.\r\n--b8\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"--b8--\r\n")


PUNY = "\u0430ctionlogement.fr".encode("idna")  # Cyrillic a
ENCODED_NAME = b"=?utf-8?b?" + base64.b64encode(b"ne-pas-repondre@actionlogement.fr <ne-pas-repondre@"
                                                  b"actionlogement.fr>") + b"?="
FORWARD = ("Regarde.\r\n\r\n---------- Forwarded message ---------\r\nDe : AL'in <notifications@al-in.fr>\r\n"
           "Objet : Votre code sp\u00e9cifique\r\n\r\nVotre code sp\u00e9cifique : F0RW 4RD1\r\n").encode()

# (what it is, the raw mail, the address the notification must name, the code)
STRANGERS = [
    ("subdomain of another domain", mail(b"Action Logement <ne-pas-repondre@actionlogement.fr.evil.com>", "Z9QW 4RT7"),
     "ne-pas-repondre@actionlogement.fr.evil.com", "Z9QW 4RT7"),
    ("Cyrillic homograph, raw", mail("Action Logement <noreply@\u0430ctionlogement.fr>".encode(), "C7RL 2XQ8"),
     # Its A-label beside it: the letters look the same, the xn-- form does not.
     "noreply@\u0430ctionlogement.fr [%s]" % PUNY.decode(), "C7RL 2XQ8"),
    ("Cyrillic homograph, punycode", mail(b"Action Logement <noreply@" + PUNY + b">", "P4NY 7CD3"),
     "noreply@" + PUNY.decode(), "P4NY 7CD3"),
    ("real address as display name", mail(b'"Action Logement <ne-pas-repondre@actionlogement.fr>" <x@evil.com>',
                                          "D1SP 9NM4"), "x@evil.com", "D1SP 9NM4"),
    ("real address as encoded display name", mail(ENCODED_NAME + b" <x@evil.com>", "E5WD 3KP7"),
     "x@evil.com", "E5WD 3KP7"),
    ("Reply-To elsewhere", mail(b"Action Logement <ne-pas-repondre@actionlogement.fr>", "R3PL 6YT2",
                                extra=b"Reply-To: service-client@actionlogement-aide.com\r\n"),
     "ne-pas-repondre@actionlogement.fr", "R3PL 6YT2"),
    ("inline forward", mail(b"Paul Durand <paul.durand@gmail.com>", "F0RW 4RD1", subject=b"Fwd: Votre code",
                            body=FORWARD), "paul.durand@gmail.com", "F0RW 4RD1"),
    ("message/rfc822 forward", forward_rfc822("M5GR 8FC2"), "paul.durand@gmail.com", "M5GR 8FC2"),
    ("escape in the raw Subject", mail(b"AL'in <notifications@al-in.fr>", "RAW5 E5C9",
                                       subject=b"Votre code \x1b[41mROUGE\x1b[0m"),
     "notifications@al-in.fr", "RAW5 E5C9"),
]


class HostileSenders(DaemonTestCase):
    USERS = {"lea": PASSWORD}

    @classmethod
    def fill(cls):
        cls.dovecot.deliver("lea", "INBOX", mail(b"AL'in <notifications@al-in.fr>", REAL_CODE))

    def setUp(self):
        super().setUp()
        self.server = test_children.NotificationServer(self.t, self.bus)
        self.addCleanup(self.server.stop)

    def test_look_alikes_as_new_mail(self):
        self.alcode.write_config(self.dovecot.account_config("lea", user="lea"))
        start_daemon(self, self.alcode, notify=self.notify)
        self.notify.wait("STATUS", "lea: watching", timeout=60)
        wait_for(lambda: self.server.shown(), what="the first pass's notification")
        first = self.server.shown()[0]
        self.assertEqual(first["summary"], "Action Logement: specific code")
        self.assertIn(REAL_CODE, first["body"])
        self.assertIn("copy", first["actions"])
        for what, raw, address, code in STRANGERS:
            with self.subTest(what):
                seen = len(self.server.shown())
                self.dovecot.save("lea", "INBOX", raw)
                wait_for(lambda: len(self.server.shown()) > seen, timeout=30, what="a notification for " + what)
                n = self.server.shown()[seen]
                self.assertTrue(n["summary"].startswith("\u26a0 Unverified sender"), n)
                self.assertNotIn("copy", n["actions"], n)
                self.assertIn("From: %s\n" % address, n["body"])
                self.assertIn(code, n["body"])
                self.assertIn("do not use this code", n["body"])
        self.assertEqual(self.alcode.run("latest").stdout.strip(), REAL_CODE.replace(" ", ""))
        listed = [json.loads(l) for l in self.alcode.run("list", "--json").stdout.splitlines()]
        trusted = sorted(c["display"] for c in listed if c["trusted"])
        untrusted = sorted(c["display"] for c in listed if not c["trusted"])
        self.assertEqual(trusted, [REAL_CODE])
        self.assertEqual(untrusted, sorted(code for _, _, _, code in STRANGERS))
        homograph = next(c for c in listed if c["display"] == "C7RL 2XQ8")
        self.assertIn("noreply@\u0430ctionlogement.fr [%s]" % PUNY.decode(),
                      self.alcode.run("show", str(homograph["id"])).stdout)
        table = self.alcode.run("list", "--untrusted").stdout
        for _, _, _, code in STRANGERS:
            self.assertIn(code, table)
        self.assertNotIn("\x1b", table)


if __name__ == "__main__":
    main()
