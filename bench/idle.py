#!/usr/bin/python3
"""Idle cost: memory (Pss and RSS from /proc/PID/smaps_rollup) and wake-ups per minute of alcoded
watching 1 and 10 accounts, beside Mailnag watching the same accounts, on one local dovecot.

Each daemon first syncs its accounts (small mailboxes), then sits idle for --window seconds; a
wake-up is one context switch of any of its threads (/proc/PID/task/*/status). alcoded runs as
its unit would: WATCHDOG_USEC from WatchdogSec=180s, so sd-event pings every 90-135 s.

Usage: bench/idle.py [--window SECONDS] [--build DIR]   (plain build: cmake -B build && cmake --build build)"""

import argparse
import os
import subprocess
import time

from notify_mailnag import mailnag_available, memory_kib, start_mailnag, threads_ctxt_switches

import alcodetest
from alcodetest import (Alcode, BusMonitor, DBusSession, Dovecot, NotifySocket, Notifications, TempDir, code_mail,
                        random_codes, tcp_connections, wait_for)

WATCHDOG_USEC = 180 * 1000000


def settle(bus):
    """Closes the notifications of the first sync: their expiry would wake the daemon mid-window."""
    subprocess.run(["dunstctl", "close-all"], env=dict(os.environ, **bus.env()), capture_output=True)
    time.sleep(1)


def measure(pid, window, port):
    """(Pss KiB, Rss KiB, private dirty KiB, wake-ups per minute, IMAP connections) over window
    seconds."""
    before = threads_ctxt_switches(pid)
    time.sleep(window)  # the thing being measured is precisely what happens while we wait
    after = threads_ctxt_switches(pid)
    pss, rss, dirty = memory_kib(pid)
    return pss, rss, dirty, (after - before) * 60.0 / window, tcp_connections(pid, port)


def by_library(pid):
    """Rss and private dirty memory (KiB) of each mapped file (libraries), [heap], [stack] and
    anonymous mappings, from /proc/PID/smaps, largest first."""
    sums = {}
    name = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if parts and not parts[0].endswith(":"):
                name = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
                sums.setdefault(name, [0, 0])
            elif parts[0] == "Rss:":
                sums[name][0] += int(parts[1])
            elif parts[0] == "Private_Dirty:":
                sums[name][1] += int(parts[1])
    return sorted(sums.items(), key=lambda x: -x[1][0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--watchdog-sec", type=int, default=WATCHDOG_USEC // 1000000,
                    help="WatchdogSec= of the build measured (an older build: 60)")
    ap.add_argument("--no-mailnag", action="store_true", help="alcoded only")
    ap.add_argument("--by-library", action="store_true",
                    help="also print idle alcoded's Rss and private dirty memory per library (1 account)")
    args = ap.parse_args()
    alcodetest.BUILD_DIR = os.path.abspath(args.build)

    users = {"u%02d" % i: "pw-u%02d-%04d" % (i, 1000 + i) for i in range(10)}
    tmp = TempDir("alcode-bench-")
    rows = []
    try:
        dovecot = Dovecot(tmp, users=users)
        codes = iter(random_codes(10, seed=5))
        for u in users:
            dovecot.deliver(u, "INBOX", code_mail(next(codes)))
            for i in range(20):
                dovecot.deliver(u, "INBOX", b"From: a@shop.example\r\nSubject: offer %d\r\n\r\nhello\r\n" % i)
        dovecot.start()
        for n in (1, 10):
            names = sorted(users)[:n]
            t = TempDir("alcode-bench-run-")
            bus = DBusSession(t)
            notifications = Notifications(t, bus)
            try:
                alcode = Alcode(t, bus=bus)
                alcode.write_config("".join(dovecot.account_config(u, user=u) for u in names))
                notify = NotifySocket(t)
                p = alcode.spawn_daemon(env=notify.env(args.watchdog_sec * 1000000))
                want = "; ".join("%s: watching" % u for u in names)  # STATUS= words (account-state.c)
                wait_for(lambda: want in notify.values("STATUS"), timeout=120, what="alcoded idle")
                settle(bus)
                rows.append(("alcoded", n) + measure(p.pid, args.window, dovecot.tls_port))
                if args.by_library and n == 1:
                    libs = by_library(p.pid)
                    print("alcoded, 1 account, idle: %d mappings, Rss %.1f MiB; by file (KiB Rss / private dirty):" % (
                        len(libs), sum(v[0] for _, v in libs) / 1024))
                    for name, (rss, dirty) in libs:
                        if rss >= 64:
                            print("  %-32s %6d %6d" % (name, rss, dirty))
                p.terminate()
                p.wait(timeout=10)
                p.logfile.close()
                notify.close()

                if mailnag_available() and not args.no_mailnag:
                    m = start_mailnag(t, dovecot, names, bus, notifications.display)
                    # Idle once its first check notified the unread mail of every account.
                    monitor = BusMonitor(bus)
                    # It notifies the unread mail of its first check; then its IDLE threads start.
                    wait_for(lambda: [c for c in monitor.notify_calls() if c["app"] == "Mailnag"], timeout=60,
                             what="Mailnag's first check")
                    monitor.stop()
                    time.sleep(5)  # no event tells when its IDLE set-up is over
                    settle(bus)
                    rows.append(("Mailnag 2.2", n) + measure(m.pid, args.window, dovecot.tls_port))
                    m.terminate()
                    m.wait(timeout=15)
            finally:
                notifications.stop()
                bus.stop()
                t.cleanup()
    finally:
        if "dovecot" in locals():
            dovecot.stop()
        tmp.cleanup()

    print("\nIdle, %g s window, WatchdogSec=%ds, %s (Pss/RSS in MiB; wake-ups = context switches of all threads "
          "per minute)" % (args.window, args.watchdog_sec, alcodetest.BUILD_DIR))
    print("| daemon | accounts | Pss | RSS | private dirty | wake-ups/min | per account | IMAP connections |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, pss, rss, dirty, wakeups, conns in rows:
        print("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %d |" % (name, n, pss / 1024, rss / 1024, dirty / 1024,
                                                                  wakeups, wakeups / n, conns))
    by = {(r[0], r[1]): r for r in rows}
    for n in (1, 10):
        a, m = by.get(("alcoded", n)), by.get(("Mailnag 2.2", n))
        target = 4 + 0.5 * n
        if a:
            print("alcoded, %d account(s): Pss %.1f MiB (target ≤ %.1f MiB)%s" % (
                n, a[2] / 1024, target, "; Mailnag/alcoded Pss ratio %.1f" % (m[2] / a[2]) if m else ""))


if __name__ == "__main__":
    main()
