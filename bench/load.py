#!/usr/bin/env python3
"""How long `alcode check` takes to load a large configuration and large rule sets, to show
that loading grows linearly with its input (issue 11: it was quadratic).

Generated inputs, written to a temporary folder:
  accounts   a config with N accounts (default 20,000), each with the keys alcode init writes
  rules-1    one rule file of 100,000 rules (more than the 256 a file may hold: it must be
             refused quickly, with one error, not one per rule)
  rules-max  the most rules alcode loads: 256 files of 256 rules, each rule with its own sender
             domain and keyword (65,536 rules, every pattern compiled)
and the same at a tenth (and a fifth) of the size, so that the ratio shows how time grows:
a linear loader takes about 10x (5x) as long for 10x (5x) the input, a quadratic one 100x (25x).

Usage: bench/load.py [--build DIR] [--build DIR2 ...] [--accounts N] [--repeat K]
Each --build (default build-rel) is a build folder holding alcode-full; several are compared
side by side (e.g. main's build and this branch's). Release builds only: a sanitizer build
measures the sanitizer. Not a test: it prints figures, it asserts nothing about time.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ACCOUNT = ("[account a{i}]\nhost = imap{i}.example.org\nport = 993\ntls = implicit\nuser = user{i}@example.org\n"
           "password_command = /bin/true\nfolders = INBOX, Junk\nsince = 2024-01-01\n\n")
RULE = ("[rule r{i}]\nkind = otp\nsenders = d{i}.example.org\nkeywords = mot{k} clef\n"
        "pattern = code (?<code>[0-9]{{6}})\n\n")


def write_config(path, n, rules_dirs):
    with open(path, "w") as f:
        f.write("[alcode]\nrules = %s\nemployer_domains = mon-employeur.fr\n\n" % ", ".join(rules_dirs))
        for i in range(n):
            f.write(ACCOUNT.format(i=i))
    os.chmod(path, 0o600)


def write_rules(folder, files, per_file, start=0):
    os.makedirs(folder, exist_ok=True)
    k = start
    for j in range(files):
        with open(os.path.join(folder, "gen%04d.rules" % j), "w") as f:
            f.write("[rules]\nversion = 1\n\n")
            for _ in range(per_file):
                f.write(RULE.format(i=k, k=k % 1000))
                k += 1


def run(build, config, repeat, timeout):
    exe = os.path.join(build, "alcode-full")
    best = None
    out = ""
    for _ in range(repeat):
        t = time.monotonic()
        try:
            r = subprocess.run([exe, "check", "-c", config], capture_output=True, text=True, timeout=timeout,
                               env=dict(os.environ, HOME=os.path.dirname(config), XDG_CONFIG_HOME=os.path.dirname(config)))
        except subprocess.TimeoutExpired:
            return None, "timed out after %d s" % timeout
        d = time.monotonic() - t
        best = d if best is None else min(best, d)
        lines = (r.stdout + r.stderr).splitlines()
        out = "exit %d, %d line(s): %s" % (r.returncode, len(lines), (lines[-1] if lines else "")[-90:])
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", help="build folder (repeatable); default build-rel")
    ap.add_argument("--accounts", type=int, default=20000)
    ap.add_argument("--rules", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the fastest is kept")
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--skip-max", action="store_true", help="skip the 65,536-rule case")
    args = ap.parse_args()
    builds = args.build or ["build-rel"]
    for b in builds:
        if not os.access(os.path.join(b, "alcode-full"), os.X_OK):
            sys.exit("%s/alcode-full: not built (cmake -S . -B %s -DCMAKE_BUILD_TYPE=Release && "
                     "cmake --build %s -j2 --target alcode-full)" % (b, b, b))

    tmp = tempfile.mkdtemp(prefix="alcode-bench-load-")
    try:
        cases = []
        empty = os.path.join(tmp, "no-rules")
        write_rules(empty, 1, 1)
        for n in (args.accounts // 10, args.accounts):
            c = os.path.join(tmp, "accounts-%d" % n, "alcode.conf")
            os.makedirs(os.path.dirname(c))
            write_config(c, n, [empty])
            cases.append(("%d accounts" % n, c))
        for n in (args.rules // 10, args.rules):
            d = os.path.join(tmp, "rules-one-file-%d" % n)
            write_rules(d, 1, n)
            c = os.path.join(tmp, "rules1-%d" % n, "alcode.conf")
            os.makedirs(os.path.dirname(c))
            write_config(c, 1, [d])
            cases.append(("%d rules in one file" % n, c))
        if not args.skip_max:
            for files in (51, 256):
                d = os.path.join(tmp, "rules-max-%d" % files)
                write_rules(d, files, 256)
                c = os.path.join(tmp, "rulesmax-%d" % files, "alcode.conf")
                os.makedirs(os.path.dirname(c))
                write_config(c, 1, [d])
                cases.append(("%d rules in %d files" % (files * 256, files), c))

        print("alcode check, fastest of %d run(s), seconds" % args.repeat)
        print("%-28s %s" % ("case", "  ".join("%-22s" % b for b in builds)))
        results = {}
        for name, config in cases:
            row = []
            for b in builds:
                t, out = run(b, config, args.repeat, args.timeout)
                results[(name, b)] = t
                row.append("%-22s" % ("%.3f" % t if t is not None else out))
            print("%-28s %s" % (name, "  ".join(row)))
            for b in builds:
                print("    %s: %s" % (b, run(b, config, 1, args.timeout)[1]))
        print("\ngrowth (time for the large case / time for the small one; linear is ~ the size ratio):")
        pairs = [("%d accounts" % (args.accounts // 10), "%d accounts" % args.accounts, 10),
                 ("%d rules in one file" % (args.rules // 10), "%d rules in one file" % args.rules, 10)]
        if not args.skip_max:
            pairs.append(("%d rules in 51 files" % (51 * 256), "%d rules in 256 files" % (256 * 256), 5))
        for small, large, ratio in pairs:
            row = []
            for b in builds:
                a, z = results.get((small, b)), results.get((large, b))
                row.append("%-22s" % ("%.1fx (input %dx)" % (z / a, ratio) if a and z else "-"))
            print("%-28s %s" % (large, "  ".join(row)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
