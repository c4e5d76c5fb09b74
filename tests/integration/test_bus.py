"""The daemon's D-Bus API (io.github.alcode.Daemon1) and the CLI verbs that use it: introspection,
Status, ListCodes, Rescan, properties and signals; `alcode status|rescan` exit 3 when no daemon
runs; a second daemon on the same bus refuses to start."""

import json

from alcodetest import (Alcode, BusMonitor, DaemonTestCase, busctl, code_mail, main, random_codes, read_log,
                        start_daemon, stop_daemon, wait_for)

NAME, PATH, IFACE = "io.github.alcode.Daemon1", "/io/github/alcode/Daemon1", "io.github.alcode.Daemon1"


class Bus(DaemonTestCase):
    USERS = {"ivy": "pw-ivy-5150"}

    @classmethod
    def fill(cls):
        cls.codes = random_codes(2, seed=3)
        cls.dovecot.deliver("ivy", "INBOX", code_mail(cls.codes[0]))
        cls.dovecot.deliver("ivy", "Junk", code_mail(cls.codes[1], sender="x@al-in.fr.example",
                                                       auth_domain=None))

    def setUp(self):
        super().setUp()
        self.alcode.write_config(self.dovecot.account_config("ivy", user="ivy"))

    def call(self, method, *args, check=True):
        return busctl(self.bus, "call", NAME, PATH, IFACE, method, *args, check=check)

    def test_api(self):
        monitor = BusMonitor(self.bus)
        self.addCleanup(monitor.stop)
        p = start_daemon(self, self.alcode, notify=self.notify)
        self.notify.wait("STATUS", "ivy: watching")

        xml = busctl(self.bus, "call", NAME, PATH, "org.freedesktop.DBus.Introspectable", "Introspect")["data"][0]
        for fragment in ('<interface name="io.github.alcode.Daemon1">',
                         '<method name="Status">', '<arg type="a(sssttx)" name="accounts" direction="out"/>',
                         '<method name="Rescan">', '<arg type="s" name="account" direction="in"/>',
                         '<method name="ListCodes">', '<arg type="a(xsssbx)" name="codes" direction="out"/>',
                         '<signal name="CodeFound">', '<arg type="x" name="id"/>',
                         '<signal name="AccountStateChanged">',
                         '<property name="Version" type="s" access="read">',
                         '<property name="Accounts" type="as" access="read">'):
            self.assertIn(fragment, xml)

        version = busctl(self.bus, "get-property", NAME, PATH, IFACE, "Version")["data"]
        self.assertEqual("alcoded " + version + "\n", self.alcode.daemon("--version").stdout)
        self.assertEqual(busctl(self.bus, "get-property", NAME, PATH, IFACE, "Accounts")["data"], ["ivy"])

        status = self.call("Status")["data"][0]
        self.assertEqual(len(status), 1)
        account, state, error, last_sync, messages, codes = status[0]
        self.assertEqual((account, state, error, messages, codes), ("ivy", "idle", "", 2, 2))
        self.assertGreater(last_sync, 1_700_000_000)

        listed = self.call("ListCodes", "s", "")["data"][0]
        by_value = {c[2]: c for c in listed}
        self.assertEqual(set(by_value), {c.replace(" ", "") for c in self.codes})
        trusted = by_value[self.codes[0].replace(" ", "")]
        self.assertEqual(trusted[1], "specific")
        self.assertEqual(trusted[3], "notifications@al-in.fr")
        self.assertTrue(trusted[4])
        self.assertFalse(by_value[self.codes[1].replace(" ", "")][4])
        self.assertEqual(len(self.call("ListCodes", "s", "specific")["data"][0]), 2)
        self.assertEqual(self.call("ListCodes", "s", "otp")["data"][0], [])
        bad = self.call("ListCodes", "s", "bogus", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("Unknown kind 'bogus'", bad.stderr)

        # CodeFound for each new code, with its id, kind, value and trust.
        found = {s[2]: s for s in monitor.signals("CodeFound", IFACE)}
        self.assertEqual(found[trusted[2]], [trusted[0], "specific", trusted[2], True])

        # Rescan: an unknown account is an error; a known one goes through the states again.
        bad = self.call("Rescan", "s", "nope", check=False)
        self.assertIn("No account named 'nope'", bad.stderr)
        r = self.alcode.run("rescan", "nope", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("No account named 'nope'", r.stderr)
        before = len(monitor.signals("AccountStateChanged", IFACE))
        r = self.alcode.run("rescan", "ivy")
        self.assertIn("ivy", r.stdout)
        wait_for(lambda: monitor.signals("AccountStateChanged", IFACE)[before:].count(["ivy", "idle"]),
                 what="the rescan to end")
        self.assertIn(["ivy", "scanning"], monitor.signals("AccountStateChanged", IFACE)[before:])
        self.assertEqual(self.call("Status")["data"][0][0][5], 2)  # nothing counted twice

        # The CLI shows the same.
        table = self.alcode.run("status").stdout.splitlines()
        self.assertRegex(table[0], r"^ACCOUNT\s+STATE\s+LAST SYNC\s+MESSAGES\s+CODES$")
        self.assertRegex(table[1], r"^ivy\s+watching\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d+\s+2$")
        row = json.loads(self.alcode.run("status", "--json").stdout)
        self.assertEqual((row["account"], row["state"], row["codes"]), ("ivy", "idle", 2))
        # The user's code spécifique is said found (when it was stored), never printed.
        out = self.alcode.run("status").stdout
        self.assertRegex(out, r"\nYour code spécifique: found \d{4}-\d\d-\d\d \d\d:\d\d "
                              r"\(alcode latest specific\)\n")
        self.assertNotIn(trusted[2], out.replace(" ", ""))
        self.assertRegex(row["specific_found"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

        # A second daemon on the same session bus does not start.
        r = self.alcode.daemon(check=False, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("Another alcoded already runs", r.stderr)
        self.assertIsNone(p.poll())

        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))

        # No daemon any more: exit 3, with a hint.
        for verb in (["status"], ["status", "--json"], ["rescan"]):
            r = self.alcode.run(*verb, check=False)
            self.assertEqual(r.returncode, 3, verb)
            self.assertIn("alcoded is not running", r.stderr)
            self.assertEqual(r.stdout, "")

    def test_no_specific_found(self):
        # Only the untrusted code (Junk, a look-alike sender): nothing said found.
        self.alcode.write_config(self.dovecot.account_config("ivy", user="ivy", extra="folders = Junk\n"))
        p = start_daemon(self, self.alcode, notify=self.notify)
        self.notify.wait("STATUS", "ivy: watching")
        self.assertEqual(self.call("Status")["data"][0][0][5], 1)
        self.assertNotIn("code spécifique", self.alcode.run("status").stdout)
        self.assertIsNone(json.loads(self.alcode.run("status", "--json").stdout)["specific_found"])
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))

    def test_no_session_bus_at_all(self):
        alcode = Alcode(self.t, bus=None)
        r = alcode.run("status", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("systemctl --user start alcoded", r.stderr)


if __name__ == "__main__":
    main()
