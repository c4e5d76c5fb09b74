"""The daemon's children, as a user meets them: Copy puts the code on the clipboard under X11
(xclip on Xvfb) and Wayland (wl-copy on a headless sway), read back with `xclip -o` and
`wl-paste`; a copy that fails is logged as failed and shown; the helper starts with no blocked
or ignored signal, so SIGTERM ends it; the daemon stops within a second after a Copy; a
password_command that fails (a locked keyring) leaves the account waiting, not failed, and the
account recovers by itself once it works."""

import json
import os
import shutil
import signal
import subprocess
import time

from alcodetest import (DaemonTestCase, code_mail, main, random_codes, read_log, require_tools, start_daemon,
                        stop_daemon, wait_for)

PASSWORD = "pw-kim-3390"
HERE = os.path.dirname(os.path.abspath(__file__))


def proc_status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, v = line.split(":", 1)
            fields[k] = v.strip()
    return fields


def processes(comm, env_item):
    """Pids of processes named comm whose environment holds env_item ("DISPLAY=:5")."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                if f.read().strip() != comm:
                    continue
            with open("/proc/%s/environ" % d, "rb") as f:
                if env_item.encode() in f.read().split(b"\0"):
                    found.append(int(d))
        except OSError:
            pass
    return found


class NotificationServer:
    """notifyserver.py on a DBusSession: what alcoded showed, and clicks on its actions."""

    def __init__(self, tmp, bus):
        self.bus = bus
        self.out = tmp.join("notifications.jsonl")
        open(self.out, "w").close()
        self.proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "notifyserver.py"), self.out],
                                     env=dict(os.environ, **bus.env()))
        wait_for(lambda: bus.has_owner("org.freedesktop.Notifications"), what="the notification server")

    def shown(self):
        with open(self.out) as f:
            return [json.loads(l) for l in f if l.strip()]

    def invoke(self, nid, key):
        subprocess.run(["busctl", "--address=" + self.bus.address, "call", "org.freedesktop.Notifications",
                        "/org/freedesktop/Notifications", "io.github.alcode.Test", "Invoke", "us", str(nid), key],
                       check=True, capture_output=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


class Children(DaemonTestCase):
    USERS = {"kim": PASSWORD}

    @classmethod
    def fill(cls):
        cls.code = random_codes(1, seed=14)[0]
        cls.dovecot.deliver("kim", "INBOX", code_mail(cls.code))

    def setUp(self):
        super().setUp()
        self.server = NotificationServer(self.t, self.bus)
        self.addCleanup(self.server.stop)

    def start(self, env, account_extra=""):
        conf = self.dovecot.account_config("kim", user="kim")
        self.alcode.write_config(conf + account_extra)
        p = start_daemon(self, self.alcode, notify=self.notify, env=env)
        self.notify.wait("STATUS", "kim: watching", timeout=60)
        wait_for(lambda: self.server.shown(), what="the code's notification")
        return p

    def copy(self, p, expect):
        n = self.server.shown()[0]
        self.assertIn("copy", n["actions"])
        self.server.invoke(n["id"], "copy")
        wait_for(lambda: expect in read_log(p), timeout=15, what=expect)

    def x11(self):
        require_tools("Xvfb", "xclip")
        display = ":%d" % (300 + os.getpid() % 500)
        x = subprocess.Popen(["Xvfb", display, "-nolisten", "tcp", "-screen", "0", "640x480x24"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            x.terminate()
            x.wait(timeout=5)
        self.addCleanup(stop)
        wait_for(lambda: os.path.exists("/tmp/.X11-unix/X" + display[1:]), what="Xvfb")
        return display

    def end_helpers(self, comm, env_item):
        """The helper that serves the clipboard: its signal mask is clean, SIGTERM ends it."""
        pids = processes(comm, env_item)
        self.assertTrue(pids, "no %s serving the clipboard" % comm)
        for pid in pids:
            st = proc_status(pid)
            self.assertEqual(int(st["SigBlk"], 16), 0, st)
            # (wl-copy ignores SIGHUP itself when it goes to the background.)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
                self.assertFalse(int(st["SigIgn"], 16) & (1 << (sig - 1)), (sig, st["SigIgn"]))
            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not processes(comm, env_item), timeout=1, what="%s to end on SIGTERM" % comm)

    def test_copy_x11(self):
        display = self.x11()
        env = {"DISPLAY": display}
        p = self.start(env)
        self.copy(p, "Copied a code to the clipboard with xclip.")
        got = subprocess.run(["xclip", "-o", "-selection", "clipboard"], env=dict(os.environ, DISPLAY=display),
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(got.stdout, self.code.replace(" ", ""))
        # After a Copy, the daemon still stops at once and cleanly.
        rc, took = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))
        self.assertLess(took, 1.0)
        self.end_helpers("xclip", "DISPLAY=" + display)

    def test_copy_wayland(self):
        require_tools("sway", "wl-copy", "wl-paste", "setpriv")
        # sway refuses to run as root: a headless sway as nobody, in a runtime dir of its own.
        runtime = self.t.join("wl-runtime")
        os.makedirs(runtime, mode=0o700)
        shutil.chown(runtime, "nobody", "nogroup")
        conf = self.t.join("sway.conf")
        with open(conf, "w") as f:
            f.write("output HEADLESS-1 resolution 640x480\n")
        sway = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env", "-i",
                                 "PATH=/usr/bin:/bin", "HOME=" + self.t.path, "XDG_RUNTIME_DIR=" + runtime,
                                 "WLR_BACKENDS=headless", "WLR_LIBINPUT_NO_DEVICES=1", "WLR_RENDERER=pixman",
                                 "sway", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            sway.terminate()
            sway.wait(timeout=5)
        self.addCleanup(stop)
        wait_for(lambda: [n for n in os.listdir(runtime) if n.startswith("wayland-") and not n.endswith(".lock")],
                 what="sway's socket")
        socket = [n for n in os.listdir(runtime) if n.startswith("wayland-") and not n.endswith(".lock")][0]
        wl = os.path.join(runtime, socket)
        # Both set: Wayland comes first.
        p = self.start({"WAYLAND_DISPLAY": wl, "DISPLAY": ":9999"})
        self.copy(p, "Copied a code to the clipboard with wl-copy.")
        got = subprocess.run(["wl-paste", "--no-newline"], env=dict(os.environ, WAYLAND_DISPLAY=wl,
                                                                       XDG_RUNTIME_DIR=runtime),
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(got.stdout, self.code.replace(" ", ""))
        rc, took = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))
        self.assertLess(took, 1.0)
        self.end_helpers("wl-copy", "WAYLAND_DISPLAY=" + wl)

    def test_failed_copy_is_reported(self):
        require_tools("xclip")
        # A display nobody serves: xclip exits 1. Not "Copied", and the user is told.
        p = self.start({"DISPLAY": ":%d" % (900 + os.getpid() % 90)})
        self.copy(p, "Cannot copy the code to the clipboard: xclip exited with status 1")
        self.assertIn("Can't open display", read_log(p))
        self.assertNotIn("Copied a code", read_log(p))
        wait_for(lambda: len(self.server.shown()) == 2, what="the copy-failed notification")
        failed = self.server.shown()[1]
        self.assertEqual(failed["summary"], "alcode: the code was not copied")
        self.assertIn("xclip exited with status 1", failed["body"])
        self.assertNotEqual(failed["hints"]["category"], "email.arrived")
        # No tool usable at all: said too.
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0)

    def test_no_display_is_reported(self):
        p = self.start({})
        self.copy(p, "Cannot copy the code to the clipboard: neither wl-copy")
        wait_for(lambda: len(self.server.shown()) == 2, what="the copy-failed notification")
        self.assertEqual(self.server.shown()[1]["summary"], "alcode: the code was not copied")
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0)

    def test_locked_keyring_then_unlocked(self):
        # password_command fails while the "keyring" is locked: the account waits, says so, and
        # recovers by itself within its backoff once it works, without a reload.
        lock = self.t.join("locked")
        open(lock, "w").close()
        helper = self.t.join("pw")
        with open(helper, "w") as f:
            f.write('#!/bin/sh\n[ -e "%s" ] && exit 1\necho "%s"\n' % (lock, PASSWORD))
        os.chmod(helper, 0o755)
        conf = self.dovecot.account_config("kim", user="kim").replace("password = %s\n" % PASSWORD,
                                                                      "password_command = %s\n" % helper)
        self.alcode.write_config(conf)
        p = start_daemon(self, self.alcode, notify=self.notify, env={"ALCODE_TEST_BACKOFF_MAX": "2"})
        self.notify.wait("STATUS", "kim: waiting for password_command (keyring locked?)", timeout=30)
        st = self.alcode.run("status").stdout
        self.assertIn("waiting for password_command (keyring locked?)", st)
        self.assertIn("password_command exited with status 1", st)
        st = json.loads(self.alcode.run("status", "--json").stdout.splitlines()[0])
        self.assertEqual(st["state"], "password")
        os.unlink(lock)
        t0 = time.monotonic()
        self.notify.wait("STATUS", "kim: watching", timeout=15)
        self.assertLess(time.monotonic() - t0, 8)
        self.assertIn("password_command works again", read_log(p))
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0)

    def test_stop_while_password_command_waits(self):
        # A helper waiting for a keyring prompt: stopping the daemon ends it at once, not
        # after its 30 s.
        report = self.t.join("helper-pid")
        helper = self.t.join("pw")
        with open(helper, "w") as f:
            f.write('#!/bin/sh\necho $$ > "%s"\nexec sleep 300\n' % report)
        os.chmod(helper, 0o755)
        conf = self.dovecot.account_config("kim", user="kim").replace("password = %s\n" % PASSWORD,
                                                                      "password_command = %s\n" % helper)
        self.alcode.write_config(conf)
        p = start_daemon(self, self.alcode, notify=self.notify)
        wait_for(lambda: os.path.exists(report) and open(report).read().strip(), what="the helper to start")
        with open(report) as f:
            pid = int(f.read())
        rc, took = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))
        self.assertLess(took, 1.0)
        self.assertFalse(os.path.exists("/proc/%d" % pid) and
                         open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] != "Z")


if __name__ == "__main__":
    main()
