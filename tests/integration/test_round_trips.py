"""Round trips before the first code: the capabilities a server states in its greeting and in
its answer to LOGIN ("* OK [CAPABILITY ...]", as dovecot and Gmail do) are not asked for again.
Over a WAN each CAPABILITY is one more round trip before anything is read. A server that says
nothing after LOGIN is asked once (its list may change when logged in)."""

import unittest

from alcodetest import Alcode, TempDir, main
from fakeimap import FakeImap


class RoundTrips(unittest.TestCase):
    def run_once(self, login_caps):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        fake = FakeImap("ok")
        fake.login_caps = login_caps
        self.addCleanup(fake.stop)
        a = Alcode(tmp)
        a.write_config("[account f]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = u\npassword = p\n" % fake.port)
        r = a.daemon("--once")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([c[0] for c in a.sql("SELECT value FROM codes")], ["FA7K3Q9P"])
        return fake.commands

    def test_capabilities_from_greeting_and_login(self):
        commands = self.run_once(login_caps=True)
        self.assertEqual(commands.count("CAPABILITY"), 0, commands)
        self.assertEqual(commands[0], "LOGIN")

    def test_capabilities_asked_after_a_silent_login(self):
        commands = self.run_once(login_caps=False)
        self.assertEqual(commands[:2], ["LOGIN", "CAPABILITY"])
        self.assertEqual(commands.count("CAPABILITY"), 1, commands)


class PipelinedFirstLook(unittest.TestCase):
    """The first look reads every folder's likely code mail at once (each folder's EXAMINE, then
    its FETCH, all sent before any answer is read). A folder deleted since the look (its EXAMINE
    refused, then the FETCH after it) costs only that folder: the answers after it still go to
    their own folders, and the session goes on."""

    def test_refused_folder_between_others(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        fake = FakeImap("vanish")
        self.addCleanup(fake.stop)
        a = Alcode(tmp)
        a.write_config("[account f]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = u\npassword = p\n" % fake.port)
        r = a.daemon("--once", "-v")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([c[0] for c in a.sql("SELECT value FROM codes")], ["FA7K3Q9P"], r.stderr)
        # Keep's answer, after Gone's refusals, went to Keep: its code read in the first look.
        self.assertIn("folder 'Keep' UID 1: found 1 code(s)", r.stderr)
        self.assertIn("folder 'Keep': phase: read the folder's likely code mail (1 messages)", r.stderr)
        self.assertNotIn("folder 'Gone': phase: read the folder's likely code mail", r.stderr)
        self.assertIn("folder 'Gone': cannot open folder", r.stderr)
        self.assertNotIn("scan interrupted", r.stderr)
        # Looked at in the first look (scout), then read: INBOX and Keep (Gone refused).
        self.assertEqual(fake.examined[:5], ["INBOX", "Gone", "Keep", "INBOX", "Keep"], fake.examined)

if __name__ == "__main__":
    main()
