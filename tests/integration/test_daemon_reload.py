"""alcoded under change: SIGHUP reloads (an added, changed or removed account, a broken config
kept out), SIGTERM in the middle of a backfill then a restart (no loss, no duplicate), a stalled
server (visible as stuck, and no obstacle to stopping), and logind's resume waking the workers."""

import json
import os
import shutil
import subprocess
import types

from alcodetest import (BUILD_DIR, RULES_DIR, BusMonitor, DaemonTestCase, DBusSession, NotifySocket, SilentServer,
                        busctl, code_mail, main, random_codes, read_log, start_daemon, stop_daemon, under_ci,
                        wait_for)

USERS = {"dave": "pw-dave-1181", "frank": "pw-frank-4409", "gina": "pw-gina-3317", "hugo": "pw-hugo-2206"}
BACKFILL_CODES = 150
BACKFILL_NOISE = 9  # mails without a code per mail with one


def connects(log, account):
    return log.count("account '%s': connected to" % account)


def test_hooks_built():
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            return "ALCODE_TEST_HOOKS:BOOL=ON" in f.read()
    except OSError:
        return False


class Reload(DaemonTestCase):
    USERS = USERS

    @classmethod
    def fill(cls):
        cls.codes = random_codes(BACKFILL_CODES + 10, seed=9)
        cls.dovecot.deliver("frank", "INBOX", code_mail(cls.codes[0]))
        filler = b"From: news@shop.example\r\nSubject: offers %d\r\n\r\n" + b"Nothing to see here. " * 200 + b"\r\n"
        for i, c in enumerate(cls.codes[10:]):
            folder = "INBOX" if i % 2 else "Archive"
            cls.dovecot.deliver("gina", folder, code_mail(c))
            for k in range(BACKFILL_NOISE):
                cls.dovecot.deliver("gina", folder, filler % (i * 100 + k))

    def accounts(self, *names, extra=None):
        extra = extra or {}
        return "".join(self.dovecot.account_config(n, user=n, extra=extra.get(n, "")) for n in names)

    def reload(self, p):
        """SIGHUP; returns once the daemon says READY=1 again."""
        since = len(self.notify.fields())
        p.send_signal(1)
        self.notify.wait("RELOADING", "1", since=since)
        self.notify.wait("READY", "1", since=since)

    def test_sighup_starts_changes_and_stops_only_what_changed(self):
        self.alcode.write_config(self.accounts("dave"))
        monitor = BusMonitor(self.bus)
        self.addCleanup(monitor.stop)
        p = start_daemon(self, self.alcode, notify=self.notify)
        self.notify.wait("STATUS", "dave: watching")

        # An added account starts; the other one is left alone.
        self.alcode.write_config(self.accounts("dave", "frank"))
        self.reload(p)
        self.notify.wait("STATUS", "dave: watching; frank: watching")
        value = self.codes[0].replace(" ", "")
        self.assertEqual(self.alcode.sql("SELECT value FROM codes c JOIN messages m ON m.id = c.message "
                                         "WHERE m.account = 'frank'"), [(value,)])
        log = read_log(p)
        self.assertIn("1 account(s) started, 0 restarted, 0 stopped, 1 unchanged", log)
        self.assertEqual(connects(log, "dave"), 1)
        self.assertEqual(connects(log, "frank"), 1)
        prop = busctl(self.bus, "get-property", "io.github.alcode.Daemon1", "/io/github/alcode/Daemon1",
                      "io.github.alcode.Daemon1", "Accounts")
        self.assertEqual(prop["data"], ["dave", "frank"])

        # A changed account restarts; the unchanged one does not.
        self.alcode.write_config(self.accounts("dave", "frank", extra={"frank": "poll_interval = 600\n"}))
        self.reload(p)
        wait_for(lambda: connects(read_log(p), "frank") == 2, what="frank to reconnect")
        self.assertIn("0 account(s) started, 1 restarted, 0 stopped, 1 unchanged", read_log(p))
        self.assertEqual(connects(read_log(p), "dave"), 1)

        # A broken config is reported with file:line and the running one is kept.
        self.alcode.write_config(self.accounts("dave") + "[account broken]\nhost = 127.0.0.1\nport = many\n")
        self.reload(p)
        log = read_log(p)
        self.assertRegex(log, r"alcode\.conf:\d+: .*port")
        self.assertIn("keeping the running one", log)
        # ... and on the desktop, since `systemctl --user reload` succeeds all the same.
        n = wait_for(lambda: [n for n in monitor.notify_calls()
                              if n["summary"] == "alcode: the new configuration has errors"], what="the notification")[0]
        self.assertRegex(n["body"], r"alcode\.conf:\d+: .*port")
        self.assertIn("alcode check", n["body"])
        self.assertEqual(n["hints"]["urgency"], 2)
        rows = [json.loads(l) for l in self.alcode.run("status", "--json").stdout.splitlines()]
        self.assertEqual([r["account"] for r in rows], ["dave", "frank"])
        self.assertIsNone(p.poll())

        # A removed account stops.
        self.alcode.write_config(self.accounts("dave"))
        self.reload(p)
        self.notify.wait("STATUS", "dave: watching")
        self.assertIn("0 account(s) started, 0 restarted, 1 stopped, 1 unchanged", read_log(p))
        rows = [json.loads(l) for l in self.alcode.run("status", "--json").stdout.splitlines()]
        self.assertEqual([r["account"] for r in rows], ["dave"])

        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))

    def test_reload_out_of_memory_keeps_the_running_configuration(self):
        if not test_hooks_built():
            self.skipTest("needs a build with -DALCODE_TEST_HOOKS=ON (scripts/test makes one)")
        self.alcode.write_config(self.accounts("dave"))
        # The first slot made by a reload cannot be allocated (as if out of memory).
        p = start_daemon(self, self.alcode, notify=self.notify, env={"ALCODE_TEST_RELOAD_ENOMEM": "1"})
        self.notify.wait("STATUS", "dave: watching")

        # dave changed and frank added: frank's slot fails, after RELOADING=1. systemd must get
        # READY=1 all the same, and nothing may have changed, dave's connection included.
        self.alcode.write_config(self.accounts("dave", "frank", extra={"dave": "poll_interval = 600\n"}))
        since = len(self.notify.fields())
        self.reload(p)
        self.notify.wait("STATUS", "dave: watching (reload failed: the previous configuration is in use)",
                         since=since)
        self.assertIn("keeping the running configuration", read_log(p))
        rows = [json.loads(l) for l in self.alcode.run("status", "--json").stdout.splitlines()]
        self.assertEqual([(r["account"], r["state"]) for r in rows], [("dave", "idle")])
        self.assertEqual(connects(read_log(p), "dave"), 1)

        # The next reload applies it, and STATUS= no longer says a reload failed.
        self.reload(p)
        self.notify.wait("STATUS", "dave: watching; frank: watching", since=since)
        self.assertIn("1 account(s) started, 1 restarted, 0 stopped, 0 unchanged", read_log(p))
        wait_for(lambda: connects(read_log(p), "dave") == 2, what="dave to reconnect")
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))

    def test_rules_change_restarts_every_account(self):
        rules = self.t.join("rules")
        shutil.copytree(RULES_DIR, rules)
        self.alcode.write_config("[alcode]\nrules = %s\n" % rules + self.accounts("dave", "frank"), rules=False)
        p = start_daemon(self, self.alcode, notify=self.notify)
        self.notify.wait("STATUS", "dave: watching; frank: watching")
        # Nothing changed: nothing restarts.
        self.reload(p)
        self.assertIn("0 account(s) started, 0 restarted, 0 stopped, 2 unchanged", read_log(p))
        # A rule file changed: every worker must match with the new rules.
        name = sorted(f for f in os.listdir(rules) if f.endswith(".rules"))[0]
        with open(os.path.join(rules, name), "a") as f:
            f.write("\n# edited\n")
        self.reload(p)
        log = read_log(p)
        self.assertIn("Rules or employer domains changed: every account starts again.", log)
        self.assertIn("0 account(s) started, 2 restarted, 0 stopped, 0 unchanged", log)
        # 30 s: two workers stop and start again under a loaded CI's sanitizers (10 s once ran
        # out there, 2026-12-03; never on a quiet machine, nor beside three busy loops).
        try:
            wait_for(lambda: connects(read_log(p), "dave") == 2 and connects(read_log(p), "frank") == 2,
                     timeout=30, what="both accounts to reconnect")
        except TimeoutError:
            log = read_log(p)
            self.fail("connects: dave %d, frank %d; the log's end:\n%s"
                      % (connects(log, "dave"), connects(log, "frank"), log[-4000:]))
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0)

    def test_sigterm_during_backfill_then_restart_loses_nothing(self):
        self.alcode.write_config(self.accounts("gina"))
        monitor = BusMonitor(self.bus)
        self.addCleanup(monitor.stop)

        def stored():
            try:
                return self.alcode.sql("SELECT count(*) FROM codes")[0][0]
            except Exception:
                return 0

        p = start_daemon(self, self.alcode, notify=self.notify)
        wait_for(lambda: stored() > 0, timeout=60, what="the first codes", interval=0.005)
        rc, took = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))
        self.assertLess(took, 5)
        first = stored()
        # The likely code mail of every folder is read first (it may all be stored by now): the
        # backfill is the exact scan of every message, which must still be going on.
        seen = self.alcode.sql("SELECT coalesce(sum(messages_seen), 0) FROM cursors")[0][0]
        self.assertLess(seen, BACKFILL_CODES * (1 + BACKFILL_NOISE), "the backfill ended before SIGTERM: make it longer")

        # What was stored before the stop was shown, in one notification.
        def announced():
            total = 0
            for n in monitor.notify_calls():
                if n["summary"] == "Action Logement: specific code":
                    total += 1
                elif n["summary"].startswith("Action Logement: "):
                    total += int(n["summary"].split()[2])
            return total
        self.assertEqual(announced(), first)
        self.assertLessEqual(len(monitor.notify_calls()), 1)

        # A restart goes on from the stored cursors: every code once, each message once.
        self.notify.close()
        self.notify = NotifySocket(self.t, "notify2.sock")
        p2 = start_daemon(self, self.alcode, notify=self.notify)
        self.notify.wait("STATUS", "gina: watching", timeout=120)
        self.assertEqual(stored(), BACKFILL_CODES)
        self.assertEqual(self.alcode.sql("SELECT count(*) FROM messages")[0][0], BACKFILL_CODES)
        self.assertEqual(self.alcode.sql("SELECT count(*) FROM sightings")[0][0], BACKFILL_CODES)
        self.assertEqual(self.alcode.sql("SELECT sum(messages_seen) FROM cursors")[0][0],
                         BACKFILL_CODES * (1 + BACKFILL_NOISE))
        wait_for(lambda: announced() == BACKFILL_CODES, what="the rest announced")
        # One more notification for the rest, none when the first daemon had stored every code
        # (the likely code mail is read first).
        self.assertEqual(len(monitor.notify_calls()), 1 + (first < BACKFILL_CODES))
        rc, _ = stop_daemon(p2)
        self.assertEqual(rc, 0)
        for c in self.codes[10:]:
            self.assertNotIn(c.replace(" ", ""), read_log(p) + read_log(p2))

    def test_stalled_server_shows_and_does_not_block_stop(self):
        if not test_hooks_built():
            self.skipTest("needs a build with -DALCODE_TEST_HOOKS=ON (scripts/test makes one)")
        server = SilentServer()
        self.addCleanup(server.stop)
        self.alcode.write_config("[account stalled]\nhost = 127.0.0.1\nport = %d\ntls = none\nuser = x\n"
                                 "password = y\n" % server.port)
        monitor = BusMonitor(self.bus)
        self.addCleanup(monitor.stop)
        p = start_daemon(self, self.alcode, notify=self.notify, env={"ALCODE_TEST_STUCK_MSEC": "1000"})
        self.notify.wait("STATUS", lambda v: v.startswith("stalled: stuck connecting (no progress for"))
        row = json.loads(self.alcode.run("status", "--json").stdout)
        self.assertEqual(row["state"], "stuck")
        self.assertIn(["stalled", "stuck"], monitor.signals("AccountStateChanged"))
        # A connect that waits for the greeting cannot be cancelled (libetpan's own timeout
        # bounds it): alcoded leaves without that worker, within its stop bound, exit 0.
        rc, took = stop_daemon(p)
        self.assertEqual(rc, 0, read_log(p))
        self.assertLess(took, 5)

    def test_resume_from_sleep_checks_at_once(self):
        helper = os.path.join(self.t.path, "logind.py")
        with open(helper, "w") as f:
            f.write("import dbus, dbus.lowlevel, sys\n"
                    "bus = dbus.bus.BusConnection(sys.argv[1])\n"
                    "bus.request_name('org.freedesktop.login1')\n"
                    "for v in (True, False):\n"
                    "    m = dbus.lowlevel.SignalMessage('/org/freedesktop/login1',"
                    " 'org.freedesktop.login1.Manager', 'PrepareForSleep')\n"
                    "    m.append(v, signature='b')\n"
                    "    bus.send_message(m)\n"
                    "bus.flush()\n")
        if subprocess.run(["/usr/bin/python3", "-c", "import dbus"], capture_output=True).returncode != 0:
            if under_ci():
                raise RuntimeError("python3-dbus is missing (scripts/deps test installs it)")
            self.skipTest("python3-dbus is missing")
        system = DBusSession(types.SimpleNamespace(path=self.t.join("system")))
        self.addCleanup(system.stop)
        self.alcode.write_config(self.accounts("hugo", extra={"hugo": "poll_interval = 3600\n"}))
        p = start_daemon(self, self.alcode, notify=self.notify,
                         env={"DBUS_SYSTEM_BUS_ADDRESS": system.address})
        self.notify.wait("STATUS", "hugo: watching")
        code = self.codes[1]
        self.dovecot.append("hugo", "INBOX", code_mail(code))
        subprocess.run(["/usr/bin/python3", helper, system.address], check=True, timeout=30)
        wait_for(lambda: self.alcode.sql("SELECT count(*) FROM codes")[0][0] == 1, timeout=10,
                 what="the code after resume")
        self.assertIn("Resumed from sleep: checking every account now.", read_log(p))
        rc, _ = stop_daemon(p)
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    main()
