"""Small defects found by a hostile-input review (issue 11), each checked as a user meets it:
values given to `alcode init --yes` cannot add lines to the config; every verb reports output
it could not write; `alcode check` names a config path it cannot read; config values are parsed
strictly (host, since, NUL bytes); a store with a schema version alcode never wrote is refused;
readers and writers treat a symlinked database alike; code ids parse strictly; and alcoded
processes do not back off in step."""

import os
import re
import sqlite3
import subprocess
import time
import unittest

from alcodetest import DEMO_MAIL_DIR, RULES_DIR, Alcode, TempDir, binary, free_port, main, read_log, wait_for

ACCOUNT = "[account a]\nhost = 127.0.0.1\nport = 1143\ntls = none\nuser = alice\npassword_command = /bin/true\n"


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.a = Alcode(self.tmp)

    def check(self, text=None, *args):
        if text is not None:
            self.a.write_config(text)
        return self.a.run("check", *args, check=False)


class InitValues(Base):
    """Every value `alcode init --yes` writes into the config is one line: a newline would add
    a key of the attacker's choosing (a database, a certificate pin), which `check` accepts."""

    INJECT = "\ndatabase = /tmp/alcode-evil.db"

    def init(self, *args):
        return self.a.run("init", "--yes", "--no-test", "--no-enable", *args, check=False)

    def base(self, **over):
        opts = {"email": "alice@example.org", "host": "127.0.0.1", "tls": "none",
                "password-command": "/bin/true"}
        opts.update(over)
        out = []
        for k, v in opts.items():
            out += ["--" + k, v]
        return out

    def test_a_newline_in_any_value_is_refused_and_nothing_is_written(self):
        odd = self.tmp.join("ca\nfingerprint = sha256:00")
        with open(odd, "w") as f:
            f.write("x\n")
        cases = {
            "employer-domains": self.base() + ["--employer-domains", "example.fr" + self.INJECT],
            "host": self.base(host="127.0.0.1" + self.INJECT),
            "user": self.base() + ["--user", "alice" + self.INJECT],
            "password-command": self.base(**{"password-command": "/bin/true" + self.INJECT}),
            "ca-file": self.base() + ["--ca-file", odd],
            "email": self.base(email="alice" + self.INJECT.replace(" ", "") + "@example.org"),
        }
        for option, args in cases.items():
            with self.subTest(option):
                r = self.init(*args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn("--" + option, r.stderr)
                self.assertFalse(os.path.exists(self.a.config), "a config was written")

    def test_a_host_with_a_blank_or_a_carriage_return_is_refused(self):
        for host in ("imap.example.org other", "imap.example.org\r", "imap/example.org", "user@imap.example.org"):
            with self.subTest(host=host):
                r = self.init(*self.base(host=host))
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn("--host", r.stderr)

    def test_good_values_are_written_as_given(self):
        r = self.init(*self.base(user="alice.smith", **{"employer-domains": "mon-employeur.fr, rh.example"}))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(self.a.config) as f:
            text = f.read()
        self.assertIn("\nemployer_domains = mon-employeur.fr, rh.example\n", text)
        self.assertIn("\nuser = alice.smith\n", text)
        self.assertNotIn("database", text)
        os.symlink(RULES_DIR, os.path.join(self.a.config_dir, "rules.d"))
        r = self.a.run("check", check=False)
        self.assertIn("OK, 1 account(s)", r.stdout, r.stderr)


class LostOutput(Base):
    """Output written to a full device or a closed stdout is an error for every verb."""

    def run_to(self, args, where):
        env = self.a.env()
        if where == "full":
            with open("/dev/full", "w") as full:
                return subprocess.run([binary("alcode")] + args, stdout=full, stderr=subprocess.PIPE,
                                      text=True, env=env, timeout=60)
        # A closed stdout: the shell's >&- as Python can do it.
        return subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", binary("alcode")] + args,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=60)

    def test_every_verb(self):
        self.a.write_config(ACCOUNT)
        mail = DEMO_MAIL_DIR  # codes found: scan prints them on stdout
        db = self.tmp.join("codes.db")
        self.a.run("--db", db, "scan", "--store", DEMO_MAIL_DIR)
        for args in (["--help"], ["--version"], ["check"], ["scan", mail], ["scan", "--explain", mail],
                     ["--db", db, "list"], ["--db", db, "export", "--json"], ["--db", db, "show", "1"]):
            for where in ("full", "closed"):
                with self.subTest(args=args, where=where):
                    r = self.run_to(args, where)
                    self.assertNotEqual(r.returncode, 0, r.stderr)
                    self.assertIn("cannot write the output", r.stderr)
                    # Said once, not once per layer.
                    self.assertEqual(r.stderr.count("cannot write the output"), 1, r.stderr)

    def test_a_closed_pipe_is_not_an_error(self):
        # alcode --help | head -c1: the reader went away, which is fine.
        r = subprocess.run("%s --help | head -c1 >/dev/null; echo ${PIPESTATUS[0]}" % binary("alcode"),
                           shell=True, executable="/bin/bash", capture_output=True, text=True,
                           env=self.a.env(), timeout=60)
        self.assertEqual(r.stdout.strip(), "0", r.stderr)
        self.assertNotIn("cannot write", r.stderr)

    def test_closed_stdout_does_not_land_in_the_database(self):
        # With fd 1 closed, the database opened by `list` would get number 1 and the table would
        # be written into it; the output is refused instead and the store stays intact.
        db = self.tmp.join("codes.db")
        self.a.write_config(ACCOUNT)
        r = self.a.run("--db", db, "scan", "--store", DEMO_MAIL_DIR, check=False)
        self.assertTrue(os.path.exists(db), r.stderr)
        size = os.path.getsize(db)
        r = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", binary("alcode"), "--db", db, "list"],
                           stderr=subprocess.PIPE, text=True, env=self.a.env(), timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.path.getsize(db), size)
        self.assertEqual(self.a.run("--db", db, "list", check=False).returncode, 0)


