"""The real `alcode` over stores written by the real store_commit() (tests/tools/store-writer):
what a person reads (the table, notes, advice when nothing is found), what a script reads
(latest, JSON Lines, CSV, exit codes), errors for every kind of unusable database, and reads
while a writer commits without pause."""

import json
import os
import pty
import re
import select
import signal
import sqlite3
import stat
import subprocess
import time
import unicodedata
import unittest

from alcodetest import Alcode, BUILD_DIR, DEMO_MAIL_DIR, RULES_DIR, TempDir, binary, main, wait_for

WRITER = os.path.join(os.path.abspath(BUILD_DIR), "tests", "store-writer")
NOW = int(time.time())
AL = "ne-pas-repondre@actionlogement.fr"
PHISH = "alerte@action-logement-securite.com"


def row(uid, kind, value, display=None, trusted=True, sender=AL, date=1772525640, tz=60,
        subject="Votre code", account="perso", folder="INBOX", uidvalidity=7):
    return "\t".join(str(x) for x in (account, folder, uidvalidity, uid, kind, value, display or value,
                                      1 if trusted else 0, sender, date, tz, subject))


def cursor(account, folder, seen, uidvalidity=7, last_uid=100):
    return "\t".join(str(x) for x in ("@cursor", account, folder, uidvalidity, last_uid, seen))


def width(text):
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


