#!/usr/bin/env python3
"""Scale benchmark: `alcoded --once` on 10,000 to 1,000,000 messages and on 50 accounts in one
dovecot; peak RSS; push latency after the big backfill against a small one.

    python3 bench/scale.py [--dir /var/tmp/alcode-scale] [--fleet 50] [--per 20000]
                           [--singles 10000,50000,100000] [--subsets 5] [--push 20]
                           [--build build-rel] [--keep] [--trace DIR]

The mailbox: mkmail.py's *functional* profile (about 5 KB a message, 30 % of them carrying
codes), --per messages (seed 42) written once under DIR/base. The realistic profile averages
111 KB a message: 1,000,000 of them would be about 110 GB, more than this machine's free disk,
and its 0.5 % code density leaves the store almost empty; the functional one is the worst case
for the store (a code or a near miss in most messages) at a size that fits, 5.5 GB for 1M.
Every account's Maildir is made of hard links to those files (a message number i of an
account is base file i mod --per, in its folder), so the disk holds the base once:
- accounts `s10000`, `s50000`, ... (--singles): one account of that many messages, folders
  growing with it (the cost of one big account: per-folder UID lists, the store's lookups);
- accounts `u00` .. `u49` (--fleet x --per): 1,000,000 messages on 50 accounts.
dovecot's indexes are built first (doveadm mailbox status), so no run pays for the server's first
look. Each run is `alcoded --once` with an empty store; it reports wall time, time per 10,000
messages, the process's peak RSS (VmHWM) and CPU time, codes and sightings stored, and checks that
every folder's cursor reached the folder's last UID (nothing skipped). Then the running daemon:
on the store of the 50-account backfill, with every account watching (IDLE), --push messages
carrying fresh codes are appended to one account's INBOX, APPEND -> code row in the store; the
same on the store of the smallest single account (the small-mailbox reference).
The mailbox is written outside the repository (DIR) and deleted at the end unless --keep.
Build first: cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build-rel."""

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../tests/integration"))

PUSH_MAIL = ("From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nTo: a@example.org\r\n"
             "Subject: Votre code\r\nMessage-ID: <scale-push-%s@actionlogement.fr>\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n\r\nVotre code sp\u00e9cifique : %s\r\n")


def folder_of(rel):
    # As bench/backfill.py: perso/INBOX is the INBOX, the other folders keep their path.
    return "INBOX" if rel == "perso/INBOX" else rel.replace("INBOX", "Inbox")


def base_files(base):
    out = []
    for root, dirs, files in os.walk(base):
        dirs.sort()
        rel = os.path.relpath(root, base)
        for name in sorted(files):
            if name.endswith(".eml"):
                out.append((folder_of(rel), os.path.join(root, name)))
    out.sort(key=lambda x: os.path.basename(x[1]))  # by message number
    return out


def populate(d, user, files, count):
    """Hard links count messages into user's Maildir (cur/, unseen), cycling over files."""
    dirs = {}
    for i in range(count):
        folder, src = files[i % len(files)]
        if folder not in dirs:
            dirs[folder] = os.path.join(d.maildir(user, folder), "cur")
        os.link(src, os.path.join(dirs[folder], "%d.M%dP0.scale:2," % (1700000000 + i, i)))


def heap_kib(pid):
    """Rss of the process's [heap] (brk: glibc's main arena) and of its anonymous mappings, KiB."""
    heap = anon = 0
    cur = None
    try:
        with open("/proc/%d/smaps" % pid) as f:
            for line in f:
                if not line[0].isupper() or ":" not in line.split()[0]:
                    parts = line.split()
                    cur = parts[5] if len(parts) > 5 else ""
                elif line.startswith("Rss:"):
                    kb = int(line.split()[1])
                    if cur == "[heap]":
                        heap += kb
                    elif cur == "":
                        anon += kb
    except OSError:
        pass
    return heap, anon


def peak_rss_wait(p, trace=None, done=None):
    """Waits for p; returns its peak RSS (MiB) and CPU time (user + system, s).

    The peak is VmHWM from /proc, read every 50 ms until the process is a zombie (then it is
    final): wait4's ru_maxrss is kept across exec, so it counts the Python process that forked
    (60 MiB and more here), not alcoded. With trace (a file), every second a line: seconds,
    messages read (done()), VmRSS, VmHWM, [heap] Rss, other anonymous Rss (MiB), threads."""
    hwm = 0
    t0 = time.monotonic()
    next_sample = t0
    while True:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                st = f.read()
        except OSError:
            break
        m = re.search(r"^VmHWM:\s+(\d+) kB", st, re.M)
        if m:
            hwm = max(hwm, int(m.group(1)))
        if trace and m and time.monotonic() >= next_sample:
            next_sample += 1.0
            rss = re.search(r"^VmRSS:\s+(\d+) kB", st, re.M)
            thr = re.search(r"^Threads:\s+(\d+)", st, re.M)
            heap, anon = heap_kib(p.pid)
            trace.write("%.1f %d %.1f %.1f %.1f %.1f %s\n" % (
                time.monotonic() - t0, done() if done else 0, int(rss.group(1)) / 1024 if rss else 0,
                int(m.group(1)) / 1024, heap / 1024, anon / 1024, thr.group(1) if thr else "?"))
            trace.flush()
        if re.search(r"^State:\s+Z", st, re.M) or not m:
            break
        time.sleep(0.05)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return hwm / 1024.0, ru.ru_utime + ru.ru_stime