class CheckPaths(Base):
    """`alcode check -c PATH` names PATH and what is wrong with it."""

    def test_unreadable_paths(self):
        plain = self.tmp.join("plain-file")
        with open(plain, "w") as f:
            f.write("x\n")
        locked = self.tmp.join("locked")
        os.makedirs(locked)
        with open(os.path.join(locked, "alcode.conf"), "w") as f:
            f.write("[alcode]\n")
        os.chmod(locked, 0)
        self.addCleanup(os.chmod, locked, 0o700)
        folder = self.tmp.join("a-folder")
        os.makedirs(folder)
        cases = {
            "ENOTDIR": (os.path.join(plain, "alcode.conf"), "Not a directory"),
            "ENAMETOOLONG": (self.tmp.join("x" * 300), "File name too long"),
            "folder": (folder, "is a folder, not a configuration file"),
        }
        if os.geteuid() != 0:
            cases["EACCES"] = (os.path.join(locked, "alcode.conf"), "Permission denied")
        for name, (path, why) in cases.items():
            with self.subTest(name):
                r = self.a.run("check", "-c", path, check=False)
                self.assertEqual(r.returncode, 1)
                out = r.stdout + r.stderr
                self.assertIn(path, out)
                self.assertIn(why, out)
                self.assertNotIn("Input/output error", out)
                # The other verbs say it too.
                r = self.a.run("-c", path, "scan", plain, check=False)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(path, r.stderr)
                self.assertIn(why, r.stderr)


    def test_endless_input(self):
        # /dev/zero is one endless line of NUL bytes: said, and the reading stops.
        r = self.a.run("check", "-c", "/dev/zero", check=False, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/dev/zero:1: line longer than", r.stdout + r.stderr)
        self.assertIn("the rest of the file is not read", r.stdout + r.stderr)


class StrictValues(Base):
    def assert_error(self, text, line, message):
        r = self.check(text)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        prefix = "%s:%d:" % (self.a.config, line)
        hits = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith(prefix) and message in l]
        self.assertTrue(hits, "%r %r not in:\n%s" % (prefix, message, r.stdout + r.stderr))

    def test_host(self):
        for host in ("imap.example.org other", "imap.example.org\rx", "imap/example.org", "a@b", "exa..mple",
                     "-" * 64 + ".org"):
            with self.subTest(host=host):
                self.assert_error(ACCOUNT.replace("host = 127.0.0.1", "host = " + host), 4,
                                  "key 'host': expected a server name")
        for host in ("localhost", "::1", "127.0.0.1", "imap_1.internal"):
            with self.subTest(host=host):
                r = self.check(ACCOUNT.replace("host = 127.0.0.1", "host = " + host).replace("tls = none", "tls = implicit"))
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_employer_domains(self):
        for d in ("example..fr", "example.fr.", "-example.fr", "exa mple.fr", "example.fr\x01"):
            with self.subTest(domain=d):
                self.assert_error("[alcode]\nemployer_domains = ok.fr, %s\n" % d + ACCOUNT, 3,
                                  "invalid domain")
        r = self.check("[alcode]\nemployer_domains = Mon-Employeur.fr, rh.example.org\n" + ACCOUNT)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_user_with_a_control_character(self):
        self.assert_error(ACCOUNT.replace("user = alice", "user = ali\rce"), 7, "control character")

    def test_since(self):
        for since, message in (("2026-02-30", "no such day: '2026-02-30'"), ("2025-02-29", "no such day"),
                               ("2026-13-01", "no such day"), ("2026-2-3", "expected a date YYYY-MM-DD"),
                               ("+2026-02-03", "expected a date"), ("2026-02-03x", "expected a date"),
                               ("1969-12-31", "expected a date")):
            with self.subTest(since=since):
                self.assert_error(ACCOUNT + "since = %s\n" % since, 9, message)
        for since in ("2024-02-29", "2026-12-31", "1970-01-01"):
            with self.subTest(since=since):
                r = self.check(ACCOUNT + "since = %s\n" % since)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_nul_byte(self):
        with open(self.a.config, "wb") as f:
            f.write(("[alcode]\nrules = %s\n" % RULES_DIR).encode() + ACCOUNT.encode()
                    + b"folders = INBOX\x00, Junk\n")
        r = self.a.run("check", check=False)
        self.assertEqual(r.returncode, 1)
        out = r.stdout + r.stderr
        self.assertIn("%s:9:16: NUL byte in the line" % self.a.config, out)
        self.assertNotIn("longer than", out)

    def test_duplicates_are_still_found_in_a_large_config(self):
        n = 3000
        text = "".join(ACCOUNT.replace("[account a]", "[account a%d]" % i) for i in range(n))
        text += ACCOUNT.replace("[account a]", "[account a1234]")
        text += "[account z]\nhost = 127.0.0.1\nhost = 127.0.0.2\n"
        r = self.check(text)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1)
        base = 2 + 6 * n  # [alcode], rules =, then 6 lines per account
        self.assertIn("%s:%d: duplicate account 'a1234'" % (self.a.config, base + 2), out)
        self.assertIn("%s:%d: key 'host' set twice in [account z]" % (self.a.config, base + 9), out)
        # The [alcode] section, met twice, still counts its keys once.
        r = self.check("[alcode]\nnotify = yes\n" + ACCOUNT + "[alcode]\nnotify = no\n")
        self.assertIn("key 'notify' set twice in [alcode]", r.stdout + r.stderr)


