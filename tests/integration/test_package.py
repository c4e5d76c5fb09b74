"""The Debian package, as a user gets it: scripts/package builds alcode_VERSION_ARCH.deb
(lintian: no error), `apt install ./alcode_*.deb` puts it into a fresh minbase Debian 12
(debootstrap), and there `alcode --version`, `alcode scan` on a demo mail and
`systemd-analyze --user verify` on the installed unit work.

The minbase tree is made once with debootstrap from the mirror apt uses here and cached as a
tarball ($ALCODE_TEST_CACHE, else /var/cache/alcode-test for root, else
$XDG_CACHE_HOME/alcode-test); each run extracts a fresh copy. The first run downloads it (about
a minute), then a run takes well under one. apt inside the chroot reaches the same mirror; the
.debs it fetches are kept in the cache folder too. Needs root (chroot, mount), skips without
it except under CI=true."""

import contextlib
import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys
import unittest

from alcodetest import SOURCE_DIR, SKIP, TempDir, main, require_tools, under_ci

SUITE = "bookworm"
TARBALL = "debian12-minbase-v1.tar.zst"
DEMO_MAIL = os.path.join(SOURCE_DIR, "demo/mail/INBOX/001-alin-inscription.eml")


def project_version():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        return re.search(r"project\(alcode VERSION ([0-9.]+)", f.read()).group(1)


def cache_dir():
    if os.environ.get("ALCODE_TEST_CACHE"):
        return os.environ["ALCODE_TEST_CACHE"]
    if os.geteuid() == 0:
        return "/var/cache/alcode-test"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "alcode-test")


def apt_sources():
    """The Debian sources apt uses here: (deb822 text or one-line text, file name), and the
    mirror of the main archive for debootstrap."""
    mirror = "http://deb.debian.org/debian"
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            text = f.read()
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return mirror if not uris else uris.group(1), text, os.path.basename(path)
    if os.path.exists("/etc/apt/sources.list"):
        with open("/etc/apt/sources.list") as f:
            text = f.read()
        m = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", text, re.M)
        if m:
            return m.group(1), text, "sources.list"
    return mirror, "deb %s %s main\n" % (mirror, SUITE), "sources.list"


def run(argv, timeout=600, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(argv), p.returncode, p.stdout[-4000:],
                                                        p.stderr[-4000:]))
    return p


