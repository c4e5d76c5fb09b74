"""alcoded under a real systemd user manager: a Debian 12 container booted with systemd as PID 1
(systemd-nspawn -b of a debootstrap minbase tree), a lingering user, this build installed with
`cmake --install` (DESTDIR), the private dovecot of the host on loopback (the container shares
the host's network). As the user it checks what a desktop user meets:

- `systemctl --user enable alcoded` and a new login (the user manager restarted) start it;
- a password_command that fails at start (a locked keyring) leaves the account waiting, and
  `alcode status` and STATUS= say so; once it works, the account recovers by itself;
- `systemctl --user reload` with a bad configuration fails and says why; a good one succeeds;
- the backfill notification, sent before any notification server ran, is shown when one
  starts (a python3-dbus server recording Notify), the newest specific code first;
- DISPLAY exported to the user manager after alcoded started (`systemctl --user
  import-environment`, as a desktop does) is what Copy uses: the code is on the clipboard,
  read back with `xclip -o`, from an X server with no abstract socket (only the file socket,
  which the unit's private /tmp must let through);
- what the sandboxed daemon can write and see (the unit's own sandbox, run by the manager);
- journal records carry CODE_FILE= once;
- `systemctl --user stop` returns within a second after a Copy, Result=success, status 0.

The tree is built once with debootstrap (the only step that needs the network: a Debian
mirror) and cached as a tarball in /var/cache/alcode-test; each run extracts a fresh copy.
Needs root, systemd-nspawn (systemd-container) and debootstrap: `scripts/deps test`."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from alcodetest import (BUILD_DIR, Alcode, Dovecot, SOURCE_DIR, TempDir, binary, code_mail, main, random_codes,
                        require_tools, under_ci, wait_for)

CACHE = os.environ.get("ALCODE_TEST_CACHE", "/var/cache/alcode-test")
MIRROR = os.environ.get("ALCODE_TEST_MIRROR", "http://deb.debian.org/debian")
# What the tree holds: systemd as PID 1 with a user manager and a session bus, the libraries
# alcoded links, a notification server's python3-dbus, Xvfb and xclip. Change it and the name.
PACKAGES = ("systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,libetpan20,libpcre2-8-0,"
            "libsqlite3-0,libgnutls30,libinih1,libsasl2-modules,libcurl3-gnutls,libjansson4,"
            "python3,python3-dbus,python3-gi,xvfb,xclip,procps")
TARBALL = os.path.join(CACHE, "bookworm-session-v2.tar")
USER, UID, PASSWORD = "jeanne", 1000, "pw-jeanne-5150"
HOME = "/home/" + USER
HERE = os.path.dirname(os.path.abspath(__file__))


def build_tarball():
    """debootstrap once; the tarball is reused by every later run."""
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as d:
        tree = os.path.join(d, "tree")
        r = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + PACKAGES, "bookworm", tree, MIRROR],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            raise AssertionError("debootstrap failed:\n" + r.stdout[-3000:] + r.stderr[-3000:])
        subprocess.run(["tar", "-C", tree, "-cf", TARBALL + ".part", "."], check=True)
        os.rename(TARBALL + ".part", TARBALL)


def install_build(destdir):
    """A build as users get it (no sanitizers, no test hooks), installed under /usr. It lives in
    the test build's tree: a build folder belongs to one source tree (CI clones elsewhere)."""
    build = os.path.join(os.path.abspath(BUILD_DIR), "session-build")
    subprocess.run(["cmake", "-S", SOURCE_DIR, "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    "-DCMAKE_INSTALL_PREFIX=/usr", "-DALCODE_SANITIZE=OFF", "-DALCODE_TEST_HOOKS=OFF"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", build, "-j2"], check=True, capture_output=True)
    subprocess.run(["cmake", "--install", build], check=True, capture_output=True,
                   env=dict(os.environ, DESTDIR=destdir))