class Store(Base):
    def setUp(self):
        super().setUp()
        self.a.write_config(ACCOUNT)

    def make_store(self, version):
        db = self.tmp.join("v%d.db" % version)
        with sqlite3.connect(db) as c:
            c.execute("CREATE TABLE t (x)")
            c.execute("PRAGMA application_id = %d" % 0x414C4344)
            c.execute("PRAGMA user_version = %d" % version)
        return db

    def test_schema_version_never_written(self):
        app = self.store_application_id()
        for version, message in ((-1, "not an alcode database or is damaged (an unknown schema version"),
                                 (-2147483648, "unknown schema version"),
                                 (99, "was written by a newer alcode")):
            db = self.tmp.join("v%d.db" % (version & 0xffff))
            with sqlite3.connect(db) as c:
                c.execute("CREATE TABLE t (x)")
                c.execute("PRAGMA application_id = %d" % app)
                c.execute("PRAGMA user_version = %d" % version)
            for args in (["list"], ["forget", "1"], ["scan", "--store", db]):
                with self.subTest(version=version, verb=args[0]):
                    r = self.a.run("--db", db, *args, check=False)
                    self.assertEqual(r.returncode, 1 if args[0] == "scan" else 2, r.stdout + r.stderr)
                    self.assertIn(message, r.stderr)
            # The daemon refuses it too, and leaves it as it was.
            self.a.write_config("database = %s\n" % db + ACCOUNT)
            r = self.a.daemon("--once", check=False, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            with sqlite3.connect(db) as c:
                self.assertEqual(c.execute("PRAGMA user_version").fetchone()[0], version)

    def store_application_id(self):
        db = self.tmp.join("real.db")
        r = self.a.run("--db", db, "scan", "--store", self.tmp.join("none.eml"), check=False)
        self.assertTrue(os.path.exists(db), r.stderr)
        with sqlite3.connect(db) as c:
            return c.execute("PRAGMA application_id").fetchone()[0]

    def test_symlinked_database_refused_alike(self):
        db = self.tmp.join("real.db")
        self.store_application_id()  # creates db
        link = self.tmp.join("link.db")
        os.symlink(db, link)
        for args in (["list"], ["latest"], ["export", "--json"], ["forget", "1"], ["scan", "--store", db]):
            with self.subTest(verb=args[0]):
                r = self.a.run("--db", link, *args, check=False)
                self.assertEqual(r.returncode, 1 if args[0] == "scan" else 2, r.stdout + r.stderr)
                self.assertIn("is a symbolic link", r.stderr)
                self.assertNotIn("Too many levels", r.stderr)
        # alcoded too, named by the config.
        self.a.write_config("database = %s\n" % link + ACCOUNT)
        r = self.a.daemon("--once", check=False, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("it is a symbolic link", r.stderr)

    def test_ids_parse_strictly(self):
        db = self.tmp.join("real.db")
        self.store_application_id()
        for verb in ("show", "forget"):
            for bad in (" 1", "+1", "\n1", "\t1", "1 ", "0x1", "0", "", "99999999999999999999"):
                with self.subTest(verb=verb, id=bad):
                    r = self.a.run("--db", db, verb, bad, check=False)
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertIn("is not a code id", r.stderr)
        r = self.a.run("--db", db, "show", "1", check=False)
        self.assertEqual(r.returncode, 1, r.stderr)  # a valid id that is not there


class Jitter(Base):
    """Several alcoded refused by one server wait different times before reconnecting."""

    def test_reconnect_delays_differ_between_processes(self):
        port = free_port()  # nothing listens: each connection is refused at once
        procs, delays = [], []
        for i in range(3):
            a = Alcode(_Sub(self.tmp, "d%d" % i))
            a.write_config("[account a]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = alice\n"
                           "password_command = /bin/true\n" % port)
            p = a.spawn_daemon(env={"ALCODE_TEST_BACKOFF_MIN": "300"})
            self.addCleanup(lambda p=p: (p.poll() is None and p.kill(), p.wait(), p.logfile.close()))
            procs.append(p)
        for p in procs:
            wait_for(lambda: "reconnecting in" in read_log(p), timeout=60, what="a first backoff")
            delays.append(int(re.search(r"reconnecting in (\d+) s", read_log(p)).group(1)))
        for d in delays:
            self.assertTrue(151 <= d <= 301, delays)
        # The first delay is drawn from 151 values: three equal draws happen once in 22,801 runs;
        # an unseeded random() makes them equal every time.
        self.assertGreater(len(set(delays)), 1, delays)


class _Sub:
    def __init__(self, tmp, name):
        self.path = tmp.join(name)
        os.makedirs(self.path, exist_ok=True)

    def join(self, *parts):
        return os.path.join(self.path, *parts)


if __name__ == "__main__":
    main()
