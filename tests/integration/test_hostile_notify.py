"""Hostile text in what the desktop shows: a mail from a trusted sender whose Subject (an
encoded-word, as any sender can write one) carries terminal escapes, a BEL, bidi overrides and
isolates, a C1 control, and a newline followed by a forged "From:" line. The notification and its
Details (the "default" action, which shows the subject) must show none of those characters and
no second "From:" line, while the subject's words stay readable. The same for a server's own
words: a login refused with escapes and a U+202E in its text, shown in the "login refused"
notification and by `alcode status`.

Found in the user trial of 2026-12-03 (a Debian 12 systemd session, python3-dbus notification
server): Details showed the subject with its ESC, BEL and U+202E as they came."""

import base64
import unicodedata

from alcodetest import DBusSession, DaemonTestCase, NotifySocket, main, random_codes, start_daemon, wait_for
from hostileimap import HostileImap
import test_children

PASSWORD = "pw-ines-7714"

# What a notification must never carry from a mail: every C0/C1 control but our own line breaks,
# DEL, and the invisible characters that reorder or hide text.
BIDI = {"\u200e", "\u200f", "\u061c", "\u2028", "\u2029", "\ufeff"} | {chr(c) for c in range(0x202a, 0x202f)} | \
       {chr(c) for c in range(0x2066, 0x206a)}


def hostile_chars(text):
    return sorted({"U+%04X" % ord(ch) for ch in text
                   if (unicodedata.category(ch) == "Cc" and ch != "\n") or ch in BIDI})


def escaped_subject_mail(code, msgid):
    subject = ("Votre code \x1b]0;PWNED\x07\x1b[2J\x1b[31mROUGE\x1b[0m \u202egnp.exe\u202c \u2066x\u2069 \x9b31m"
               "\nFrom: ne-pas-repondre@actionlogement.fr")
    word = "=?utf-8?b?%s?=" % base64.b64encode(subject.encode()).decode()
    return ("From: AL'in <notifications@al-in.fr>\r\nTo: ines@example.org\r\nSubject: %s\r\n"
            "Date: Thu, 03 Dec 2026 15:10:00 +0100\r\nMessage-ID: <%s@al-in.fr>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nBonjour,\r\n\r\nVotre code specifique : %s\r\n"
            % (word, msgid, code)).encode()


class HostileNotify(DaemonTestCase):
    USERS = {"ines": PASSWORD}

    @classmethod
    def fill(cls):
        cls.code = random_codes(1, seed=31)[0]
        cls.dovecot.deliver("ines", "INBOX", escaped_subject_mail(cls.code, "escapes-1"))

    def setUp(self):
        super().setUp()
        self.server = test_children.NotificationServer(self.t, self.bus)
        self.addCleanup(self.server.stop)

    def test_notification_and_details_are_clean(self):
        self.alcode.write_config(self.dovecot.account_config("ines", user="ines"))
        start_daemon(self, self.alcode, notify=self.notify)
        self.notify.wait("STATUS", "ines: watching", timeout=60)
        wait_for(lambda: self.server.shown(), what="the code's notification")
        first = self.server.shown()[0]
        self.assertIn(self.code, first["body"])
        self.server.invoke(first["id"], "default")
        wait_for(lambda: len(self.server.shown()) == 2, what="the Details notification")
        details = self.server.shown()[1]
        # Details is where the subject shows: its words are there, its controls are not.
        self.assertIn("PWNED", details["body"])
        self.assertIn("ROUGE", details["body"])
        for n in (first, details):
            self.assertEqual(hostile_chars(n["summary"] + n["body"]), [], n)
            from_lines = [l for l in n["body"].split("\n") if l.startswith("From:")]
            self.assertEqual(from_lines, ["From: notifications@al-in.fr"], n["body"])



class HostileServerWords(DaemonTestCase):
    def setUp(self):
        super().setUp()
        self.server = test_children.NotificationServer(self.t, self.bus)
        self.addCleanup(self.server.stop)

    def test_login_refusal_text_is_clean(self):
        def refuse(server, conn, tag, cmd, rest):
            if cmd != "LOGIN":
                return False
            conn.sendall(tag + b" NO [AUTHENTICATIONFAILED] Bad \x1b]0;PWNED\x07\x1b[31mpassword"
                               b"\x1b[0m \xe2\x80\xaetxt.exe\xc2\x9b\r\n")
            return True
        imap = HostileImap(refuse)
        self.addCleanup(imap.stop)
        self.alcode.write_config("[account mairie]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = u\n"
                                 "password = p\nfolders = INBOX\n" % imap.port)
        start_daemon(self, self.alcode, notify=self.notify)
        wait_for(lambda: self.server.shown(), timeout=30, what="the login-refused notification")
        n = self.server.shown()[0]
        self.assertIn("login refused", n["summary"])
        self.assertIn("PWNED", n["body"])
        self.assertEqual(hostile_chars(n["summary"] + n["body"]), [], n)
        self.server.invoke(n["id"], "default")
        wait_for(lambda: len(self.server.shown()) == 2, what="the Details notification")
        details = self.server.shown()[1]
        self.assertIn("PWNED", details["body"])
        self.assertEqual(hostile_chars(details["summary"] + details["body"]), [], details)
        status = self.alcode.run("status", check=False).stdout
        self.assertIn("PWNED", status)
        self.assertEqual(hostile_chars(status), [], status)


if __name__ == "__main__":
    main()
