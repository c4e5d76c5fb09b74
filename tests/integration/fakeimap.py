"""A tiny misbehaving IMAP server for the tests of what real servers rarely do: stall in the
middle of a FETCH, cut the connection inside a literal, or answer garbage. Plain text on
127.0.0.1 (accounts use `tls = none`). It counts connections so a test can see the client
reconnect.

Mode "gmail" speaks as Gmail does (X-GM-EXT-1; labels are folders, [Gmail]/All Mail holds every
message but Spam and Trash): the same message is in INBOX, a label and All Mail. Mode "labels"
is the same server without X-GM-EXT-1. Both record the folders examined. In mode "gmail" the
labelled message carries its X-GM-LABELS (\\Inbox, \\Important, Logement and a label in
modified UTF-7, "Équipe") when a FETCH asks for them.

structure says how a FETCH that asks for BODYSTRUCTURE is answered: "ok" (the body, as to any
FETCH), "refused" (BAD: a server without it) or "garbled" (a structure libetpan cannot parse, on
the first connection only): the client then reads whole messages.

Mode "vanish" has three folders, INBOX, Gone and Keep, a code mail in each: Gone can be opened
once (the first look's EXAMINE), then no more (deleted meanwhile), and a FETCH after a refused
EXAMINE is refused too, as no folder is selected."""

import socket

from alcodetest import LoopbackServer

MESSAGE = (b"From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nSubject: Code\r\n"
           b"Message-ID: <fake@actionlogement.fr>\r\n\r\nVotre code sp\xc3\xa9cifique : FA7K 3Q9P\r\n")
SPAM = (b"From: AL'in <notifications@al-in.fr>\r\nSubject: Code\r\nMessage-ID: <spam@al-in.fr>\r\n\r\n"
        b"Votre code sp\xc3\xa9cifique : KX7P 2M9Q\r\n")
TRASH = (b"From: AL'in <notifications@al-in.fr>\r\nSubject: Code\r\nMessage-ID: <trash@al-in.fr>\r\n\r\n"
         b"Votre code sp\xc3\xa9cifique : ZP4L 6N2B\r\n")
KEEP = (b"From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nSubject: Code\r\n"
        b"Message-ID: <keep@actionlogement.fr>\r\n\r\nVotre code sp\xc3\xa9cifique : HJ5K 3P8W\r\n")
GMAIL_FOLDERS = [(b"\\HasNoChildren", b"INBOX", MESSAGE), (b"\\HasNoChildren", b"Logement", MESSAGE),
                 (b"\\HasChildren \\Noselect", b"[Gmail]", None),
                 (b"\\All \\HasNoChildren", b"[Gmail]/All Mail", MESSAGE),
                 (b"\\HasNoChildren \\Sent", b"[Gmail]/Sent Mail", MESSAGE),
                 (b"\\HasNoChildren \\Junk", b"[Gmail]/Spam", SPAM),
                 (b"\\HasNoChildren \\Trash", b"[Gmail]/Trash", TRASH)]


