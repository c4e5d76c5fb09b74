"""Server limits: a server that refuses logins for too many connections (Gmail's "[ALERT] Too many
simultaneous connections", dovecot's mail_max_userip_connections), says BYE in the middle of a
backfill, or throttles commands ("NO [THROTTLED]", Gmail's "OK Success [THROTTLED]"). alcode slows
down (backs off, or pauses between reads for a command done but throttled; says so in `alcode
status`), never loses a message, never stores one twice, and never starts a folder's scan again
from its first message: it resumes after the last UID it stored.

The faults come from LimitProxy, a proxy of our own between alcoded and a real dovecot (plain
IMAP, `tls = none`): it forwards both ways, parsing the server's literals so that it can count
FETCH responses, and replaces or adds the one answer a case asks for. Every disturbed store is
compared with the store of an undisturbed `alcoded --once` over the same mailbox."""

import contextlib
import json
import re
import sqlite3
import socket
import threading
import time
import unittest

from alcodetest import (NO_NOTIFY, Alcode, DBusSession, Dovecot, LoopbackServer, TempDir, main, read_log, start_daemon,
                        stop_daemon, wait_for)
from faultkit import employer_config, load_copies, messages_seen, reference_store, snapshot

FAST = {"ALCODE_TEST_IMAP_TIMEOUT": "5", "ALCODE_TEST_BACKOFF_MIN": "1", "ALCODE_TEST_BACKOFF_MAX": "2",
        "ALCODE_TEST_THROTTLE_MIN_MS": "200", "ALCODE_TEST_THROTTLE_MAX_MS": "800"}


class LimitProxy(LoopbackServer):
    """Forwards each connection to dovecot's plain port. Cases (attributes, set by a test):
    refuse_logins: answer LOGIN/AUTHENTICATE with `refusal` instead of forwarding it;
    bye_after: {connection number: n}: after the n-th FETCH response of that connection, send
      `* BYE [UNAVAILABLE] ...` and close both sides; bye_every: the same on every other connection;
    throttle_fetch: {connection number: k}: answer that connection's k-th UID FETCH with
      `NO [THROTTLED] ...` instead of forwarding it;
    throttle_ok: append " [THROTTLED]" to every tagged OK (as Gmail does when it slows an account).
    It records every command as (connection, command line without the tag) and the logins."""

    REFUSAL = b"NO [ALERT] Too many simultaneous connections. (Failure)"

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.refuse_logins = False
        self.refusal = self.REFUSAL
        self.refused = 0
        self.bye_after = {}
        self.bye_every = 0
        self.fetch_responses = 0
        self.fetched = {}          # connection -> {(folder, uid)} of the FETCH responses it got
        self.on_bye = None         # called (with the connection number) before a BYE goes out
        self.byes = 0
        self.throttle_fetch = {}
        self.throttled = 0
        self.throttle_ok = False
        self.log = []
        super().__init__()

    def commands(self, prefix):
        with self.lock:
            return [(n, c) for n, c in self.log if c.upper().startswith(prefix)]

    def serve(self, c, n):
        up = socket.create_connection(("127.0.0.1", self.upstream))
        lock = threading.Lock()  # one writer at a time towards the client
        fetches = [0]
        folder = [None]
        closed = threading.Event()

        def close():
            closed.set()
            for s in (c, up):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def down():
            f = up.makefile("rb")
            try:
                while not closed.is_set():
                    line = f.readline()
                    if not line:
                        break
                    unit = line
                    # A response with literals: the whole of it, so that nothing is cut inside.
                    while re.search(rb"\{(\d+)\}\r\n$", line):
                        unit += f.read(int(re.search(rb"\{(\d+)\}\r\n$", line).group(1)))
                        line = f.readline()
                        unit += line
                    if self.throttle_ok and re.match(rb"^[A-Za-z0-9.]+ OK ", unit) and not unit.startswith(b"* "):
                        unit = unit.rstrip(b"\r\n") + b" [THROTTLED]\r\n"
                    with lock:
                        c.sendall(unit)
                    if re.match(rb"^\* \d+ FETCH ", unit):
                        fetches[0] += 1
                        uid = re.search(rb"UID (\d+)", unit[:200])
                        with self.lock:
                            self.fetch_responses += 1
                            if uid:
                                self.fetched.setdefault(n, set()).add((folder[0], int(uid.group(1))))
                        if self.bye_after.get(n, self.bye_every) == fetches[0]:
                            if self.on_bye:
                                self.on_bye(n)
                            with lock:
                                c.sendall(b"* BYE [UNAVAILABLE] Server shutting down for maintenance\r\n")
                            with self.lock:
                                self.byes += 1
                            break
            except OSError:
                pass
            close()

        t = threading.Thread(target=down, daemon=True)
        t.start()
        f = c.makefile("rb")
        n_fetch = 0
        try:
            while not closed.is_set():
                line = f.readline()
                if not line:
                    break
                parts = line.rstrip(b"\r\n").split(b" ", 1)
                tag, rest = parts[0], parts[1] if len(parts) > 1 else b""
                word = rest.split(b" ", 1)[0].upper()
                with self.lock:
                    self.log.append((n, rest.decode(errors="replace") if word not in (b"LOGIN", b"AUTHENTICATE")
                                     else word.decode()))
                if word in (b"EXAMINE", b"SELECT"):
                    folder[0] = rest.split(b" ", 1)[1].strip().strip(b'"').decode(errors="replace")
                if word in (b"LOGIN", b"AUTHENTICATE") and self.refuse_logins:
                    with self.lock:
                        self.refused += 1
                    with lock:
                        c.sendall(tag + b" " + self.refusal + b"\r\n")
                    continue
                if rest.upper().startswith(b"UID FETCH"):
                    n_fetch += 1
                    if self.throttle_fetch.get(n) == n_fetch:
                        with self.lock:
                            self.throttled += 1
                        with lock:
                            c.sendall(tag + b" NO [THROTTLED] Request is throttled. Suggested Backoff Time: "
                                      b"1000 milliseconds\r\n")
                        continue
                up.sendall(line)
        except OSError:
            pass
        close()
        t.join(timeout=5)
        for s in (c, up):
            s.close()


