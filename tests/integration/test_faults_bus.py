"""The desktop side comes and goes: the notification server (dunst) stops and comes back, the
session bus itself restarts. Codes are stored all along; notifications resume once a server
is there again; after a bus restart alcoded stops cleanly with exit status 1 (so that systemd,
Restart=on-failure, starts it again on the new bus), loses nothing, and once started again
answers on the new bus."""

import os
import signal
import subprocess
import unittest

from alcodetest import (Alcode, DBusSession, Dovecot, Notifications, NotifySocket, TempDir, busctl, code_mail,
                        main, random_codes, read_log, start_daemon, wait_for)

NAME, PATH, IFACE = "io.github.alcode.Daemon1", "/io/github/alcode/Daemon1", "io.github.alcode.Daemon1"


class BusFaults(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.dovecot = Dovecot(self.tmp)
        self.codes = random_codes(4, seed=11)
        self.dovecot.deliver("alice", "INBOX", code_mail(self.codes[0]))
        self.dovecot.start()
        self.addCleanup(self.dovecot.stop)
        self.bus = DBusSession(self.tmp)
        self.addCleanup(lambda: self.bus.stop())
        self.alcode = Alcode(self.tmp, bus=self.bus)
        self.alcode.write_config(self.dovecot.account_config("bf"))

    def stored(self):
        try:
            return {v for (v,) in self.alcode.sql("SELECT value FROM codes")}
        except Exception:
            return set()

    def status_ok(self, bus):
        r = busctl(bus, "call", NAME, PATH, IFACE, "Status", check=False)
        return not isinstance(r, subprocess.CompletedProcess)

    def test_notification_server_goes_and_comes_back(self):
        n = Notifications(self.tmp, self.bus)
        self.addCleanup(n.stop)
        notify = NotifySocket(self.tmp)
        self.addCleanup(notify.close)
        p = start_daemon(self, self.alcode, "--verbose", notify=notify)
        wait_for(lambda: any(self.codes[0] in (h.get("body") or "") for h in n.history() + _shown(n)),
                 timeout=30, what="the first notification")

        # dunst goes away: the next code is stored, a warning says why nothing was shown.
        n.dunst.terminate()
        n.dunst.wait(timeout=10)
        wait_for(lambda: not n._owned(), what="the notification server to leave the bus")
        self.dovecot.deliver("alice", "INBOX", code_mail(self.codes[1]))
        wait_for(lambda: self.codes[1].replace(" ", "") in self.stored(), timeout=30, what="the second code")
        wait_for(lambda: "Cannot send a desktop notification" in read_log(p) or
                 "Cannot show a desktop notification" in read_log(p), timeout=15, what="the warning")
        self.assertIsNone(p.poll())

        # It comes back: the next code is shown again.
        env = dict(os.environ, DISPLAY=n.display, **self.bus.env())
        env.pop("WAYLAND_DISPLAY", None)
        n.dunst = subprocess.Popen(["dunst", "-config", self.tmp.join("dunstrc")], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(n._owned, what="dunst back on the bus")
        self.dovecot.deliver("alice", "INBOX", code_mail(self.codes[2]))
        wait_for(lambda: any(self.codes[2] in (h.get("body") or "") for h in _shown(n)), timeout=30,
                 what="a notification from the server that came back")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=15), 0, read_log(p)[-3000:])

    def test_session_bus_restarts(self):
        notify = NotifySocket(self.tmp)
        self.addCleanup(notify.close)
        p = start_daemon(self, self.alcode, "--verbose", notify=notify)
        wait_for(lambda: self.status_ok(self.bus), timeout=30, what="the D-Bus API")
        wait_for(lambda: self.codes[0].replace(" ", "") in self.stored(), timeout=30, what="the first code")

        self.bus.stop()
        self.assertEqual(p.wait(timeout=20), 1, read_log(p)[-3000:])
        self.assertIn("The session bus went away", read_log(p))
        self.assertIn("1", notify.values("STOPPING"))

        # A new bus on the same address; systemd would start alcoded again (Restart=on-failure).
        self.bus = DBusSession(self.tmp)
        self.dovecot.deliver("alice", "INBOX", code_mail(self.codes[3]))
        p2 = start_daemon(self, self.alcode, "--verbose", notify=notify)
        wait_for(lambda: self.status_ok(self.bus), timeout=30, what="the D-Bus API on the new bus")
        wait_for(lambda: self.codes[3].replace(" ", "") in self.stored(), timeout=30, what="mail after the restart")
        self.assertTrue({c.replace(" ", "") for c in (self.codes[0], self.codes[3])} <= self.stored())
        p2.send_signal(signal.SIGTERM)
        self.assertEqual(p2.wait(timeout=15), 0)


def _shown(n):
    """Notifications dunst shows now (history only holds closed ones): close them all first."""
    env = dict(os.environ, **n.bus.env())
    subprocess.run(["dunstctl", "close-all"], env=env, capture_output=True)
    return n.history()


if __name__ == "__main__":
    main()