class RunDir:
    """alcodetest's TempDir, under DIR (the mailbox's disk) rather than /tmp."""

    def __init__(self, path):
        self.path = path
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o755)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp/alcode-scale")
    ap.add_argument("--fleet", type=int, default=50, help="accounts of the fleet (default 50)")
    ap.add_argument("--per", type=int, default=20000, help="messages per fleet account (default 20,000)")
    ap.add_argument("--singles", default="10000,50000,100000", help="single-account sizes")
    ap.add_argument("--subsets", default="5", help="also run the first K fleet accounts (comma list)")
    ap.add_argument("--push", type=int, default=20, help="messages appended in the push test (0: none)")
    ap.add_argument("--build", default="build-rel")
    ap.add_argument("--trace", metavar="DIR", help="write each run's memory every second to DIR/RUN.txt")
    ap.add_argument("--keep", action="store_true", help="keep DIR (the mailbox and dovecot) afterwards")
    args = ap.parse_args()
    os.environ.setdefault("ALCODE_BUILD_DIR", os.path.abspath(os.path.join(HERE, "..", args.build)))
    from alcodetest import Alcode, Dovecot, TempDir, read_log, wait_for  # noqa: E402

    singles = [int(x) for x in args.singles.split(",") if x]
    subsets = [int(x) for x in args.subsets.split(",") if x and int(x) < args.fleet]
    os.makedirs(args.dir, exist_ok=True)
    base = os.path.join(args.dir, "base")
    if not os.path.exists(os.path.join(base, "expected.json")):
        t = time.monotonic()
        subprocess.run([sys.executable, os.path.join(HERE, "../tests/tools/mkmail.py"), base, "--profile",
                        "functional", "--seed", "42", "--count", str(args.per), "--quiet"], check=True)
        print("base: %d messages written in %.1f s" % (args.per, time.monotonic() - t))
    files = base_files(base)
    with open(os.path.join(base, "expected.json")) as f:
        employer = json.load(f).get("config", {}).get("employer_domains") or []

    fleet = ["u%02d" % i for i in range(args.fleet)]
    users = {"s%d" % n: "pw-s%d" % n for n in singles}
    users.update({u: "pw-" + u for u in fleet})
    tmp = RunDir(os.path.join(args.dir, "run-%d" % os.getpid()))
    d = None
    stores = []  # each run's alcoded home (under /tmp): removed at the end unless --keep
    try:
        d = Dovecot(tmp, users=users)
        with open(d.conf, "a") as f:
            # 50 accounts x 2 IDLE connections, beside the login processes.
            f.write("default_process_limit = 1000\ndefault_client_limit = 10000\n")
        t = time.monotonic()
        for n in singles:
            populate(d, "s%d" % n, files, n)
        for u in fleet:
            populate(d, u, files, args.per)
        total = sum(singles) + args.fleet * args.per
        print("maildirs: %d messages (hard links) in %.1f s" % (total, time.monotonic() - t))
        d.start()
        t = time.monotonic()
        for u in users:
            subprocess.run(["nice", "doveadm", "-c", d.conf, "mailbox", "status", "-u", u, "messages", "*"],
                           check=True, capture_output=True)
        print("dovecot indexes built in %.1f s" % (time.monotonic() - t))
        sys.stdout.flush()

        def config(accts):
            text = "employer_domains = %s\n" % ", ".join(employer) if employer else ""
            for u in accts:
                text += d.account_config(u, user=u)
            return text

        runs = []

        def backfill(label, accts, messages):
            a = Alcode(TempDir(prefix="alcode-scale-run-"))
            stores.append(a)
            a.write_config(config(accts))
            t0 = time.monotonic()
            p = a.spawn_daemon("--once")

            def done():
                try:
                    return a.sql("SELECT coalesce(sum(last_uid), 0) FROM cursors")[0][0]
                except sqlite3.Error:
                    return 0

            trace = None
            if args.trace:
                os.makedirs(args.trace, exist_ok=True)
                trace = open(os.path.join(args.trace, "%s-%d.txt" % (label.replace(" ", "-"), messages)), "w")
                trace.write("# s messages VmRSS VmHWM heap anon threads (MiB)\n")
            rss, cpu = peak_rss_wait(p, trace, done)
            if trace:
                trace.close()
            wall = time.monotonic() - t0
            if p.returncode != 0:
                raise RuntimeError("alcoded --once failed: " + read_log(p)[-3000:])
            codes = a.sql("SELECT count(*) FROM codes")[0][0]
            sightings = a.sql("SELECT count(*) FROM sightings")[0][0]
            # Every folder read to its end: the cursor's last UID is the folder's highest UID.
            cursors = dict(((r[0], r[1]), r[2]) for r in a.sql("SELECT account, folder, last_uid FROM cursors"))
            short = []
            for u in accts:
                out = subprocess.run(["doveadm", "-c", d.conf, "-f", "flow", "mailbox", "status", "-u", u,
                                      "uidnext messages", "*"], check=True, capture_output=True, text=True).stdout
                for line in out.splitlines():
                    parts = dict(x.split("=", 1) for x in line.split() if "=" in x)
                    box = line.split(" messages=")[0]
                    if int(parts.get("messages", 0)) and cursors.get((u, box), 0) < int(parts["uidnext"]) - 1:
                        short.append("%s/%s" % (u, box))
            row = dict(label=label, accounts=len(accts), messages=messages, wall=wall, cpu=cpu, rss=rss, codes=codes,
                       sightings=sightings, short=short)
            runs.append(row)
            print("%-22s %3d acct %8d msg %8.1f s %6.2f s/10k cpu %7.1f s %7.1f MiB  codes %d sightings %d%s" % (
                label, len(accts), messages, wall, wall * 10000 / messages, cpu, rss, codes, sightings,
                "  NOT READ TO THE END: " + ", ".join(short[:5]) if short else ""))
            sys.stdout.flush()
            return a

        small = None
        for n in singles:
            a = backfill("1 account", ["s%d" % n], n)
            if small is None:
                small = a
            else:
                a.tmp.cleanup()
        for k in subsets:
            backfill("%d accounts" % k, fleet[:k], k * args.per).tmp.cleanup()
        big = backfill("%d accounts" % args.fleet, fleet, args.fleet * args.per)

        def push(a, accts, user, label):
            p = a.spawn_daemon("--verbose")
            try:
                # Every account's INBOX in IDLE.
                wait_for(lambda: read_log(p).count("watching with IDLE") >= len(accts), timeout=1800,
                         what="every account in IDLE")
                time.sleep(2)
                imap = d.imap(user=user)
                db = sqlite3.connect("file:%s?mode=ro" % a.db, uri=True)
                lat = []
                for i in range(args.push):
                    code = "SC%02dX%04d" % (i % 100, i + (len(accts) * 1000))
                    t0 = time.monotonic()
                    imap.append("INBOX", None, None, (PUSH_MAIL % (code, code)).encode())
                    while not db.execute("SELECT 1 FROM codes WHERE value = ?", (code,)).fetchone():
                        if time.monotonic() - t0 > 30:
                            raise TimeoutError("pushed message %d not stored in 30 s" % i)
                        time.sleep(0.002)
                    lat.append(time.monotonic() - t0)
                    time.sleep(0.2)
                imap.logout()
                print("push %-34s p50 %5.0f ms  p99 %5.0f ms  (%d messages)" % (
                    label, 1000 * pct(lat, 50), 1000 * pct(lat, 99), len(lat)))
                sys.stdout.flush()
                return lat
            finally:
                p.terminate()
                p.wait()

        if args.push:
            push(small, ["s%d" % singles[0]], "s%d" % singles[0],
                 "after %d messages, 1 account:" % singles[0])
            push(big, fleet, fleet[0], "after %d messages, %d accounts:" % (args.fleet * args.per, args.fleet))

        print()
        print("| run | accounts | messages | time | per 10,000 | alcoded CPU per 10,000 | peak RSS | codes / sightings |")
        print("|---|---|---|---|---|---|---|---|")
        for r in runs:
            print("| %s | %d | %d | %.1f s | %.2f s | %.2f s | %.1f MiB | %d / %d |" % (
                r["label"], r["accounts"], r["messages"], r["wall"], r["wall"] * 10000 / r["messages"],
                r["cpu"] * 10000 / r["messages"], r["rss"], r["codes"], r["sightings"]))
        first, last = runs[0], runs[-1]
        print("growth %d -> %d messages (%.0fx): time %.1fx, peak RSS %.2fx" % (
            first["messages"], last["messages"], last["messages"] / first["messages"], last["wall"] / first["wall"],
            last["rss"] / first["rss"]))
        if any(r["short"] for r in runs):
            sys.exit("some folders were not read to their end")
    finally:
        if d:
            d.stop()
        if not args.keep:
            for a in stores:
                a.tmp.cleanup()
            tmp.cleanup()
            shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
