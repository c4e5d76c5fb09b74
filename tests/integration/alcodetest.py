"""Test harness for alcode's integration tests: real servers on loopback, started per test.

- Dovecot: a private IMAP server from a generated config (test CA + leaf for localhost and
  127.0.0.1, users in a passwd file, Maildir folders with special-use flags), on free ports.
- DBus: a private session bus (no service folders, so nothing is auto-launched).
- Notifications: Xvfb + dunst on that bus; `dunstctl history` reads back what was shown.
- Runners for the real `alcode` and `alcoded` binaries with an isolated HOME and XDG dirs.

Everything lives in a temporary folder removed at the end. Nothing here talks to the network
beyond 127.0.0.1. Tests skip (exit 77) when a tool is missing, except under CI=true, where a
missing tool is a failure.
"""

import contextlib
import email
import json
import os
import re
import pwd
import grp
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import imaplib
import unittest

BUILD_DIR = os.environ.get("ALCODE_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
# The project's own test mailboxes, written into the build tree by tests/tools/mkmail.py when the
# tests are built (tests/CMakeLists.txt): sample/ (train templates) and heldout/.
CORPUS_DIR = os.environ.get("ALCODE_CORPUS_DIR", os.path.join(BUILD_DIR, "corpus"))
RULES_DIR = os.path.join(SOURCE_DIR, "config/rules.d")
DEMO_MAIL_DIR = os.path.join(SOURCE_DIR, "demo/mail")
SKIP = 77


def under_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tools(*tools):
    """Skips the test run (exit 77) when a tool is missing; fails under CI."""
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        msg = "missing tools: " + ", ".join(missing)
        if under_ci():
            raise RuntimeError(msg + " (CI must install them: see .ci/run)")
        print("SKIP: " + msg, file=sys.stderr)
        sys.exit(SKIP)


def require_corpus(name="sample"):
    """The folder of a generated test mailbox (CORPUS_DIR/name, with its expected.json). It is
    part of the build: a missing one is an error, never a skip."""
    path = os.path.join(CORPUS_DIR, name)
    if not os.path.exists(os.path.join(path, "expected.json")):
        raise RuntimeError("no generated test mailbox at %s: build the tests first (cmake --build), "
                           "or write it with tests/tools/mkmail.py" % path)
    return path


def corpus_employer_domains(sample):
    """The employer domains of a generated mailbox, as alcode.conf's employer_domains value."""
    return ", ".join(load_expected(sample)["config"]["employer_domains"])


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, what="condition", interval=0.02):
    """Polls predicate until it returns a true value; raises on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(interval)


def binary(name):
    return os.path.join(os.path.abspath(BUILD_DIR), name)


class TempDir:
    def __init__(self, prefix="alcode-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o755)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def join(self, *parts):
        return os.path.join(self.path, *parts)


def make_ca(directory, hosts=("localhost",), ips=("127.0.0.1",), days=30, name="server",
            extra_ext=None, ca=None):
    """Creates (or reuses) a test CA and a leaf certificate signed by it.

    Returns (ca_pem, leaf_pem, leaf_key)."""
    if ca is None:
        ca_key = os.path.join(directory, "ca.key")
        ca_pem = os.path.join(directory, "ca.pem")
        if not os.path.exists(ca_pem):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
                            "-out", ca_pem, "-days", "30", "-subj", "/CN=alcode test CA",
                            "-addext", "basicConstraints=critical,CA:TRUE",
                            "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                           check=True, capture_output=True)
    else:
        ca_pem, ca_key = ca
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    pem = os.path.join(directory, name + ".pem")
    ext = os.path.join(directory, name + ".ext")
    san = ",".join(["DNS:" + h for h in hosts] + ["IP:" + i for i in ips])
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\n" % san)
        f.write(extra_ext if extra_ext is not None else "extendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=" + hosts[0]], check=True, capture_output=True)
    args = ["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
            "-out", pem, "-extfile", ext]
    if days < 0:
        # An expired certificate: valid from 3 days ago to 2 days ago.
        args += ["-not_before", time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() - 3 * 86400)),
                 "-not_after", time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() - 2 * 86400))]
    else:
        args += ["-days", str(days)]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0 and days < 0:
        # openssl 3.0 has no -not_before for x509 -req: sign with `openssl ca`-free trick via faketime is
        # not available, so fall back to a CA-signed cert through `openssl req -x509` with -days 0 is
        # impossible; the caller must skip.
        raise unittest.SkipTest("this openssl cannot make expired certificates")
    r.check_returncode()
    return ca_pem, pem, key


def self_signed(directory, name="selfsigned", host="localhost"):
    key = os.path.join(directory, name + ".key")
    pem = os.path.join(directory, name + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem,
                    "-days", "30", "-subj", "/CN=" + host,
                    "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % host],
                   check=True, capture_output=True)
    return pem, key


def cert_fingerprint(pem):
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-fingerprint", "-sha256"],
                         check=True, capture_output=True, text=True).stdout
    return "sha256:" + out.strip().split("=", 1)[1]


DOVECOT_CONF = """
instance_name = alcode-test-{port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 0
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_verbose = yes
auth_debug = no
mail_debug = no
verbose_proctitle = no
login_trusted_networks =
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={d}/home/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Junk {{
    special_use = \\Junk
    auto = create
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = create
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = no
  }}
}}
protocol imap {{
{imap_extra}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
{starttls_off}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


# dovecot 2.3's default capabilities after login, NOTIFY left out.
NO_NOTIFY = ("  imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
             "THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT "
             "CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
             "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE "
             "SAVEDATE LITERAL+ SPECIAL-USE\n")


class Dovecot:
    """A private dovecot: plain IMAP (with STARTTLS) on `port`, implicit TLS on `tls_port`."""

