"""Skips are visible: a test file with a skipped method says so (SKIPPED lines, exit 77 when
every method skipped); under CI=true any skip fails the file. Runs small files through
alcodetest.main() as ctest runs the real ones."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import alcodetest  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def run_file(body, ci):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "test_sample.py")
        with open(path, "w") as f:
            f.write("import sys, unittest\nsys.path.insert(0, %r)\nimport alcodetest\n" % HERE)
            f.write(textwrap.dedent(body))
            f.write("\nif __name__ == '__main__':\n    alcodetest.main()\n")
        env = dict(os.environ)
        env.pop("CI", None)
        if ci:
            env["CI"] = "true"
        return subprocess.run([sys.executable, "-B", path], env=env, capture_output=True, text=True,
                              timeout=60)


SOME = """
class T(unittest.TestCase):
    def test_runs(self):
        self.assertEqual(1 + 1, 2)

    def test_skips(self):
        self.skipTest("no such tool here")
"""

ALL = """
class T(unittest.TestCase):
    def test_skips(self):
        self.skipTest("no such tool here")
"""


class SkipsTest(unittest.TestCase):
    def test_some_skipped_outside_ci(self):
        p = run_file(SOME, ci=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("SKIPPED: __main__.T.test_skips: no such tool here", p.stderr)
        self.assertIn("SKIPPED: 1 of 2 tests in test_sample.py did not run", p.stderr)

    def test_all_skipped_outside_ci_exits_77(self):
        p = run_file(ALL, ci=False)
        self.assertEqual(p.returncode, alcodetest.SKIP, p.stderr)
        self.assertIn("SKIPPED: 1 of 1 tests", p.stderr)

    def test_any_skip_fails_under_ci(self):
        for body in (SOME, ALL):
            p = run_file(body, ci=True)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("FAIL (CI forbids skipping): __main__.T.test_skips", p.stderr)

    def test_nothing_skipped_says_nothing(self):
        p = run_file("class T(unittest.TestCase):\n    def test_runs(self):\n        pass\n", ci=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("SKIPPED", p.stderr)


if __name__ == "__main__":
    alcodetest.main()
