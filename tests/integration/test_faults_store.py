"""Store faults: a clear error, no crash, nothing lost that was committed, and a clean stop
(or a wait, for a short lock), then a complete store once the fault is gone.

- disk full: the database lives on a small tmpfs (as root; else RLIMIT_FSIZE); a running
  daemon says so in `alcode status` while it waits, and stops saying it once the space is back;
- locked by another writer: briefly (alcoded waits) and for longer than its busy timeout;
- read-only: the file system remounted read-only (as root; else the file made 0400);
- corrupt: pages overwritten, and a file that is not a database at all;
- `alcode list` run while alcoded creates the database sees either no database yet or a
  complete one, never a half-made one."""

import contextlib
import errno
import json
import os
import resource
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

from alcodetest import (Alcode, DaemonTestCase, Dovecot, TempDir, binary, code_mail, main, random_codes,
                        read_log, start_daemon, under_ci, wait_for)
from faultkit import employer_config, load_copies, reference_store, snapshot

AS_ROOT = os.geteuid() == 0


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs", path],
                       capture_output=True, text=True)
    return r.returncode == 0


def remount(path, opts):
    subprocess.run(["mount", "-o", "remount," + opts, path], check=True, capture_output=True)


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)


def integrity(db):
    with contextlib.closing(sqlite3.connect("file:%s?mode=ro" % db, uri=True)) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


class StoreFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.dovecot = Dovecot(cls.tmp)
        cls.n = load_copies(cls.dovecot, 1)
        cls.dovecot.start()
        cls.config = employer_config() + cls.dovecot.account_config("s")
        cls.reference = reference_store(cls.dovecot, cls.config)

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.own = TempDir()
        self.addCleanup(self.own.cleanup)
        self.alcode = Alcode(self.own)
        self.alcode.write_config(self.config)

    def use_db_folder(self, folder):
        self.alcode.db = os.path.join(folder, "alcode.db")
        self.alcode.write_config("database = %s\n" % self.alcode.db + self.config)

    def assert_complete(self, what):
        got = snapshot(self.alcode.db)
        self.assertEqual(got["codes"], self.reference["codes"], what)
        self.assertEqual(got["sightings"], self.reference["sightings"], what)
        self.assertEqual(got["cursors"], self.reference["cursors"], what)

    def test_disk_full(self):
        folder = self.own.join("small")
        preexec = None
        if AS_ROOT and mount_tmpfs(folder, "400k"):
            self.addCleanup(umount, folder)
            how = "a 400 KiB tmpfs"
        else:
            if under_ci() and AS_ROOT:
                self.fail("cannot mount a tmpfs as root")
            os.makedirs(folder)
            how = "RLIMIT_FSIZE of 400 KiB"

            def preexec():
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (400 << 10, 400 << 10))
        self.use_db_folder(folder)
        r = subprocess.run([binary("alcoded"), "--once"], env=self.alcode.env(), capture_output=True, text=True,
                           timeout=120, preexec_fn=preexec)
        print("disk full (%s): exit %d; %s" % (how, r.returncode, (r.stderr.strip().splitlines() or [""])[-1]))
        self.assertEqual(r.returncode, 1, r.stderr[-3000:])
        self.assertNotIn("AddressSanitizer", r.stderr)
        self.assertRegex(r.stderr, r"(full|too large|No space|cannot store)")
        # What was committed before the disk filled is intact and readable.
        if os.path.exists(self.alcode.db) and os.path.getsize(self.alcode.db) > 0:
            self.assertEqual(integrity(self.alcode.db), "ok")
            partial = snapshot(self.alcode.db)
            self.assertTrue(set(partial["sightings"]) <= set(self.reference["sightings"]))
            lst = self.alcode.run("list", "--json", check=False)
            self.assertIn(lst.returncode, (0,), lst.stderr)
        # Room again: the next run completes the store.
        if how.startswith("a "):
            remount(folder, "size=64m")
            self.alcode.daemon("--once", timeout=300)
        else:
            self.alcode.daemon("--once", timeout=300)
        self.assert_complete("after a full disk")

    def test_locked_by_another_writer(self):
        self.alcode.daemon("--once", timeout=300)  # the store exists
        with contextlib.closing(sqlite3.connect(self.alcode.db, isolation_level=None, check_same_thread=False)) as c:
            c.execute("DELETE FROM cursors")  # so that the next run has to write again
            # Held for 2 s: under the 5 s busy timeout, alcoded waits and succeeds.
            c.execute("BEGIN IMMEDIATE")
            timer = threading.Timer(2.0, lambda: c.execute("COMMIT"))
            timer.start()
            r = self.alcode.daemon("--once", timeout=120, check=False)
            timer.join()
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assert_complete("after a short lock")
        # Held for longer than the busy timeout: a clear error, a clean exit, nothing lost.
        with contextlib.closing(sqlite3.connect(self.alcode.db, isolation_level=None)) as c:
            c.execute("DELETE FROM cursors")
            c.execute("BEGIN IMMEDIATE")
            r = self.alcode.daemon("--once", timeout=120, check=False)
            c.execute("ROLLBACK")
        self.assertEqual(r.returncode, 1, r.stderr[-3000:])
        self.assertRegex(r.stderr, r"(locked|busy)")
        self.assertNotIn("AddressSanitizer", r.stderr)
        self.alcode.daemon("--once", timeout=300)
        self.assert_complete("after a long lock")

    def test_read_only(self):
        folder = self.own.join("ro")
        if AS_ROOT and mount_tmpfs(folder, "64m"):
            self.addCleanup(umount, folder)
            self.use_db_folder(folder)
            self.alcode.daemon("--once", timeout=300)
            remount(folder, "ro")
            how = "read-only file system"
        else:
            self.use_db_folder(folder)
            self.alcode.daemon("--once", timeout=300)
            os.chmod(self.alcode.db, 0o400)
            how = "file mode 0400"
        ro = how.startswith("read-only")
        before = snapshot(self.alcode.db, immutable=ro)
        r = self.alcode.daemon("--once", timeout=60, check=False)
        print("read-only (%s): exit %d; %s" % (how, r.returncode, r.stderr.strip().splitlines()[-1]))
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Cannot open the database '%s'" % self.alcode.db, r.stderr)
        self.assertNotIn("AddressSanitizer", r.stderr)
        # The CLI still reads it.
        self.assertEqual(len(self.alcode.list_json()), self.reference["n_codes"])
        self.assertEqual(snapshot(self.alcode.db, immutable=ro), before)

    def test_corrupt(self):
        self.alcode.daemon("--once", timeout=300)
        # Forget the cursors (the next run must write), checkpoint the WAL into the file, then
        # damage every page but the first (the schema): what a failing disk does.
        with contextlib.closing(sqlite3.connect(self.alcode.db)) as c:
            c.execute("DELETE FROM cursors")
            c.commit()
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            page = c.execute("PRAGMA page_size").fetchone()[0]
        size = os.path.getsize(self.alcode.db)
        with open(self.alcode.db, "r+b") as f:
            for off in range(page, size, page):
                f.seek(off)
                f.write(b"\xde\xad\xbe\xef" * (page // 8))
        r = self.alcode.daemon("--once", timeout=120, check=False)
        print("corrupt pages: exit %d; %s" % (r.returncode, r.stderr.strip().splitlines()[-1]))
        self.assertEqual(r.returncode, 1, r.stderr[-3000:])
        self.assertRegex(r.stderr, r"(malformed|damaged|not a database|not an alcode|Bad message)")
        self.assertNotIn("AddressSanitizer", r.stderr)
        lst = self.alcode.run("list", check=False)
        self.assertNotEqual(lst.returncode, 0)
        self.assertRegex(lst.stderr, r"(damaged|malformed|not an alcode)")
        # Not a database at all.
        with open(self.alcode.db, "wb") as f:
            f.write(os.urandom(64 << 10))
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.alcode.db + suffix):
                os.unlink(self.alcode.db + suffix)
        r = self.alcode.daemon("--once", timeout=60, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Cannot open the database", r.stderr)
        lst = self.alcode.run("list", check=False)
        self.assertIn("is not an alcode database or is damaged", lst.stderr)

    def test_list_while_the_store_is_created(self):
        bad = []
        expected = ("no database at", "is empty: alcoded has not set it up yet")
        self.alcode.write_config("")  # no account: only the store's creation, 30 times
        for i in range(30):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.alcode.db + suffix):
                    os.unlink(self.alcode.db + suffix)
            p = subprocess.Popen([binary("alcoded"), "--once"], env=self.alcode.env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while p.poll() is None:
                r = self.alcode.run("list", check=False)
                if r.returncode != 0 and not any(e in r.stderr for e in expected):
                    bad.append(r.stderr.strip())
            self.assertEqual(p.wait(), 0)
        self.assertEqual(bad, [])


def fill_up(path):
    """Writes path until the file system is full (ENOSPC)."""
    with open(path, "wb", buffering=0) as f:
        for chunk in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise


class DiskFullWhileRunning(DaemonTestCase):
    USERS = {"sam": "pw-sam-5210"}

    def status_row(self):
        return json.loads(self.alcode.run("status", "--json").stdout.splitlines()[0])

    def test_status_says_disk_full_then_recovers(self):
        folder = self.t.join("small")
        if not (AS_ROOT and mount_tmpfs(folder, "2m")):
            if under_ci():
                self.fail("cannot mount a tmpfs (CI runs this as root)")
            self.skipTest("a full disk needs a tmpfs, mounted as root")
        self.addCleanup(umount, folder)
        self.alcode.db = os.path.join(folder, "alcode.db")
        self.alcode.write_config("database = %s\nnotify = no\n" % self.alcode.db +
                                 self.dovecot.account_config("sam", user="sam",
                                                             extra="folders = INBOX\nidle = INBOX\n"))
        p = start_daemon(self, self.alcode, "--verbose", notify=self.notify)
        self.notify.wait("STATUS", "sam: watching", timeout=30)
        fill_up(os.path.join(folder, "filler"))

        codes = random_codes(3, seed=15)
        self.dovecot.append("sam", "INBOX", code_mail(codes[0]))
        wait_for(lambda: "cannot store results yet" in read_log(p), timeout=30, what="the deferred batch")
        row = self.status_row()
        self.assertIn("disk full, retrying", json.dumps(row))
        self.assertNotEqual(row["state"], "failed", row)
        self.assertIn("disk full", self.alcode.run("status").stdout)

        # Room again: every code is stored, and the status no longer says the disk is full.
        os.unlink(os.path.join(folder, "filler"))
        wait_for(lambda: [x["value"] for x in self.alcode.list_json()] == [codes[0].replace(" ", "")],
                 timeout=120, what="the code stored once there is room")
        wait_for(lambda: "usable again" in read_log(p), timeout=10, what="the retry's log line")
        row = self.status_row()
        self.assertNotIn("disk full", json.dumps(row))
        self.assertEqual(row["state"], "idle", row)
        self.assertNotIn("disk full", self.alcode.run("status").stdout)
        # and the account goes on: later mail is stored directly.
        for c in codes[1:]:
            self.dovecot.append("sam", "INBOX", code_mail(c))
        want = sorted(c.replace(" ", "") for c in codes)
        wait_for(lambda: sorted(x["value"] for x in self.alcode.list_json()) == want, timeout=30,
                 what="the later codes")
        self.assertIsNone(p.poll(), read_log(p))


if __name__ == "__main__":
    main()
