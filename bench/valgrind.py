#!/usr/bin/env python3
"""The integration path under valgrind memcheck: zero errors, zero definitely lost bytes.

The test suite runs under ASan + UBSan (scripts/test); valgrind cannot run those binaries,
so this script builds a plain one (build-valgrind/, RelWithDebInfo, test hooks on) and runs,
each under `valgrind --leak-check=full --error-exitcode=99 --errors-for-leak-kinds=definite`:
  1. alcoded --once against a private dovecot holding a mailbox from tests/tools/mkmail.py (TLS, LOGIN, LIST,
     EXAMINE, SEARCH, streamed FETCH, BODYSTRUCTURE reads of large messages, the pipeline,
     the store);
  2. alcoded (not --once) through IDLE, a new mail, and SIGTERM;
  3. alcode scan --json over the sample, alcode list --json, alcode check.
PCRE2's JIT is not followed by valgrind; under valgrind the rules use the interpreter
(rules.c detects valgrind; ALCODE_PCRE2_NO_JIT=1 does the same by hand).

Usage: python3 bench/valgrind.py   (exit 0 when every run is clean; the summary of each run
is printed). Takes a few minutes on 2 cores."""

import os
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, "build-valgrind")
os.environ["ALCODE_BUILD_DIR"] = BUILD
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from alcodetest import Alcode, Dovecot, TempDir, binary, read_log, wait_for  # noqa: E402
import corpusscore  # noqa: E402

VALGRIND = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite", "--error-exitcode=99", "--track-fds=no",
            "--num-callers=30"]


def build():
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    "-DALCODE_TEST_HOOKS=ON", "-DBUILD_TESTING=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j%d" % os.cpu_count()], check=True, stdout=subprocess.DEVNULL)


def summary(name, rc, err, took):
    clean = rc != 99 and "Invalid" not in err and "uninitialised" not in err
    print("%-44s exit %3d  %6.1f s  %s" % (name, rc, took, "clean" if clean else "NOT CLEAN"))
    if not clean:
        print(err[-6000:])
    return clean


def run(name, args, env, timeout=1800):
    t0 = time.monotonic()
    r = subprocess.run(VALGRIND + args, env=env, capture_output=True, text=True, timeout=timeout)
    return summary(name, r.returncode, r.stderr, time.monotonic() - t0)


def main():
    build()
    tmp = TempDir()
    ok = True
    try:
        sample = tmp.join("mailbox")
        r = corpusscore.mkmail(sample, 7, 1500, half="train")
        if r.returncode != 0:
            sys.exit(r.stderr)
        d = Dovecot(tmp)
        d.load_tree("alice", sample, {"perso/INBOX": "INBOX", "perso/Junk": "Junk"})
        # One large message, read by its text parts (BODYSTRUCTURE path).
        big = (b"From: Action Logement <ne-pas-repondre@actionlogement.fr>\r\nSubject: big\r\n"
               b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
               b"Votre code specifique : VG4L 7R2D\r\n--b\r\nContent-Type: application/octet-stream\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUFBQUFB" * 100000 + b"\r\n--b--\r\n")
        d.deliver("alice", "INBOX", big)
        d.start()
        a = Alcode(tmp)
        a.write_config("employer_domains = %s\n" % ", ".join(corpusscore.load(sample)["config"]["employer_domains"])
                       + d.account_config("vg"))
        env = a.env({"ASAN_OPTIONS": ""})

        ok &= run("alcoded --once (sample, %d folders)" % len(os.listdir(d.maildir("alice"))),
                  [binary("alcoded"), "--once"], env)
        codes = a.run("list", "--json").stdout.count("\n")
        print("  %d codes stored" % codes)
        ok &= codes > 100

        # The daemon through IDLE and a stop.
        log = open(tmp.join("vg-daemon.log"), "w+")
        p = subprocess.Popen(VALGRIND + [binary("alcoded"), "--verbose"], env=dict(env, ALCODE_TEST_POLL_INTERVAL="10"),
                             stdout=log, stderr=subprocess.STDOUT, text=True)
        p.logfile = log
        t0 = time.monotonic()
        wait_for(lambda: "watching with IDLE" in read_log(p), timeout=600, what="IDLE under valgrind")
        d.deliver("alice", "INBOX", big.replace(b"VG4L 7R2D", b"VG5M 8S3E"))
        wait_for(lambda: "VG5M8S3E" in a.run("list", "--json").stdout, timeout=300, what="the new mail")
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=300)
        ok &= summary("alcoded: IDLE, new mail, SIGTERM", rc, read_log(p), time.monotonic() - t0)

        ok &= run("alcode scan --json (sample)", [binary("alcode-full"), "scan", "--json", sample], env)
        ok &= run("alcode list --json", [binary("alcode"), "list", "--json"], env)
        ok &= run("alcode check", [binary("alcode-full"), "check"], env)
        d.stop()
    finally:
        tmp.cleanup()
    print("valgrind: %s" % ("every run clean" if ok else "ERRORS"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
