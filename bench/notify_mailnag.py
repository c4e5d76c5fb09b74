"""Shared by bench/idle.py and bench/notify_latency.py: Mailnag run headless on the test dovecot,
a bare IDLE client (the floor for push latency), and process metrics read from /proc.

Mailnag (Debian package `mailnag`, 2.2) runs unmodified but for two stubs in a wrapper: its
libsecret store (no keyring on a private bus: the password comes from its config file, which
Mailnag supports) and its Internet connectivity probe (it pings www.google.com; this machine has
no Internet). Its IMAP, IDLE and notification code paths are its own."""

import glob
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

MAILNAG_WRAPPER = r'''
import logging, sys
sys.argv = ["mailnag", "--quiet"]
logging.raiseExceptions = False  # no syslog socket here
import Mailnag.common.secretstore as ss
ss.SecretStore.get_default = staticmethod(lambda: None)
import Mailnag.daemon.conntest as ct
ct.ConnectivityTest.is_offline = lambda self: False
exec(compile(open("/usr/bin/mailnag").read(), "/usr/bin/mailnag", "exec"))
'''


def mailnag_available():
    return os.path.exists("/usr/bin/mailnag") and subprocess.run(
        ["/usr/bin/python3", "-c", "import Mailnag, gi, dbus"], capture_output=True).returncode == 0


def start_mailnag(tmp, dovecot, users, bus, display):
    """Starts Mailnag watching INBOX of each user (IMAP IDLE over TLS). Returns the Popen."""
    home = tmp.join("mailnag-home")
    os.makedirs(os.path.join(home, ".config", "mailnag"), exist_ok=True)
    cfg = ["[core]", "poll_interval = 10", "imap_idle_timeout = 10", "mailbox_seen_flags = 1",
           "autostart = 1", "connectivity_test = networkmonitor", "enabled_plugins = libnotifyplugin", ""]
    for i, u in enumerate(users, 1):
        cfg += ["[account%d]" % i, "enabled = 1", "type = imap", "name = %s" % u, "user = %s" % u,
                "password = %s" % dovecot.users[u], "server = 127.0.0.1", "port = %d" % dovecot.tls_port,
                "ssl = 1", "imap = 1", "idle = 1", "folder = []", ""]
    with open(os.path.join(home, ".config", "mailnag", "mailnag.cfg"), "w") as f:
        f.write("\n".join(cfg))
    wrapper = tmp.join("mailnag-headless.py")
    with open(wrapper, "w") as f:
        f.write(MAILNAG_WRAPPER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "DBUS_"))}
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_DATA_HOME=os.path.join(home, ".local", "share"), DISPLAY=display, **bus.env())
    log = open(tmp.join("mailnag.log"), "w")
    return subprocess.Popen(["/usr/bin/python3", wrapper], env=env, stdout=log, stderr=subprocess.STDOUT)


class IdleClient:
    """The floor: one TLS connection in IDLE on INBOX; records when each `* n EXISTS` arrives."""

    def __init__(self, dovecot, user):
        ctx = ssl.create_default_context(cafile=dovecot.ca)
        raw = socket.create_connection(("127.0.0.1", dovecot.tls_port))
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        self.f = self.s.makefile("rb")
        self.f.readline()
        self._cmd(b"a1 LOGIN %s %s" % (user.encode(), dovecot.users[user].encode()))
        self._cmd(b"a2 SELECT INBOX")
        self.s.sendall(b"a3 IDLE\r\n")
        assert self.f.readline().startswith(b"+")
        self.events = []
        threading.Thread(target=self._read, daemon=True).start()

    def _cmd(self, line):
        tag = line.split()[0]
        self.s.sendall(line + b"\r\n")
        while True:
            r = self.f.readline()
            if r.startswith(tag):
                assert b" OK" in r, r
                return

    def _read(self):
        for line in self.f:
            if line.endswith(b"EXISTS\r\n"):
                self.events.append(time.time())

    def close(self):
        try:
            self.s.sendall(b"DONE\r\n")
            self.s.close()
        except OSError:
            pass


def threads_ctxt_switches(pid):
    """Voluntary + involuntary context switches of every thread: each is a wake-up."""
    total = 0
    for status in glob.glob("/proc/%d/task/*/status" % pid):
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def memory_kib(pid):
    """(Pss, Rss, Private_Dirty) in KiB from /proc/PID/smaps_rollup. Pss shares every page among
    the processes mapping it, so it moves with what else runs; Private_Dirty does not."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Pss:", "Rss:", "Private_Dirty:"):
                out[parts[0][:-1]] = int(parts[1])
    return out["Pss"], out["Rss"], out["Private_Dirty"]


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
