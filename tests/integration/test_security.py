"""Local security: TLS beyond test_tls (a certificate not meant for servers, a pinned
certificate replaced between two connections), no secret and no code in any log line of a
full verbose run, file modes of the store, and how password_command runs (no shell unless the
value needs one, its own process group killed whole on timeout, its stderr never in logs)."""

import json
import os
import signal
import stat
import time
import unittest

from alcodetest import (DEMO_MAIL_DIR, Alcode, Dovecot, TempDir, binary, cert_fingerprint, main, make_ca,
                        corpus_employer_domains, read_log, require_corpus, run_with_private_journal,
                        wait_for)

PASSWORD = "Pa55-w0rd.secret-7Q"


class Tls(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)

    def server(self, cert, sub):
        d = Dovecot(_Sub(self.tmp, sub), cert=cert, users={"alice": PASSWORD})
        d.load_tree("alice", DEMO_MAIL_DIR)
        return d

    def client(self, d, extra, sub):
        a = Alcode(_Sub(self.tmp, sub))
        a.write_config(d.account_config("t", extra=extra))
        return a

    def assert_no_login(self, d):
        self.assertNotIn("user=<alice>", d.log())

    def test_certificate_not_for_servers(self):
        ca, _, _ = make_ca(self.tmp.path)
        ca_key = self.tmp.join("ca.key")
        # Signed by the trusted CA for the right name, but its extended key usage says
        # "TLS client" only: it must not authenticate a server.
        cert = make_ca(self.tmp.path, name="client-only", ca=(ca, ca_key), extra_ext="extendedKeyUsage=clientAuth\n")
        d = self.server(cert, "eku").start()
        self.addCleanup(d.stop)
        a = self.client(d, "", "eku-client")
        r = a.daemon("--once", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("certificate of 127.0.0.1 refused", r.stderr)
        self.assert_no_login(d)

    def test_pinned_certificate_replaced(self):
        ca, _, _ = make_ca(self.tmp.path)
        ca_key = self.tmp.join("ca.key")
        first = make_ca(self.tmp.path, name="first", ca=(ca, ca_key))
        second = make_ca(self.tmp.path, name="second", ca=(ca, ca_key))
        d = self.server(first, "pin").start()
        self.addCleanup(d.stop)
        a = self.client(d, "fingerprint = %s\n" % cert_fingerprint(first[1]), "pin-client")
        p = a.spawn_daemon("--verbose", env={"ALCODE_TEST_BACKOFF_MAX": "1"})
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.logfile.close()))
        wait_for(lambda: _count(a, "codes") > 0, timeout=30, what="the first connection's codes")
        logins = d.log().count("Login: user=<alice>")
        self.assertGreaterEqual(logins, 1)
        # The server now presents another certificate, valid for the same CA and name (as a
        # machine in the middle with a mis-issued certificate would): the pin refuses it, and
        # the password is not sent again.
        d.stop()
        d.cert, d.key = second[1], second[2]
        d._write_config()
        d.start()
        wait_for(lambda: "does not match the pinned fingerprint" in read_log(p), timeout=60,
                 what="the new certificate refused")
        self.assertIn("server fingerprint " + cert_fingerprint(second[1]), read_log(p))
        self.assertEqual(d.log().count("Login: user=<alice>"), logins, "a login after the certificate changed")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=15), 0)


def _count(a, table):
    """Rows in a table of a's store; 0 while the daemon is still creating it."""
    try:
        return a.sql("SELECT count(*) FROM %s" % table)[0][0]
    except Exception:
        return 0


class _Sub:
    """A TempDir-like view of a subfolder (several servers and clients in one test)."""

    def __init__(self, tmp, name):
        self.path = os.path.join(tmp.path, name)
        os.makedirs(self.path, exist_ok=True)
        os.chmod(self.path, 0o755)

    def join(self, *parts):
        return os.path.join(self.path, *parts)


class Logs(unittest.TestCase):
    def corpus_account(self):
        """A dovecot holding the sample corpus (INBOX and Junk) and an alcode set up for it."""
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        sample = require_corpus()
        d = Dovecot(tmp, users={"alice": PASSWORD})
        d.load_tree("alice", sample, {"perso/INBOX": "INBOX", "perso/Junk": "Junk"})
        d.start()
        self.addCleanup(d.stop)
        a = Alcode(tmp)
        a.write_config("employer_domains = %s\n" % corpus_employer_domains(sample) + d.account_config("full"))
        return tmp, sample, d, a

    def test_no_secret_or_code_in_any_log_line(self):
        tmp, sample, d, a = self.corpus_account()
        # A full run at the most verbose level: backfill, then IDLE, new mail, a stop.
        p = a.spawn_daemon("--verbose", env={"ALCODE_TEST_POLL_INTERVAL": "1"})
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), p.logfile.close()))
        wait_for(lambda: "watching with IDLE" in read_log(p), timeout=120, what="the backfill")
        reads = read_log(p).count("read 1 new message")
        with open(os.path.join(sample, "perso/INBOX", sorted(os.listdir(os.path.join(sample, "perso/INBOX")))[0]),
                  "rb") as f:
            d.deliver("alice", "INBOX", f.read())
        wait_for(lambda: read_log(p).count("read 1 new message") > reads, timeout=30, what="the new mail")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=30), 0)
        log = read_log(p)
        # Also what the CLI prints on stderr around it.
        log += a.run("list", "--json").stderr
        codes = a.list_json()
        self.assertGreater(len(codes), 50)
        lines = log.splitlines()
        self.assertGreater(len(lines), 100, "the run logged too little to prove anything")
        secrets = secrets_of(codes)
        leaks = [(s, l) for l in lines for s in secrets if s in l]
        self.assertEqual(leaks, [], "secrets or codes in the log")

    def test_no_secret_or_code_in_the_journal(self):
        # Under systemd the records go to the journal with fields (ACCOUNT=, FOLDER=, UID=,
        # RULE=...): every field of every record is searched, as the private journal
        # (alcodetest.run_with_private_journal) receives them.
        tmp, sample, d, a = self.corpus_account()
        result = run_with_private_journal(self, tmp, [binary("alcoded"), "--once", "--verbose"], a.env(),
                                          timeout=300)
        self.assertEqual(result["rc"], 0, result["stderr"][-3000:])
        records = result["records"]
        self.assertGreater(len(records), 100)
        codes = a.list_json()
        self.assertGreater(len(codes), 50)
        secrets = secrets_of(codes)
        leaks = [(s, k, v) for rec in records for k, v in rec.items() for s in secrets if s in v]
        self.assertEqual(leaks, [], "secrets or codes in the journal")
        print("%d journal records, %d fields searched for %d secrets" % (
            len(records), sum(len(rec) for rec in records), len(secrets)))


