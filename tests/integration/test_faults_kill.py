"""Crashes during a backfill lose nothing and duplicate nothing.

One dovecot holds copies of the generated sample: many for one user, whose backfill must
outlast 20 dovecot kills while one alcoded keeps reading; fewer for another, enough for the
tests that start alcoded again after each fault (each restart reads again what its killed
predecessor had not committed: that, not the kills, is where their time goes, so their
mailbox is the smaller one). A reference store per user comes from an undisturbed
`alcoded --once`. Then, in a store of its own each:
- dovecot is SIGKILLed (every process of it) at random moments of the backfill and restarted,
  20 times (ALCODE_SOAK=N: 20 × N), while one alcoded keeps running;
- alcoded is SIGKILLed at random moments and started again, 20 times (× N);
- alcoded aborts between the inserts of a batch and its COMMIT (the cursor move), at a
  different commit each time (ALCODE_TEST_CRASH_BEFORE_COMMIT=N, test builds only).
Each time, the final store equals the reference: the same codes, the same sightings (no
message read twice into the store, none skipped) and the same cursors with the same count
of messages read. The random seed is printed; ALCODE_TEST_SEED replays a run."""

import concurrent.futures
import os
import signal
import subprocess
import unittest

from alcodetest import Alcode, Dovecot, TempDir, binary, main, read_log, wait_for
from faultkit import employer_config, kill_dovecot, load_copies, messages_seen, reference_store, rng, snapshot, soak

COPIES_LONG = 16  # dovecot killed under one running alcoded: the backfill outlasts 20 kills (a session
                  # commits up to a 1,000-message batch before its kill: 10 copies ran out on a quick machine)
COPIES = 4        # alcoded killed or aborted, then started again
KILLS = 20 * soak()
FAST = {"ALCODE_TEST_IMAP_TIMEOUT": "2", "ALCODE_TEST_BACKOFF_MAX": "1"}