    def __init__(self, tmp, users=None, cert=None, starttls=True, ca_dir=None, imap_extra=""):
        """imap_extra: lines for dovecot's `protocol imap` block."""
        require_tools("dovecot", "doveadm", "openssl")
        self.imap_extra = imap_extra
        self.dir = os.path.join(tmp.path, "dovecot")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.tls_port = free_port()
        ca_dir = ca_dir or self.dir
        if cert is None:
            self.ca, cert_pem, key = make_ca(ca_dir)
        else:
            self.ca, cert_pem, key = cert
        self.cert = cert_pem
        self.key = key
        self.users = dict(users or {"alice": "secret1"})
        if os.geteuid() == 0:
            self.user, self.group = "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
            self.group = grp.getgrgid(os.getegid()).gr_name
        self.starttls = starttls
        self.proc = None
        self._write_config()

    def _write_config(self):
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            for u, p in self.users.items():
                f.write("%s:{PLAIN}%s\n" % (u, p))
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self._chown(os.path.join(self.dir, "home"))
        for u in self.users:
            self.maildir(u)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        # Without STARTTLS: dovecot offers it whenever ssl = yes; ssl = no on the plain listener is
        # not possible per listener, so a separate instance with ssl = no is used instead.
        text = DOVECOT_CONF.format(d=self.dir, port=self.port, tls_port=self.tls_port, user=self.user,
                                   group=self.group, cert=self.cert, key=self.key, starttls_off="",
                                   imap_extra=self.imap_extra)
        if not self.starttls:
            text = text.replace("ssl = yes\nssl_cert", "ssl = no\nssl_cert", 1)
            text = text.replace("    ssl = yes\n", "    ssl = no\n")
        with open(self.conf, "w") as f:
            f.write(text)

    def _chown(self, path):
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def maildir(self, user, folder=None):
        """Path of user's Maildir (or of one folder in it), created."""
        home = os.path.join(self.dir, "home", user)
        base = os.path.join(home, "Maildir")
        path = base if not folder or folder == "INBOX" else os.path.join(base, "." + folder.replace("/", "."))
        for p in (home, base, path):
            os.makedirs(p, exist_ok=True)
            self._chown(p)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
            self._chown(os.path.join(path, sub))
        return path

    def deliver(self, user, folder, raw, name=None, seen=False):
        """Writes one message into a folder the way an MDA does (tmp/ then rename into new/)."""
        path = self.maildir(user, folder)
        self._seq = getattr(self, "_seq", 0) + 1
        base = name or "%d.%d_%d.alcode-test" % (int(time.time()), os.getpid(), self._seq)
        tmp = os.path.join(path, "tmp", base)
        with open(tmp, "wb") as f:
            f.write(raw)
        self._chown(tmp)
        if seen:
            dest = os.path.join(path, "cur", base + ":2,S")
        else:
            dest = os.path.join(path, "new", base)
        os.rename(tmp, dest)
        return dest

