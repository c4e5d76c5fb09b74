#!/usr/bin/python3
"""New mail → desktop notification latency: alcoded beside Mailnag and a bare IDLE client (the
floor: dovecot's own push delay), all watching the same INBOX on one local dovecot (TLS).

Each sample APPENDs one code mail and times, from just before the APPEND:
  floor    the bare IDLE client receives `* n EXISTS`;
  alcoded  its Notify call carrying that code appears on the session bus;
  Mailnag  its Notify call appears on the session bus (it notifies every new mail).
Bus times come from `busctl monitor` (the bus daemon's receive timestamps), the floor's from
the client itself; one clock. dunst shows the notifications under Xvfb.

Usage: bench/notify_latency.py [--samples N] [--mailbox N] [--build DIR]
Needs a plain (non-sanitizer) build: cmake -B build && cmake --build build."""

import argparse
import os
import sys
import time

from notify_mailnag import IdleClient, mailnag_available, percentile, start_mailnag

import alcodetest
from alcodetest import (Alcode, BusMonitor, DBusSession, Dovecot, NotifySocket, Notifications, TempDir,
                        code_mail, random_codes, wait_for)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--mailbox", type=int, default=300, help="messages already in INBOX")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--poll", type=int, default=10, help="alcoded poll_interval (until IDLE)")
    args = ap.parse_args()
    alcodetest.BUILD_DIR = os.path.abspath(args.build)

    tmp = TempDir("alcode-bench-")
    procs = []
    try:
        dovecot = Dovecot(tmp, users={"bench": "pw-bench-4821"})
        filler = b"From: news@shop.example\r\nSubject: offers %d\r\n\r\n" + b"Nothing here. " * 100 + b"\r\n"
        for i in range(args.mailbox):
            dovecot.deliver("bench", "INBOX", filler % i, seen=True)
        dovecot.start()
        bus = DBusSession(tmp)
        notifications = Notifications(tmp, bus)
        monitor = BusMonitor(bus)

        alcode = Alcode(tmp, bus=bus)
        alcode.write_config(dovecot.account_config("bench", user="bench",
                                                   extra="folders = INBOX\npoll_interval = %d\n" % args.poll))
        notify = NotifySocket(tmp)
        daemon = alcode.spawn_daemon(env=notify.env())
        procs.append(daemon)
        wait_for(lambda: "bench: watching" in notify.values("STATUS"), timeout=60, what="alcoded idle")

        mailnag = None
        if mailnag_available():
            mailnag = start_mailnag(tmp, dovecot, ["bench"], bus, notifications.display)
            procs.append(mailnag)
        floor = IdleClient(dovecot, "bench")

        # Warm-up: everyone connected and in IDLE (Mailnag needs a first check).
        codes = random_codes(args.samples + 1, seed=42)
        t0 = time.time()
        dovecot.append("bench", "INBOX", code_mail(codes[0]))
        wait_for(lambda: floor.events, timeout=30, what="the floor")
        if mailnag:
            wait_for(lambda: [n for n in monitor.notify_calls() if n["app"] == "Mailnag"], timeout=60,
                     what="Mailnag's first notification")
        wait_for(lambda: [n for n in monitor.notify_calls() if n["app"] == "alcode"], timeout=args.poll + 30,
                 what="alcoded's first notification")

        lat = {"floor": [], "alcoded": [], "Mailnag": []}
        for code in codes[1:]:
            n_floor = len(floor.events)
            n_mailnag = len([n for n in monitor.notify_calls() if n["app"] == "Mailnag"])
            time.sleep(1.0)  # let dovecot's change-notification delay and Mailnag's re-IDLE settle
            t0 = time.time()
            dovecot.append("bench", "INBOX", code_mail(code))
            wait_for(lambda: len(floor.events) > n_floor, timeout=30, what="EXISTS")
            lat["floor"].append(floor.events[n_floor] - t0)
            mine = wait_for(lambda: [n for n in monitor.notify_calls() if n["app"] == "alcode" and code in n["body"]],
                            timeout=args.poll + 30, what="alcoded's notification")
            lat["alcoded"].append(mine[0]["time"] - t0)
            if mailnag:
                theirs = wait_for(lambda: [n for n in monitor.notify_calls() if n["app"] == "Mailnag"][n_mailnag:],
                                  timeout=60, what="Mailnag's notification")
                lat["Mailnag"].append(theirs[0]["time"] - t0)
            print("sample: floor %.0f ms, alcoded %.0f ms%s" % (
                lat["floor"][-1] * 1000, lat["alcoded"][-1] * 1000,
                ", Mailnag %.0f ms" % (lat["Mailnag"][-1] * 1000) if mailnag else ""), file=sys.stderr)
        floor.close()

        print("\nNew mail → notification, %d samples, INBOX of %d messages, dovecot %s over TLS on 127.0.0.1"
              % (args.samples, args.mailbox, "2.3"))
        print("| client | p50 | p99 | vs floor (p50) |")
        print("|---|---|---|---|")
        f50 = percentile(lat["floor"], 50)
        for name in ("floor", "alcoded", "Mailnag"):
            if not lat[name]:
                print("| %s | not run | | |" % name)
                continue
            p50, p99 = percentile(lat[name], 50), percentile(lat[name], 99)
            print("| %s | %.0f ms | %.0f ms | %+.0f ms |" % (
                "bare IDLE client (floor)" if name == "floor" else name, p50 * 1000, p99 * 1000, (p50 - f50) * 1000))
        if lat["Mailnag"]:
            print("\nalcoded / Mailnag, p50: %.2f" % (percentile(lat["alcoded"], 50) / percentile(lat["Mailnag"], 50)))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except Exception:
                    p.kill()
        for obj in ("monitor", "notifications", "bus", "dovecot"):
            o = locals().get(obj)
            if o is not None:
                o.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
