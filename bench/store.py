#!/usr/bin/env python3
"""bench/store.py: `alcode` queries on a store of 100,000 codes, side by side with the bare
`sqlite3` shell running the equivalent query on the same file. Target: within 2x.

Usage: bench/store.py [--codes N] [--runs N] [--build DIR]

The store is written by tests/tools/store-writer through the real store_commit() (six kinds,
two accounts, five folders, one code in ten from a look-alike sender, two years of mail).
Each pair is timed with hyperfine (-N: no shell in between, output to /dev/null, warm cache);
the figures are medians. Before timing, the outputs are compared: the same rows (the table has
a header line more), and for --json the very same bytes, since alcode builds its JSON with
SQLite's JSON functions and the shell runs that same SQL.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# The queries alcode runs (lib/store-format.c), written out for the shell.
RFC3339 = ("(strftime('%Y-%m-%dT%H:%M:%S', {t} + 60 * {tz}, 'unixepoch') || iif({tz} = 0, 'Z',"
           " printf('%s%02d:%02d', iif({tz} < 0, '-', '+'), abs({tz}) / 60, abs({tz}) % 60)))")
JSON = ("SELECT json_patch('{{}}', json_object('id', c.id, 'kind', c.kind, 'value', c.value,"
        " 'display', c.display, 'trusted', json(iif(c.trusted, 'true', 'false')),"
        " 'sender', m.sender, 'date', " + RFC3339.format(t="c.date", tz="c.date_tz") + ","
        " 'account', nullif(m.account, ''), 'folder', nullif(m.folder, ''),"
        " 'uid', iif(m.source = '', m.uid, NULL), 'uidvalidity', iif(m.source = '', m.uidvalidity, NULL),"
        " 'message_id', m.message_id, 'subject', m.subject, 'rule', c.rule,"
        " 'found_at', " + RFC3339.format(t="c.first_seen", tz="0") + ", 'source', nullif(m.source, ''),"
        " 'expired', iif(c.expires_at <= unixepoch(), json('true'), NULL),"
        " 'superseded', iif(c.superseded, json('true'), NULL)))"
        " FROM codes c JOIN messages m ON m.id = c.message WHERE c.kind = '{kind}'"
        " ORDER BY c.date DESC, c.id DESC")
TABLE = ("SELECT c.id, c.kind, c.display, strftime('%Y-%m-%d %H:%M', c.date, 'unixepoch', 'localtime'),"
         " m.sender, m.account || '/' || m.folder, c.trusted, c.superseded, c.expires_at <= unixepoch()"
         " FROM codes c JOIN messages m ON m.id = c.message WHERE c.kind = '{kind}'"
         " ORDER BY c.date DESC, c.id DESC")
LATEST = ("SELECT value FROM codes WHERE kind = '{kind}' AND trusted = 1"
          " ORDER BY date DESC, id DESC LIMIT 1")


def build(build_dir):
    if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "-j%d" % os.cpu_count(), "--target", "alcode", "alcode-full",
                    "store-writer"], check=True, stdout=subprocess.DEVNULL)


def median_ms(results):
    return results["median"] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--codes", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    args = ap.parse_args()
    for tool in ("hyperfine", "sqlite3", "cmake"):
        if not shutil.which(tool):
            print("bench/store: %s is missing (scripts/deps bench)" % tool, file=sys.stderr)
            return 77
    build(args.build)
    alcode = os.path.join(args.build, "alcode")
    tmp = tempfile.mkdtemp(prefix="alcode-bench-store-")
    try:
        home = os.path.join(tmp, "home")
        db = os.path.join(home, ".local", "share", "alcode", "alcode.db")
        subprocess.run([os.path.join(args.build, "tests", "store-writer"), db, "--fill", str(args.codes)],
                       check=True)
        # alcode as a person runs it: no --db, the default config (absent) and database.
        env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
               "TZ": os.environ.get("TZ", "Europe/Paris")}
        sqlite = ["sqlite3", "-batch", db]
        cases = [
            ("alcode latest", [alcode, "latest"], sqlite + [LATEST.format(kind="specific")]),
            ("alcode list --kind company", [alcode, "list", "--kind", "company"],
             sqlite + [TABLE.format(kind="company")]),
            ("alcode list --kind company --json", [alcode, "list", "--kind", "company", "--json"],
             sqlite + [JSON.format(kind="company")]),
        ]
        n_codes = subprocess.run(sqlite + ["SELECT count(*) FROM codes"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        print("store: %s codes, %.1f MB; %d runs each (hyperfine medians)\n"
              % (n_codes, os.path.getsize(db) / 1e6, args.runs))
        print("| query | alcode | sqlite3 shell | ratio |")
        print("|---|---|---|---|")
        worst = 0
        for name, mine, theirs in cases:
            a = subprocess.run(mine, capture_output=True, text=True, env=env)
            b = subprocess.run(theirs, capture_output=True, text=True, env=env)
            if a.returncode or b.returncode:
                raise SystemExit("%s failed: %s%s" % (name, a.stderr, b.stderr))
            if "--json" in mine or "latest" in mine:
                assert a.stdout == b.stdout, "%s: alcode and sqlite3 disagree" % name
            else:
                # The table: a header line more, and alcode's notes after a blank line.
                rows = a.stdout.split("\n\n")[0].splitlines()[1:]
                assert len(rows) == len(b.stdout.splitlines()), name
            out = os.path.join(tmp, "hyperfine.json")
            subprocess.run(["hyperfine", "-N", "--style", "none", "--warmup", "5", "--runs", str(args.runs),
                            "--export-json", out, " ".join(map(quote, mine)), " ".join(map(quote, theirs))],
                           check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with open(out) as f:
                r = json.load(f)["results"]
            ours, bare = median_ms(r[0]), median_ms(r[1])
            worst = max(worst, ours / bare)
            print("| `%s` (%d rows) | %.1f ms | %.1f ms | %.2f× |"
                  % (name, len(b.stdout.splitlines()), ours, bare, ours / bare))
        print("\ntarget: within 2× of sqlite3: %s (worst %.2f×)" % ("met" if worst <= 2 else "NOT MET", worst))
        return 0 if worst <= 2 else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def quote(arg):
    """For hyperfine's command line (it splits on spaces, honours quotes)."""
    if arg and all(c.isalnum() or c in "-_./=:@%+," for c in arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    sys.exit(main())