    def load_tree(self, user, tree, folder_map=None):
        """Loads a folder tree of .eml files: tree/<folder>/<file>.eml → IMAP folder.

        folder_map maps a relative folder ("perso/Spam") to an IMAP folder name ("Junk")."""
        count = 0
        for root, dirs, files in os.walk(tree):
            dirs.sort()
            rel = os.path.relpath(root, tree)
            if rel == ".":
                continue
            target = (folder_map or {}).get(rel, rel)
            for name in sorted(files):
                if not name.endswith(".eml"):
                    continue
                with open(os.path.join(root, name), "rb") as f:
                    self.deliver(user, target, f.read(), name=name.replace(".eml", "") + ".%d" % count)
                count += 1
        return count

    def start(self):
        subprocess.run(["dovecot", "-c", self.conf, "-n"], check=True, capture_output=True)
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self._greets, timeout=15, what="dovecot's greeting")
        return self

    def _greets(self):
        if self.proc.poll() is not None:
            raise RuntimeError("dovecot exited: " + self.log())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                return s.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Children (imap, auth) die with the master; make sure nothing stays on our ports.
        subprocess.run(["pkill", "-KILL", "-f", "alcode-test-%d" % self.port], capture_output=True)

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def imap(self, user="alice", tls=True):
        """A Python imaplib client (for appending and checking flags in tests)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        if tls:
            c = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=ctx)
        else:
            c = imaplib.IMAP4("127.0.0.1", self.port)
        c.login(user, self.users[user])
        return c

    def append(self, user, folder, raw, flags=""):
        c = self.imap(user)
        try:
            c.append('"%s"' % folder, flags or None, None, raw)
        finally:
            c.logout()

    def save(self, user, folder, raw):
        """Stores a message through dovecot's own storage (doveadm save): as a delivery would, it is
        seen by NOTIFY, and it needs no IMAP connection (for tests that limit them)."""
        subprocess.run(["doveadm", "-c", self.conf, "save", "-u", user, "-m", folder], input=raw, check=True,
                       capture_output=True, timeout=30)

    def all_flags(self, user="alice"):
        """{(folder, uid): flags} for every message: to prove a scan changed nothing."""
        out = subprocess.run(["doveadm", "-c", self.conf, "fetch", "-u", user, "mailbox uid flags", "all"],
                             check=True, capture_output=True, text=True).stdout
        result = {}
        cur = {}
        # Records are separated by form feeds (which str.splitlines() would also split at).
        for line in out.split("\n") + ["\f"]:
            if line.startswith("\f"):
                if cur:
                    # \Recent belongs to the session that saw the message first, not to the message.
                    flags = sorted(f for f in cur.get("flags", "").split() if f != "\\Recent")
                    result[(cur.get("mailbox"), cur.get("uid"))] = " ".join(flags)
                cur = {}
                continue
            if ":" in line:
                k, v = line.split(":", 1)
                cur[k.strip()] = v.strip()
        return result

    def account_config(self, name="test", user="alice", tls="implicit", extra=""):
        port = self.tls_port if tls == "implicit" else self.port
        return ("[account %s]\nhost = 127.0.0.1\nport = %d\ntls = %s\nuser = %s\npassword = %s\n"
                "ca_file = %s\n%s") % (name, port, tls, user, self.users[user], self.ca, extra)


class DBusSession:
    """A private session bus on a socket in the temp dir, with no service folders."""

    def __init__(self, tmp):
        require_tools("dbus-daemon")
        self.dir = os.path.join(tmp.path, "dbus")
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "bus")
        conf = os.path.join(self.dir, "session.conf")
        with open(conf, "w") as f:
            f.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""" % self.socket)
        self.address = "unix:path=" + self.socket
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--nopidfile"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(self.socket), what="the session bus socket")

    def env(self):
        return {"DBUS_SESSION_BUS_ADDRESS": self.address}

    def has_owner(self, name):
        """Whether a client owns name (NameHasOwner: unlike `busctl status`, needs no
        credentials of the owner, which a container without cgroups cannot give)."""
        r = subprocess.run(["busctl", "--address=" + self.address, "call", "org.freedesktop.DBus",
                            "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", "s", name],
                           capture_output=True, text=True)
        return r.returncode == 0 and r.stdout.strip() == "b true"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)