def minbase_tarball(mirror):
    """The cached minbase tree, made on first use (one maker at a time: a lock file)."""
    cache = cache_dir()
    os.makedirs(cache, exist_ok=True)
    tarball = os.path.join(cache, TARBALL)
    with open(os.path.join(cache, TARBALL + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(tarball):
            return tarball
        tmp = TempDir("alcode-debootstrap-")
        try:
            root = tmp.join("root")
            print("test_package: debootstrap --variant=minbase %s from %s (first run only)" % (SUITE, mirror),
                  file=sys.stderr)
            run(["debootstrap", "--variant=minbase", SUITE, root, mirror], timeout=1200)
            run(["tar", "-C", root, "--zstd", "-cf", tarball + ".part", "."])
            os.rename(tarball + ".part", tarball)
        finally:
            tmp.cleanup()
    return tarball


class Chroot:
    """A fresh minbase tree with /proc and the apt cache mounted; unmounted and removed at the end."""

    def __init__(self, tarball, sources, sources_name):
        self.tmp = TempDir("alcode-chroot-")
        self.root = self.tmp.join("root")
        self.mounts = []
        os.mkdir(self.root)
        run(["tar", "-C", self.root, "--zstd", "-xpf", tarball])
        shutil.copy("/etc/resolv.conf", os.path.join(self.root, "etc/resolv.conf"))
        with open(os.path.join(self.root, "etc/apt/sources.list"), "w") as f:
            f.write("" if sources_name != "sources.list" else sources)
        if sources_name != "sources.list":
            with open(os.path.join(self.root, "etc/apt/sources.list.d", sources_name), "w") as f:
                f.write(sources)
        self.mount(["-t", "proc", "proc"], "proc")
        archives = os.path.join(cache_dir(), "apt-archives")
        os.makedirs(os.path.join(archives, "partial"), exist_ok=True)
        self.mount(["--bind", archives], "var/cache/apt/archives")

    def mount(self, args, where):
        target = os.path.join(self.root, where)
        run(["mount"] + args + [target])
        self.mounts.append(target)

    def run(self, *argv, env=None, check=True, timeout=600):
        full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                    "DEBIAN_FRONTEND": "noninteractive"}
        full_env.update(env or {})
        argv = ["chroot", self.root, "env", "-i"] + ["%s=%s" % kv for kv in full_env.items()] + list(argv)
        if check:
            return run(argv, timeout=timeout)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def cleanup(self):
        for target in reversed(self.mounts):
            subprocess.run(["umount", "-l", target], capture_output=True)
        self.mounts = []
        self.tmp.cleanup()


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_tools("debootstrap", "dpkg-buildpackage", "dh", "lintian", "chroot", "zstd", "mount")
        if os.geteuid() != 0:
            if under_ci():
                raise RuntimeError("test_package needs root (chroot, mount) and CI must run it")
            print("SKIP: test_package needs root (chroot, mount)", file=sys.stderr)
            sys.exit(SKIP)
        cls.version = project_version()
        cls.out = TempDir("alcode-deb-")
        cls.build = run([os.path.join(SOURCE_DIR, "scripts/package"), "--no-lintian", "--output", cls.out.path],
                        cwd=SOURCE_DIR, timeout=900)
        debs = glob.glob(cls.out.join("alcode_*.deb"))
        assert len(debs) == 1, debs
        cls.deb = debs[0]
        mirror, sources, name = apt_sources()
        cls.chroot = Chroot(minbase_tarball(mirror), sources, name)

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "chroot"):
            cls.chroot.cleanup()
        if hasattr(cls, "out"):
            cls.out.cleanup()

    def test_1_name_and_lintian(self):
        self.assertEqual(os.path.basename(self.deb), "alcode_%s_amd64.deb" % self.version)
        p = subprocess.run(["lintian", "--fail-on", "error", self.deb], capture_output=True, text=True,
                           timeout=600)
        self.assertNotRegex(p.stdout, r"(?m)^E: ", p.stdout)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_2_install_and_run(self):
        c = self.chroot
        shutil.copy(self.deb, os.path.join(c.root, "tmp"))
        shutil.copy(DEMO_MAIL, os.path.join(c.root, "tmp/mail.eml"))
        c.run("apt-get", "update", "-qq")
        c.run("sh", "-c", "cd /tmp && apt install -y -q ./alcode_*.deb")

        # What the package put where a user and the system look for it.
        for path in ("usr/bin/alcode", "usr/bin/alcoded", "usr/libexec/alcode/alcode-full",
                     "usr/lib/systemd/user/alcoded.service", "usr/share/alcode/rules.d/specific.rules",
                     "usr/share/man/man1/alcode.1.gz", "usr/share/man/man8/alcoded.8.gz",
                     "usr/share/man/man5/alcode.conf.5.gz", "usr/share/man/man5/alcode.rules.5.gz",
                     "usr/share/bash-completion/completions/alcode", "usr/share/zsh/vendor-completions/_alcode",
                     "usr/share/locale/fr/LC_MESSAGES/alcode.mo", "usr/share/doc/alcode/alcode.conf.example",
                     "usr/share/doc/alcode/copyright"):
            self.assertTrue(os.path.exists(os.path.join(c.root, path)), path)

        # Installing does not start alcoded for every user: each one enables it (alcode init).
        self.assertEqual(glob.glob(os.path.join(c.root, "etc/systemd/user/*/alcoded.service")), [])

        self.assertEqual(c.run("alcode", "--version").stdout, "alcode %s\n" % self.version)
        # scan runs the full CLI from /usr/libexec and reads the rules from /usr/share/alcode.
        p = c.run("alcode", "scan", "/tmp/mail.eml")
        self.assertRegex(p.stdout, r"/tmp/mail\.eml: specific code +R7KD 2M9Q \(R7KD2M9Q\) +notifications@al-in\.fr")
        self.assertIn("1 code(s) found", p.stderr)
        p = c.run("alcoded", "--version")
        self.assertIn(self.version, p.stdout)

        # The unit as systemd reads it: systemd and man (for Documentation=) are not in minbase.
        c.run("apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd", "man-db")
        os.makedirs(os.path.join(c.root, "tmp/runtime"), mode=0o700)
        p = c.run("systemd-analyze", "--user", "verify", "/usr/lib/systemd/user/alcoded.service",
                  env={"XDG_RUNTIME_DIR": "/tmp/runtime"}, check=False)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))


if __name__ == "__main__":
    main()
