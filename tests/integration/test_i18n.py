"""French and English: the catalogs are complete, and a French user gets French.

- po/POTFILES.in names exactly the sources that have marked strings;
- po/fr.po translates every string of the alcode.pot the build extracts from the sources (none
  missing, none fuzzy), so a new message cannot ship untranslated;
- with LANG=fr_FR.UTF-8, alcode, alcode init (answering "o" for oui) and alcoded's
  notifications speak French; with LANG=C.UTF-8 they speak English."""

import email.utils
import os
import re
import subprocess
import unittest

from alcodetest import (Alcode, BUILD_DIR, DBusSession, Dovecot, Notifications, RULES_DIR, SOURCE_DIR,
                        TempDir, french_env, main, require_tools, wait_for)


class Catalogs(unittest.TestCase):
    def test_potfiles_lists_every_source_with_strings(self):
        marked = set()
        for d in ("lib", "daemon", "cli"):
            for name in os.listdir(os.path.join(SOURCE_DIR, d)):
                if name.endswith(".c"):
                    with open(os.path.join(SOURCE_DIR, d, name)) as f:
                        if re.search(r'(?<![\w])(?:N?_|ngettext)\(\s*"', f.read()):
                            marked.add(d + "/" + name)
        with open(os.path.join(SOURCE_DIR, "po", "POTFILES.in")) as f:
            listed = {l.strip() for l in f if l.strip() and not l.startswith("#")}
        self.assertEqual(sorted(marked - listed), [], "sources with strings missing from po/POTFILES.in")
        self.assertEqual(sorted(listed - marked), [], "po/POTFILES.in lists sources without strings")

    def test_french_translates_every_string(self):
        require_tools("msgcmp", "msgfmt")
        pot = os.path.join(BUILD_DIR, "po", "alcode.pot")
        po = os.path.join(SOURCE_DIR, "po", "fr.po")
        with open(pot) as f:
            self.assertGreater(f.read().count("\nmsgid "), 50)
        # msgcmp: every msgid of the .pot must have a translation that is not fuzzy.
        r = subprocess.run(["msgcmp", po, pot], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, "po/fr.po lacks translations (run `cmake --build build --target "
                         "update-po`, then translate):\n" + r.stderr)
        r = subprocess.run(["msgfmt", "--check", "--statistics", "-o", "/dev/null", po],
                           capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("fuzzy", r.stderr)
        self.assertNotIn("untranslated", r.stderr)


class French(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.alcode = Alcode(self.tmp)
        self.fr = french_env()

    def test_cli(self):
        r = self.alcode.run("--help", env=self.fr)
        self.assertIn("Utilisation : alcode [OPTIONS] COMMANDE", r.stdout)
        self.assertIn("code spécifique", r.stdout)
        r = self.alcode.run("frobnicate", env=self.fr, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("alcode : commande inconnue « frobnicate »", r.stderr)
        r = self.alcode.run("latest", "--db", self.tmp.join("none.db"), env=self.fr, check=False)
        self.assertIn("aucune base de données", r.stderr)
        # The same in English without a French locale.
        r = self.alcode.run("frobnicate", check=False)
        self.assertIn("alcode: unknown command 'frobnicate'", r.stderr)

    def test_cli_with_language_only(self):
        # LANGUAGE=fr works on a system that has only C.UTF-8.
        r = self.alcode.run("frobnicate", env={"LANGUAGE": "fr"}, check=False)
        self.assertIn("commande inconnue", r.stderr)

    def test_init_answers_oui(self):
        self.alcode.write_config("[account perso]\nhost = imap.example.org\nuser = jeanne\n"
                                 "password_command = true\n")
        t = self.alcode.terminal("init", "--no-test", "--no-enable", env=self.fr)
        self.addCleanup(t.close)
        t.expect("existe déjà (1 compte(s))")
        t.expect("Y ajouter un nouveau compte ? [O/n] ")
        t.type("o")
        t.expect("Votre adresse e-mail")
        t.type("jeanne.martin@orange.fr")
        t.expect("Orange : serveur IMAP imap.orange.fr, port 993, TLS.")
        t.expect("Où alcoded doit-il trouver le mot de passe ?")
        t.expect("Votre choix [")
        t.type("3")
        t.expect("Mot de passe (il ne s'affiche pas pendant la saisie) : ")
        t.type("mot de passe")
        self.assertEqual(t.wait(), 0, t.transcript)
        self.assertIn("Compte « orange » (jeanne.martin@orange.fr) ajouté à", t.transcript)
        self.assertNotIn("mot de passe\n", t.transcript.split("saisie) : ", 1)[1])
        with open(self.alcode.config) as f:
            self.assertIn("[account orange]\n# Orange\nhost = imap.orange.fr\n", f.read())

    def test_notification(self):
        require_tools("dovecot")
        dovecot = Dovecot(self.tmp)
        raw = ("From: AL'in <notifications@al-in.fr>\nTo: alice@example.org\nSubject: Votre inscription\n"
               "Date: %s\nMessage-ID: <i18n-1@al-in.fr>\nContent-Type: text/plain; charset=utf-8\n\n"
               "Bonjour,\nVotre code spécifique : HB42 TQ7M\n" % email.utils.formatdate(localtime=True))
        dovecot.deliver("alice", "INBOX", raw.encode())
        dovecot.start()
        self.addCleanup(dovecot.stop)
        bus = DBusSession(self.tmp)
        self.addCleanup(bus.stop)
        notifications = Notifications(self.tmp, bus)
        self.addCleanup(notifications.stop)
        alcode = Alcode(self.tmp, bus=bus)
        alcode.write_config(dovecot.account_config("perso"))
        alcode.daemon("--once", env=self.fr)

        def shown():
            # dunst's history lists closed notifications only.
            subprocess.run(["dunstctl", "close-all"], env=dict(os.environ, **bus.env()), check=True)
            return notifications.history()
        shown = wait_for(shown, what="the notification")
        self.assertEqual(shown[0]["summary"], "Action Logement : code spécifique")
        self.assertIn("HB42 TQ7M", shown[0]["body"])
        self.assertIn("De : notifications@al-in.fr", shown[0]["body"])


if __name__ == "__main__":
    main()
