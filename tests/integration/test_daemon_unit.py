"""The generated systemd user unit: `systemd-analyze verify` accepts it, its sandbox keeps the
exposure that `systemd-analyze security --offline` measures low, and it carries what the daemon
relies on (Type=notify, a watchdog, reload through Reload() so that a refused configuration
fails the reload) but never MemoryDenyWriteExecute=yes, which would break PCRE2's JIT, nor the
settings that do nothing in a user unit. The score counts lines, not what they do: what the
sandboxed daemon can see and write is checked under a real user manager by test_session.py."""

import os
import re
import subprocess
import unittest

from alcodetest import BUILD_DIR, TempDir, binary, main, require_tools

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

    def test_contents(self):
        keys = {}
        for line in self.text.splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                keys.setdefault(k, []).append(v)
        self.assertEqual(keys["Type"], ["notify"])
        self.assertEqual(keys["ExecReload"], ["busctl --user call io.github.alcode.Daemon1 /io/github/alcode/Daemon1 "
                                              "io.github.alcode.Daemon1 Reload"])
        # Started with the user manager (headless too), never stopped with the desktop.
        self.assertEqual(keys["WantedBy"], ["default.target"])
        self.assertEqual(keys["After"], ["graphical-session.target"])
        self.assertNotIn("PartOf", keys)
        # For system services only (systemd.exec(5)): in a user unit they only raise the score.
        # ProtectKernelLogs= fails the unit inside systemd-nspawn and adds nothing here.
        for k in ("ProtectProc", "ProcSubset", "ProtectKernelLogs"):
            self.assertNotIn(k, keys)
        self.assertEqual(keys["Restart"], ["on-failure"])
        self.assertTrue(keys["WatchdogSec"])
        self.assertNotIn("MemoryDenyWriteExecute", keys)
        self.assertEqual(keys["ReadWritePaths"], ["%h/.local/share/alcode"])
        self.assertEqual(keys["RestrictAddressFamilies"], ["AF_UNIX AF_INET AF_INET6"])
        for k in ("NoNewPrivileges", "PrivateTmp", "LockPersonality", "PrivateUsers"):
            self.assertEqual(keys[k], ["yes"], k)

    def test_security_exposure(self):
        r = self.analyze("security", "--offline=true", "--user", "--threshold=%d" % (MAX_EXPOSURE * 10),
                         self.unit)
        m = re.search(r"Overall exposure level for alcoded.service: (\d+\.\d+)", r.stdout + r.stderr)
        self.assertTrue(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    main()
