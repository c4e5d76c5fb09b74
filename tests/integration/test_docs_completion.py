"""Shell completion for alcode: bash (sourced, COMPREPLY read back) and zsh (a real interactive
zsh on a pseudo-terminal, Tab pressed).

The commands and options offered are compared with alcode's own verb and option tables, so a
new command or option that the completions forget fails here."""

import os
import re
import shlex
import subprocess
import unittest

from alcodetest import (SOURCE_DIR, TempDir, Terminal, main, require_tools)

BASH_COMPLETION = os.path.join(SOURCE_DIR, "completions", "alcode.bash")
ZSH_DIR = os.path.join(SOURCE_DIR, "completions")


def verb_table():
    """{verb: [its options]} from cli/alcode.c."""
    with open(os.path.join(SOURCE_DIR, "cli/alcode.c")) as f:
        c = f.read()
    verbs = {}
    for name, opts in re.findall(r'\{\s*"([a-z]+)",\s*\d+,\s*(?:\d+|VERB_ANY),\s*\w+,\s*(?:FULL\()?verb_\w+\)?,'
                                 r'\s*((?:"[^"]*"\s*)+),', c):
        verbs[name] = " ".join(re.findall(r'"([^"]*)"', opts)).split()
    return verbs


class Bash(unittest.TestCase):
    def setUp(self):
        require_tools("bash")
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.home = self.tmp.join("home")
        os.makedirs(os.path.join(self.home, ".config", "alcode"))
        with open(os.path.join(self.home, ".config", "alcode", "alcode.conf"), "w") as f:
            f.write("[alcode]\n[account perso]\nhost = a\n\n[account travail]\nhost = b\n")
        for name in ("mail.eml", "maildir"):
            open(self.tmp.join(name), "w").close()

    def complete(self, line):
        """COMPREPLY for the command line `line` (the cursor at its end)."""
        words = line.split(" ")
        script = "source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_alcode\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n" % (
            shlex.quote(BASH_COMPLETION), " ".join(shlex.quote(w) for w in words), len(words) - 1)
        r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                           cwd=self.tmp.path, env={"HOME": self.home, "PATH": os.environ["PATH"]})
        self.assertEqual(r.stderr, "")
        return sorted(w for w in r.stdout.split("\n") if w)

    def test_commands(self):
        self.assertEqual(self.complete("alcode "), sorted(verb_table()))
        self.assertEqual(self.complete("alcode li"), ["list"])
        self.assertEqual(self.complete("alcode --db x.db l"), ["latest", "list"])
        self.assertEqual(self.complete("alcode -c other.conf sh"), ["show"])

    def test_options_of_every_command(self):
        common = {"--db", "--config", "-c", "--json", "--help", "-h", "--version", "-V"}
        for verb, options in verb_table().items():
            with self.subTest(verb=verb):
                got = set(self.complete("alcode %s -" % verb))
                self.assertEqual(got, common | {"--" + o for o in options})

    def test_kinds_and_values(self):
        kinds = sorted(["specific", "company", "access", "otp", "request", "file"])
        self.assertEqual(self.complete("alcode list --kind "), kinds)
        self.assertEqual(self.complete("alcode list --kind s"), ["specific"])
        self.assertEqual(self.complete("alcode list --kind = o"), ["otp"])  # --kind=o
        self.assertEqual(self.complete("alcode latest "), kinds)
        self.assertEqual(self.complete("alcode latest otp "), [])
        self.assertEqual(self.complete("alcode init --tls "), ["implicit", "none", "starttls"])
        self.assertEqual(self.complete("alcode init --email "), [])

    def test_accounts_and_files(self):
        self.assertEqual(self.complete("alcode list --account "), ["perso", "travail"])
        self.assertEqual(self.complete("alcode rescan t"), ["travail"])
        self.assertEqual(self.complete("alcode scan ma"), ["mail.eml", "maildir"])
        self.assertEqual(self.complete("alcode --db m"), ["mail.eml", "maildir"])


class Zsh(unittest.TestCase):
    def test_tab(self):
        require_tools("zsh")
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        os.makedirs(tmp.join(".config", "alcode"))
        with open(tmp.join(".config", "alcode", "alcode.conf"), "w") as f:
            f.write("[account perso]\n[account travail]\n")
        with open(tmp.join(".zshrc"), "w") as f:
            # alcode is a function here, so Enter shows the line the completion built.
            f.write("fpath=(%s $fpath)\nautoload -Uz compinit && compinit -u -D\nPROMPT='%%%% '\n"
                    "alcode() { print -r -- \"ARGS:$*:END\" }\n" % ZSH_DIR)
        env = {"ZDOTDIR": tmp.path, "HOME": tmp.path, "TERM": "dumb", "PATH": os.environ["PATH"]}
        t = Terminal(["zsh", "-i"], env, timeout=15)
        self.addCleanup(t.close)
        t.expect("% ")
        cases = [
            ("alcode li\t", "list"),
            ("alcode list --kind=spe\t", "list --kind=specific"),
            ("alcode list --acc\tpe\t", "list --account=perso"),
            ("alcode latest o\t", "latest otp"),
            ("alcode init --tl\tst\t", "init --tls=starttls"),
            ("alcode init --no-t\t", "init --no-test"),
            ("alcode rescan tr\t", "rescan travail"),
        ]
        for typed, line in cases:
            with self.subTest(typed=typed):
                t.type(typed)
                t.expect("ARGS:")
                self.assertEqual(t.expect(":END")[:-len(":END")], line)
        t.type("exit")
        self.assertEqual(t.wait(), 0)


if __name__ == "__main__":
    main()