class CliStore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(WRITER):
            raise unittest.SkipTest("tests/store-writer is not built")

    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.alcode = Alcode(self.tmp)

    def write(self, *lines, db=None):
        db = db or self.alcode.db
        r = subprocess.run([WRITER, db], input="\n".join(lines) + "\n", capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return db

    def run_alcode(self, *args, env=None, code=0):
        r = self.alcode.run(*args, check=False, env=env)
        self.assertEqual(r.returncode, code, "alcode %s\nstdout:\n%s\nstderr:\n%s" % (args, r.stdout, r.stderr))
        return r

    def sample(self):
        """A store with one of everything the table must show."""
        self.write(
            row(1, "specific", "OLD11111", "OLD1 1111", date=1767225600),
            row(2, "specific", "AB12CD34", "AB12 CD34", date=1772525640),
            row(3, "specific", "ZQ817TXB", "ZQ81 7TXB", trusted=False, sender=PHISH, folder="Junk",
                date=1772698440, tz=-300),
            row(4, "otp", "482913", date=NOW - 3 * 3600),
            row(5, "company", "12345678901234", "123 456 789 01234", sender="rh@menuiseries-durand.example",
                date=1772000000, folder="Boîte de réception/日本"),
            row(6, "request", "D2026000123", "D2026-000123", date=1751360400, account="-",
                folder="/home/jeanne/Takeout/old.mbox"),
        )

    def ids(self):
        return {c["value"]: c["id"] for c in self.alcode.list_json()}

    # What a person reads

    def test_table(self):
        self.sample()
        out = self.run_alcode("list", env={"TZ": "Europe/Paris"}).stdout
        lines = out.splitlines()
        header = lines[0]
        self.assertEqual(header.split(), ["ID", "KIND", "CODE", "DATE", "FROM", "WHERE"])
        rows = lines[1:7]
        # Newest first, kind in words, local time (08:14 UTC is 09:14 in Paris in March).
        for r, (kind, code) in zip(rows, [("login code", "482913"), ("specific code", "ZQ81 7TXB"),
                                          ("specific code", "AB12 CD34"), ("company code", "123 456 789 01234"),
                                          ("specific code", "OLD1 1111"), ("request number", "D2026-000123")]):
            self.assertRegex(r, r"^ *\d+  %s +%s  " % (kind, code))
        self.assertIn("2026-03-03 09:14", rows[2])
        self.assertEqual(lines[7], "")
        # Every column starts at the same terminal column, whatever the width of the text before.
        for column in ("KIND", "CODE", "DATE", "FROM", "WHERE"):
            at = width(header[:header.index(column)])
            for r in rows:
                i = width_index(r, at)
                self.assertTrue(r[i - 2:i] == "  " and r[i] != " ", (column, r))
        by_code = {next(v for v in ("ZQ81", "AB12", "OLD1", "482913", "123 456", "D2026") if v in r): r
                   for r in rows}
        self.assertIn("⚠ UNVERIFIED SENDER", by_code["ZQ81"])
        self.assertNotIn("UNVERIFIED", by_code["AB12"])
        self.assertIn("replaced by a newer one", by_code["OLD1"])
        self.assertIn("expired", by_code["482913"])
        self.assertIn("perso/Boîte de réception/日本", by_code["123 456"])
        self.assertIn("local file", by_code["D2026"])
        self.assertRegex(out, r"UNVERIFIED SENDER is not proven")
        # A trusted specific code exists: no company-code warning.
        self.assertNotIn("employer's code", out)
        self.assertNotIn("\033", out)

    def test_colour_only_on_a_terminal(self):
        self.sample()

        def on_tty(env):
            master, slave = pty.openpty()
            p = subprocess.Popen([binary("alcode"), "list"], stdout=slave, stderr=slave, close_fds=True,
                                 env=self.alcode.env(env))
            os.close(slave)
            out = b""
            while True:
                ready, _, _ = select.select([master], [], [], 10)
                if not ready:
                    break
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                out += data
            os.close(master)
            self.assertEqual(p.wait(timeout=10), 0)
            return out.decode()

        coloured = on_tty({"NO_COLOR": "", "TERM": "xterm"})
        self.assertIn("\033[1;31mZQ81 7TXB", coloured)
        self.assertIn("\033[1mAB12 CD34", coloured)
        self.assertNotIn("\033", on_tty({"NO_COLOR": "1", "TERM": "xterm"}))
        self.assertNotIn("\033", on_tty({"NO_COLOR": "", "TERM": "dumb"}))
        self.assertNotIn("\033", self.run_alcode("list", env={"NO_COLOR": ""}).stdout)

    def test_control_characters_are_not_sent_to_the_terminal(self):
        self.write(row(1, "specific", "AB12CD34", sender="x\x1b]0;pwned\x07@actionlogement.fr",
                       subject="\x1b[2J"))
        out = self.run_alcode("list").stdout + self.run_alcode("show", "1").stdout
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\x07", out)
        self.assertIn("x?]0;pwned?@", out)

    def test_only_a_company_code(self):
        self.write(row(1, "company", "12345678901234", "123 456 789 01234", sender="rh@employeur.example"),
                   row(2, "specific", "ZQ817TXB", trusted=False, sender=PHISH))
        out = self.run_alcode("list").stdout
        self.assertIn("company code", out)
        self.assertIn("is your employer's code, not your personal code spécifique", out)
        self.assertIn("decree n° 2025-1478", out)
        r = self.run_alcode("latest", code=1)
        self.assertEqual(r.stdout, "")
        self.assertIn("no trusted specific code stored", r.stderr)
        self.assertIn("UNVERIFIED SENDER", r.stderr)
        self.assertIn("employer's code", r.stderr)
        # The company code is still what `latest company` prints.
        self.assertEqual(self.run_alcode("latest", "company").stdout, "12345678901234\n")

    def test_nothing_found(self):
        self.write(cursor("perso", "INBOX", 1200), cursor("perso", "Archives/2024", 300),
                   cursor("travail", "INBOX", 34))
        r = self.run_alcode("list")
        out = r.stdout
        self.assertIn("No code found yet.", out)
        self.assertIn("Searched 3 folders in 2 accounts, 1534 messages:", out)
        self.assertRegex(out, r"perso: Archives/2024, INBOX \(last checked \d{4}-\d\d-\d\d \d\d:\d\d\)")
        self.assertRegex(out, r"travail: INBOX \(last checked")
        self.assertIn("none of these folders looks like a Spam or Junk folder", out)
        self.assertIn("Old e-mail addresses", out)
        self.assertIn("alcode scan", out)
        self.assertIn("decree n° 2025-1478", out)
        self.assertIn("online chat on actionlogement.fr", out)
        self.assertEqual(self.run_alcode("list", "--json").stdout, "")

        # Junk searched: the advice changes.
        self.write(cursor("perso", "Junk", 10))
        self.assertNotIn("none of these folders", self.run_alcode("list").stdout)

        # A filter that hides everything is not "nothing found".
        self.write(row(1, "file", "X1"))
        out = self.run_alcode("list", "--kind", "specific").stdout
        self.assertIn("No stored code matches these filters", out)
        self.assertNotIn("What to try next", out)

    def test_nothing_searched_yet(self):
        self.write()
        out = self.run_alcode("list").stdout
        self.assertIn("No mail folder has been searched yet", out)
        self.assertIn("systemctl --user status alcoded", out)

    # What a script reads

    def test_json_lines(self):
        self.sample()
        r = self.run_alcode("list", "--json")
        self.assertEqual(r.stderr, "")
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 6)
        codes = [json.loads(l) for l in lines]
        c = next(c for c in codes if c["value"] == "AB12CD34")
        self.assertEqual(list(c), ["id", "kind", "value", "display", "trusted", "sender", "date", "account",
                                   "folder", "uid", "uidvalidity", "message_id", "subject", "rule",
                                   "found_at"])
        self.assertEqual(c["date"], "2026-03-03T09:14:00+01:00")
        self.assertIs(c["trusted"], True)
        self.assertEqual((c["account"], c["folder"], c["uid"], c["uidvalidity"]), ("perso", "INBOX", 2, 7))
        self.assertRegex(c["found_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        phish = next(c for c in codes if c["value"] == "ZQ817TXB")
        self.assertIs(phish["trusted"], False)
        self.assertEqual(phish["date"], "2026-03-05T03:14:00-05:00")
        local = next(c for c in codes if c["kind"] == "request")
        self.assertEqual(local["source"], "/home/jeanne/Takeout/old.mbox")
        for absent in ("account", "folder", "uid", "uidvalidity"):
            self.assertNotIn(absent, local)
        self.assertIs(next(c for c in codes if c["kind"] == "otp")["expired"], True)
        self.assertIs(next(c for c in codes if c["value"] == "OLD11111")["superseded"], True)
        self.assertNotIn("expired", c)
        self.assertNotIn(": null", r.stdout)
        # Newest first.
        self.assertEqual([x["value"] for x in codes],
                         ["482913", "ZQ817TXB", "AB12CD34", "12345678901234", "OLD11111", "D2026000123"])

        # The same objects from every verb that prints codes.
        self.assertEqual(self.run_alcode("export", "--json").stdout, r.stdout)
        self.assertEqual(json.loads(self.run_alcode("latest", "--json").stdout), c)
        self.assertEqual(json.loads(self.run_alcode("show", str(c["id"]), "--json").stdout), c)
        self.assertEqual([json.loads(l) for l in self.run_alcode("list", "--untrusted", "--json").stdout.splitlines()],
                         [phish])
        self.assertEqual(self.run_alcode("latest", "access", "--json", code=1).stdout, "")

    def test_latest(self):
        self.sample()
        self.assertEqual(self.run_alcode("latest").stdout, "AB12CD34\n")
        self.assertEqual(self.run_alcode("latest", "request").stdout, "D2026000123\n")
        # The only login code expired: none for a script.
        r = self.run_alcode("latest", "otp", code=1)
        self.assertEqual(r.stdout, "")
        self.assertIn("no valid trusted login code", r.stderr)
        self.write(row(7, "otp", "551100", date=NOW - 60))
        self.assertEqual(self.run_alcode("latest", "otp").stdout, "551100\n")
        r = self.run_alcode("latest", "secret", code=2)
        self.assertIn("unknown kind 'secret'", r.stderr)
        self.run_alcode("latest", "otp", "specific", code=2)

    def test_show(self):
        self.sample()
        ids = self.ids()
        # The same code seen again in another account.
        self.write(row(40, "specific", "AB12CD34", "AB12 CD34", account="travail", folder="Archives",
                       uidvalidity=99))
        out = self.run_alcode("show", str(ids["AB12CD34"]), env={"TZ": "Europe/Paris"}).stdout
        self.assertIn("AB12 CD34  specific code", out)
        self.assertIn("Value:    AB12CD34", out)
        self.assertIn("Sender:   " + AL, out)
        self.assertIn("Date:     2026-03-03 09:14", out)
        self.assertIn("perso/INBOX UID 2 (UIDVALIDITY 7), Message-ID <7.2.perso@store-writer>, rule "
                      "store-writer@1, trusted", out)
        self.assertIn("travail/Archives UID 40 (UIDVALIDITY 99)", out)
        # --account: the codes seen in that account, wherever they were seen first.
        self.assertEqual([json.loads(l)["value"] for l in
                          self.run_alcode("list", "--account", "travail", "--json").stdout.splitlines()],
                         ["AB12CD34"])
        self.assertIn("No stored code matches", self.run_alcode("list", "--account", "nobody").stdout)
        out = self.run_alcode("show", str(ids["482913"])).stdout
        self.assertRegex(out, r"Expires: +\d{4}-\d\d-\d\d \d\d:\d\d  \(expired\)")
        self.assertIn("UNVERIFIED", self.run_alcode("show", str(ids["ZQ817TXB"])).stdout)
        r = self.run_alcode("show", "999", code=1)
        self.assertIn("no code with id 999", r.stderr)
        r = self.run_alcode("show", "abc", code=2)
        self.assertIn("'abc' is not a code id", r.stderr)

    def test_export_csv(self):
        self.write(row(1, "specific", "AB12CD34", subject='Votre code, "enfin"'),
                   row(2, "specific", "ZZ11YY22", subject="=HYPERLINK(\"http://x\")", trusted=False,
                       sender=PHISH))
        r = subprocess.run([binary("alcode"), "export", "--csv"], capture_output=True, env=self.alcode.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        lines = out.split("\r\n")
        self.assertEqual(lines[0], "id,kind,value,display,trusted,sender,date,account,folder,uidvalidity,uid,"
                                   "message_id,subject,rule,found_at,source")
        self.assertEqual(lines[-1], "")
        self.assertEqual(len(lines), 4)
        self.assertIn(',"Votre code, ""enfin""",', out)
        # A spreadsheet must not run the subject as a formula.
        self.assertIn(',"\'=HYPERLINK(""http://x"")",', out)
        self.run_alcode("export", code=2)
        self.run_alcode("export", "--csv", "--json", code=2)

    def test_forget(self):
        self.sample()
        ids = self.ids()
        r = self.run_alcode("forget", str(ids["AB12CD34"]))
        self.assertIn("removed", r.stdout)
        self.assertNotIn("AB12CD34", self.ids())
        # The code it had replaced is current again.
        self.assertEqual(self.run_alcode("latest").stdout, "OLD11111\n")
        self.assertIn("no code with id", self.run_alcode("forget", str(ids["AB12CD34"]), code=1).stderr)

    def test_argument_counts(self):
        """Each command's number of arguments, checked before it runs by the verb table, the only
        place that checks it (in alcode, before it executes alcode-full for scan, check, status,
        rescan and init; alcode-full, run by itself, says the same): a clear message, exit 2,
        nothing on stdout, the database not touched."""
        cases = [
            (["list", "x"], "alcode list: unexpected argument 'x'.\n"),
            (["latest", "otp", "x"], "alcode latest: expected at most one KIND.\n"),
            (["show"], "alcode show: expected one code ID (see 'alcode list').\n"),
            (["show", "1", "2"], "alcode show: expected one code ID (see 'alcode list').\n"),
            (["forget"], "alcode forget: expected one code ID (see 'alcode list').\n"),
            (["export", "--json", "x"], "alcode export: unexpected argument 'x'.\n"),
            (["scan"], "alcode scan: expected at least one file or folder.\n"),
            (["check", "x"], "alcode check: unexpected argument 'x'.\n"),
            (["status", "x"], "alcode status: unexpected argument 'x'.\n"),
            (["rescan", "perso", "x"], "alcode rescan: unexpected argument 'x'.\n"),
            (["init", "x"], "alcode init: unexpected argument 'x'.\n"),
        ]
        db = self.tmp.join("none.db")
        for args, message in cases:
            r = self.run_alcode("--db", db, *args, code=2)
            self.assertEqual((r.stdout, r.stderr), ("", message), args)
            if args[0] in ("scan", "check", "status", "rescan", "init"):
                r = subprocess.run([binary("alcode-full"), "--db", db] + args, capture_output=True, text=True,
                                   env=self.alcode.env(None), timeout=60)
                self.assertEqual((r.returncode, r.stdout, r.stderr), (2, "", message), args)
        self.assertFalse(os.path.exists(db))

    def test_options_before_or_after_the_command(self):
        self.sample()
        db = self.alcode.db
        want = self.run_alcode("--db", db, "list", "--json").stdout
        self.assertTrue(want)
        env = {"XDG_DATA_HOME": self.tmp.join("elsewhere")}
        self.assertEqual(self.run_alcode("list", "--json", "--db", db, env=env).stdout, want)
        self.assertEqual(self.run_alcode("--json", "list", "--db=" + db, env=env).stdout, want)
        self.assertEqual(self.run_alcode("--kind", "company", "list", "--json").stdout,
                         self.run_alcode("list", "--json", "--kind", "company").stdout)
        self.assertIn("--kind does not apply", self.run_alcode("latest", "--kind", "otp", code=2).stderr)
        self.assertIn("unknown command 'lsit'", self.run_alcode("lsit", code=2).stderr)
        self.assertIn("unexpected argument", self.run_alcode("list", "extra", code=2).stderr)
        # The config may name the database.
        self.alcode.write_config("database = %s\n" % db)
        self.assertEqual(self.run_alcode("list", "--json", env=env).stdout, want)
        r = self.run_alcode("--config", self.tmp.join("missing.conf"), "list", code=2)
        self.assertIn("missing.conf", r.stderr)
        self.alcode.write_config("database = %s\notp_retention = forever\n" % db)
        r = self.run_alcode("--config", self.alcode.config, "list", code=2)
        self.assertRegex(r.stderr, r"alcode.conf:\d+: .*otp_retention.*expected a number of days")

    # Unusable databases: a clear message naming the file, a non-zero exit, never a crash or an
    # empty answer.

    def assert_refused(self, needle, *args, db=None, code=2, env=None):
        db = db or self.alcode.db
        for verb in (("list",), ("list", "--json"), ("latest",), ("show", "1"), ("export", "--csv")) + args:
            r = self.run_alcode("--db", db, *verb, env=env, code=code)
            self.assertEqual(r.stdout, "", verb)
            self.assertIn(needle, r.stderr, verb)
            self.assertIn(db, r.stderr, verb)

    def test_missing(self):
        self.assert_refused("no database at", ("forget", "1"))
        self.assertFalse(os.path.exists(self.alcode.db) and os.path.getsize(self.alcode.db))

    def test_empty(self):
        os.makedirs(os.path.dirname(self.alcode.db))
        open(self.alcode.db, "w").close()
        self.assert_refused("is empty")

    def test_not_a_database(self):
        os.makedirs(os.path.dirname(self.alcode.db))
        with open(self.alcode.db, "w") as f:
            f.write("not a database\n" * 500)
        self.assert_refused("is not an alcode database or is damaged", ("forget", "1"))
        with open(self.alcode.db) as f:
            self.assertTrue(f.read().startswith("not a database"))
        other = self.tmp.join("other.db")
        with sqlite3.connect(other) as c:
            c.execute("CREATE TABLE notes (x)")
        c.close()
        self.assert_refused("not an alcode database", db=other)

    def test_damaged(self):
        subprocess.run([WRITER, self.alcode.db, "--fill", "3000"], check=True, timeout=60)
        size = os.path.getsize(self.alcode.db)
        os.truncate(self.alcode.db, size // 3)
        for verb in (("list",), ("list", "--json"), ("export", "--csv")):
            r = self.run_alcode(*verb, code=2)
            self.assertRegex(r.stderr, r"damaged|malformed", verb)
            self.assertIn(self.alcode.db, r.stderr)

    def test_newer_schema(self):
        self.sample()
        with sqlite3.connect(self.alcode.db) as c:
            c.execute("PRAGMA user_version = 99")
        c.close()
        self.assert_refused("was written by a newer alcode", ("forget", "1"))

    def test_folder(self):
        os.makedirs(self.alcode.db)
        self.assert_refused("is a folder, not a database")

    def test_locked(self):
        self.sample()
        c = sqlite3.connect(self.alcode.db, isolation_level=None)
        c.execute("PRAGMA locking_mode = EXCLUSIVE")
        c.execute("BEGIN EXCLUSIVE")
        try:
            r = self.run_alcode("list", code=2)
            self.assertIn("is locked by another program; try again", r.stderr)
            self.assertEqual(r.stdout, "")
        finally:
            c.close()
        self.run_alcode("list")

    def unprivileged(self):
        """Runs alcode under the modes of the files, even as root (the capabilities that bypass
        them dropped)."""
        if os.geteuid() != 0:
            return []
        return ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]

    def run_unprivileged(self, *args):
        return subprocess.run(self.unprivileged() + [binary("alcode")] + list(args), capture_output=True,
                              text=True, env=self.alcode.env(), timeout=60)

    def test_read_only(self):
        self.sample()
        folder = os.path.dirname(self.alcode.db)
        for suffix in ("-wal", "-shm"):
            self.assertFalse(os.path.exists(self.alcode.db + suffix))
        os.chmod(self.alcode.db, 0o400)
        os.chmod(folder, 0o500)
        self.addCleanup(os.chmod, folder, 0o700)
        self.addCleanup(os.chmod, self.alcode.db, 0o600)
        # A read-only copy still answers queries...
        r = self.run_unprivileged("list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 6)
        r = self.run_unprivileged("latest")
        self.assertEqual((r.returncode, r.stdout), (0, "AB12CD34\n"), r.stderr)
        # ...and refuses to change, saying so.
        r = self.run_unprivileged("forget", "1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot write to the database '%s'" % self.alcode.db, r.stderr)
        # Unreadable: said as such.
        os.chmod(self.alcode.db, 0o000)
        r = self.run_unprivileged("list")
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read the database '%s': Permission denied" % self.alcode.db, r.stderr)

    # Readers beside a writer

    def test_reads_while_a_writer_commits(self):
        self.sample()
        before = self.alcode.sql("SELECT count(*) FROM codes WHERE kind = 'request'")[0][0]
        writer = subprocess.Popen([WRITER, self.alcode.db, "--churn", "60"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: writer.poll() is None and writer.kill())
        wait_for(lambda: self.alcode.sql("SELECT count(*) FROM codes WHERE kind = 'request'")[0][0] > 5,
                 what="the writer's first commits")
        seen = 0
        for i in range(25):
            r = self.run_alcode("latest", "request")
            self.assertRegex(r.stdout, r"^R\d{9}\n$")
            n = len(self.run_alcode("list", "--json", "--kind", "request").stdout.splitlines())
            self.assertGreaterEqual(n, seen)
            seen = n
            self.assertIn("AB12 CD34", self.run_alcode("list").stdout)
        writer.send_signal(signal.SIGTERM)
        out, err = writer.communicate(timeout=30)
        # Every commit succeeded: the readers never made the writer wait or fail.
        self.assertEqual(writer.returncode, 0, err)
        # The readers saw no more codes than the sample's and the writer's (the last read may
        # come after the last commit: then they are equal).
        self.assertGreaterEqual(before + int(out), seen)

    # The two binaries

    def test_lean_alcode_runs_the_other_verbs(self):
        needed = subprocess.run(["readelf", "-d", binary("alcode")], capture_output=True, text=True,
                                check=True).stdout
        self.assertIn("libsqlite3", needed)
        for lib in ("libetpan", "libgnutls", "libpcre2"):
            self.assertNotIn(lib, needed)
        # `scan` and `check` live in alcode-full: alcode runs it for them.
        self.alcode.write_config("")
        r = self.run_alcode("scan", "--json", os.path.join(DEMO_MAIL_DIR, "INBOX", "001-alin-inscription.eml"))
        self.assertEqual(json.loads(r.stdout.splitlines()[0])["value"], "R7KD2M9Q")
        self.run_alcode("check")
        self.assertIn("Usage: alcode", self.run_alcode("--help").stdout)


def width_index(text, columns):
    """The index in text where display column `columns` starts."""
    w = 0
    for i, c in enumerate(text):
        if w >= columns:
            return i
        w += width(c)
    return len(text)


if __name__ == "__main__":
    main()
