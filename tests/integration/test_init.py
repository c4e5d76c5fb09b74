"""`alcode init`, as a person meets it: on a pseudo-terminal, answering its questions, against a
private dovecot (TLS with a test CA), and from a script with --yes.

Asserts what the user sees and what ends up on disk: the password never shown nor written in
clear unless the user chose the file (then mode 0600), the keyring holding it otherwise, the
config loading with `alcode check` and working with `alcoded --once`, an existing config never
replaced, a refused certificate stopping everything before the password is fetched."""

import os
import stat
import subprocess
import unittest

from alcodetest import (Alcode, DBusSession, Dovecot, RULES_DIR, TempDir, main, require_tools, wait_for)

PASSWORD = "s3cret pass;word"  # a space and a ';': must survive every path intact


class Init(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.dovecot = Dovecot(cls.tmp, users={"alice": PASSWORD})
        cls.dovecot.start()

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.home = TempDir()
        self.addCleanup(self.home.cleanup)
        self.alcode = Alcode(self.home)
        self.link_rules()

    def link_rules(self):
        # An installed alcode finds its rules in /usr/share; this one finds them as the user's own.
        link = os.path.join(self.alcode.config_dir, "rules.d")
        if not os.path.exists(link):
            os.symlink(RULES_DIR, link)

    def config_text(self):
        with open(self.alcode.config) as f:
            return f.read()

    def start(self, *args, env=None):
        t = self.alcode.terminal("init", "--ca-file", self.dovecot.ca, "--no-enable", *args, env=env)
        self.addCleanup(t.close)
        return t

    def answer_server(self, t, email="alice@example.org", with_port=False):
        # with_port: the server typed as host:port, so no port question.
        t.expect("Your e-mail address")
        t.type(email)
        t.expect("does not know the mail server of example.org")
        t.expect("IMAP server")
        if with_port:
            t.type("127.0.0.1:%d" % self.dovecot.tls_port)
        else:
            t.type("127.0.0.1")
            t.expect("Port")
            t.type(str(self.dovecot.tls_port))
        t.expect("Does this port use TLS from the start")
        t.type("")
        t.expect("Login name [alice@example.org]: ")
        t.type("alice")

    def no_employer_and_done(self, t):
        t.expect("employer's mail domain")
        t.type("")
        self.assertEqual(t.wait(), 0, t.transcript)

    def scripted(self, *args, check=False):
        return self.alcode.run("init", "--yes", "--no-enable", *args, check=check)

    def test_interactive_password_in_the_file(self):
        t = self.start()
        self.answer_server(t)
        t.expect("Where should alcoded find the password?")
        t.expect("Your choice [")
        t.type("3")
        t.expect("Password (it does not show as you type): ")
        t.type(PASSWORD)
        t.expect("It works: the certificate is valid and the login accepted")
        t.expect("employer's mail domain")
        t.type("menuiseries-durand.example")
        self.assertEqual(t.wait(), 0, t.transcript)

        self.assertNotIn("pass;word", t.transcript)  # never echoed
        self.assertIn("Wrote %s with the account 'example'" % self.alcode.config, t.transcript)
        self.assertEqual(stat.S_IMODE(os.stat(self.alcode.config).st_mode), 0o600)
        text = self.config_text()
        self.assertIn("password = %s\n" % PASSWORD, text)
        self.assertIn("[account example]\n", text)
        self.assertIn("host = 127.0.0.1\nport = %d\ntls = implicit\nuser = alice\n" % self.dovecot.tls_port,
                      text)
        self.assertIn("employer_domains = menuiseries-durand.example\n", text)
        self.assertIn("ca_file = %s\n" % self.dovecot.ca, text)
        r = self.alcode.run("check")
        self.assertIn("OK, 1 account(s)", r.stdout)
        # The hint to start the daemon by hand, since --no-enable was given.
        self.assertIn("alcoded --once", t.transcript)

    def test_server_typed_with_its_port(self):
        # "host:port" as people copy it from a help page: taken as both, no port question.
        t = self.start()
        self.answer_server(t, with_port=True)
        t.expect("Your choice [")
        t.type("3")
        t.expect("Password (it does not show as you type): ")
        t.type(PASSWORD)
        t.expect("It works")
        self.no_employer_and_done(t)
        self.assertNotIn("Port (993", t.transcript)
        self.assertIn("host = 127.0.0.1\nport = %d\ntls = implicit\n" % self.dovecot.tls_port, self.config_text())

    def test_wrong_password_then_the_right_one(self):
        t = self.start()
        self.answer_server(t)
        t.expect("Your choice [")
        t.type("3")
        t.expect("Password (it does not show as you type): ")
        t.type("not-the-password")
        t.expect("The server refused the login")
        t.expect("Type the password again?")
        t.type("y")
        t.expect("Password (it does not show as you type): ")
        t.type(PASSWORD)
        t.expect("It works")
        self.no_employer_and_done(t)
        self.assertNotIn("not-the-password", t.transcript)
        self.assertNotIn("pass;word", t.transcript)
        text = self.config_text()
        self.assertIn("password = %s\n" % PASSWORD, text)
        self.assertIn("; employer_domains = mon-employeur.fr\n", text)

    def test_password_command_keeps_the_password_out_of_the_file(self):
        secret_file = self.home.join("pw")
        with open(secret_file, "w") as f:
            f.write(PASSWORD + "\n")
        t = self.start()
        self.answer_server(t)
        t.expect("Your choice [")
        t.type("2")
        t.expect("Command that prints the password")
        t.type("cat " + secret_file)
        t.expect("It works")
        self.no_employer_and_done(t)
        text = self.config_text()
        self.assertIn("password_command = cat %s\n" % secret_file, text)
        self.assertNotIn("pass;word", text)
        self.assertNotIn("\npassword =", text)

    def keyring_dialogue(self):
        """A keyring on a private bus, and init up to the password stored in it: (terminal, env)."""
        require_tools("gnome-keyring-daemon", "secret-tool", "busctl")
        bus = DBusSession(self.home)
        self.addCleanup(bus.stop)
        self.alcode = Alcode(self.home, bus=bus)
        env = self.alcode.env()
        keyring = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--components=secrets", "--unlock"],
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=env)
        keyring.stdin.write(b"keyring-password")
        keyring.stdin.close()
        self.addCleanup(lambda: (keyring.terminate(), keyring.wait()))
        wait_for(lambda: bus.has_owner("org.freedesktop.secrets"), what="the keyring on the bus")

        t = self.start()
        self.answer_server(t)
        t.expect("1  in your keyring")
        t.expect("Your choice [")
        t.type("")  # the default: the keyring
        t.expect("Password (it does not show as you type): ")
        t.type(PASSWORD)
        t.expect("It works")
        t.expect("The password is in your keyring; alcoded reads it with 'secret-tool lookup alcode example'")
        return t, env

    def test_keyring(self):
        t, env = self.keyring_dialogue()
        self.no_employer_and_done(t)
        self.assertNotIn("pass;word", t.transcript)

        text = self.config_text()
        self.assertIn("password_command = secret-tool lookup alcode example\n", text)
        self.assertNotIn("pass;word", text)
        r = subprocess.run(["secret-tool", "lookup", "alcode", "example"], env=env, capture_output=True, text=True)
        self.assertEqual(r.stdout, PASSWORD)
        # The daemon logs in with it.
        self.alcode.daemon("--once")

    def test_keyring_then_stopped(self):
        """Stopped after the keyring took the password: the screen says it is there, and how to
        remove it (not "nothing was written")."""
        t, env = self.keyring_dialogue()
        t.expect("employer's mail domain")
        os.write(t.master, b"\x04")  # Ctrl-D
        t.expect("Stopped; the configuration was not written, but the password is in your keyring "
                 "('secret-tool clear alcode example' removes it).")
        self.assertEqual(t.wait(), 1)
        self.assertNotIn("nothing was written", t.transcript)
        self.assertFalse(os.path.exists(self.alcode.config))
        r = subprocess.run(["secret-tool", "lookup", "alcode", "example"], env=env, capture_output=True, text=True)
        self.assertEqual(r.stdout, PASSWORD)

    def test_existing_config_is_never_replaced(self):
        self.alcode.write_config(self.dovecot.account_config("perso"))
        before = self.config_text()

        t = self.start()
        t.expect("%s already exists (1 account(s))" % self.alcode.config)
        t.expect("Add a new account to it?")
        t.type("n")
        t.expect("Stopped; nothing was written.")
        self.assertEqual(t.wait(), 1)
        self.assertEqual(self.config_text(), before)

        # Scripted, it appends: the old text stays as it was, the new account follows.
        r = self.scripted("--email", "alice@example.org", "--host", "127.0.0.1", "--port",
                          str(self.dovecot.tls_port), "--user", "alice", "--password-command",
                          "printf '%s'" % PASSWORD, "--ca-file", self.dovecot.ca, "--account", "travail")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Account 'travail' (alice@example.org) added to", r.stdout)
        text = self.config_text()
        self.assertTrue(text.startswith(before))
        self.assertIn("[account travail]\n", text[len(before):])
        self.assertEqual(stat.S_IMODE(os.stat(self.alcode.config).st_mode), 0o600)
        self.assertIn("OK, 2 account(s)", self.alcode.run("check").stdout)

        # The same name again is refused, and nothing changes.
        r = self.scripted("--email", "alice@example.org", "--host", "127.0.0.1", "--password-command", "true",
                          "--no-test", "--account", "travail")
        self.assertEqual(r.returncode, 2)
        self.assertIn("already has an account 'travail'", r.stderr)
        self.assertEqual(self.config_text(), text)

    def test_scripted_then_alcoded_once(self):
        r = self.scripted("--email", "alice@example.org", "--host", "127.0.0.1", "--port",
                          str(self.dovecot.tls_port), "--user", "alice", "--password-command",
                          "printf '%s'" % PASSWORD, "--ca-file", self.dovecot.ca,
                          "--employer-domains", "menuiseries-durand.example")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("It works", r.stdout)
        self.assertIn("employer_domains = menuiseries-durand.example\n", self.config_text())
        self.alcode.daemon("--once")

    def test_refused_certificate_stops_before_the_password(self):
        marker = self.home.join("password-was-asked")
        r = self.scripted("--email", "alice@example.org", "--host", "127.0.0.1", "--port",
                          str(self.dovecot.tls_port), "--user", "alice", "--password-command",
                          "sh -c 'touch %s; printf x'" % marker)
        self.assertEqual(r.returncode, 1)
        self.assertIn("The server's certificate was refused, so the password was not sent.", r.stdout)
        self.assertIn("--ca-file", r.stdout)
        self.assertFalse(os.path.exists(marker), "the password command ran before the certificate was checked")
        self.assertFalse(os.path.exists(self.alcode.config))

    def test_needs_a_terminal_or_yes(self):
        r = self.alcode.run("init", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("need a terminal", r.stderr)
        r = self.scripted("--password-command", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--yes needs --email", r.stderr)
        self.assertFalse(os.path.exists(self.alcode.config))

    def test_providers(self):
        cases = [
            # address, host, user, auth, hint
            ("jeanne.martin@gmail.com", "imap.gmail.com", "jeanne.martin@gmail.com", None, "app password"),
            ("jeanne@hotmail.fr", "outlook.office365.com", "jeanne@hotmail.fr", "xoauth2", "OAuth2"),
            ("jeanne@yahoo.fr", "imap.mail.yahoo.com", "jeanne@yahoo.fr", None, "app password"),
            ("jeanne@icloud.com", "imap.mail.me.com", "jeanne", None, "app-specific password"),
            ("jeanne@orange.fr", "imap.orange.fr", "jeanne@orange.fr", None, None),
            ("jeanne@wanadoo.fr", "imap.orange.fr", "jeanne@wanadoo.fr", None, None),
            ("jeanne@free.fr", "imap.free.fr", "jeanne@free.fr", None, None),
            ("jeanne@sfr.fr", "imap.sfr.fr", "jeanne@sfr.fr", None, None),
            ("jeanne@laposte.net", "imap.laposte.net", "jeanne@laposte.net", None, None),
            ("jeanne@bbox.fr", "imap4.bbox.fr", "jeanne@bbox.fr", None, None),
        ]
        for email, host, user, auth, hint in cases:
            with self.subTest(email=email):
                path = self.home.join(email + ".conf")
                r = self.alcode.run("--config", path, "init", "--yes", "--no-enable", "--no-test", "--email", email,
                                    "--password-command", "pass show mail", check=False)
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(path) as f:
                    text = f.read()
                self.assertIn("host = %s\nport = 993\ntls = implicit\nuser = %s\n" % (host, user), text)
                if auth:
                    self.assertIn("auth = %s\n" % auth, text)
                else:
                    self.assertNotIn("auth =", text)
                if hint:
                    self.assertIn(hint, r.stdout)
                self.assertIn("OK, 1 account(s)", self.alcode.run("--config", path, "check").stdout)

    def test_interactive_guess_then_ctrl_d(self):
        t = self.start()
        t.expect("Your e-mail address")
        t.type("jeanne@gmail.com")
        t.expect("Gmail: IMAP server imap.gmail.com, port 993, TLS.")
        t.expect("app password")
        t.expect("Your choice [")
        os.write(t.master, b"\x04")  # Ctrl-D: the user gives up
        t.expect("Stopped; nothing was written.")
        self.assertEqual(t.wait(), 1)
        self.assertFalse(os.path.exists(self.alcode.config))


if __name__ == "__main__":
    main()
