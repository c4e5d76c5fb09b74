"""The shared sample corpus as a test: `alcode scan --json` over ../shared/corpus/sample, with
a config holding the corpus's employer domains and the user's own addresses (as the accounts'
users), compared with expected.json as its scoring_notes say:

- every non-optional expected code is found, with the right kind and trust;
- nothing else is reported (attachment_only_values in particular);
- an untrusted code is never reported as trusted (optional ones included);
- look-alike and spoofed senders are never trusted.

Precision and recall per kind are printed (hard cases apart). Misses that cannot be fixed
without fitting the rules to the corpus's wording go in KNOWN_MISSES, each with its reason; any
other difference fails."""

import collections
import json
import os
import unittest

from alcodetest import Alcode, TempDir, load_expected, main, require_corpus

# (file, kind, canonical value) -> why it is accepted as a miss. Empty: the pack finds all.
KNOWN_MISSES = {}
# (file, kind, canonical value) -> why it is accepted as an extra finding.
KNOWN_EXTRAS = {}
# (category, kind) -> why every such finding is accepted as an extra: the sample was written
# before these were wanted.
KNOWN_EXTRA_CATEGORIES = {
    ("admin_sne", "request"): "issue 12: the national request number (numero unique) is read from the "
                              "attestation of demande-logement-social.gouv.fr, trusted from that domain only; "
                              "the sample expects nothing there (written when include_sne was off)",
}


class Corpus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sample = require_corpus()
        cls.expected = load_expected(cls.sample)
        cls.tmp = TempDir()
        cls.alcode = Alcode(cls.tmp)
        conf = cls.expected["config"]
        text = "employer_domains = %s\n" % ", ".join(conf["employer_domains"])
        # The user's own addresses are the users of their accounts (never connected here).
        for i, address in enumerate(conf.get("user_addresses", [])):
            text += "\n[account a%d]\nhost = imap%d.example.org\nuser = %s\npassword_command = false\n" % (
                i, i, address)
        cls.alcode.write_config(text)
        r = cls.alcode.run("scan", "--json", cls.sample)
        cls.stderr = r.stderr
        cls.found = collections.defaultdict(dict)
        cls.possible = set()
        for line in r.stdout.splitlines():
            o = json.loads(line)
            rel = os.path.relpath(o["source"], cls.sample)
            if o["kind"] == "possible":  # no value: a mail that may hold a code no rule read
                cls.possible.add(rel)
                continue
            # Values keep their case; identity is caseless.
            cls.found[rel][(o["kind"], o["value"].upper())] = o

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_json_lines(self):
        self.assertEqual(self.stderr, "")
        some = next(iter(next(iter(self.found.values())).values()))
        for key in ("kind", "value", "display", "trusted", "sender", "rule", "source"):
            self.assertIn(key, some)

    def test_scoring(self):
        self.maxDiff = None
        tp = collections.Counter()
        fp = collections.Counter()
        fn = collections.Counter()
        hard = collections.Counter()
        problems = []
        listed = set()
        for m in self.expected["messages"]:
            f = m["file"]
            listed.add(f)
            got = self.found.get(f, {})
            want = {(e["kind"], e["value"].upper()): e for e in m["extractions"]}
            suspicious = "suspicious_sender" in m.get("flags", [])
            for key, e in want.items():
                o = got.get(key)
                if o is None:
                    if e.get("optional"):
                        continue
                    fn[key[0]] += 1
                    if (f,) + key not in KNOWN_MISSES:
                        problems.append("missed %s %s=%s (%s)" % (f, key[0], key[1], m["category"]))
                    continue
                tp[key[0]] += 1
                if m.get("difficulty") == "hard":
                    hard["found"] += 1
                if o["trusted"] and not e["trusted_sender"]:
                    problems.append("UNTRUSTED REPORTED AS TRUSTED %s %s=%s" % (f, key[0], key[1]))
                elif o["trusted"] != e["trusted_sender"] and not e.get("optional"):
                    problems.append("trust %s %s=%s: got %s" % (f, key[0], key[1], o["trusted"]))
                if suspicious and o["trusted"]:
                    problems.append("suspicious sender trusted %s" % f)
                if o["value"].upper() != key[1] or any(ch in o["value"] for ch in " .-\u00a0"):
                    problems.append("value not canonical %s %s" % (f, o["value"]))
            for key, o in got.items():
                if key in want:
                    continue
                if (m["category"], key[0]) in KNOWN_EXTRA_CATEGORIES:
                    continue
                fp[key[0]] += 1
                if (f,) + key not in KNOWN_EXTRAS:
                    problems.append("extra %s %s=%s display %r (%s)" % (f, key[0], key[1], o["display"],
                                                                       m["category"]))
            for v in m.get("attachment_only_values", []):
                if any(k[1] == v for k in got):
                    problems.append("attachment-only value extracted %s %s" % (f, v))
        self.assertFalse(set(self.found) - listed, "findings in files expected.json does not list")

        print("\nper kind (alcode scan over %d messages):" % len(self.expected["messages"]))
        for kind in sorted(set(tp) | set(fn) | set(fp)):
            p = tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else 1.0
            r = tp[kind] / (tp[kind] + fn[kind]) if tp[kind] + fn[kind] else 1.0
            print("  %-9s found %4d  missed %3d  extra %3d  precision %.3f  recall %.3f"
                  % (kind, tp[kind], fn[kind], fp[kind], p, r))
        total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
        print("  %-9s found %4d  missed %3d  extra %3d  precision %.3f  recall %.3f"
              % ("all", total_tp, total_fn, total_fp, total_tp / max(1, total_tp + total_fp),
                 total_tp / max(1, total_tp + total_fn)))
        print("  hard cases: %d codes found" % hard["found"])
        self.assertEqual(problems, [])
        for key in KNOWN_MISSES:
            self.assertNotIn(key[1:], self.found.get(key[0], {}),
                             "a known miss is found now: remove it from KNOWN_MISSES")


if __name__ == "__main__":
    main()
