"""A server that stops answering (every dovecot process SIGSTOPped) in the middle of a
command, of a literal, or of IDLE: the worker notices within its watchdog window, drops the
connection, keeps trying with backoff, and once dovecot runs again (SIGCONT) it finishes what
it was doing, every message read once. Meanwhile the other account, on another dovecot, keeps
receiving its mail within seconds, and the daemon answers on D-Bus at once: nothing else in the
daemon waits for the stalled server."""

import os
import signal
import time
import unittest

import subprocess

from alcodetest import Alcode, DBusSession, Dovecot, TempDir, busctl, main, read_log, wait_for
from faultkit import messages_seen, signal_tree

FAST = {"ALCODE_TEST_IMAP_TIMEOUT": "1", "ALCODE_TEST_BACKOFF_MAX": "1", "ALCODE_TEST_POLL_INTERVAL": "1"}


def code_mail(code, n):
    return ("From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nTo: jeanne@example.org\r\n"
            "Subject: Votre code\r\nDate: Mon, 02 Mar 2026 09:14:00 +0100\r\nMessage-ID: <stall%d@actionlogement.fr>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nVotre code sp\u00e9cifique : %s\r\n" % (n, code)).encode()


def big_mail(n):
    # 200 KB: read whole in the streamed FETCH, so most of the bytes in flight are literals.
    filler = ("Ligne de texte sans code, num\u00e9ro %d, pour remplir le message.\r\n" % n) * 3300
    return ("From: Someone <someone@example.org>\r\nTo: jeanne@example.org\r\nSubject: news %d\r\n"
            "Message-ID: <big%d@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" % (n, n)
            + filler).encode()


def _noticed(log):
    """Lines where the worker says the sick server stopped answering."""
    return sum(1 for l in log.splitlines() if "'sick'" in l and ("dropping the connection" in l or "no answer within" in l
                                                                 or "connection lost" in l))


class Stall(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.other_tmp = TempDir()
        self.addCleanup(self.other_tmp.cleanup)
        self.sick = Dovecot(self.tmp)
        self.well = Dovecot(self.other_tmp)
        self.bus = DBusSession(self.tmp)
        self.addCleanup(lambda: self.bus.stop())
        self.alcode = Alcode(self.tmp, bus=self.bus)

    def start(self):
        for d in (self.sick, self.well):
            d.start()
            self.addCleanup(d.stop)
            # Whatever happens, never leave a stopped dovecot behind.
            self.addCleanup(lambda d=d: d.proc and signal_tree(d.proc.pid, signal.SIGCONT))
        self.alcode.write_config(self.sick.account_config("sick") + self.well.account_config("well"))
        p = self.alcode.spawn_daemon("--verbose", env=FAST)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.logfile.close()))
        return p

    def codes(self):
        r = self.alcode.run("list", "--json", check=False)
        return r.stdout if r.returncode == 0 else ""

    def assert_other_account_unaffected(self, p, n):
        code = "WL%dQ 7K3M" % n
        t0 = time.monotonic()
        self.well.deliver("alice", "INBOX", code_mail(code, 100 + n))
        wait_for(lambda: code.replace(" ", "") in self.codes(), timeout=15,
                 what="the healthy account's new mail during the stall")
        took = time.monotonic() - t0
        print("the healthy account's new code arrived %.1f s after delivery, during the stall" % took)
        self.assertLess(took, 10)

    def stall(self, p, n, before=None):
        """SIGSTOPs the sick dovecot until the worker has given up on it (watchdog, then a
        reconnect that gets no greeting), checks the other account, then SIGCONTs it."""
        stops = _noticed(read_log(p))
        signal_tree(self.sick.proc.pid, signal.SIGSTOP)
        try:
            try:
                wait_for(lambda: _noticed(read_log(p))
                         > stops, timeout=20, what="the worker to notice the stall")
            except TimeoutError:
                self.fail("the stall went unnoticed:\n" + read_log(p)[-3000:])
            wait_for(lambda: read_log(p).count("account 'sick': reconnecting in") > before, timeout=20,
                     what="a reconnect attempt") if before is not None else None
            self.assert_other_account_unaffected(p, n)
            t0 = time.monotonic()
            r = busctl(self.bus, "call", "io.github.alcode.Daemon1", "/io/github/alcode/Daemon1",
                       "io.github.alcode.Daemon1", "Status", check=False)
            took = time.monotonic() - t0
            self.assertFalse(isinstance(r, subprocess.CompletedProcess), getattr(r, "stderr", ""))
            states = {a[0]: a[1] for a in r["data"][0]}
            print("D-Bus Status answered in %.0f ms during the stall: %s" % (took * 1000, states))
            self.assertLess(took, 1.0)
            self.assertIsNone(p.poll())
        finally:
            signal_tree(self.sick.proc.pid, signal.SIGCONT)

    def test_stall_mid_fetch_and_mid_literal(self):
        n = 600
        for i in range(n):
            self.sick.deliver("alice", "INBOX", big_mail(i))
        self.sick.deliver("alice", "INBOX", code_mail("SK4P 9R2T", 1))
        p = self.start()
        # Stop it while the FETCH streams: a random point in ~120 MB of literals.
        wait_for(lambda: "account 'sick': connected" in read_log(p), timeout=30, what="the connection")
        wait_for(lambda: messages_seen(self.alcode.db, "sick") > 0 or "SK4P9R2T" in self.codes(), timeout=30,
                 what="the backfill to be under way")
        at_stop = messages_seen(self.alcode.db, "sick")
        self.assertLess(at_stop, n, "the backfill ended before the stall")
        self.stall(p, 1)
        wait_for(lambda: messages_seen(self.alcode.db, "sick") >= n + 1, timeout=120, what="the backfill to finish")
        self.assertEqual(messages_seen(self.alcode.db, "sick"), n + 1 + 0, "a message read twice or skipped")
        self.assertIn("SK4P9R2T", self.codes())
        log = read_log(p)
        print("stalled with %d of %d messages committed; noticed as: %s"
              % (at_stop, n + 1, [l for l in log.splitlines() if _noticed(l)][:1]))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=15), 0)

    def test_stall_mid_idle(self):
        self.sick.deliver("alice", "INBOX", code_mail("SK5A 2B3C", 2))
        # A second folder, polled (not in `idle`): the poll leaves IDLE and finds the stall.
        self.sick.deliver("alice", "Archive", code_mail("SK6D 4E5F", 3))
        p = self.start()
        wait_for(lambda: "SK5A2B3C" in self.codes() and "account 'sick' folder 'INBOX': watching with IDLE" in read_log(p)
                 and "account 'sick' folder 'Junk': watching with IDLE" in read_log(p),
                 timeout=30, what="the first pass and IDLE")
        self.stall(p, 2)
        # Mail that came while the server was stopped is read once it answers again.
        self.sick.deliver("alice", "INBOX", code_mail("SK7G 6H7J", 4))
        wait_for(lambda: "SK7G6H7J" in self.codes(), timeout=60, what="the mail delivered after the stall")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=15), 0)


if __name__ == "__main__":
    main()