def secrets_of(codes):
    """The password, every code as stored and as written, every subject long enough to say
    something: none may appear in a log."""
    secrets = {PASSWORD}
    for c in codes:
        if c["kind"] != "possible":  # a possible code has no value: its subject is checked
            secrets.add(c["value"])
            secrets.add(c["display"])
        if c.get("subject") and len(c["subject"]) > 12:
            secrets.add(c["subject"])
    return secrets


class Files(unittest.TestCase):
    def test_store_modes_whatever_the_umask(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        d = Dovecot(tmp)
        d.load_tree("alice", DEMO_MAIL_DIR)
        d.start()
        self.addCleanup(d.stop)
        a = Alcode(tmp)
        a.write_config(d.account_config("m"))
        old = os.umask(0)
        try:
            a.daemon("--once")
        finally:
            os.umask(old)
        folder = os.path.dirname(a.db)
        self.assertEqual(stat.S_IMODE(os.stat(folder).st_mode), 0o700)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(a.db + suffix):
                self.assertEqual(stat.S_IMODE(os.stat(a.db + suffix).st_mode), 0o600, suffix)
        # A store that others could read is made private when a writer opens it.
        os.chmod(a.db, 0o644)
        a.daemon("--once")
        self.assertEqual(stat.S_IMODE(os.stat(a.db).st_mode), 0o600)


class PasswordCommand(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.dovecot = Dovecot(self.tmp, users={"alice": PASSWORD})
        self.dovecot.load_tree("alice", DEMO_MAIL_DIR)
        self.dovecot.start()
        self.addCleanup(self.dovecot.stop)
        self.alcode = Alcode(self.tmp)
        self.report = self.tmp.join("helper-report")

    def helper(self, name, body):
        path = self.tmp.join(name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return path

    def run_with(self, command, env=None, check=True):
        conf = self.dovecot.account_config("pc").replace("password = %s\n" % PASSWORD,
                                                         "password_command = %s\n" % command)
        self.alcode.write_config(conf)
        return self.alcode.daemon("--once", "--verbose", env=env, check=check, timeout=120)

    def parent_of_helper(self):
        with open(self.report) as f:
            ppid = int(f.read().split()[0])
        return ppid

    def test_no_shell_unless_needed(self):
        # The helper records the name of its parent process.
        h = self.helper("pw", 'cat /proc/$PPID/comm > "%s"\necho "%s"\n' % (self.report, PASSWORD))
        self.run_with(h + " --account pc")
        with open(self.report) as f:
            self.assertEqual(f.read().strip(), "alcoded")
        # Shell syntax (a pipe): now it runs under /bin/sh.
        self.run_with(h + " | head -n 1")
        with open(self.report) as f:
            self.assertIn(f.read().strip(), ("sh", "dash", "bash"))

    def test_timeout_kills_everything_it_started(self):
        # A helper that forks a child and hangs: both must be gone after the timeout.
        h = self.helper("hang", 'sleep 300 &\necho "$$ $!" > "%s"\nwait\n' % self.report)
        t0 = time.monotonic()
        r = self.run_with(h, env={"ALCODE_TEST_SECRET_TIMEOUT": "2"}, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("password_command timed out after 2 s", r.stderr)
        self.assertLess(time.monotonic() - t0, 60)
        with open(self.report) as f:
            pids = [int(x) for x in f.read().split()]

        def gone():
            for pid in pids:
                try:
                    with open("/proc/%d/stat" % pid) as f:
                        if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                            return False
                except FileNotFoundError:
                    pass
            return True
        wait_for(gone, timeout=5, what="the helper and its child to be killed")
        self.assertNotIn("user=<alice>", self.dovecot.log())

    def test_stderr_never_in_logs(self):
        h = self.helper("noisy", 'echo "helper says: $1 %s" >&2\necho "%s"\nexit 4\n' % (PASSWORD, PASSWORD))
        r = self.run_with(h + " STDERR-MARKER", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("password_command exited with status 4", r.stderr)
        self.assertNotIn("STDERR-MARKER", r.stderr)
        self.assertNotIn(PASSWORD, r.stderr)
        self.assertNotIn("user=<alice>", self.dovecot.log())


if __name__ == "__main__":
    main()
