"""One connection per account: where the server offers NOTIFY (RFC 5465), the daemon watches
every folder it reads on one connection, and new mail in Trash or an archive folder is pushed
like mail in INBOX (no polling: the poll interval is an hour here). Where it does not, the old
way: one IDLE connection each for INBOX and Junk, the other folders polled.

A folder created while the daemon watches is read and watched at once: NOTIFY asks for
MailboxName events too (a "* LIST" line when a folder is created, deleted or renamed); where
the server refuses them, the folders are listed again at every notification. A folder deleted
or renamed under the daemon is no error: it stops being asked for.

What is asserted is what a user sees (the code stored) and what the server sees (the daemon's
TCP connections to it, from /proc), and that no message is read twice: the daemon logs each
message with codes once, by folder and UID."""

import re
import socket
import threading
import time
import unittest

from alcodetest import (NO_NOTIFY, Alcode, Dovecot, LoopbackServer, TempDir, code_mail, main, random_codes, read_log,
                        tcp_connections, wait_for)

FOLDERS = "folders = INBOX, Junk, Trash, Archive, Archives/*\n"


class LosingProxy(LoopbackServer):
    """Between the daemon and dovecot's plain port: drops the server's "* STATUS" lines (lost
    notifications) and, when told, says "* OK [NOTIFICATIONOVERFLOW]" as a server does when it
    lost count. With refuse_names, it forwards every STATUS but refuses a NOTIFY that asks for
    MailboxName, as a server without those events would."""

    def __init__(self, port, refuse_names=False):
        self.upstream = port
        self.clients_up = []
        self.dropped = 0
        self.refuse_names = refuse_names
        self.refused = 0
        super().__init__()

    def serve(self, c, n):
        up = socket.create_connection(("127.0.0.1", self.upstream))
        self.clients_up.append(c)

        def client_to_server():
            f = c.makefile("rb")
            try:
                for line in f:
                    if self.refuse_names and b" NOTIFY " in line.upper() and b"MAILBOXNAME" in line.upper():
                        self.refused += 1
                        c.sendall(line.split(b" ", 1)[0] + b" NO [BADEVENT] (MessageNew MessageExpunge)\r\n")
                        continue
                    up.sendall(line)
            except OSError:
                pass
            up.close()

        threading.Thread(target=client_to_server, daemon=True).start()
        buf = b""
        try:
            while True:
                data = up.recv(65536)
                if not data:
                    break
                buf += data
                *lines, buf = buf.split(b"\n")
                out = []
                for line in lines:
                    if line.startswith(b"* STATUS ") and not self.refuse_names:
                        self.dropped += 1
                        continue
                    out.append(line + b"\n")
                c.sendall(b"".join(out))
        except OSError:
            pass
        c.close()

    def overflow(self):
        for c in self.clients_up:
            c.sendall(b"* OK [NOTIFICATIONOVERFLOW] lost count\r\n")