class Notifications:
    """Xvfb + dunst on a DBusSession; history() returns what dunst showed."""

    def __init__(self, tmp, bus):
        require_tools("Xvfb", "dunst", "dunstctl", "busctl")
        self.bus = bus
        self.display = ":%d" % (100 + os.getpid() % 800)
        self.xvfb = subprocess.Popen(["Xvfb", self.display, "-nolisten", "tcp", "-screen", "0", "800x600x24"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists("/tmp/.X11-unix/X" + self.display[1:]), what="Xvfb")
        conf = os.path.join(tmp.path, "dunstrc")
        with open(conf, "w") as f:
            f.write("[global]\n    markup = full\n    show_age_threshold = -1\n")
        env = dict(os.environ, DISPLAY=self.display, **bus.env())
        env.pop("WAYLAND_DISPLAY", None)
        self.dunst = subprocess.Popen(["dunst", "-config", conf], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        wait_for(self._owned, what="dunst on the bus")

    def _owned(self):
        return self.bus.has_owner("org.freedesktop.Notifications")

    def history(self):
        env = dict(os.environ, **self.bus.env())
        out = subprocess.run(["dunstctl", "history"], env=env, capture_output=True, text=True).stdout
        if not out.strip():
            return []
        data = json.loads(out)["data"][0]
        return [{k: v.get("data") for k, v in n.items()} for n in data]

    def stop(self):
        for p in (self.dunst, self.xvfb):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()


class Alcode:
    """Runs the real alcode / alcoded with an isolated HOME and XDG folders."""

    def __init__(self, tmp, bus=None):
        self.tmp = tmp
        self.home = tmp.join("home")
        os.makedirs(self.home, exist_ok=True)
        self.config_dir = os.path.join(self.home, ".config", "alcode")
        os.makedirs(self.config_dir, exist_ok=True)
        self.config = os.path.join(self.config_dir, "alcode.conf")
        self.db = os.path.join(self.home, ".local", "share", "alcode", "alcode.db")
        self.bus = bus

    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("XDG_", "DBUS_", "NOTIFY_", "WATCHDOG_", "JOURNAL_", "LANG", "LC_"))}
        env.update(HOME=self.home, XDG_CONFIG_HOME=os.path.join(self.home, ".config"),
                   XDG_DATA_HOME=os.path.join(self.home, ".local", "share"),
                   XDG_RUNTIME_DIR=self.tmp.join("runtime"), LANG="C.UTF-8", NO_COLOR="1")
        os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
        # The translations of the build tree (used when a test sets LANG to a translated language).
        env["ALCODE_LOCALE_DIR"] = build_locale_dir()
        if self.bus:
            env.update(self.bus.env())
        else:
            # No session bus: point at a socket that does not exist.
            env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=" + self.tmp.join("no-bus")
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.update(extra or {})
        return env

    def write_config(self, text, mode=0o600, rules=True):
        head = "[alcode]\n"
        if rules:
            head += "rules = %s\n" % RULES_DIR
        if not text.lstrip().startswith("[alcode]"):
            text = head + text
        elif rules:
            text = text.replace("[alcode]\n", head, 1)
        with open(self.config, "w") as f:
            f.write(text)
        os.chmod(self.config, mode)

    def run(self, *args, check=True, env=None, timeout=120, input=None):
        r = subprocess.run([binary("alcode")] + list(args), capture_output=True, text=True,
                           env=self.env(env), timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise AssertionError("alcode %s exited %d\nstdout:\n%s\nstderr:\n%s"
                                 % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def daemon(self, *args, timeout=300, env=None, check=True):
        """Runs alcoded to completion (use with --once)."""
        r = subprocess.run([binary("alcoded")] + list(args), capture_output=True, text=True,
                           env=self.env(env), timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("alcoded %s exited %d\nstderr:\n%s" % (" ".join(args), r.returncode, r.stderr))
        return r

    def spawn_daemon(self, *args, env=None):
        """Starts alcoded in the background; returns the Popen (stderr captured to a file)."""
        log = open(self.tmp.join("alcoded-%d.log" % time.monotonic_ns()), "w+")
        p = subprocess.Popen([binary("alcoded")] + list(args), stdout=log, stderr=subprocess.STDOUT,
                             env=self.env(env), text=True)
        p.logfile = log
        return p

    def terminal(self, *args, env=None, timeout=30):
        """Runs alcode on a pseudo-terminal (see Terminal)."""
        return Terminal([binary("alcode")] + list(args), self.env(env), timeout=timeout)

    def list_json(self):
        r = self.run("list", "--json")
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def sql(self, query):
        with contextlib.closing(sqlite3.connect("file:%s?mode=ro" % self.db, uri=True)) as c:
            return c.execute(query).fetchall()


def read_log(p):
    p.logfile.flush()
    p.logfile.seek(0)
    return p.logfile.read()


def load_expected(sample_dir):
    with open(os.path.join(sample_dir, "expected.json")) as f:
        return json.load(f)


def main():
    """unittest.main() that turns a whole-file SkipTest into exit code 77 on a developer's machine.

    Under CI=true no test may skip, not even one method of a file: a skip there is a failure."""
    prog = unittest.main(exit=False, verbosity=2)
    res = prog.result
    if under_ci() and res.skipped:
        for test, why in res.skipped:
            print("FAIL (CI forbids skipping): %s: %s" % (test.id(), why), file=sys.stderr)
        sys.exit(1)
    if res.skipped:
        # ctest shows a file as "Passed" unless it exits 77: say which methods did not run.
        for test, why in res.skipped:
            print("SKIPPED: %s: %s" % (test.id(), why), file=sys.stderr)
        print("SKIPPED: %d of %d tests in %s did not run (CI=true would fail them)"
              % (len(res.skipped), res.testsRun, os.path.basename(sys.argv[0])), file=sys.stderr)
    if res.wasSuccessful() and res.testsRun > 0 and len(res.skipped) == res.testsRun:
        sys.exit(SKIP)
    sys.exit(0 if res.wasSuccessful() else 1)


# ---- Daemon helpers: sd_notify, bus monitoring, code mails, a stalled server ----

class NotifySocket:
    """A NOTIFY_SOCKET that collects what sd_notify() sends (READY=1, STATUS=, WATCHDOG=1…)."""

    def __init__(self, tmp, name="notify.sock"):
        import threading
        self.path = tmp.join(name)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def env(self, watchdog_usec=None):
        env = {"NOTIFY_SOCKET": self.path}
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def fields(self):
        """Every KEY=VALUE line received, in order, as (key, value)."""
        with self._lock:
            msgs = list(self.messages)
        out = []
        for _, m in msgs:
            for line in m.split("\n"):
                if "=" in line:
                    out.append(tuple(line.split("=", 1)))
        return out

    def values(self, key):
        return [v for k, v in self.fields() if k == key]

    def wait(self, key, value=None, timeout=15, since=0):
        """Waits for KEY=VALUE (any value when None; value may be a callable) after `since` fields."""
        def seen():
            for k, v in self.fields()[since:]:
                if k == key and (value is None or (value(v) if callable(value) else v == value)):
                    return v
            return None
        return wait_for(seen, timeout=timeout, what="%s=%s on NOTIFY_SOCKET" % (key, value or "…"))

    def close(self):
        self.sock.close()


class BusMonitor:
    """`busctl monitor --json=short` on a DBusSession: every message on the bus, parsed."""

    def __init__(self, bus):
        import threading
        require_tools("busctl")
        self.bus = bus
        self.messages = []
        self._lock = threading.Lock()
        self._start()
        # Ready once our own probe signal comes back. A monitor that died, or has not seen a probe
        # in 10 s (a monitor that never saw one was seen, rarely, under load), is started again.
        started = [time.monotonic()]

        def probed():
            if self.proc.poll() is not None or time.monotonic() - started[0] > 10:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()
                self._start()
                started[0] = time.monotonic()
            subprocess.run(["busctl", "--address=" + bus.address, "emit", "/io/github/alcode/Test",
                            "io.github.alcode.Test", "Probe"], capture_output=True)
            return self.find(member="Probe")
        # Generous: busctl starting and subscribing takes seconds on a loaded 2-core machine.
        wait_for(probed, timeout=60, what="the bus monitor", interval=0.05)

    def _start(self):
        import threading
        self.proc = subprocess.Popen(["busctl", "--address=" + self.bus.address, "monitor", "--json=short"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     errors="replace")
        self._thread = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._thread.start()

    def _read(self, proc):
        for line in proc.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.messages.append(m)

    def find(self, type=None, member=None, interface=None):
        with self._lock:
            msgs = list(self.messages)
        return [m for m in msgs if (type is None or m.get("type") == type)
                and (member is None or m.get("member") == member)
                and (interface is None or m.get("interface") == interface)]

    def notify_calls(self):
        """Notify calls as dicts: app, replaces, icon, summary, body, actions {key: label}, hints, timeout, time."""
        out = []
        for m in self.find(type="method_call", member="Notify", interface="org.freedesktop.Notifications"):
            app, replaces, icon, summary, body, actions, hints, timeout = m["payload"]["data"]
            out.append({"app": app, "replaces": replaces, "icon": icon, "summary": summary, "body": body,
                        "actions": dict(zip(actions[::2], actions[1::2])),
                        "hints": {k: v["data"] for k, v in hints.items()}, "timeout": timeout,
                        "time": m.get("timestamp-realtime", 0) / 1e6})
        return out

    def signals(self, member, interface=None):
        return [m["payload"]["data"] for m in self.find(type="signal", member=member, interface=interface)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        self.proc.stdout.close()


class DaemonTestCase(unittest.TestCase):
    """The setup every test of alcoded repeats. For the class: one private dovecot (cls.dovecot,
    in cls.tmp) with the users USERS {name: password}, its mailboxes filled by fill() before it
    starts. For each test: a temp dir (self.t), a private session bus (self.bus), a NOTIFY_SOCKET
    (self.notify) and the CLI on that bus (self.alcode). Everything goes away at the end."""

    USERS = {}

    @classmethod
    def fill(cls):
        """Delivers the class's mail (cls.dovecot.deliver) before dovecot starts."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.dovecot = Dovecot(cls.tmp, users=cls.USERS)
        cls.fill()
        cls.dovecot.start()
        cls.addClassCleanup(cls.dovecot.stop)

    def setUp(self):
        self.t = TempDir()
        self.addCleanup(self.t.cleanup)
        self.bus = DBusSession(self.t)
        self.addCleanup(self.bus.stop)
        self.notify = NotifySocket(self.t)
        self.addCleanup(self.notify.close)
        self.alcode = Alcode(self.t, bus=self.bus)


def busctl(bus, *args, check=True):
    """busctl --address=BUS ARGS --json=short; returns the parsed JSON (or None)."""
    r = subprocess.run(["busctl", "--address=" + bus.address, "--json=short"] + list(args),
                       capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError("busctl %s: %s" % (" ".join(args), r.stderr))
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else r


def code_mail(code, sender="notifications@al-in.fr", name="AL'in", msgid=None, date=None,
              auth_domain="al-in.fr"):
    """An AL'in "code spécifique" mail (text/plain, UTF-8) carrying `code` as written."""
    import email.utils
    msgid = msgid or "<%s.%d@%s>" % (code.replace(" ", ""), time.monotonic_ns(), sender.split("@")[1])
    date = date or email.utils.formatdate(localtime=True)
    auth = ("Authentication-Results: mx.test.example; dkim=pass header.d=%s; dmarc=pass header.from=%s\r\n"
            % (auth_domain, auth_domain)) if auth_domain else ""
    return ("From: %s <%s>\r\nTo: camille@test.example\r\nSubject: =?utf-8?q?Votre_code_sp=C3=A9cifique_AL=27in?=\r\n"
            "Date: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n%s"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Bonjour Camille,\r\n\r\nVotre inscription sur AL'in est validée.\r\n"
            "Votre code spécifique : %s\r\n\r\nL'équipe AL'in - Action Logement\r\n"
            % (name, sender, date, msgid, auth, code)).encode("utf-8")


def random_codes(n, seed=1):
    """n distinct code values as written ("AB12 CD34"), each with letters and digits."""
    import random
    rnd = random.Random(seed)
    letters, digits = "ABCDEFGHJKLMNPQRSTUVWXYZ", "23456789"
    out = set()
    while len(out) < n:
        chars = [rnd.choice(letters), rnd.choice(digits), rnd.choice(letters), rnd.choice(digits)]
        chars += [rnd.choice(letters + digits) for _ in range(4)]
        out.add("".join(chars[:4]) + " " + "".join(chars[4:]))
    return sorted(out)


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word: a stalled IMAP server."""

    def __init__(self):
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def stop(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def start_daemon(test, alcode, *args, notify=None, env=None, watchdog_usec=None):
    """Starts alcoded (stopped with SIGKILL at cleanup if still running) and waits for READY=1
    when notify (a NotifySocket) is given. Returns the Popen."""
    extra = dict(env or {})
    if notify:
        extra.update(notify.env(watchdog_usec))
    p = alcode.spawn_daemon(*args, env=extra)

    def cleanup():
        if p.poll() is None:
            p.kill()
            p.wait()
        p.logfile.close()
    test.addCleanup(cleanup)
    if notify:
        def ready():
            if p.poll() is not None:
                raise AssertionError("alcoded exited %d before READY=1:\n%s" % (p.returncode, read_log(p)))
            return "1" in notify.values("READY")
        try:
            wait_for(ready, timeout=30, what="READY=1")
        except TimeoutError:
            raise AssertionError("no READY=1; alcoded said:\n" + read_log(p))
    return p


def stop_daemon(p, sig=signal.SIGTERM, timeout=10):
    """Sends sig and waits; returns (exit code, seconds it took)."""
    t0 = time.monotonic()
    p.send_signal(sig)
    code = p.wait(timeout=timeout)
    return code, time.monotonic() - t0


def build_locale_dir():
    """The catalogs built from po/ (build/locale), for $ALCODE_LOCALE_DIR."""
    return os.path.join(os.path.abspath(BUILD_DIR), "locale")


def french_env():
    """Environment for a French user: LANG=fr_FR.UTF-8, the translations of the build tree.

    When the system has no fr_FR.UTF-8 locale (`locale -a`), it is compiled once with localedef
    (package `locales`) into the build tree and found through $LOCPATH: no root needed."""
    env = {"LANG": "fr_FR.UTF-8", "ALCODE_LOCALE_DIR": build_locale_dir()}
    have = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
    if any(l.lower().replace("-", "") in ("fr_fr.utf8",) for l in have):
        return env
    require_tools("localedef")
    base = os.path.join(os.path.abspath(BUILD_DIR), "test-locale")
    target = os.path.join(base, "fr_FR.UTF-8")
    if not os.path.exists(os.path.join(target, "LC_MESSAGES")):
        os.makedirs(base, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=base)
        # localedef exits 1 on mere warnings: judge by what it wrote.
        r = subprocess.run(["localedef", "-i", "fr_FR", "-f", "UTF-8", os.path.join(tmp, "fr_FR.UTF-8")],
                           capture_output=True, text=True)
        if not os.path.exists(os.path.join(tmp, "fr_FR.UTF-8", "LC_MESSAGES")):
            raise RuntimeError("localedef could not build fr_FR.UTF-8 (package locales): " + r.stderr)
        try:
            os.rename(os.path.join(tmp, "fr_FR.UTF-8"), target)
        except OSError:
            pass  # another test built it at the same time
        shutil.rmtree(tmp, ignore_errors=True)
    env["LOCPATH"] = base
    # glibc keeps what it builds from $LOCPATH without freeing it: not ours to report.
    env["LSAN_OPTIONS"] = "suppressions=" + os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                        "lsan-locpath.supp")
    return env


class Terminal:
    """A program on a pseudo-terminal, driven as a person would: expect() what it shows, then
    type() the answer. The transcript keeps everything the terminal displayed (with echo)."""

    def __init__(self, argv, env, timeout=30):
        import pty
        import termios
        import fcntl
        self.master, slave = pty.openpty()
        self.timeout = timeout
        self.transcript = ""
        self.pos = 0

        def make_controlling():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, preexec_fn=make_controlling, close_fds=True)
        os.close(slave)

    def _read(self, wait):
        import select
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the program closed the terminal
            data = b""
        if not data:
            return None
        self.transcript += data.decode("utf-8", errors="replace").replace("\r\n", "\n")
        return True

    def expect(self, text, timeout=None):
        """Waits until text (a substring) appears after what was already matched; returns the
        output up to and including it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.transcript.find(text, self.pos)
            if i >= 0:
                out = self.transcript[self.pos:i + len(text)]
                self.pos = i + len(text)
                return out
            left = deadline - time.monotonic()
            if left <= 0 or self._read(min(left, 0.5)) is None and self.proc.poll() is not None:
                raise AssertionError("timed out waiting for %r; the terminal shows:\n%s"
                                     % (text, self.transcript[self.pos:]))

    def type(self, line):
        os.write(self.master, (line + "\n").encode())

    def wait(self, timeout=None):
        """Waits for the program to end, reading what is left; returns its exit status."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while self.proc.poll() is None or self._read(0) is True:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError("the program did not end; the terminal shows:\n" + self.transcript)
            self._read(0.1)
        os.close(self.master)
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass


# ---- A private journal ----

_JOURNAL_LISTENER = r'''
import array, json, os, socket, struct, subprocess, sys, threading
out, argv = sys.argv[1], sys.argv[2:]
os.makedirs("/run/systemd/journal", exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/run/systemd/journal/socket")
records = []

def parse(data):
    rec, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:  # binary-safe form: KEY\n<le64 size><bytes>\n
            k = line
            n = struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        k = k.decode()
        if k in rec:  # a field sent twice: kept apart so that tests see it
            rec.setdefault("_REPEATED", []).append(k)
        rec[k] = v.decode("utf-8", "replace")
    return rec

def read():
    while True:
        fds = array.array("i")
        try:
            data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(4 * fds.itemsize))
        except OSError:
            return
        for level, type, payload in anc:
            if level == socket.SOL_SOCKET and type == socket.SCM_RIGHTS:
                fd = struct.unpack("i", payload[:4])[0]
                data = os.pread(fd, 1 << 24, 0)
                os.close(fd)
        if data == b"END":
            return
        records.append(parse(data))

t = threading.Thread(target=read)
t.start()
with open(out + ".stderr", "w+") as err:
    st = os.fstat(err.fileno())
    env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    rc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=err, env=env).returncode
    err.seek(0)
    stderr = err.read()
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.sendto(b"END", "/run/systemd/journal/socket")
t.join()
with open(out, "w") as f:
    json.dump({"rc": rc, "records": records, "stderr": stderr}, f)
'''


def run_with_private_journal(test, tmp, argv, env, timeout):
    """Runs argv as systemd would (stderr is a journal stream) with sd_journal_send() reaching a
    listener of ours instead of journald; returns {"rc", "records" (dicts of fields), "stderr"}.

    sd-journal writes to the fixed /run/systemd/journal/socket: the listener binds it in a mount
    namespace of its own (unshare), or, where namespaces are refused (a chroot, some containers),
    as root directly on a machine without journald, one test at a time. Else the test skips (a
    failure under CI)."""
    import fcntl
    listener = os.path.join(tmp.path, "journal-listener.py")
    with open(listener, "w") as f:
        f.write(_JOURNAL_LISTENER)
    out = os.path.join(tmp.path, "journal.json")
    run = ["/usr/bin/python3", listener, out] + list(argv)
    why = ""
    unshare = shutil.which("unshare")
    if unshare:
        target = "/run/systemd" if os.path.isdir("/run/systemd") else "/run"
        ns = [unshare, "--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            ns.insert(1, "--map-root-user")
        script = 'mount -t tmpfs tmpfs "$1" && shift && exec "$@"'
        r = subprocess.run(ns + ["sh", "-c", script, "sh", target] + run, env=env, capture_output=True, text=True,
                           timeout=timeout)
        if os.path.exists(out):
            with open(out) as f:
                return json.load(f)
        why = r.stderr.strip()
    else:
        why = "no unshare (util-linux)"
    socket_path = "/run/systemd/journal/socket"
    if os.geteuid() == 0 and not os.path.exists(socket_path):
        with open("/run/alcode-test-journal.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            made = [d for d in ("/run/systemd", "/run/systemd/journal") if not os.path.isdir(d)]
            try:
                subprocess.run(run, env=env, capture_output=True, text=True, timeout=timeout)
            finally:
                if os.path.exists(socket_path):
                    os.unlink(socket_path)
                for d in reversed(made):
                    os.rmdir(d)
        if os.path.exists(out):
            with open(out) as f:
                return json.load(f)
        why += "; and the journal socket could not be bound directly"
    test.skipTest("cannot give the program a private journal here: " + why)


class LoopbackServer:
    """A TCP server on 127.0.0.1 (a free port) serving each connection in a thread: the base of
    the tests' fake servers. Subclasses define serve(conn, n) (n counts connections from 1)."""

    def __init__(self):
        self.connections = 0
        self.lock = threading.Lock()
        self.clients = []
        self.stopped = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stopped = True
        self.sock.close()
        for c in self.clients:
            try:
                c.close()
            except OSError:
                pass

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                n = self.connections
            self.clients.append(c)
            threading.Thread(target=self.serve, args=(c, n), daemon=True).start()


def tcp_connections(pid, port):
    """The established TCP connections of process pid to port (its sockets' inodes in /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]$", target)
        if m:
            inodes.add(m.group(1))
    n = 0
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                n += 1
    return n