class Container:
    def __init__(self, tmp):
        self.tree = os.path.join(tmp, "tree")
        os.makedirs(self.tree)
        subprocess.run(["tar", "-C", self.tree, "-xf", TARBALL], check=True)
        with open(self.path("/etc/hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n")
        subprocess.run(["chroot", self.tree, "useradd", "-m", "-u", str(UID), "-s", "/bin/sh", USER], check=True)
        os.makedirs(self.path("/var/lib/systemd/linger"), exist_ok=True)
        open(self.path("/var/lib/systemd/linger/" + USER), "w").close()
        self.name = "alcode-%d" % os.getpid()
        self.log = open(os.path.join(tmp, "nspawn.log"), "w+")
        self.proc = subprocess.Popen(["systemd-nspawn", "-D", self.tree, "-b", "--register=no", "--keep-unit",
                                      "--console=pipe", "-M", self.name],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.leader = None
        try:
            self._boot()
        except BaseException:
            # Never leave a container running on a tree that is about to be removed.
            self.stop()
            raise

    def _boot(self):
        wait_for(self._leader, timeout=30, what="the container's PID 1")
        # Minutes on a loaded machine (the whole suite runs two tests at once).
        try:
            wait_for(lambda: self.run("systemctl", "is-system-running", check=False).stdout.strip()
                     in ("running", "degraded"), timeout=240, what="the container to boot")
        except TimeoutError:
            raise AssertionError("the container did not finish booting: %s\n%s" % (
                self.run("systemctl", "is-system-running", check=False).stdout.strip(),
                self.run("systemctl", "list-jobs", "--no-pager", check=False).stdout))
        wait_for(lambda: self.user("systemctl", "--user", "is-system-running", check=False).stdout.strip()
                 in ("running", "degraded"), timeout=30, what="the user manager (linger)")

    def _leader(self):
        if self.proc.poll() is not None:
            self.log.seek(0)
            raise AssertionError("systemd-nspawn exited %d:\n%s" % (self.proc.returncode, self.log.read()[-3000:]))
        r = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        pids = r.stdout.split()
        self.leader = int(pids[0]) if pids else None
        return self.leader

    def path(self, p):
        return os.path.join(self.tree, p.lstrip("/"))

    def run(self, *argv, check=True, timeout=60, input=None):
        # -r -w: the container's root and cwd. Entering its mount namespace alone lands at that
        # namespace's root mount, which is the container's tree only when the caller's / is the
        # root of its own namespace: in a chroot (a fresh machine's minbase tree, scripts/prove-fresh)
        # it is the host's /, where no systemd runs ("offline").
        r = subprocess.run(["nsenter", "-t", str(self.leader), "-a", "-r", "-w", "--"] + list(argv),
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError("%s exited %d:\n%s%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr))
        return r

    def user(self, *argv, env=None, **kw):
        e = ["XDG_RUNTIME_DIR=/run/user/%d" % UID, "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%d/bus" % UID,
             "HOME=" + HOME, "PATH=/usr/bin:/bin", "LANG=C.UTF-8"] + ["%s=%s" % kv for kv in (env or {}).items()]
        return self.run("runuser", "-u", USER, "--", "env", "-i", *e, *argv, **kw)

    def write(self, p, text, mode=0o644, owner=True):
        full = self.path(p)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        os.chmod(full, mode)
        if owner:
            d = full
            while d.startswith(self.path(HOME)) and d != self.path("/home"):
                os.chown(d, UID, UID)
                d = os.path.dirname(d)

    def journal(self, unit):
        r = self.run("journalctl", "--no-pager", "-o", "json", "_SYSTEMD_USER_UNIT=" + unit, check=False)
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def messages(self, unit):
        return [m.get("MESSAGE") for m in self.journal(unit) if isinstance(m.get("MESSAGE"), str)]

    def stop(self):
        if self.proc.poll() is None:
            if self.leader:
                self.run("systemctl", "poweroff", check=False, timeout=30)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # PID 1 of the container first: nspawn alone does not take it down.
                if self.leader:
                    try:
                        os.kill(self.leader, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Session(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            if under_ci():
                self.fail("test_session needs root (systemd-nspawn)")
            self.skipTest("needs root (systemd-nspawn)")
        require_tools("systemd-nspawn", "debootstrap", "nsenter", "cmake", "tar", "chroot", "pgrep")
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        if not os.path.exists(TARBALL):
            build_tarball()
        self.dovecot = Dovecot(self.tmp, users={USER: PASSWORD})
        self.codes = random_codes(3, seed=15)
        for c in self.codes:
            self.dovecot.deliver(USER, "INBOX", code_mail(c))
        self.dovecot.start()
        self.addCleanup(self.dovecot.stop)
        # A tree on disk, not in the test's tmpfs: it is a whole system.
        self.root = tempfile.mkdtemp(prefix="alcode-session-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.c = Container(self.root)
        self.addCleanup(self.c.stop)
        install_build(self.c.tree)
        r = subprocess.run(["chroot", self.c.tree, "ldd", "/usr/bin/alcoded"], capture_output=True, text=True)
        missing = [l.split()[0] for l in r.stdout.splitlines() if "not found" in l]
        self.assertEqual(missing, [], "the tree lacks libraries alcoded links: add their packages to PACKAGES "
                                      "(and change the tarball's name)")
        shutil.copy(os.path.join(HERE, "notifyserver.py"), self.c.path("/usr/local/bin/notifyserver"))

    def configure(self, extra=""):
        with open(self.dovecot.ca) as f:
            self.c.write(HOME + "/.config/alcode/ca.pem", f.read())
        conf = self.dovecot.account_config("perso", user=USER).replace(
            "password = %s\n" % PASSWORD, "password_command = %s/bin/pw\n" % HOME).replace(
            "ca_file = %s\n" % self.dovecot.ca, "ca_file = %s/.config/alcode/ca.pem\n" % HOME)
        self.c.write(HOME + "/.config/alcode/alcode.conf", "[alcode]\n" + extra + conf, mode=0o600)

    def status(self):
        return self.c.user("systemctl", "--user", "show", "alcoded", "-p", "StatusText", "-p", "ActiveState",
                           "-p", "Result", "-p", "ExecMainStatus", "-p", "MainPID").stdout

    def prop(self, name):
        m = re.search(r"(?m)^%s=(.*)$" % name, self.status())
        return m.group(1) if m else None

    def notes(self):
        p = self.c.path(HOME + "/notes.jsonl")
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [json.loads(l) for l in f if l.strip()]

    def test_desktop_session(self):
        c = self.c
        # The "keyring": locked until the file goes.
        c.write(HOME + "/locked", "")
        c.write(HOME + "/bin/pw", '#!/bin/sh\n[ -e "$HOME/locked" ] && exit 1\necho "%s"\n' % PASSWORD, mode=0o755)
        self.configure()

        # Enabled by the user, started at the next login (a new user manager).
        r = c.user("systemctl", "--user", "enable", "alcoded")
        self.assertIn("default.target.wants/alcoded.service", r.stderr + r.stdout)
        self.assertEqual(c.user("systemctl", "--user", "is-active", "alcoded", check=False).stdout.strip(),
                         "inactive")
        c.run("systemctl", "restart", "user@%d.service" % UID)
        wait_for(lambda: c.user("systemctl", "--user", "is-active", "alcoded", check=False).stdout.strip()
                 == "active", timeout=30, what="alcoded started at login")

        # A locked keyring: the account waits for it, and says so.
        wait_for(lambda: "waiting for password_command" in (self.prop("StatusText") or ""), timeout=30,
                 what="STATUS= to say it waits for password_command")
        self.assertEqual(self.prop("StatusText"), "perso: waiting for password_command (keyring locked?)")
        st = c.user("alcode", "status").stdout
        self.assertIn("waiting for password_command (keyring locked?)", st)

        # A bad configuration: `systemctl --user reload` fails and says why; the old one goes on.
        with open(c.path(HOME + "/.config/alcode/alcode.conf")) as f:
            good = f.read()
        c.write(HOME + "/.config/alcode/alcode.conf", good.replace("port = ", "port = not-a-port\nx = "),
                mode=0o600)
        r = c.user("systemctl", "--user", "reload", "alcoded", check=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Job for alcoded.service failed", r.stderr)
        try:
            # The daemon's own line: busctl's (ExecReload) may reach the journal without the
            # unit's name when it exits before journald reads its cgroup.
            wait_for(lambda: any("new configuration has errors" in m for m in c.messages("alcoded.service")),
                     timeout=20, what="the refusal in the journal")
        except TimeoutError:
            raise AssertionError("no refusal in the journal:\n" + "\n".join(
                repr(m.get("MESSAGE"))[:300] for m in c.journal("alcoded.service")[-15:]))
        self.assertEqual(c.user("systemctl", "--user", "is-active", "alcoded", check=False).stdout.strip(), "active")
        c.write(HOME + "/.config/alcode/alcode.conf", good, mode=0o600)
        c.user("systemctl", "--user", "reload", "alcoded")

        # The keyring opens: the account recovers by itself, within its backoff (2, 4, 8 s...).
        os.unlink(c.path(HOME + "/locked"))
        t0 = time.monotonic()
        wait_for(lambda: self.prop("StatusText") == "perso: watching", timeout=40, what="the account to recover")
        recovered = time.monotonic() - t0
        self.assertLess(recovered, 35)
        self.assertEqual(c.user("alcode", "latest", check=False).returncode, 0)

        # No notification server yet: the backfill notification waits for one, then shows.
        self.assertEqual(self.notes(), [])
        c.user("systemd-run", "--user", "--unit=notes", "--collect", "/usr/bin/python3", "/usr/local/bin/notifyserver",
               HOME + "/notes.jsonl")
        wait_for(lambda: len(self.notes()) >= 2, timeout=15, what="the held notifications")
        trouble, n = self.notes()[:2]
        # The refused reload's, then the backfill's, in the order they were made.
        self.assertEqual(trouble["summary"], "alcode: the new configuration has errors")
        self.assertEqual(trouble["hints"]["category"], "x-alcode.config.error")
        self.assertEqual(n["summary"], "Action Logement: 3 codes found")
        self.assertEqual(n["hints"]["category"], "email.arrived")
        latest = c.user("alcode", "latest").stdout.strip()
        first = n["body"].splitlines()[0]
        self.assertEqual(first.split(": ", 1)[1].replace(" ", ""), latest)
        self.assertIn("copy", n["actions"])

        # The desktop starts after alcoded, and exports its DISPLAY to the user manager. An X
        # server with no abstract socket: only /tmp/.X11-unix/Xn, which the sandbox must show.
        display = ":%d" % (40 + os.getpid() % 50)
        c.user("systemd-run", "--user", "--unit=xvfb", "--collect", "Xvfb", display, "-nolisten", "tcp",
               "-nolisten", "local", "-screen", "0", "640x480x24")
        # (nspawn gives the container a /tmp of its own: look from inside.)
        wait_for(lambda: c.run("test", "-S", "/tmp/.X11-unix/X" + display[1:], check=False).returncode == 0,
                 what="Xvfb")
        c.user("systemctl", "--user", "import-environment", "DISPLAY", env={"DISPLAY": display})
        c.user("busctl", "--user", "call", "org.freedesktop.Notifications", "/org/freedesktop/Notifications",
               "io.github.alcode.Test", "Invoke", "us", str(n["id"]), "copy")
        wait_for(lambda: any(m.startswith(("Copied a code", "Cannot copy")) for m in c.messages("alcoded.service")),
                 timeout=15, what="the copy")
        self.assertIn("Copied a code to the clipboard with xclip.", c.messages("alcoded.service"))
        got = c.user("xclip", "-o", "-selection", "clipboard", env={"DISPLAY": display}, timeout=10).stdout
        self.assertEqual(got, latest)

        self.check_sandbox(display)

        # One CODE_FILE= per record: journalctl shows a field given twice as a list.
        records = c.journal("alcoded.service")
        self.assertTrue(records)
        for rec in records:
            for k in ("CODE_FILE", "CODE_LINE", "CODE_FUNC", "MESSAGE"):
                self.assertNotIsInstance(rec.get(k), list, rec)

        # Stop after a Copy: within a second, Result=success, exit status 0.
        t0 = time.monotonic()
        c.user("systemctl", "--user", "stop", "alcoded")
        took = time.monotonic() - t0
        self.assertLess(took, 1.0)
        self.assertEqual(self.prop("Result"), "success")
        self.assertEqual(self.prop("ExecMainStatus"), "0")
        print("\n  recovered %.1f s after the keyring opened; stop took %.2f s" % (recovered, took))

    def check_sandbox(self, display):
        """Runs a probe in alcoded.service's own sandbox (its [Service] lines, given to a
        transient unit of the same manager) and checks what it could write and see."""
        c = self.c
        props = []
        with open(c.path("/usr/lib/systemd/user/alcoded.service")) as f:
            section = None
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line
                    continue
                if section != "[Service]" or not line or line.startswith("#") or "=" not in line:
                    continue
                key = line.split("=", 1)[0]
                if key.startswith(("Exec", "Restart", "Watchdog", "Timeout", "Type")):
                    continue
                props += ["-p", line.replace("%h", HOME)]
        # A file in the user's real /tmp: a private /tmp must not show it.
        c.user("touch", "/tmp/outside-probe")
        probe = r"""
t() { if "$@" 2>/dev/null; then echo "$1 $2 $3: yes"; else echo "$1 $2 $3: no"; fi; }
t touch $HOME/.local/share/alcode/probe
t touch $HOME/probe
t touch /run/user/%d/probe
t touch /tmp/probe
t test -e /tmp/outside-probe
t test -S /tmp/.X11-unix/X%s
t test -e /dev/kmsg
t test -e /dev/sda
t cat /proc/1/environ
t ls /proc/1/fd
""" % (UID, display[1:])
        r = c.user("systemd-run", "--user", "--wait", "--pipe", "--quiet", "--collect", *props, "/bin/sh", "-c", probe,
                   timeout=60)
        seen = {k.strip(): v for k, v in (l.rsplit(": ", 1) for l in r.stdout.splitlines() if ": " in l)}
        expect = {
            "touch %s/.local/share/alcode/probe" % HOME: "yes",   # its data folder
            "touch %s/probe" % HOME: "no",                         # ProtectHome=read-only
            "touch /run/user/%d/probe" % UID: "no",                # ProtectSystem=strict, the user's own dir
            "touch /tmp/probe": "yes",                             # PrivateTmp=: its own /tmp
            "test -e /tmp/outside-probe": "no",                    # ... not the user's
            "test -S /tmp/.X11-unix/X%s" % display[1:]: "yes",     # BindReadOnlyPaths=
            "test -e /dev/kmsg": "no",                             # PrivateDevices=
            "test -e /dev/sda": "no",
            "cat /proc/1/environ": "no",                           # PID 1 is root's
            "ls /proc/1/fd": "no",
        }
        for k, v in expect.items():
            self.assertEqual(seen.get(k.strip()), v, "%s\n%s%s" % (k, r.stdout, r.stderr))


class Messages(unittest.TestCase):
    """Two messages a user of the service met, checked without a container."""

    def setUp(self):
        self.t = TempDir()
        self.addCleanup(self.t.cleanup)
        self.alcode = Alcode(self.t)

    def test_unresolvable_host_is_not_connection_refused(self):
        # Names resolved from /etc/hosts only, in a mount namespace of its own: no DNS server is
        # asked, and this one is in no hosts file.
        require_tools("unshare", "mount")
        host = "nowhere.alcode-test.example"
        self.alcode.write_config("[account far]\nhost = %s\nport = 993\nuser = u\npassword = p\n" % host)
        nss = self.t.join("nsswitch.conf")
        with open(nss, "w") as f:
            f.write("hosts: files\n")
        script = 'mount --bind "$1" /etc/nsswitch.conf && shift && exec "$@"'
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", nss,
                            binary("alcoded"), "--once"], capture_output=True, text=True, env=self.alcode.env(),
                           timeout=60)
        if r.returncode != 1 and "mount" in r.stderr and not under_ci():
            self.skipTest("cannot mount here: " + r.stderr)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot resolve %s: " % host, r.stderr)
        self.assertNotIn("connection refused", r.stderr)

    def test_read_only_database_folder_names_the_drop_in(self):
        # What the unit's sandbox does to a `database =` outside ~/.local/share/alcode.
        require_tools("unshare", "mount")
        ro = self.t.join("elsewhere")
        os.makedirs(ro)
        self.alcode.write_config("[alcode]\ndatabase = %s/codes/alcode.db\n" % ro)
        script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", ro,
                            binary("alcoded"), "--once"], capture_output=True, text=True, env=self.alcode.env(),
                           timeout=60)
        if r.returncode != 1 and "mount" in r.stderr and not under_ci():
            self.skipTest("cannot mount here: " + r.stderr)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Read-only file system", r.stderr)
        self.assertIn("ReadWritePaths=-FOLDER", r.stderr)
        self.assertIn("systemctl --user edit alcoded", r.stderr)


if __name__ == "__main__":
    main()
