"""A table of broken configs and rule files: each is reported as `file:line: message` by
`alcode check` and by `alcoded`, both exit non-zero, and alcoded stops before it touches the
network or the store: the account points at a running dovecot whose log shows no connection
at all, and the database path (in a folder of its own) is not created."""

import os
import stat
import unittest

from alcodetest import RULES_DIR, Alcode, Dovecot, TempDir, binary, main

GOOD_ACCOUNT = "[account a]\nhost = 127.0.0.1\nport = {port}\ntls = none\nuser = alice\npassword = secret1\n"

# name: (config after "[alcode]\n" lines, rule file text or None, file ("config" or "rules"),
#        line, expected message)
CASES = {
    "unknown key": ("colour = blue\n" + GOOD_ACCOUNT, None, "config", 4, "unknown key 'colour' in [alcode]"),
    # Reported at the first key under it (inih reports keys, not headers).
    "unknown section": ("[acount a]\nhost = x\n", None, "config", 5, "unknown section [acount a]"),
    "missing host": ("[account a]\nport = 993\nuser = u\npassword = p\n", None, "config", 4,
                     "account 'a': missing 'host'"),
    "missing user": ("[account a]\nhost = 127.0.0.1\npassword = p\n", None, "config", 4, "account 'a': missing 'user'"),
    "bad port": (GOOD_ACCOUNT.replace("port = {port}", "port = 99999"), None, "config", 6,
                 "expected a port number 1-65535, got '99999'"),
    "port not a number": (GOOD_ACCOUNT.replace("port = {port}", "port = imaps"), None, "config", 6,
                          "expected a port number 1-65535, got 'imaps'"),
    "unknown tls mode": (GOOD_ACCOUNT.replace("tls = none", "tls = ssl"), None, "config", 7,
                         "expected implicit, starttls or none, got 'ssl'"),
    "tls none to a remote host": (GOOD_ACCOUNT.replace("127.0.0.1", "imap.example.org"), None, "config", 4,
                                  "tls = none is only allowed to a loopback host"),
    "unknown auth": (GOOD_ACCOUNT + "auth = cram-md5\n", None, "config", 10, "expected login, plain, oauth2, xoauth2 or oauthbearer"),
    "bad glob": (GOOD_ACCOUNT + "folders = INBOX, [Gmail\n", None, "config", 10,
                 "invalid folder pattern '[Gmail' (unbalanced '[')"),
    "bad since": (GOOD_ACCOUNT + "since = 01/02/2020\n", None, "config", 10, "expected a date YYYY-MM-DD"),
    "bad fingerprint": (GOOD_ACCOUNT + "fingerprint = sha1:AB:CD\n", None, "config", 10, "expected sha256:"),
    "bad poll interval": (GOOD_ACCOUNT + "poll_interval = 1\n", None, "config", 10,
                          "expected seconds between 10 and 86400"),
    "duplicate account": (GOOD_ACCOUNT + GOOD_ACCOUNT.replace("[account a]", "[account b]") + GOOD_ACCOUNT, None,
                          "config", 17, "duplicate account 'a'"),
    "key set twice": (GOOD_ACCOUNT + "user = bob\n", None, "config", 10, "key 'user' set twice in [account a]"),
    "password and command": (GOOD_ACCOUNT + "password_command = true\n", None, "config", 4,
                             "set 'password' or 'password_command', not both"),
    "missing password command": (GOOD_ACCOUNT.replace("password = secret1", "password_command = /nonexistent/helper"),
                                 None, "config", 9, "cannot run '/nonexistent/helper': No such file or directory"),
    "password command not executable": (GOOD_ACCOUNT.replace("password = secret1", "password_command = {noexec} lookup"),
                                        None, "config", 9, "Permission denied"),
    "xoauth2 without command": (GOOD_ACCOUNT + "auth = xoauth2\n", None, "config", 4,
                                "auth = xoauth2 needs oauth2_provider and oauth2_client_id"),
    "oauth2 without client id": (GOOD_ACCOUNT.replace("password = secret1\n", "") + "oauth2_provider = microsoft\n",
                                 None, "config", 4, "missing 'oauth2_client_id'"),
    "oauth2 endpoint not https": (GOOD_ACCOUNT + "oauth2_token_url = http://127.0.0.1/token\n", None, "config", 10,
                                  "expected an https:// address"),
    "unknown oauth2 provider": (GOOD_ACCOUNT + "oauth2_provider = yahoo\n", None, "config", 10,
                                "expected one of microsoft, google"),
    "bad boolean": ("notify = maybe\n" + GOOD_ACCOUNT, None, "config", 4, "expected yes or no, got 'maybe'"),
    "bad employer domain": ("employer_domains = exa mple.fr\n" + GOOD_ACCOUNT, None, "config", 4,
                            "invalid domain 'exa mple.fr'"),
    "relative database path": ("database = alcode.db\n" + GOOD_ACCOUNT, None, "config", 4,
                               "expected an absolute path"),
    "bad regex": (GOOD_ACCOUNT, "[rules]\nversion = 1\n\n[rule r]\nkind = otp\nsenders = example.org\n"
                  "pattern = code (?<code>\\d+\n", "rules", 7, "missing closing parenthesis"),
    "pattern without code group": (GOOD_ACCOUNT, "[rules]\nversion = 1\n\n[rule r]\nkind = otp\n"
                                   "senders = example.org\npattern = code \\d+\n", "rules", 7, "code"),
    "unknown kind": (GOOD_ACCOUNT, "[rules]\nversion = 1\n\n[rule r]\nkind = secret\n", "rules", 5,
                     "unknown kind 'secret'"),
    "bad sender domain": (GOOD_ACCOUNT, "[rules]\nversion = 1\n\n[rule r]\nkind = otp\nsenders = exa mple.org\n",
                          "rules", 6, "invalid domain 'exa mple.org'"),
}


class ConfigErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.dovecot = Dovecot(cls.tmp).start()
        cls.noexec = cls.tmp.join("helper-not-executable")
        with open(cls.noexec, "w") as f:
            f.write("#!/bin/sh\necho secret1\n")
        os.chmod(cls.noexec, 0o644)

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        cls.tmp.cleanup()

    def connections(self):
        """Lines dovecot logged about clients: any connection at all shows up as imap-login."""
        return [l for l in self.dovecot.log().splitlines() if "imap-login" in l or "imap(" in l]

    def test_table(self):
        before = len(self.connections())
        for name, (conf, rules, where, line, message) in CASES.items():
            with self.subTest(name):
                tmp = TempDir()
                try:
                    self.check_case(tmp, conf, rules, where, line, message)
                finally:
                    tmp.cleanup()
        self.assertEqual(self.connections()[before:], [], "a broken config reached the server")

    def check_case(self, tmp, conf, rules, where, line, message):
        a = Alcode(tmp)
        db_dir = tmp.join("store")
        rules_dir = tmp.join("rules")
        os.makedirs(rules_dir)
        rule_file = os.path.join(rules_dir, "broken.rules")
        if rules:
            with open(rule_file, "w") as f:
                f.write(rules)
        # Line 1 [alcode], 2 rules =, 3 database =, then the case's lines from line 4.
        text = "[alcode]\nrules = %s, %s\n" % (RULES_DIR, rules_dir)
        text += "database = %s/alcode.db\n" % db_dir if "database =" not in conf else "notify = yes\n"
        text += conf.format(port=self.dovecot.port, noexec=self.noexec)
        a.write_config(text, rules=False)
        path = a.config if where == "config" else rule_file
        prefix = "%s:%d:" % (path, line)

        r = a.run("check", "--config", a.config, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        out = r.stdout + r.stderr
        hit = [l for l in out.splitlines() if prefix in l and message in l]
        self.assertTrue(hit, "alcode check did not say %r %r:\n%s" % (prefix, message, out))

        r = a.daemon("--config", a.config, check=False, timeout=30)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        hit = [l for l in r.stderr.splitlines() if prefix in l and message in l]
        self.assertTrue(hit, "alcoded did not say %r %r:\n%s" % (prefix, message, r.stderr))
        self.assertFalse(os.path.exists(db_dir), "alcoded created the store folder")

    def test_password_in_a_file_others_can_read(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        a = Alcode(tmp)
        db = tmp.join("store", "alcode.db")
        a.write_config("database = %s\n" % db + GOOD_ACCOUNT.format(port=self.dovecot.port), mode=0o644)
        for r in (a.run("check", check=False), a.daemon(check=False, timeout=30)):
            self.assertEqual(r.returncode, 1)
            self.assertIn("%s:9: key 'password': refused: the file can be read by other users" % a.config,
                          r.stdout + r.stderr)
        self.assertFalse(os.path.exists(db))
        # Group-readable is "others" too; 0600 is accepted.
        os.chmod(a.config, 0o640)
        self.assertEqual(a.run("check", check=False).returncode, 1)
        os.chmod(a.config, 0o600)
        r = a.run("check", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    main()
