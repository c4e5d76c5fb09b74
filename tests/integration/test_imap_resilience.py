"""The worker survives servers that misbehave: a dovecot killed in the middle of a backfill and
restarted (the scan resumes from its cursor; the final store is what an undisturbed run gives,
every message read exactly once), and a fake server that stalls, cuts a literal (libetpan 1.9.4
would spin forever) or answers garbage: the worker times out, drops the connection and
reconnects, and a slow or dead account never delays another."""

import json
import os
import signal
import time
import unittest

from alcodetest import (Alcode, Dovecot, TempDir, corpus_employer_domains, main, read_log, require_corpus,
                        wait_for)
from fakeimap import FakeImap

SAMPLE = require_corpus()
COPIES = 8
FAST = {"ALCODE_TEST_IMAP_TIMEOUT": "1"}  # watchdog window: 2 s


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Resilience(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.alcode = Alcode(self.tmp)

    def spawn(self, config, env=None):
        self.alcode.write_config(config)
        p = self.alcode.spawn_daemon("--verbose", env=env)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.logfile.close()))
        return p

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0, read_log(p))

    def test_dovecot_killed_during_backfill(self):
        d = Dovecot(self.tmp)
        n = 0
        for copy in range(COPIES):
            for folder in ("perso/INBOX", "perso/Junk"):
                src = os.path.join(SAMPLE, folder)
                for name in sorted(os.listdir(src)):
                    with open(os.path.join(src, name), "rb") as f:
                        d.deliver("alice", "INBOX", f.read(), name="%s.%d.%d" % (name, copy, n))
                    n += 1
        d.start()
        self.addCleanup(d.stop)
        # The corpus's one-time codes expired long ago: keep them, to compare with `scan`.
        p = self.spawn("employer_domains = %s\notp_retention = 3650\n" % corpus_employer_domains(SAMPLE)
                       + d.account_config("big"),
                       env=FAST)

        def seen():
            try:
                rows = self.alcode.sql("SELECT messages_seen FROM cursors WHERE folder = 'INBOX'")
            except Exception:
                return 0
            return rows[0][0] if rows else 0

        wait_for(lambda: seen() > 0, timeout=60, what="the first batch", interval=0.005)
        at_kill = seen()
        d.stop(signal.SIGKILL)
        self.assertLess(at_kill, n, "the backfill ended before the kill: make the mailbox bigger")
        wait_for(lambda: "reconnecting" in read_log(p), timeout=20, what="the worker to notice")
        d.start()
        wait_for(lambda: seen() >= n, timeout=90, what="the backfill to finish")
        self.assertEqual(seen(), n, "a message was read twice or skipped")

        expected = self.alcode.run("scan", "--json", os.path.join(SAMPLE, "perso/INBOX"),
                                   os.path.join(SAMPLE, "perso/Junk")).stdout
        scanned = list(map(json.loads, expected.splitlines()))
        want = {(c["kind"], c["value"]) for c in scanned if c["kind"] != "possible"}
        got = self.alcode.list_json()
        codes = [c for c in got if c["kind"] != "possible"]
        self.assertEqual({(c["kind"], c["value"]) for c in codes}, want)
        self.assertEqual(len(codes), len(want))
        # A possible code (no value) is one per message: one per copy delivered.
        self.assertEqual(len(got) - len(codes), COPIES * sum(c["kind"] == "possible" for c in scanned))
        self.stop(p)

    def check_reconnects(self, mode):
        fake = FakeImap(mode)
        self.addCleanup(fake.stop)
        # A healthy second account next to the sick one: it must not wait for it.
        good = FakeImap("ok")
        self.addCleanup(good.stop)
        conf = ""
        for name, srv in (("sick", fake), ("good", good)):
            conf += ("[account %s]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = u\npassword = p\n"
                     "folders = INBOX\n" % (name, srv.port))
        start = time.monotonic()
        p = self.spawn(conf, env=FAST)
        def stored():
            # The daemon may be creating the database at this very moment.
            r = self.alcode.run("list", "--json", check=False)
            return r.returncode == 0 and "FA7K3Q9P" in r.stdout

        wait_for(stored, timeout=10, what="the healthy account's code")
        self.assertLess(time.monotonic() - start, 5, "the healthy account waited for the sick one")
        wait_for(lambda: fake.connections >= 2, timeout=20, what="a reconnect after '%s'" % mode)
        # Not spinning: well under one core over the whole episode (the literal-EOF loop took 100 %).
        wall = time.monotonic() - start
        self.assertLess(cpu_seconds(p.pid), 0.5 * wall + 0.5, read_log(p))
        self.stop(p)
        return read_log(p)

    def test_stalled_server(self):
        log = self.check_reconnects("stall")
        self.assertTrue("no answer within 1 s" in log or "no progress" in log, log)

    def test_connection_cut_inside_a_literal(self):
        log = self.check_reconnects("cut")
        # Noticed at once (a read after end-of-file fails), not by the watchdog.
        self.assertIn("the server closed the connection", log)

    def test_garbage(self):
        log = self.check_reconnects("garbage")
        self.assertIn("reconnecting", log)


if __name__ == "__main__":
    main()
