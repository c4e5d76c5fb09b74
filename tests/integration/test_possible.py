"""Possible codes, end to end with the daemon: a mail from a trusted sender that gives a code no
rule reads is stored without a value, named after the codes by `alcode list`, given as
"kind": "possible" and "value": null in JSON, notified once (the first one, not the next), and
dismissed with `alcode forget`; a newsletter from the same sender stays quiet. While the daemon
runs, `alcode status` counts them (and `status --json` per account, "possible") and D-Bus ListCodes("possible") lists them (sender, date, no
value); a mail that only explains codes ("your request number is unchanged") stays quiet."""

import email.utils
import json
import unittest

from alcodetest import (Alcode, BusMonitor, DBusSession, Dovecot, NotifySocket, TempDir, busctl, main,
                        read_log, start_daemon, stop_daemon, wait_for)

PASSWORD = "pw-lise-3391"


def al_mail(body, subject="Votre espace AL'in", n=0):
    return ("From: AL'in <notifications@al-in.fr>\r\nTo: lise@test.example\r\nSubject: %s\r\n"
            "Date: %s\r\nMessage-ID: <possible.%d@al-in.fr>\r\nMIME-Version: 1.0\r\n"
            "Authentication-Results: mx.test.example; dkim=pass header.d=al-in.fr; dmarc=pass header.from=al-in.fr\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n"
            % (subject, email.utils.formatdate(localtime=True), n, body)).encode("utf-8")


GIVES = "Bonjour Lise,\r\n\r\nVotre code spécifique : voir le document joint à ce message.\r\n"
NEWS = "Votre code avantage : découvrez nos offres.\r\nSe désabonner\r\n"
# Mail that only explains codes, gives none and says where none is: it stays quiet.
EXPLAINS = ("Hello Lise,\r\n\r\nYour request number is unchanged. The company code is the SIRET number "
            "of your employer.\r\n")
NAME, PATH, IFACE = "io.github.alcode.Daemon1", "/io/github/alcode/Daemon1", "io.github.alcode.Daemon1"


class Possible(unittest.TestCase):
    def setUp(self):
        self.t = TempDir()
        self.addCleanup(self.t.cleanup)
        self.dovecot = Dovecot(self.t, users={"lise": PASSWORD})
        self.dovecot.deliver("lise", "INBOX", al_mail(GIVES, n=1))
        self.dovecot.deliver("lise", "INBOX", al_mail(NEWS, subject="Lettre d'information", n=2))
        self.dovecot.start()
        self.addCleanup(self.dovecot.stop)
        self.bus = DBusSession(self.t)
        self.addCleanup(self.bus.stop)
        self.monitor = BusMonitor(self.bus)
        self.addCleanup(self.monitor.stop)
        self.a = Alcode(self.t, bus=self.bus)
        self.a.write_config(self.dovecot.account_config("lise", user="lise"))

    def status_json(self):
        """`alcode status --json`: (account, codes, possible) per line."""
        return [(o["account"], o["codes"], o["possible"])
                for o in map(json.loads, self.a.run("status", "--json").stdout.splitlines())]

    def test_possible_codes(self):
        self.a.daemon("--once")
        rows = self.a.sql("SELECT kind, value, display, trusted FROM codes")
        self.assertEqual(rows, [("possible", None, None, 1)])
        calls = self.monitor.notify_calls()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["summary"], "Action Logement: a mail may hold a code no rule read")
        self.assertIn("Votre espace AL'in", calls[0]["body"])
        self.assertNotIn("document joint", calls[0]["body"])  # where the mail is, never its text
        self.assertNotIn("copy", calls[0]["actions"])

        out = self.a.run("list").stdout
        self.assertIn("1 mail from AL'in may hold a code no rule read: alcode show 1 / alcode scan --explain", out)
        o = json.loads(self.a.run("list", "--json").stdout)
        self.assertEqual((o["kind"], o["value"], o["trusted"], o["subject"]), ("possible", None, True, "Votre espace AL'in"))
        self.assertNotIn("display", o)
        show = self.a.run("show", "1").stdout
        self.assertIn("A mail from AL'in may hold a code no rule read.", show)
        self.assertIn("UID 1", show)

        # A second one is stored and listed, but not notified again.
        self.dovecot.deliver("lise", "INBOX", al_mail(GIVES.replace("Lise", "Madame"), n=3))
        self.a.daemon("--once")
        self.assertEqual(len(self.monitor.notify_calls()), 1)
        out = self.a.run("list").stdout
        self.assertRegex(out, r"2 mails from AL'in may hold a code no rule read: alcode show \d+, \d+ / ")
        self.a.run("forget", "1")
        self.assertIn("1 mail from AL'in", self.a.run("list").stdout)

    def test_running_daemon_shows_them(self):
        """What a user sees while the daemon runs: `alcode status` counts the possible codes,
        ListCodes("possible") lists them with their sender and no value, the first one is
        notified, and a mail that only explains codes adds nothing."""
        self.dovecot.deliver("lise", "INBOX", al_mail(EXPLAINS, subject="Good to know", n=4))
        notify = NotifySocket(self.t)
        self.addCleanup(notify.close)
        p = start_daemon(self, self.a, notify=notify)
        notify.wait("STATUS", "lise: watching")

        listed = busctl(self.bus, "call", NAME, PATH, IFACE, "ListCodes", "s", "possible")["data"][0]
        self.assertEqual(len(listed), 1, listed)
        _, kind, value, sender, trusted, date = listed[0]
        self.assertEqual((kind, value, sender, trusted), ("possible", "", "notifications@al-in.fr", True))
        self.assertGreater(date, 1_700_000_000)
        self.assertEqual([c[1] for c in busctl(self.bus, "call", NAME, PATH, IFACE, "ListCodes", "s", "specific")
                          ["data"][0]], [])

        calls = self.monitor.notify_calls()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["summary"], "Action Logement: a mail may hold a code no rule read")
        self.assertNotIn("Good to know", calls[0]["body"])

        out = self.a.run("status").stdout
        self.assertIn("1 mail may hold a code no rule read: alcode list", out)
        self.assertEqual(self.status_json(), [("lise", 0, 1)])
        # A store that cannot be read: not known, rather than none.
        o = json.loads(self.a.run("status", "--json", "--db", self.t.join("none.db")).stdout)
        self.assertEqual((o["account"], o["possible"], o["specific_found"]), ("lise", None, None))
        self.assertIn("1 mail from AL'in may hold a code no rule read", self.a.run("list").stdout)

        # A second one: counted and listed, not notified again.
        self.dovecot.deliver("lise", "INBOX", al_mail(GIVES.replace("Lise", "Madame"), n=5))
        self.a.run("rescan", "lise")
        wait_for(lambda: len(busctl(self.bus, "call", NAME, PATH, IFACE, "ListCodes", "s", "possible")["data"][0]) == 2,
                 what="the second possible code")
        self.assertIn("2 mails may hold a code no rule read: alcode list", self.a.run("status").stdout)
        self.assertEqual(self.status_json(), [("lise", 0, 2)])
        # Read from the store: one dismissed is no longer counted, by the account or in all.
        self.a.run("forget", str(self.a.sql("SELECT id FROM codes WHERE kind = 'possible'")[0][0]))
        self.assertEqual(self.status_json(), [("lise", 0, 1)])
        self.assertIn("1 mail may hold a code no rule read: alcode list", self.a.run("status").stdout)
        self.assertEqual(len(self.monitor.notify_calls()), 1)

        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))


if __name__ == "__main__":
    main()