class FakeImap(LoopbackServer):
    """mode: "stall" (FETCH never answered), "cut" (literal announced, connection closed inside
    it), "garbage" (nonsense after login), or "ok" (serves one message)."""

    def __init__(self, mode, structure="ok"):
        self.mode = mode
        self.structure = structure
        self.examined = []
        self.commands = []  # every command's name, in order
        self.asked_labels = False  # a FETCH asked for X-GM-LABELS
        self.login_caps = False  # "OK [CAPABILITY ...] logged in", as dovecot says it
        super().__init__()

    def serve(self, c, n):
        f = c.makefile("rb")
        caps = b"IMAP4rev1 AUTH=PLAIN" + (b" X-GM-EXT-1" if self.mode == "gmail" else b"")
        labels = self.mode in ("gmail", "labels")
        message = MESSAGE
        selected = False
        try:
            c.sendall(b"* OK [CAPABILITY %s] fake ready\r\n" % caps)
            for line in f:
                parts = line.decode(errors="replace").strip().split(" ", 2)
                if len(parts) < 2:
                    continue
                tag, cmd = parts[0], parts[1].upper()
                rest = parts[2] if len(parts) > 2 else ""
                self.commands.append(cmd)
                if cmd == "CAPABILITY":
                    c.sendall(b"* CAPABILITY %s\r\n%s OK done\r\n" % (caps, tag.encode()))
                elif cmd == "LOGIN":
                    if self.mode == "garbage":
                        c.sendall(b"\x00\xff garbage }{ (((\r\n* 99999999999999999999 EXISTS\r\n)))\r\n")
                        continue
                    c.sendall(b"%s OK %slogged in\r\n" % (tag.encode(), b"[CAPABILITY %s] " % caps
                                                             if self.login_caps else b""))
                elif cmd == "LIST" and labels:
                    for flags, name, _ in GMAIL_FOLDERS:
                        c.sendall(b'* LIST (%s) "/" "%s"\r\n' % (flags, name))
                    c.sendall(b"%s OK done\r\n" % tag.encode())
                elif cmd == "LIST" and self.mode == "vanish":
                    for name in (b"INBOX", b"Gone", b"Keep"):
                        c.sendall(b'* LIST (\\HasNoChildren) "/" %s\r\n' % name)
                    c.sendall(b"%s OK done\r\n" % tag.encode())
                elif cmd == "LIST":
                    c.sendall(b'* LIST (\\HasNoChildren) "/" INBOX\r\n%s OK done\r\n' % tag.encode())
                elif cmd == "EXAMINE" and self.mode == "vanish" and "Gone" in rest and "Gone" in self.examined:
                    selected = False
                    c.sendall(b"%s NO Mailbox doesn't exist: Gone\r\n" % tag.encode())
                elif cmd == "UID" and self.mode == "vanish" and not selected:
                    c.sendall(b"%s NO No mailbox selected\r\n" % tag.encode())
                elif cmd == "EXAMINE":
                    name = rest.strip().strip('"').encode()
                    self.examined.append(name.decode())
                    selected = True
                    if self.mode == "vanish":
                        message = {b"Gone": TRASH, b"Keep": KEEP}.get(name, MESSAGE)
                    message = next((m for _, n, m in GMAIL_FOLDERS if n == name), MESSAGE) if labels else MESSAGE
                    c.sendall(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 42] ok\r\n* OK [UIDNEXT 2] ok\r\n"
                              b"%s OK [READ-ONLY] done\r\n" % tag.encode())
                elif cmd == "STATUS":
                    name = rest.rsplit(" (", 1)[0].strip().strip('"').encode()
                    c.sendall(b'* STATUS "%s" (UIDNEXT 2 UIDVALIDITY 42 MESSAGES 1)\r\n%s OK done\r\n'
                              % (name, tag.encode()))
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
                    if "BODYSTRUCTURE" in rest.upper() and self.structure == "refused":
                        c.sendall(b"%s NO unknown fetch item\r\n" % tag.encode())
                        continue
                    if "BODYSTRUCTURE" in rest.upper() and self.structure == "garbled" and n == 1:
                        c.sendall(b'* 1 FETCH (UID 1 BODYSTRUCTURE ("text" "plain" ((\r\n%s OK done\r\n'
                                  % tag.encode())
                        continue
                    # Gmail answers X-GM-LABELS when asked (system labels quoted with their
                    # backslash, others as atoms in modified UTF-7).
                    gm = b""
                    if "X-GM-LABELS" in rest.upper():
                        self.asked_labels = True
                        if self.mode == "gmail" and message is MESSAGE:
                            gm = b' X-GM-LABELS ("\\\\Inbox" "\\\\Important" Logement &AMk-quipe)'
                    c.sendall(b"* 1 FETCH (UID 1 RFC822.SIZE %d%s BODY[]<0> {%d}\r\n%s)\r\n%s OK done\r\n"
                              % (len(message), gm, len(message), message, tag.encode()))
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
