"""A tiny misbehaving IMAP server for the tests of what real servers rarely do: stall in the
middle of a FETCH, cut the connection inside a literal, or answer garbage. Plain text on
127.0.0.1 (accounts use `tls = none`). It counts connections so a test can see the client
reconnect."""

import socket

from alcodetest import LoopbackServer

MESSAGE = (b"From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nSubject: Code\r\n"
           b"Message-ID: <fake@actionlogement.fr>\r\n\r\nVotre code sp\xc3\xa9cifique : FA7K 3Q9P\r\n")


class FakeImap(LoopbackServer):
    """mode: "stall" (FETCH never answered), "cut" (literal announced, connection closed inside
    it), "garbage" (nonsense after login), or "ok" (serves one message)."""

    def __init__(self, mode):
        self.mode = mode
        super().__init__()

    def serve(self, c, n):
        f = c.makefile("rb")
        try:
            c.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n")
            for line in f:
                parts = line.decode(errors="replace").strip().split(" ", 2)
                if len(parts) < 2:
                    continue
                tag, cmd = parts[0], parts[1].upper()
                rest = parts[2] if len(parts) > 2 else ""
                if cmd == "CAPABILITY":
                    c.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n%s OK done\r\n" % tag.encode())
                elif cmd == "LOGIN":
                    if self.mode == "garbage":
                        c.sendall(b"\x00\xff garbage }{ (((\r\n* 99999999999999999999 EXISTS\r\n)))\r\n")
                        continue
                    c.sendall(b"%s OK logged in\r\n" % tag.encode())
                elif cmd == "LIST":
                    c.sendall(b'* LIST (\\HasNoChildren) "/" INBOX\r\n%s OK done\r\n' % tag.encode())
                elif cmd == "EXAMINE":
                    c.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 42] ok\r\n* OK [UIDNEXT 2] ok\r\n"
                              b"%s OK [READ-ONLY] done\r\n" % tag.encode())
                elif cmd == "UID" and rest.upper().startswith("SEARCH"):
                    c.sendall(b"* SEARCH 1\r\n%s OK done\r\n" % tag.encode())
                elif cmd == "UID" and rest.upper().startswith("FETCH"):
                    if self.mode == "stall":
                        continue  # never answers
                    if self.mode == "cut":
                        c.sendall(b"* 1 FETCH (UID 1 RFC822.SIZE 500 BODY[]<0> {500}\r\nabc")
                        c.shutdown(socket.SHUT_RDWR)
                        c.close()
                        return
                    c.sendall(b"* 1 FETCH (UID 1 RFC822.SIZE %d BODY[]<0> {%d}\r\n%s)\r\n%s OK done\r\n"
                              % (len(MESSAGE), len(MESSAGE), MESSAGE, tag.encode()))
                elif cmd == "LOGOUT":
                    c.sendall(b"* BYE\r\n%s OK bye\r\n" % tag.encode())
                    return
                elif cmd == "NOOP":
                    c.sendall(b"%s OK done\r\n" % tag.encode())
                else:
                    c.sendall(b"%s BAD unknown\r\n" % tag.encode())
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass
