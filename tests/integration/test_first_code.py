"""The user's code first: before any folder is read in full, alcoded looks (server-side SEARCH
of trusted senders and brand words) at each new folder's newest mail, reads and stores what
it finds, then looks at the older mail, then reads every folder in full.

One INBOX of 300 messages on a real dovecot: a code spécifique in the oldest message (UID 1)
and another in the newest (UID 300), filler between. The newest one is stored first (a smaller
id: its own transaction, before the older mail is even searched); both are found, and every
message is counted once (the exact scan skips what the first look read, and covers the rest).

The employer's domain is not a likely code sender in the first look: it sends a work mailbox's
everyday mail (in the realistic benchmark mailbox, 40 % of the work INBOX), and the first look
read all of it before any folder was read in full. Its access code mail names the brand in the
subject, which the first look asks for; the rest of its mail is read by the exact scan.
"""

import unittest

from alcodetest import Alcode, Dovecot, TempDir, code_mail, main, random_codes


def filler(i):
    return ("From: Camille <camille@perso.example>\r\nTo: camille@test.example\r\nSubject: note %d\r\n"
            "Date: Mon, 02 Mar 2026 09:14:00 +0100\r\nMessage-ID: <note%d@perso.example>\r\n\r\n"
            "Rien de particulier, message %d.\r\n" % (i, i, i)).encode()


class FirstCode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.dovecot = Dovecot(cls.tmp)
        cls.dovecot.start()
        cls.old, cls.new = random_codes(2, seed=16)
        c = cls.dovecot.imap()
        try:
            # APPEND gives UIDs in order: 1 the oldest code, 300 the newest.
            for i in range(300):
                raw = code_mail(cls.old) if i == 0 else code_mail(cls.new) if i == 299 else filler(i)
                c.append("INBOX", None, None, raw)
        finally:
            c.logout()

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        cls.tmp.cleanup()

    def test_newest_mail_first(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        a = Alcode(tmp)
        a.write_config(self.dovecot.account_config("box"))
        r = a.daemon("--once", "-v")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = a.sql("SELECT c.value, m.uid FROM codes c JOIN messages m ON m.id = c.message"
                     " WHERE c.kind = 'specific' AND c.trusted = 1 ORDER BY c.id")
        self.assertEqual(rows, [(self.new.replace(" ", ""), 300), (self.old.replace(" ", ""), 1)])
        # The first look at the newest mail, then at the older, each said in the debug log.
        self.assertLess(r.stderr.index("first look at the newest mail"), r.stderr.index("first look at the older mail"))
        # Every message counted once, none skipped.
        self.assertEqual(a.sql("SELECT messages_seen, last_uid FROM cursors WHERE folder = 'INBOX'"), [(300, 300)])


def colleague(i):
    return ("From: Dominique <dominique@lefort-industrie.example>\r\nTo: camille@lefort-industrie.example\r\n"
            "Subject: point projet %d\r\nDate: Mon, 02 Mar 2026 09:14:00 +0100\r\n"
            "Message-ID: <projet%d@lefort-industrie.example>\r\n\r\nOrdre du jour, semaine %d.\r\n" % (i, i, i)).encode()


def hr_access(code):
    return ("From: Service RH <rh@lefort-industrie.example>\r\nTo: camille@lefort-industrie.example\r\n"
            "Subject: Votre code d'acces Action Logement\r\nDate: Mon, 02 Mar 2026 10:00:00 +0100\r\n"
            "Message-ID: <acces@lefort-industrie.example>\r\n\r\nBonjour,\r\n\r\nConformement a la "
            "reglementation, voici votre code d'acces Action Logement : %s\r\n\r\nLe service RH\r\n" % code).encode()


class EmployerMail(unittest.TestCase):
    """A work INBOX: 60 colleagues' mails from the employer's domain, its HR's access code mail
    (the brand in the subject) and AL'in's code spécifique. The first look reads those two only."""

    def test_first_look_skips_colleagues(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        dovecot = Dovecot(tmp)
        dovecot.start()
        self.addCleanup(dovecot.stop)
        spec, = random_codes(1, seed=17)
        access = "K7PQ4M2XRT"
        c = dovecot.imap()
        try:
            for i in range(62):
                c.append("INBOX", None, None, hr_access(access) if i == 20 else code_mail(spec) if i == 40 else colleague(i))
        finally:
            c.logout()
        a = Alcode(tmp)
        a.write_config("employer_domains = lefort-industrie.example\n" + dovecot.account_config("box"))
        r = a.daemon("--once", "-v")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("folder 'INBOX': phase: read the folder's likely code mail (2 messages)", r.stderr)
        rows = a.sql("SELECT c.kind, c.value, m.uid FROM codes c JOIN messages m ON m.id = c.message ORDER BY m.uid")
        self.assertEqual(rows, [("access", access, 21), ("specific", spec.replace(" ", ""), 41)])
        self.assertEqual(a.sql("SELECT messages_seen, last_uid FROM cursors WHERE folder = 'INBOX'"), [(62, 62)])


if __name__ == "__main__":
    main()