class Limits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.dovecot = Dovecot(cls.tmp)
        cls.n = load_copies(cls.dovecot, 2)
        cls.dovecot.start()
        cls.config = employer_config() + "otp_retention = 3650\n"
        # An undisturbed run straight to dovecot, under the same account name.
        cls.reference = reference_store(cls.dovecot, cls.config + cls.dovecot.account_config("big", tls="none"))

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.t = TempDir()
        self.addCleanup(self.t.cleanup)
        self.proxy = LimitProxy(self.dovecot.port)
        self.addCleanup(self.proxy.stop)
        self.bus = DBusSession(self.t)
        self.addCleanup(self.bus.stop)
        self.alcode = Alcode(self.t, bus=self.bus)
        self.alcode.write_config(self.config + "[account big]\nhost = 127.0.0.1\nport = %d\ntls = none\n"
                                 "user = alice\npassword = secret1\n" % self.proxy.port)

    def status(self):
        r = self.alcode.run("status", "--json", check=False)
        rows = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        return rows[0] if rows else None

    def daemon(self):
        return start_daemon(self, self.alcode, "--verbose", env=FAST)

    def finished(self, p):
        """Waits for the backfill to be over, then compares the store with the reference."""
        try:
            wait_for(lambda: messages_seen(self.alcode.db) >= self.n and (self.status() or {}).get("state") == "idle",
                     timeout=180, what="the backfill to finish", interval=0.2)
        except TimeoutError:
            log = [x for x in read_log(p).splitlines() if "code" not in x]
            self.fail("the backfill did not finish (%d of %d messages); alcoded said:\n%s"
                      % (messages_seen(self.alcode.db), self.n, "\n".join(log[-40:])))
        got = snapshot(self.alcode.db)
        self.assertEqual(got["cursors"], self.reference["cursors"], "a message was read twice or skipped")
        self.assertEqual(got["n_codes"], self.reference["n_codes"])
        self.assertEqual(got["codes"], self.reference["codes"])
        self.assertEqual(got["sightings"], self.reference["sightings"])
        self.assertEqual(got["messages"], self.reference["messages"])
        code, _ = stop_daemon(p)
        self.assertEqual(code, 0, read_log(p))

    def test_too_many_connections_at_login(self):
        self.proxy.refuse_logins = True
        p = self.daemon()
        # The user sees the account retrying, with the server's words; not a password error.
        wait_for(lambda: self.proxy.refused >= 3, timeout=30, what="three refused logins")
        st = wait_for(lambda: (lambda s: s if s and s["state"] == "backoff" else None)(self.status()),
                      timeout=10, what="alcode status to show the account backing off")
        self.assertIn("Too many simultaneous connections", st["error"] or "")
        self.assertIsNone(p.poll(), read_log(p))
        # Slowing down: a growing delay between attempts, not a reconnect loop.
        refused = self.proxy.refused
        time.sleep(2)
        self.assertLessEqual(self.proxy.refused - refused, 2)
        self.proxy.refuse_logins = False
        self.finished(p)
        self.assertNotIn("password", read_log(p).lower())

    def test_bye_in_the_middle_of_a_scan(self):
        # Connection 1 is cut in the full pass (after the first pass's ~3,400 FETCH responses),
        # connection 2 a little later. What was stored when the BYE came is never read again:
        # each next connection goes on after the last UID stored in each folder.
        self.proxy.bye_after = {1: 4500, 2: 700}
        stored = {}

        def cursors(conn):
            with contextlib.closing(sqlite3.connect("file:%s?mode=ro" % self.alcode.db, uri=True, timeout=5)) as c:
                stored[conn] = dict(c.execute("SELECT folder, last_uid FROM cursors"))
        self.proxy.on_bye = cursors
        p = self.daemon()
        self.finished(p)
        self.assertEqual(self.proxy.byes, 2)
        self.assertGreaterEqual(self.proxy.connections, 3)
        self.assertTrue(any(stored[1].values()), "cut before anything was stored: cut later")
        for cut, st in stored.items():
            for conn, got in self.proxy.fetched.items():
                if conn <= cut:
                    continue
                again = sorted((f, u) for f, u in got if u <= st.get(f, 0))
                self.assertEqual(again, [], "connection %d read again what was stored before the BYE on "
                                 "connection %d" % (conn, cut))

    def test_bye_again_and_again(self):
        # A server that cuts every session after 3,000 FETCH responses, fewer than the first
        # pass (the likely code mail of every folder) takes on this mailbox. That pass moves no
        # cursor: redone in every session, the backfill never got anywhere. After a cut alcode
        # goes on from the cursors instead, and each session stores some.
        self.proxy.bye_every = 3000
        p = self.daemon()
        self.finished(p)
        self.assertGreaterEqual(self.proxy.byes, 2)
        self.assertLessEqual(self.proxy.connections, 8, "sessions that stored nothing")

    def test_throttled(self):
        # Gmail: every OK says [THROTTLED] (it slows itself down); Microsoft 365: a command
        # refused with NO [THROTTLED] and a suggested delay, twice in the backfill.
        self.proxy.throttle_ok = True
        self.proxy.throttle_fetch = {1: 2, 2: 1}
        p = self.daemon()
        self.finished(p)
        self.assertEqual(self.proxy.throttled, 2)
        log = read_log(p)
        # Said, backed off, came back; no fallback to whole messages (3x the bytes) for a
        # refusal that says nothing about what we asked for (it used to end in a double free).
        self.assertIn("the server asks us to slow down: Request is throttled", log)
        self.assertIn("reconnecting in", log)
        self.assertNotIn("reading whole messages", log)

    def test_throttled_ok_slows_down(self):
        # Gmail's "OK Success [THROTTLED]": each command is done, but the account is slowed
        # down. No error, no reconnect: pauses between reads, growing (0.2, 0.4, 0.8 s here)
        # while the server says it, shown in alcode status; then gone once it stops.
        self.proxy.throttle_ok = True
        p = self.daemon()

        def said(words):
            st = self.status()
            return st if st and words in (st["error"] or "") else None
        st = wait_for(lambda: said("the server asks us to slow down: pausing"), timeout=120, interval=0.05,
                      what="alcode status to say the server slows us down")
        self.assertEqual(st["state"], "scanning")
        wait_for(lambda: said("pausing 0.8 s between reads"), timeout=120, interval=0.05, what="the pause to grow")
        self.proxy.throttle_ok = False
        wait_for(lambda: messages_seen(self.alcode.db) >= self.n and (self.status() or {}).get("state") == "idle",
                 timeout=180, what="the backfill to finish", interval=0.2)
        self.assertIsNone(self.status()["error"])
        log = read_log(p)
        self.assertIn("the server asks us to slow down ([THROTTLED]): pausing between reads", log)
        self.assertNotIn("reconnecting", log)
        self.assertEqual(self.proxy.connections, 1)
        self.finished(p)

    def connection_limit(self, imap_extra):
        # One connection per user and IP; new mail in two folders must still be found.
        d = Dovecot(self.t, imap_extra="  mail_max_userip_connections = 1\n" + imap_extra)
        d.deliver("alice", "INBOX", b"From: a@b.example\r\nSubject: hello\r\n\r\nnothing here\r\n")
        d.start()
        self.addCleanup(d.stop)
        self.alcode.write_config(self.config + d.account_config("limited", tls="none"))
        p = start_daemon(self, self.alcode, "--verbose", env=dict(FAST, ALCODE_TEST_POLL_INTERVAL="1"))
        wait_for(lambda: p.poll() is not None or "watching with IDLE" in read_log(p), timeout=60,
                 what="the account watching")
        return d, p

    def deliver_two_and_stop(self, d, p, deliver):
        st = self.status()
        self.assertIsNotNone(st)
        self.assertEqual(st["state"], "idle", read_log(p))
        self.assertIsNone(st["error"])
        self.assertIsNone(p.poll())
        for folder, code in (("INBOX", "LM7K 3Q9P"), ("Junk", "LM4T 8W2X")):
            deliver("alice", folder, ("From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\n"
                                  "Subject: Code\r\nMessage-ID: <%s@actionlogement.fr>\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                                  "Votre code sp\u00e9cifique : %s\r\n" % (folder, code)).encode())
        wait_for(lambda: len(self.alcode.sql("SELECT 1 FROM codes WHERE value IN ('LM7K3Q9P', 'LM4T8W2X')")) == 2,
                 timeout=30, what="both new codes")
        code, _ = stop_daemon(p)
        self.assertEqual(code, 0, read_log(p))

    def test_dovecot_connection_limit_without_notify(self):
        # Without NOTIFY a second folder wants an IDLE connection of its own: refused, the
        # account keeps watching (that folder polled) instead of stopping.
        d, p = self.connection_limit(NO_NOTIFY)
        wait_for(lambda: "no further connection allowed" in read_log(p), timeout=60,
                 what="the refused second connection")
        time.sleep(2)
        self.deliver_two_and_stop(d, p, d.deliver)

    def test_dovecot_connection_limit_with_notify(self):
        # With NOTIFY one connection watches every folder: nothing is refused.
        d, p = self.connection_limit("")
        self.assertIn("watching with IDLE and NOTIFY", read_log(p))
        self.deliver_two_and_stop(d, p, d.save)
        self.assertNotIn("no further connection allowed", read_log(p))


if __name__ == "__main__":
    main()