class NotifyImap(unittest.TestCase):
    def start(self, imap_extra="", config=None):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        self.dovecot = Dovecot(tmp, imap_extra=imap_extra)
        codes = iter(random_codes(40, seed=16))
        self.codes = codes
        # Archive is not auto-created: a first message makes it.
        self.dovecot.deliver("alice", "INBOX", code_mail(next(codes)))
        self.dovecot.deliver("alice", "Archive", code_mail(next(codes)))
        self.dovecot.deliver("alice", "Archives/2025", code_mail(next(codes)))
        self.dovecot.start()
        self.addCleanup(self.dovecot.stop)
        self.a = Alcode(tmp)
        self.a.write_config(config(self.dovecot) if config else self.dovecot.account_config("perso", extra=FOLDERS))
        p = self.a.spawn_daemon("--verbose", env={"ALCODE_TEST_POLL_INTERVAL": "3600"})
        self.addCleanup(lambda: (p.poll() is None and p.terminate(), p.wait(), p.logfile.close()))
        wait_for(lambda: p.poll() is not None or "watching with IDLE" in read_log(p), timeout=60, what="IDLE")
        self.assertIsNone(p.poll(), read_log(p))
        time.sleep(0.5)  # the other IDLE connections of the old way, if any, are set up
        return p

    def stored(self):
        return {c["value"] for c in self.a.list_json()}

    def append_and_wait(self, p, folder, timeout=10):
        code = next(self.codes)
        t = time.monotonic()
        self.dovecot.append("alice", folder, code_mail(code))
        try:
            wait_for(lambda: code.replace(" ", "") in self.stored(), timeout=timeout, what="the code from " + folder)
        except TimeoutError:
            print(read_log(p)[-4000:])
            raise
        return time.monotonic() - t

    def assert_read_once(self, p):
        reads = re.findall(r"account 'perso' folder '([^']*)' UID (\d+): found", read_log(p))
        self.assertEqual(len(reads), len(set(reads)), "a message was read twice:\n" + read_log(p)[-4000:])
        return len(reads)

    def test_one_connection_pushes_every_folder(self):
        p = self.start()
        self.assertIn("watching with IDLE and NOTIFY", read_log(p))
        self.assertEqual(tcp_connections(p.pid, self.dovecot.tls_port), 1, read_log(p))
        for folder in ("Trash", "Archive", "Archives/2025", "Junk", "INBOX"):
            took = self.append_and_wait(p, folder, timeout=5)
            print("\n  NOTIFY, %s: APPEND -> stored in %.0f ms" % (folder, 1000 * took))
        # Mail in several folders at once, in the middle of reading: none lost, none read twice.
        want = []
        for i in range(12):
            code = next(self.codes)
            want.append(code.replace(" ", ""))
            self.dovecot.append("alice", ("INBOX", "Trash", "Archive", "Junk")[i % 4], code_mail(code))
        try:
            wait_for(lambda: set(want) <= self.stored(), timeout=15, what="the twelve codes")
        except TimeoutError:
            print(read_log(p)[-6000:])
            raise
        time.sleep(1)
        self.assertEqual(self.assert_read_once(p), 3 + 5 + 12)
        self.assertEqual(tcp_connections(p.pid, self.dovecot.tls_port), 1, read_log(p))

    def test_overflow_reads_every_folder(self):
        proxy = LosingProxy(0)
        self.addCleanup(proxy.stop)

        def config(dovecot):
            proxy.upstream = dovecot.port
            return ("[account perso]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = alice\npassword = %s\n%s"
                    % (proxy.port, dovecot.users["alice"], FOLDERS))

        p = self.start(config=config)
        self.assertIn("watching with IDLE and NOTIFY", read_log(p))
        code = next(self.codes)
        self.dovecot.append("alice", "Trash", code_mail(code))
        wait_for(lambda: proxy.dropped > 0, timeout=5, what="the notification (dropped)")
        time.sleep(2)
        self.assertNotIn(code.replace(" ", ""), self.stored(), "found without its notification?")
        proxy.overflow()
        try:
            wait_for(lambda: code.replace(" ", "") in self.stored(), timeout=5, what="the code after the overflow")
        except TimeoutError:
            print(read_log(p)[-4000:])
            raise
        self.assertIn("the server lost count of its notifications", read_log(p))
        self.assert_read_once(p)

    def proxied(self, proxy):
        def config(dovecot):
            proxy.upstream = dovecot.port
            return ("[account perso]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = alice\npassword = %s\n%s"
                    % (proxy.port, dovecot.users["alice"], FOLDERS))
        return config

    def create(self, *names):
        c = self.dovecot.imap()
        try:
            for name in names:
                self.assertEqual(c.create('"%s"' % name)[0], "OK")
        finally:
            c.logout()

    def test_new_folder_watched_at_once(self):
        # Polling is an hour away: only the server's word makes the new folder known.
        p = self.start()
        self.create("Archives/2026")
        took = self.append_and_wait(p, "Archives/2026", timeout=5)
        print("\n  NOTIFY, a new folder: APPEND -> stored in %.0f ms" % (1000 * took))
        self.assertIn("folder 'Archives/2026': new folder: reading it, then watching it", read_log(p))
        # Watched from then on, like the others.
        self.append_and_wait(p, "Archives/2026", timeout=5)
        self.append_and_wait(p, "INBOX", timeout=5)
        self.assertEqual(self.assert_read_once(p), 3 + 3)
        self.assertEqual(tcp_connections(p.pid, self.dovecot.tls_port), 1, read_log(p))

    def test_folders_deleted_and_renamed(self):
        p = self.start()
        c = self.dovecot.imap()
        try:
            self.assertEqual(c.rename("Archive", '"Archives/Old"')[0], "OK")
            self.assertEqual(c.delete('"Archives/2025"')[0], "OK")
        finally:
            c.logout()
        # The renamed folder is read under its new name and watched; nothing else changes.
        self.append_and_wait(p, "Archives/Old", timeout=5)
        for folder in ("Trash", "INBOX"):
            self.append_and_wait(p, folder, timeout=5)
        time.sleep(1)
        log = read_log(p)
        self.assertNotIn("cannot open folder", log)
        self.assertNotIn("reconnecting", log)
        self.assertNotIn("connection lost", log)
        self.assertIsNone(p.poll(), log)
        self.assertEqual(tcp_connections(p.pid, self.dovecot.tls_port), 1, log)
        self.assert_read_once(p)

    def test_new_folder_without_mailbox_name_events(self):
        # A server that refuses MailboxName: the folders are listed again at every
        # notification, so the new folder is found with the next mail anywhere.
        proxy = LosingProxy(0, refuse_names=True)
        self.addCleanup(proxy.stop)
        p = self.start(config=self.proxied(proxy))
        self.assertEqual(proxy.refused, 1)
        self.assertIn("looking for new folders at every notification", read_log(p))
        self.create("Archives/2026")
        code = next(self.codes)
        self.dovecot.append("alice", "Archives/2026", code_mail(code))
        self.append_and_wait(p, "INBOX", timeout=5)
        wait_for(lambda: code.replace(" ", "") in self.stored(), timeout=5, what="the code in the new folder")
        self.append_and_wait(p, "Archives/2026", timeout=5)
        self.assertEqual(proxy.refused, 1, "asked again for what the server refused")
        self.assert_read_once(p)

    def test_without_notify_the_old_way(self):
        p = self.start(NO_NOTIFY)
        self.assertNotIn("NOTIFY", read_log(p))
        # INBOX and Junk: one IDLE connection each.
        self.assertEqual(tcp_connections(p.pid, self.dovecot.tls_port), 2, read_log(p))
        for folder in ("INBOX", "Junk"):
            self.append_and_wait(p, folder, timeout=5)
        self.assert_read_once(p)


if __name__ == "__main__":
    main()
