"""A hostile IMAP server for tests (plain text on 127.0.0.1; accounts use `tls = none`, or
`tls = starttls` for the injection case). It serves a valid session with one code mail, except
for the one step a case replaces with malformed, oversized, out-of-order or malicious bytes.

A case is a function `case(server, conn, tag, command, rest)` called for every command; it
returns True when it answered (or broke the connection), False to let the normal answer go.
The server counts connections, the bytes it managed to push, and the commands it received,
so that a test can see the client drop the connection, reconnect, and never send LOGIN where
it must not."""

import time

from alcodetest import LoopbackServer

MESSAGE = (b"From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nSubject: Code\r\n"
           b"Message-ID: <hostile@actionlogement.fr>\r\nDate: Mon, 02 Mar 2026 09:14:00 +0100\r\n\r\n"
           b"Votre code sp\xc3\xa9cifique : HK7T 3Q9P\r\n")
CODE = "HK7T3Q9P"


class HostileImap(LoopbackServer):
    def __init__(self, case=None, starttls=False):
        self.case = case
        self.starttls = starttls
        self.sent = 0              # bytes pushed by streaming cases
        self.commands = []         # (connection number, command)
        super().__init__()

    def received(self, command):
        with self.lock:
            return [n for n, c in self.commands if c == command]

    def capabilities(self):
        return b"IMAP4rev1 AUTH=PLAIN" + (b" STARTTLS" if self.starttls else b"")

    def stream(self, c, head, chunk, limit=1 << 31):
        """Sends head, then chunk again and again until the peer stops reading (closes) or
        limit bytes went out. Returns when the peer is gone."""
        c.sendall(head)
        c.settimeout(60)
        while self.sent < limit and not self.stopped:
            try:
                c.sendall(chunk)
            except OSError:
                return
            with self.lock:
                self.sent += len(chunk)

    def serve(self, c, n):
        f = c.makefile("rb")
        idle_tag = None
        try:
            c.sendall(b"* OK [CAPABILITY " + self.capabilities() + b"] hostile ready\r\n")
            for line in f:
                parts = line.decode(errors="replace").strip().split(" ", 2)
                if parts == ["DONE"] and idle_tag:
                    c.sendall(idle_tag + b" OK idle done\r\n")
                    idle_tag = None
                    continue
                if len(parts) < 2:
                    continue
                tag, cmd = parts[0], parts[1].upper()
                rest = parts[2] if len(parts) > 2 else ""
                if cmd == "UID":
                    sub = rest.split(" ", 1)
                    cmd, rest = "UID " + sub[0].upper(), sub[1] if len(sub) > 1 else ""
                with self.lock:
                    self.commands.append((n, cmd))
                if self.case and self.case(self, c, tag.encode(), cmd, rest):
                    continue
                t = tag.encode()
                if cmd == "CAPABILITY":
                    c.sendall(b"* CAPABILITY " + self.capabilities() + b"\r\n" + t + b" OK done\r\n")
                elif cmd == "LOGIN" or cmd == "AUTHENTICATE":
                    c.sendall(t + b" OK logged in\r\n")
                elif cmd == "LIST":
                    c.sendall(b'* LIST (\\HasNoChildren) "/" INBOX\r\n' + t + b" OK done\r\n")
                elif cmd == "EXAMINE":
                    c.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 42] ok\r\n* OK [UIDNEXT 2] ok\r\n"
                              + t + b" OK [READ-ONLY] done\r\n")
                elif cmd == "STATUS":
                    c.sendall(b"* STATUS INBOX (UIDNEXT 2 UIDVALIDITY 42 MESSAGES 1)\r\n" + t + b" OK done\r\n")
                elif cmd == "UID SEARCH":
                    c.sendall(b"* SEARCH 1\r\n" + t + b" OK done\r\n")
                elif cmd == "UID FETCH":
                    c.sendall(b"* 1 FETCH (UID 1 RFC822.SIZE %d BODY[]<0> {%d}\r\n%s)\r\n%s OK done\r\n"
                              % (len(MESSAGE), len(MESSAGE), MESSAGE, t))
                elif cmd == "LOGOUT":
                    c.sendall(b"* BYE\r\n" + t + b" OK bye\r\n")
                    return
                elif cmd == "NOOP":
                    c.sendall(t + b" OK done\r\n")
                elif cmd == "IDLE":
                    idle_tag = t
                    c.sendall(b"+ idling\r\n")
                else:
                    c.sendall(t + b" BAD unknown\r\n")
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass


def once(case):
    """Applies case once per command name, on the first connection only: afterwards the
    server behaves, so a test can see the client recover (by reconnecting, or at its next
    poll when the lie did not break the connection)."""
    done = set()

    def wrapped(server, conn, tag, cmd, rest):
        with server.lock:
            first = server.connections == 1
        if not first or cmd in done:
            return False
        if case(server, conn, tag, cmd, rest):
            done.add(cmd)
            return True
        return False
    return wrapped


def sleep_forever(server):
    while not server.stopped:
        time.sleep(0.05)
