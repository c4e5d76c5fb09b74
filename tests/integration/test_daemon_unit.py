"""The generated systemd user unit, by what systemd and the daemon make of it rather than by its
lines: `systemd-analyze verify` accepts it; `systemd-analyze security --offline` finds its
sandbox (exposure low, and never MemoryDenyWriteExecute=, which would break PCRE2's JIT);
`systemctl --global enable` hooks it to default.target (it starts with the user manager, headless
too); its ExecStartPre= makes the data folder that ReadWritePaths= needs, its daemon says READY=1
(Type=notify), and its ExecReload= command, run against that daemon on a private bus, succeeds
for a good configuration and fails, saying why, for a refused one. Under a real user manager,
what the sandboxed daemon can see and write is checked by test_session.py."""

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import unittest

from alcodetest import (BUILD_DIR, Alcode, DBusSession, NotifySocket, TempDir, binary, main, read_log, require_tools,
                        start_daemon, stop_daemon, wait_for)

MAX_EXPOSURE = 2.5


class Unit(unittest.TestCase):
    def setUp(self):
        require_tools("systemd-analyze")
        self.t = TempDir()
        self.addCleanup(self.t.cleanup)
        with open(os.path.join(BUILD_DIR, "alcoded.service")) as f:
            self.text = f.read()
        # verify checks that ExecStart= exists: point it at the binary we built.
        self.unit = self.t.join("alcoded.service")
        with open(self.unit, "w") as f:
            f.write(re.sub(r"(?m)^ExecStart=.*$", "ExecStart=" + binary("alcoded"), self.text))
        runtime = self.t.join("runtime")
        os.makedirs(runtime, mode=0o700)
        self.env = dict(os.environ, XDG_RUNTIME_DIR=runtime, SYSTEMD_LOG_LEVEL="notice")

    def analyze(self, *args):
        return subprocess.run(["systemd-analyze"] + list(args), capture_output=True, text=True, env=self.env,
                              cwd=self.t.path, timeout=60)

    def test_verify(self):
        # --man=no: the man pages are checked by the docs, not here.
        r = self.analyze("verify", "--user", "--man=no", self.unit)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "")

    def keys(self):
        """The unit's settings, {key: [values]} (only to run its commands; the checks are below)."""
        keys = {}
        for line in self.text.splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                keys.setdefault(k, []).append(v)
        return keys

    def security(self):
        """systemd's reading of the sandbox: {setting: whether it is in effect}."""
        r = self.analyze("security", "--offline=true", "--user", "--json=short", self.unit)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return {c["name"]: c["set"] for c in json.loads(r.stdout)}

    def test_sandbox(self):
        checks = self.security()
        for setting in ("NoNewPrivileges=", "PrivateTmp=", "PrivateUsers=", "PrivateDevices=", "LockPersonality=",
                        "ProtectSystem=", "RestrictNamespaces=~user", "CapabilityBoundingSet=~CAP_SYS_ADMIN",
                        "RestrictAddressFamilies=~AF_PACKET", "RestrictAddressFamilies=~AF_NETLINK",
                        "SystemCallFilter=~@privileged"):
            self.assertTrue(checks[setting], setting)
        # PCRE2's JIT needs memory that is writable, then executable.
        self.assertFalse(checks["MemoryDenyWriteExecute="])

    def test_enable_starts_it_with_the_user_manager(self):
        require_tools("systemctl")
        root = self.t.join("root")
        units = os.path.join(root, "usr/lib/systemd/user")
        os.makedirs(units)
        shutil.copy(self.unit, units)
        r = subprocess.run(["systemctl", "--root=" + root, "--global", "enable", "alcoded.service"],
                           capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        wants = os.path.join(root, "etc/systemd/user/default.target.wants/alcoded.service")
        self.assertEqual(os.readlink(wants), "/usr/lib/systemd/user/alcoded.service")
        # Logging out of the desktop must not stop it: nothing ties it to the graphical session.
        self.assertNotIn("PartOf", self.keys())

    def test_start_and_reload_commands(self):
        require_tools("busctl")
        keys = self.keys()
        bus = DBusSession(self.t)
        self.addCleanup(bus.stop)
        notify = NotifySocket(self.t)
        self.addCleanup(notify.close)
        alcode = Alcode(self.t, bus=bus)
        # ExecStartPre= makes the folder that ReadWritePaths= opens (it must exist first).
        for pre in keys["ExecStartPre"]:
            argv = shlex.split(pre.lstrip("+-").replace("%h", alcode.home))
            subprocess.run(argv, check=True, timeout=30)
        writable = [w.replace("%h", alcode.home) for w in keys["ReadWritePaths"]]
        self.assertEqual(stat.S_IMODE(os.stat(writable[0]).st_mode), 0o700)
        # Type=notify: systemd waits for READY=1, which start_daemon() waits for too.
        self.assertEqual(keys["Type"], ["notify"])
        alcode.write_config("[alcode]\n")
        p = start_daemon(self, alcode, notify=notify)
        # The database it made is in a folder the sandbox lets it write.
        self.assertTrue(os.path.exists(alcode.db))
        self.assertTrue([w for w in writable if os.path.commonpath([w, alcode.db]) == w], writable)

        reload = shlex.split(keys["ExecReload"][0])
        r = subprocess.run(reload, capture_output=True, text=True, env=alcode.env(), timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        wait_for(lambda: "Reload requested over D-Bus" in read_log(p), what="the reload in the log")
        # A refused configuration fails the command, so `systemctl --user reload` fails and says why.
        alcode.write_config("[alcode]\nnotify = perhaps\n")
        r = subprocess.run(reload, capture_output=True, text=True, env=alcode.env(), timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("The new configuration was refused", r.stderr)
        self.assertIsNone(p.poll())
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))

    def test_security_exposure(self):
        r = self.analyze("security", "--offline=true", "--user", "--threshold=%d" % (MAX_EXPOSURE * 10),
                         self.unit)
        m = re.search(r"Overall exposure level for alcoded.service: (\d+\.\d+)", r.stdout + r.stderr)
        self.assertTrue(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    main()
