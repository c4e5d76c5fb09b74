"""A database locked by another writer (a long `alcode scan --store`, a backup tool) must not
stall the daemon nor stop the account: results wait in memory and are stored, in order, once
the lock is gone; meanwhile D-Bus answers and the account says why it waits."""

import contextlib
import json
import sqlite3
import time
import unittest

from alcodetest import Alcode, DBusSession, Dovecot, TempDir, code_mail, main, read_log, wait_for

PLAIN = b"From: a@friends.example\r\nSubject: hello\r\nMessage-ID: <l1@friends.example>\r\n\r\nhi\r\n"


class Lock(unittest.TestCase):
    def test_running_daemon_waits_out_a_lock(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        dovecot = Dovecot(tmp)
        dovecot.deliver("alice", "INBOX", PLAIN)
        dovecot.start()
        self.addCleanup(dovecot.stop)
        bus = DBusSession(tmp)
        self.addCleanup(bus.stop)
        a = Alcode(tmp, bus)
        a.write_config("notify = no\n" + dovecot.account_config("perso", extra="folders = INBOX\nidle = INBOX\n"))
        p = a.spawn_daemon("--verbose")
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.logfile.close()))
        wait_for(lambda: p.poll() is not None or "watching with IDLE" in read_log(p), timeout=30, what="IDLE")
        self.assertIsNone(p.poll(), read_log(p))

        with contextlib.closing(sqlite3.connect(a.db, isolation_level=None)) as c:
            c.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            dovecot.append("alice", "INBOX", code_mail("LK42 9QZT"))
            wait_for(lambda: "cannot store results yet" in read_log(p), timeout=20, what="the deferred batch")

            # The main loop is free: D-Bus answers at once, and the account says why it waits.
            t = time.monotonic()
            r = a.run("status", "--json", timeout=20)
            elapsed = time.monotonic() - t
            self.assertLess(elapsed, 3.0, "alcode status took %.1f s while the database was locked" % elapsed)
            row = json.loads(r.stdout.splitlines()[0])
            self.assertNotEqual(row["state"], "failed", row)
            self.assertIn("locked", json.dumps(row))
            self.assertIsNone(p.poll(), read_log(p))
            c.execute("ROLLBACK")

        # The lock is gone: the code is stored, the account goes on.
        wait_for(lambda: any(x["value"] == "LK429QZT" for x in a.list_json()), timeout=30,
                 what="the code stored after the lock")
        self.assertIn("usable again", read_log(p))
        dovecot.append("alice", "INBOX", code_mail("LK43 9QZT"))
        wait_for(lambda: any(x["value"] == "LK439QZT" for x in a.list_json()), timeout=30,
                 what="the next code, stored directly")
        p.terminate()
        self.assertEqual(p.wait(timeout=15), 0, read_log(p))


if __name__ == "__main__":
    main()
