"""A mail too long to read whole (the user trial of 2026-12-03: a 6 MiB line, cut at the 2 MiB
text limit), end to end with alcoded and a real dovecot. From a trusted sender with no code in
what was read, it is kept as a possible code, so `alcode list` tells the user, and the daemon logs
one warning naming the account, folder and UID, never the text. From an untrusted sender it
gives no possible code, but the warning all the same. A short mail next to them is read as usual."""

from alcodetest import DaemonTestCase, code_mail, main

PASSWORD = "pw-nina-7305"
CODE = "L0NG 7QX4"
# Plain words with no mention of a code, over 2 MiB (the daemon's text limit), then the code.
FILLER = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n" * 30000
BODY = "Bonjour Nina,\r\n\r\n" + FILLER + "Votre code sp\u00e9cifique : %s\r\n" % CODE


def long_mail(sender, domain, n):
    return ("From: AL'in <%s>\r\nTo: nina@test.example\r\nSubject: Votre espace AL'in\r\n"
            "Date: Thu, 03 Dec 2026 15:10:00 +0100\r\nMessage-ID: <long.%d@%s>\r\nMIME-Version: 1.0\r\n"
            "Authentication-Results: mx.test.example; dkim=pass header.d=%s; dmarc=pass header.from=%s\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s"
            % (sender, n, domain, domain, domain, BODY)).encode("utf-8")


class LongMail(DaemonTestCase):
    USERS = {"nina": PASSWORD}

    @classmethod
    def fill(cls):
        assert len(FILLER) > 2 << 20
        cls.dovecot.deliver("nina", "INBOX", long_mail("notifications@al-in.fr", "al-in.fr", 1))  # UID 1
        cls.dovecot.deliver("nina", "INBOX", long_mail("notifications@al-in-news.example", "al-in-news.example", 2))
        cls.dovecot.deliver("nina", "INBOX", code_mail("S4RT 9KD2"))  # UID 3

    def test_long_mail_is_kept_and_logged(self):
        self.alcode.write_config(self.dovecot.account_config("nina", user="nina"))
        r = self.alcode.daemon("--once")
        rows = self.alcode.sql("SELECT m.uid, c.kind, c.value, c.trusted FROM codes c "
                               "JOIN messages m ON c.message = m.id ORDER BY m.uid")
        self.assertEqual(rows, [(1, "possible", None, 1), (3, "specific", "S4RT9KD2", 1)])
        self.assertIn("1 mail from AL'in may hold a code no rule read", self.alcode.run("list").stdout)

        warned = [l for l in r.stderr.splitlines() if "not read whole" in l]
        self.assertEqual(len(warned), 2, r.stderr)
        self.assertIn("account 'nina' folder 'INBOX' UID 1:", warned[0])
        self.assertIn("no code found: kept as a possible code", warned[0])
        self.assertIn("no code found", warned[1])
        self.assertNotIn("possible", warned[1])
        self.assertIn("account 'nina' folder 'INBOX' UID 2:", warned[1])
        for secret in (CODE, CODE.replace(" ", ""), "Lorem", "Nina,"):
            self.assertNotIn(secret, r.stderr)


if __name__ == "__main__":
    main()
