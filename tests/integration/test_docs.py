"""The man pages: built, installed, clean for groff, and complete.

Completeness is checked against the sources, not a list kept here: every long and short option
of alcode's and alcoded's option tables and --help, every command of the verb table, every
config key of lib/config.c's key tables with its values, every rule-file key of lib/rules-parse.c, and
every kind. Adding any of them without documenting it fails this test. The examples the pages
give (a config, rules) are loaded by the real programs."""

import os
import re
import subprocess
import unittest

from alcodetest import (Alcode, BUILD_DIR, SOURCE_DIR, TempDir, binary, main, require_tools)

MAN_SRC = os.path.join(SOURCE_DIR, "man")
PAGES = {"alcode.1", "alcoded.8", "alcode.conf.5", "alcode.rules.5"}


def source(path):
    with open(os.path.join(SOURCE_DIR, path)) as f:
        return f.read()


def page(name):
    with open(os.path.join(MAN_SRC, name + ".scd")) as f:
        return f.read()


def long_options(c_text):
    """Long options of every `struct option` table in a C file."""
    return set(re.findall(r'\{\s*"([a-z][a-z0-9-]*)",\s*(?:no|required|optional)_argument', c_text))


def short_options(c_text):
    """Letters of the getopt_long() optstring."""
    m = re.search(r'getopt_long\([^,]+,[^,]+,\s*"([^"]*)"', c_text)
    return set(re.sub(r"[^A-Za-z]", "", m.group(1))) if m else set()


def help_options(program):
    out = subprocess.run([binary(program), "--help"], capture_output=True, text=True,
                         env=dict({k: v for k, v in os.environ.items() if k != "LANGUAGE"}, LC_ALL="C.UTF-8")).stdout
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", out)), set(re.findall(r"(?<![\w-])-([A-Za-z])\b", out))


def key_table(c_text, table, section):
    """The keys of one section in a conf-parser table: rows { "section", "key", parser, ... }."""
    m = re.search(r"static const ConfigTableItem %s\[\] = \{(.*?)\n\};" % table, c_text, re.S)
    return re.findall(r'\{\s*"%s",\s*"([a-z_]+)",' % section, m.group(1))


def string_table(c_text, name):
    """The strings of a DEFINE_STRING_TABLE_LOOKUP table: rows [ENUM] = { "string", ... }."""
    m = re.search(r"%s\[[^]]*\] = \{(.*?)\};" % re.escape(name), c_text, re.S)
    return re.findall(r'=\s*\{\s*"([a-z0-9-]+)"', m.group(1))


def defined_options(text):
    """Options given a definition in the OPTIONS section: its term lines ("*-c*, *--config* _FILE_")."""
    section = text.split("\n# OPTIONS\n", 1)[1].split("\n# ", 1)[0]
    terms = [l for l in section.splitlines() if l.startswith("*-")]
    return (set(re.findall(r"\*--([a-z][a-z0-9-]*)\*", "\n".join(terms))),
            set(re.findall(r"\*-([A-Za-z])\*", "\n".join(terms))))


def literal_blocks(text):
    """The ``` blocks of an scdoc page, with scdoc's escapes undone."""
    return [b.replace("\\\\", "\\") for b in re.findall(r"^```\n(.*?)^```$", text, re.S | re.M)]


