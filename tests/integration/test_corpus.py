"""The generated test mailbox as a test: `alcode scan --json` over the mailbox that
tests/tools/mkmail.py writes into the build tree (tests/CMakeLists.txt), with a config holding
its employer domains and the user's own addresses, scored as expected.json says
(tests/integration/corpusscore.py):

- on the `train` half (corpus/sample): precision and trusted precision 1.000, no untrusted code
  reported as trusted, no phished code trusted, no attachment-only value, and recall per kind
  at least what the shipped rules achieve today (RECALL_FLOOR: raise it when the rules improve,
  never lower it to make a change pass);
- the safety net on the `train` half: possible-code false alarms under 1 % of trusted-sender
  mails, and every missed trusted code kept as a possible code;
- on the `heldout` half (corpus/heldout): the same safety properties (nothing untrusted reported
  trusted, no phished code trusted); its recall and precision are printed, not asserted on:
  rules are never tuned on it (bench/corpus_score.py prints both halves for bench/README.md);
- the generator itself: `--check` passes on the sample, and the same seed writes the same bytes.

Extras that the current rules are known to produce are listed by template in KNOWN_EXTRAS with
the issue that fixes them; the test fails when one of them stops happening, so that the list
only shrinks. The printed precision counts them."""

import filecmp
import os
import subprocess
import sys
import unittest

from alcodetest import Alcode, TempDir, load_expected, main, require_corpus
import corpusscore

# template -> why its extra findings are accepted for now (each fixed by the issue named).
# Empty: issue 12 fixed landlord_portal and comp_hr_old_siret.
KNOWN_EXTRAS = {}
# What the shipped rules find on the train half today (mkmail --seed 7 --count 1500 --half train).
RECALL_FLOOR = {"access": 1.0, "company": 1.0, "file": 1.0, "otp": 1.0, "request": 1.0,
                "specific": 1.0, "all": 1.0}
TRUSTED_RECALL_FLOOR = {"all": 1.0}


