"""IDLE keep-alives are not work: a server's "* OK Still here" every second must not make the
daemon leave IDLE, re-read the folder and IDLE again (RFC 2177 servers send them to keep NATs
open; dovecot every 2 minutes by default, here every second to make a few seconds tell).

What the daemon sends the server must not grow with the time it sits idle: dovecot's logout
line counts the bytes the client sent on each connection."""

import re
import time
import unittest

from alcodetest import Alcode, Dovecot, TempDir, main, read_log, wait_for

PLAIN = b"From: a@friends.example\r\nSubject: hello\r\nMessage-ID: <k1@friends.example>\r\n\r\nhi\r\n"


class IdleKeepalive(unittest.TestCase):
    def test_keepalives_do_not_wake_the_worker(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        dovecot = Dovecot(tmp, imap_extra="  imap_idle_notify_interval = 1 secs\n"
                                          "  imap_logout_format = in=%i out=%o\n")
        dovecot.deliver("alice", "INBOX", PLAIN)
        dovecot.start()
        self.addCleanup(dovecot.stop)
        a = Alcode(tmp)
        a.write_config(dovecot.account_config("perso", extra="folders = INBOX\nidle = INBOX\n"))

        def client_bytes(idle_seconds):
            before = len(re.findall(r"in=(\d+)", dovecot.log()))
            p = a.spawn_daemon("--verbose", env={"ALCODE_TEST_POLL_INTERVAL": "3600"})
            try:
                wait_for(lambda: p.poll() is not None or "watching with IDLE" in read_log(p), timeout=30,
                         what="IDLE")
                self.assertIsNone(p.poll(), read_log(p))
                deadline = time.monotonic() + idle_seconds
                while time.monotonic() < deadline:  # sitting idle is the point of this test
                    self.assertIsNone(p.poll(), read_log(p))
                    time.sleep(0.2)
            finally:
                p.terminate()
                self.assertEqual(p.wait(timeout=15), 0, read_log(p))
                p.logfile.close()
            sent = wait_for(lambda: [int(x) for x in re.findall(r"in=(\d+)", dovecot.log())][before:] or None,
                            timeout=10, what="dovecot's logout line")
            return sum(sent)

        client_bytes(0.5)  # the first run reads the folder; the next ones start from the cursor
        short = client_bytes(0.5)
        long = client_bytes(5)  # five keep-alives or more
        self.assertEqual(long, short, "the daemon talked to the server while idle:\n" + dovecot.log()[-2000:])


if __name__ == "__main__":
    main()