class ManPages(unittest.TestCase):
    def test_built_and_clean(self):
        built = {f for f in os.listdir(os.path.join(BUILD_DIR, "man")) if re.match(r".*\.[158]$", f)}
        self.assertEqual(built, PAGES)
        require_tools("groff")
        for p in PAGES:
            with self.subTest(page=p):
                r = subprocess.run(["groff", "-k", "-man", "-Tutf8", "-ww", "-z",
                                    os.path.join(BUILD_DIR, "man", p)], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "", "groff warns about %s" % p)

    def test_installed(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        r = subprocess.run(["cmake", "--install", BUILD_DIR], env=dict(os.environ, DESTDIR=tmp.path),
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        found = {}
        for root, _, files in os.walk(tmp.path):
            for f in files:
                found.setdefault(f, []).append(os.path.relpath(os.path.join(root, f), tmp.path))
        for name, section in (("alcode", 1), ("alcoded", 8), ("alcode.conf", 5), ("alcode.rules", 5)):
            f = "%s.%d" % (name, section)
            self.assertIn(f, found)
            self.assertTrue(found[f][0].endswith("man/man%d/%s" % (section, f)), found[f])
        self.assertTrue(any(p.endswith("bash-completion/completions/alcode") for p in found["alcode"]), found["alcode"])
        self.assertTrue(re.search(r"zsh/(vendor-completions|site-functions)/_alcode$", found["_alcode"][0]))
        self.assertTrue(found["alcode.mo"][0].endswith("locale/fr/LC_MESSAGES/alcode.mo"), found["alcode.mo"])

    def assert_options(self, text, longs, shorts, what):
        defined_long, defined_short = defined_options(text)
        self.assertEqual(sorted(longs - defined_long), [], "%s options without a definition under OPTIONS" % what)
        self.assertEqual(sorted(shorts - defined_short), [], "%s short options without a definition" % what)

    def assert_documented(self, text, items, fmt, what):
        missing = sorted(i for i in items if fmt % i not in text)
        self.assertEqual(missing, [], "%s not documented (looked for %r)" % (what, fmt))

    def test_alcode_options_and_commands(self):
        c = source("cli/alcode.c")
        text = page("alcode.1")
        longs = long_options(c)
        self.assertIn("db", longs)  # the parser still reads the table
        help_long, help_short = help_options("alcode")
        self.assertTrue(help_long)
        self.assert_options(text, longs | help_long, short_options(c) | help_short, "alcode")
        # Every command of the verb table has its entry under COMMANDS.
        verbs = re.findall(r'\{\s*"([a-z]+)",\s*\d+,\s*(?:\d+|VERB_ANY),\s*\w+,\s*(?:FULL\()?verb_\w+\)?,', c)
        self.assertIn("list", verbs)
        commands = text.split("# COMMANDS", 1)[1].split("\n# ", 1)[0]
        self.assert_documented(commands, verbs, "\n*%s*", "alcode commands")
        synopsis = text.split("# SYNOPSIS", 1)[1].split("\n# ", 1)[0]
        self.assert_documented(synopsis, verbs, "*alcode* [_OPTIONS_] *%s*", "alcode commands in SYNOPSIS")

    def test_kinds(self):
        kinds = re.findall(r'\[CODE_KIND_\w+\] = \{\s*"([a-z]+)"', source("lib/message.c"))
        self.assertEqual(len(kinds), 7)
        self.assertIn("possible", kinds)
        self.assert_documented(page("alcode.1").split("# KINDS", 1)[1], kinds, "\n*%s*\n", "kinds")

    def test_alcoded_options(self):
        c = source("daemon/alcoded.c")
        help_long, help_short = help_options("alcoded")
        self.assertIn("once", help_long)
        self.assert_options(page("alcoded.8"), long_options(c) | help_long, short_options(c) | help_short, "alcoded")

    def test_config_keys(self):
        c = source("lib/config.c")
        text = page("alcode.conf.5")
        global_keys = key_table(c, "config_items", "alcode")
        account_keys = key_table(c, "config_items", "account")
        self.assertIn("employer_domains", global_keys)
        self.assertIn("password_command", account_keys)
        glob = text.split("# THE [alcode] SECTION", 1)[1].split("\n# ", 1)[0]
        acct = text.split("# THE [account NAME] SECTIONS", 1)[1].split("\n# ", 1)[0]
        self.assert_documented(glob, global_keys, "\n*%s* =", "[alcode] keys")
        self.assert_documented(acct, account_keys, "\n*%s* =", "[account] keys")
        self.assert_documented(acct, string_table(c, "tls_mode_table"), "*%s*", "tls values")
        self.assert_documented(acct, string_table(c, "auth_method_table"), "*%s*", "auth values")
        # The shipped example config mentions every key too.
        example = source("config/alcode.conf.example")
        self.assert_documented(example, global_keys + account_keys, "%s = ", "keys in alcode.conf.example")

    def test_rule_keys(self):
        c = source("lib/rules-parse.c")
        text = page("alcode.rules.5")
        keys = set(key_table(c, "rule_items", "rule"))
        self.assertIn("pattern", keys)
        self.assert_documented(text, keys, "\n*%s* =", "rule keys")
        sections = set(re.findall(r'streq\(section, "([a-z]+)"\)', c)) | {"rule NAME"}
        self.assert_documented(text, sections, "\n## [%s]\n", "rule file sections")
        self.assert_documented(text, string_table(c, "rule_check_table"), "*%s*", "check values")

    def test_examples_work(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        alcode = Alcode(tmp)

        # alcode.conf(5): its example loads, with every account.
        conf = literal_blocks(page("alcode.conf.5"))[0]
        alcode.write_config(conf)
        r = alcode.run("check")
        self.assertIn("OK, %d account(s)" % conf.count("[account "), r.stdout)

        # alcode.rules(5): its examples load, alone, and find what they say in a message.
        rules_dir = tmp.join("rules")
        os.makedirs(rules_dir)
        with open(os.path.join(rules_dir, "example.rules"), "w") as f:
            f.write("\n".join(b for b in literal_blocks(page("alcode.rules.5")) if "[rule " in b))
        alcode.write_config("[alcode]\nemployer_domains = menuiseries-durand.fr\n", rules=False)
        with open(alcode.config, "a") as f:
            f.write("rules = %s\n" % rules_dir)
        r = alcode.run("check")
        self.assertIn("OK, 0 account(s), 4 rule(s)", r.stdout)
        mail = tmp.join("m.eml")
        with open(mail, "w") as f:
            f.write("From: Action Logement <ne-pas-repondre@actionlogement.fr>\nTo: jeanne@example.org\n"
                    "Subject: Votre inscription\nContent-Type: text/plain; charset=utf-8\n\n"
                    "Bonjour,\nVotre code spécifique : KT48 ZW93\nCordialement\n")
        r = alcode.run("scan", "--json", mail)
        self.assertIn('"value":"KT48ZW93"', r.stdout)
        self.assertIn('"rule":"al-specific@1"', r.stdout)
        with open(mail, "w") as f:
            f.write("From: RH <rh@menuiseries-durand.fr>\nTo: jeanne@example.org\nSubject: Action Logement\n"
                    "Content-Type: text/plain; charset=utf-8\n\nVotre code d'accès dématérialisé : Q7RT5KX2M9\n")
        r = alcode.run("scan", "--json", mail)
        self.assertIn('"value":"Q7RT5KX2M9"', r.stdout)
        self.assertIn('"trusted":true', r.stdout)
        # The subject reference and the product number of WRITING PATTERNS FOR REAL MAIL.
        with open(mail, "w") as f:
            f.write("From: AL'in <contact@al-in.fr>\nTo: jeanne@example.org\nSubject: AL'in : W7KQ29PX\n"
                    "Content-Type: text/plain; charset=utf-8\n\nUtilisez le code indiqué dans l'objet.\n")
        r = alcode.run("scan", "--json", mail)
        self.assertIn('"value":"W7KQ29PX"', r.stdout)
        self.assertIn('"rule":"subject-code@1"', r.stdout)
        with open(mail, "w") as f:
            f.write("From: Action Logement <mobilijeune@actionlogement.fr>\nTo: jeanne@example.org\n"
                    "Subject: Mobili-Jeune\nContent-Type: text/plain; charset=utf-8\n\n"
                    "Votre demande d'aide MOBILI-JEUNE® est enregistrée sous le numéro MJ-2026-00417.\n")
        r = alcode.run("scan", "--json", mail)
        self.assertIn('"kind":"file","value":"MJ202600417"', r.stdout)


if __name__ == "__main__":
    main()
