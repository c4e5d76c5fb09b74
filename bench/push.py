#!/usr/bin/env python3
"""Push benchmark: new mail -> code stored, with IDLE, against dovecot's own notification delay.

    python3 bench/push.py [COUNT]     (default 100 messages)

A private dovecot holds the personal half of a mailbox written by tests/tools/mkmail.py (1,500
messages, functional profile). `alcoded` runs and IDLEs on
INBOX. For each of COUNT messages: APPEND (over IMAP) a mail with a fresh code, and time until
its row is in the store. Beside it, in the same run, a bare IDLE client (Python imaplib) times
APPEND -> "* n EXISTS": dovecot's own delay (about 500 ms), the floor for any IDLE client.
Reports p50/p99 of both and what alcode adds. Build first: cmake --build build."""

import os
import select
import socket
import sqlite3
import ssl
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../tests/integration"))
os.environ.setdefault("ALCODE_BUILD_DIR", os.path.join(HERE, "../build"))
from alcodetest import Alcode, Dovecot, TempDir, read_log, wait_for  # noqa: E402
import corpusscore  # noqa: E402

MAIL = ("From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nTo: a@example.org\r\n"
        "Subject: Votre code\r\nMessage-ID: <push-%d@actionlogement.fr>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nVotre code sp\u00e9cifique : %s\r\n")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def code_for(i):
    return "PU%02dK%04d" % (i % 100, i)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    tmp = TempDir(prefix="alcode-bench-")
    p = None
    try:
        sample = tmp.join("mailbox")
        r = corpusscore.mkmail(sample, 7, 1500)
        if r.returncode != 0:
            sys.exit(r.stderr)
        d = Dovecot(tmp)
        d.load_tree("alice", os.path.join(sample, "perso"), folder_map={"INBOX": "INBOX", "Junk": "Junk"})
        d.start()
        a = Alcode(tmp)
        a.write_config(d.account_config("push"))
        p = a.spawn_daemon("--verbose")
        wait_for(lambda: "watching with IDLE" in read_log(p), timeout=120, what="alcoded in IDLE")
        db = sqlite3.connect("file:%s?mode=ro" % a.db, uri=True)

        appender = d.imap()
        # A bare IDLE client on the same folder: dovecot's notification delay.
        ctx = ssl.create_default_context(cafile=d.ca)
        raw = ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.tls_port)), server_hostname="localhost")
        f = raw.makefile("rb")
        f.readline()
        raw.sendall(b"a LOGIN alice secret1\r\n")
        while not f.readline().startswith(b"a "):
            pass
        raw.sendall(b"b EXAMINE INBOX\r\n")
        while not f.readline().startswith(b"b "):
            pass

        bare, ours = [], []
        for i in range(count):
            raw.sendall(b"c IDLE\r\n")
            f.readline()  # "+ idling"
            code = code_for(i)
            t0 = time.monotonic()
            appender.append("INBOX", None, None, (MAIL % (i, code)).encode())
            t_bare = t_ours = None
            while t_bare is None or t_ours is None:
                if t_bare is None and select.select([raw], [], [], 0.001)[0] and b"EXISTS" in f.readline():
                    t_bare = time.monotonic() - t0
                if t_ours is None and db.execute("SELECT 1 FROM codes WHERE value = ?", (code,)).fetchone():
                    t_ours = time.monotonic() - t0
                if time.monotonic() - t0 > 10:
                    raise TimeoutError("message %d not seen" % i)
            bare.append(t_bare)
            ours.append(t_ours)
            raw.sendall(b"DONE\r\n")
            while not f.readline().startswith(b"c "):
                pass
        print("%d messages, APPEND -> ...        p50 ms   p99 ms" % count)
        print("bare IDLE client: * EXISTS        %7.0f  %7.0f" % (1000 * pct(bare, 50), 1000 * pct(bare, 99)))
        print("alcoded: code row in the store    %7.0f  %7.0f" % (1000 * pct(ours, 50), 1000 * pct(ours, 99)))
        print("alcode adds (p50): %.0f ms (target <= 50 ms)" % (1000 * (pct(ours, 50) - pct(bare, 50))))
        appender.logout()
        d.stop()
    finally:
        if p and p.poll() is None:
            p.terminate()
            p.wait()
        tmp.cleanup()


if __name__ == "__main__":
    main()