class Corpus(unittest.TestCase):
    @classmethod
    def scan(cls, sample):
        expected = load_expected(sample)
        a = Alcode(cls.tmp)
        a.write_config(corpusscore.config_text(expected))
        r = a.run("scan", "--json", sample, timeout=600)
        possible = set()
        found = corpusscore.findings(r.stdout, sample, possible)
        cls.possible[sample] = corpusscore.possible_alarms(expected, sample, possible, found)
        return expected, r, found

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.possible = {}
        cls.sample = require_corpus("sample")
        cls.expected, r, cls.found = cls.scan(cls.sample)
        cls.stderr = r.stderr
        cls.score = corpusscore.score(cls.expected, cls.found)
        cls.heldout_dir = require_corpus("heldout")
        cls.heldout_expected, _, heldout_found = cls.scan(cls.heldout_dir)
        cls.heldout = corpusscore.score(cls.heldout_expected, heldout_found)
        print()
        print(corpusscore.table(cls.score, "train half (corpus/sample, %d messages):" % len(cls.expected["messages"])))
        print("  missed, by template: %s" % corpusscore.by_template(cls.score.misses))
        print("  extra, by template:  %s" % corpusscore.by_template(cls.score.extras))
        print(corpusscore.table(cls.heldout, "heldout half (corpus/heldout, %d messages; not asserted on):"
                                % len(cls.heldout_expected["messages"])))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_the_sample_is_the_train_half(self):
        self.assertEqual(self.expected["half"], "train")
        self.assertEqual({m["half"] for m in self.expected["messages"]}, {"train"})
        self.assertEqual(self.heldout_expected["half"], "heldout")
        self.assertGreater(sum(len(m["extractions"]) for m in self.expected["messages"]), 300)

    def test_json_lines(self):
        self.assertEqual(self.stderr, "")
        some = next(iter(next(iter(self.found.values())).values()))
        for key in ("kind", "value", "display", "trusted", "sender", "rule", "source"):
            self.assertIn(key, some)
        listed = {m["file"] for m in self.expected["messages"]}
        self.assertFalse(set(self.found) - listed, "findings in files expected.json does not list")

    def test_train_precision(self):
        unknown = [x for x in self.score.extras if x[1] not in KNOWN_EXTRAS]
        self.assertEqual(unknown, [], "extra findings (file, template, kind, value, trusted)")
        for template in KNOWN_EXTRAS:
            self.assertIn(template, {x[1] for x in self.score.extras},
                          "%s no longer gives an extra finding: remove it from KNOWN_EXTRAS" % template)

    def test_train_trust(self):
        s = self.score.rates()
        self.assertEqual(s["phished_trusted"], 0)
        wrong = [p for p in self.score.problems if p[0] != "trusted reported as untrusted"]
        self.assertEqual(wrong, [])
        # Trusted precision: every code reported trusted is one expected.json lists as trusted,
        # but for the known extras above.
        trusted_extras = [x for x in self.score.extras if x[4] and x[1] not in KNOWN_EXTRAS]
        self.assertEqual(trusted_extras, [])

    def test_train_recall(self):
        for kind, floor in RECALL_FLOOR.items():
            got = self.score.rates(None if kind == "all" else kind)["recall"]
            self.assertGreaterEqual(round(got, 3), floor, "recall of %s fell" % kind)
        got = self.score.rates()["trusted_recall"]
        self.assertGreaterEqual(round(got, 3), TRUSTED_RECALL_FLOOR["all"], "trusted recall fell")

    def test_train_possible_codes(self):
        """The safety net: under 1 % of the mails from trusted senders that hold no code become a
        possible code, and every trusted code the rules miss does."""
        net = self.possible[self.sample]
        print(net.line())
        self.assertGreater(net.trusted, 300)
        self.assertLess(net.alarms / net.trusted, 0.01, dict(net.alarm_templates))
        self.assertEqual(dict(net.silent_templates), {}, "trusted codes missed and not kept as possible codes")

    def test_heldout_safety(self):
        s = self.heldout.rates()
        self.assertEqual(s["phished_trusted"], 0)
        wrong = [p for p in self.heldout.problems if p[0] != "trusted reported as untrusted"]
        self.assertEqual(wrong, [])

    def test_generator_check_and_determinism(self):
        sys.path.insert(0, os.path.dirname(corpusscore.MKMAIL))
        import mkmail
        self.assertTrue(mkmail.check(self.sample, quiet=True), "mkmail --check fails on corpus/sample")
        a, b = self.tmp.join("gen-a"), self.tmp.join("gen-b")
        for out in (a, b):
            r = corpusscore.mkmail(out, 11, 300, check=True)
            self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            self.assertIn("0 problems", r.stdout)
        cmp = filecmp.dircmp(a, b)
        diffs = []

        def walk(c):
            diffs.extend(c.left_only + c.right_only + c.funny_files)
            _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
            diffs.extend(mismatch + errors)
            for sub in c.subdirs.values():
                walk(sub)
        walk(cmp)
        self.assertEqual(diffs, [], "two runs with the same seed differ")
        self.assertGreater(len(os.listdir(os.path.join(a, "perso"))), 2)
        # A different half draws from other templates only.
        r = corpusscore.mkmail(self.tmp.join("gen-c"), 11, 200, half="heldout")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual({m["half"] for m in load_expected(self.tmp.join("gen-c"))["messages"]}, {"heldout"})
        # It never writes over a folder it did not write, even with --force.
        other = self.tmp.join("not-a-mailbox")
        os.makedirs(other)
        with open(os.path.join(other, "keep.txt"), "w") as f:
            f.write("mine\n")
        r = subprocess.run([sys.executable, corpusscore.MKMAIL, other, "--count", "1", "--force"],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not empty", r.stderr)
        self.assertEqual(os.listdir(other), ["keep.txt"])

if __name__ == "__main__":
    main()
