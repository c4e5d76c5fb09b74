#!/usr/bin/env python3
"""Recall and precision of the shipped rules on the project's generated mailbox, both halves.

    python3 bench/corpus_score.py [--count N] [--seed N] [--templates] [--build DIR]

Writes two functional mailboxes with tests/tools/mkmail.py in a temporary folder, one from the
`train` templates (seed N) and one from the `heldout` templates (seed N+1), runs
`alcode scan --json` over each with the mailbox's employer domains and user addresses, and
prints per kind: codes expected, found, missed, extra, precision, recall, trusted precision and
trusted recall (see tests/integration/corpusscore.py for the definitions). --templates also
lists the templates whose codes were missed or wrongly found. A gap between the halves is
overfitting: rules are written against `train`; never tune them on `heldout`.
Build first (cmake --build build)."""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../tests/integration"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--templates", action="store_true")
    ap.add_argument("--build", default=os.environ.get("ALCODE_BUILD_DIR", os.path.join(HERE, "../build")))
    args = ap.parse_args()
    os.environ["ALCODE_BUILD_DIR"] = os.path.abspath(args.build)
    from alcodetest import Alcode, TempDir, load_expected  # noqa: E402
    import corpusscore  # noqa: E402

    tmp = TempDir(prefix="alcode-score-")
    try:
        for i, half in enumerate(("train", "heldout")):
            sample = tmp.join(half)
            r = corpusscore.mkmail(sample, args.seed + i, args.count, half=half)
            if r.returncode != 0:
                sys.exit(r.stderr)
            expected = load_expected(sample)
            a = Alcode(tmp)
            a.write_config(corpusscore.config_text(expected))
            possible = set()
            found = corpusscore.findings(a.run("scan", "--json", sample, timeout=900).stdout, sample, possible)
            s = corpusscore.score(expected, found)
            print(corpusscore.table(s, "%s half: %d messages (mkmail --seed %d --count %d --half %s)"
                                    % (half, len(expected["messages"]), args.seed + i, args.count, half)))
            net = corpusscore.possible_alarms(expected, sample, possible, found)
            print(net.line())
            if args.templates:
                print("  missed, by template: %s" % corpusscore.by_template(s.misses))
                print("  extra, by template:  %s" % corpusscore.by_template(s.extras))
                print("  possible-code false alarms, by template: %s" % dict(net.alarm_templates.most_common()))
                print("  missed and not kept as possible, by template: %s" % dict(net.silent_templates.most_common()))
            print()
    finally:
        tmp.cleanup()


if __name__ == "__main__":
    main()