class Kills(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.dovecot = Dovecot(cls.tmp, users={"alice": "secret1", "bob": "secret2"})
        cls.mailboxes = {}
        for user, copies in (("alice", COPIES_LONG), ("bob", COPIES)):
            n = load_copies(cls.dovecot, copies, user=user)
            cls.mailboxes[user] = (n, employer_config() + cls.dovecot.account_config(user, user=user))
        cls.dovecot.start()
        with concurrent.futures.ThreadPoolExecutor() as pool:  # two processes: both cores
            cls.references = dict(zip(cls.mailboxes, pool.map(lambda m: reference_store(cls.dovecot, m[1]),
                                                              cls.mailboxes.values())))
        for user, (n, config) in cls.mailboxes.items():
            total = sum(c[4] for c in cls.references[user]["cursors"])
            assert total == n, "the undisturbed run read %d of %d messages of %s" % (total, n, user)

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.own = TempDir()
        self.addCleanup(self.own.cleanup)
        self.alcode = Alcode(self.own)
        self.use_mailbox("bob")
        self.rnd = rng()

    def use_mailbox(self, user):
        self.n, config = self.mailboxes[user]
        self.reference = self.references[user]
        self.alcode.write_config(config)

    def spawn(self, env=None):
        p = self.alcode.spawn_daemon("--verbose", env=dict(FAST, **(env or {})))
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.logfile.close()))
        return p

    def seen(self):
        return messages_seen(self.alcode.db)

    def assert_like_reference(self, what):
        got = snapshot(self.alcode.db)
        self.assertEqual(got["cursors"], self.reference["cursors"], what + ": cursors differ")
        self.assertEqual(got["n_codes"], self.reference["n_codes"], what + ": not the same number of codes")
        self.assertEqual(got["codes"], self.reference["codes"], what + ": codes differ")
        self.assertEqual(got["sightings"], self.reference["sightings"], what + ": sightings differ")
        self.assertEqual(got["messages"], self.reference["messages"], what + ": stored messages differ")

    def wait_random_moment(self, i, alive, progress):
        """Waits for a random moment of the backfill: once it has read about i/(2 KILLS) of
        the mailbox (so that the kills spread over the whole backfill, not only its first
        seconds), a random delay of up to 0.25 s. Fails if the backfill ends first."""
        target = self.n * i // (2 * KILLS)
        wait_for(lambda: self.seen() >= target or not alive(), timeout=120, what="progress (kill %d)" % i)
        try:
            wait_for(lambda: self.seen() >= self.n or not alive(), timeout=self.rnd.uniform(0.0, 0.25),
                     what="-", interval=0.01)
        except TimeoutError:
            return
        self.assertTrue(alive(), "alcoded exited by itself")
        self.fail("the backfill ended before kill %d (messages read at each kill: %s): make the mailbox "
                  "bigger" % (i, progress))

    def test_dovecot_killed_at_random_moments(self):
        self.use_mailbox("alice")
        d = self.dovecot
        p = self.spawn()
        alive = lambda: p.poll() is None
        progress = []
        for i in range(KILLS):
            # Once the worker is connected again, a random moment of its session: LIST,
            # EXAMINE, SEARCH, FETCH, between two commands.
            connected = read_log(p).count("connected to")
            try:
                wait_for(lambda: read_log(p).count("connected to") > (connected if i else 0) or not alive(),
                         timeout=30, what="the worker to connect (kill %d)" % i)
            except TimeoutError:
                self.fail("no reconnect after kill %d:\n%s\ndovecot:\n%s" % (i, read_log(p)[-3000:], d.log()[-2000:]))
            self.wait_random_moment(i, alive, progress)
            kill_dovecot(d)
            progress.append(self.seen())
            d.start()
        print("dovecot SIGKILLed %d times; messages read at each kill: %s" % (len(progress), progress))
        wait_for(lambda: self.seen() >= self.n, timeout=180, what="the backfill to finish")
        # The session after the last kill too (the backfill may have ended before that kill).
        wait_for(lambda: read_log(p).count("connected to") >= KILLS + 1 or not alive(), timeout=60,
                 what="the worker to connect after the last kill")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=30), 0, read_log(p)[-3000:])
        # Each kill was followed by a new session (the loop above and the wait after it).
        self.assertGreaterEqual(read_log(p).count("connected to"), KILLS + 1)
        self.assert_like_reference("after %d dovecot kills" % len(progress))

    def test_alcoded_killed_at_random_moments(self):
        progress = []
        for i in range(KILLS):
            p = self.spawn()
            # A random moment of its life: starting, opening the store, connecting, reading,
            # committing.
            self.wait_random_moment(i, lambda: p.poll() is None, progress)
            p.kill()
            p.wait()
            progress.append(self.seen())
        print("alcoded SIGKILLed %d times; messages read at each kill: %s" % (len(progress), progress))
        self.alcode.daemon("--once", timeout=300, env=FAST)
        self.assert_like_reference("after %d alcoded kills" % len(progress))

    def test_crash_between_inserts_and_commit(self):
        # Abort before the COMMIT of the 1st, then a later batch: each time the transaction
        # that held the codes and the cursor move is lost whole, and the next run replays it.
        crashes = 0
        for nth in sorted(self.rnd.sample(range(1, 6), 4)):
            before = snapshot(self.alcode.db) if os.path.exists(self.alcode.db) else None
            r = subprocess.run([binary("alcoded"), "--once"], capture_output=True, text=True, timeout=300,
                               env=self.alcode.env(dict(FAST, ALCODE_TEST_CRASH_BEFORE_COMMIT=str(nth))))
            self.assertEqual(r.returncode, -signal.SIGABRT, r.stderr[-3000:])
            crashes += 1
            if before:
                after = snapshot(self.alcode.db)
                # Nothing that was committed is lost.
                self.assertTrue({c[:2] for c in before["codes"]} <= {c[:2] for c in after["codes"]})
                self.assertGreaterEqual(sum(c[4] for c in after["cursors"]), sum(c[4] for c in before["cursors"]))
        print("alcoded aborted before COMMIT %d times" % crashes)
        self.alcode.daemon("--once", timeout=300, env=FAST)
        self.assert_like_reference("after %d aborts before COMMIT" % crashes)


if __name__ == "__main__":
    main()
