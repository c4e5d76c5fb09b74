#!/usr/bin/env python3
"""Backfill benchmark: `alcoded --once` against the alternatives, same dovecot, same mailbox.

    python3 bench/backfill.py [MAILBOX]      (default /tmp/bench-mailbox; made when missing)

The mailbox (50,000 messages, ~0.5 % with codes, realistic sizes) comes from the project's
generator, `tests/tools/mkmail.py MAILBOX --profile realistic --seed 42` (about 5 GB), and is loaded into a private dovecot (implicit TLS on 127.0.0.1), indexed once, then:
- alcoded --once with an empty store (reads every message through the pipeline, exact recall);
- mbsync full sync of every folder into a Maildir, then rg for the trusted domains and brand
  words over it (the classic "sync then grep");
- doveadm search for the same candidates on the server itself (FROM trusted/employer domains OR
  TEXT brand keywords): the floor for anything that asks the server, which finds fewer codes
  (it sees undecoded HTML and unfolded text).
Each is run RUNS times, medians reported, with ratios. Build first: cmake --build build."""

import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../tests/integration"))
os.environ.setdefault("ALCODE_BUILD_DIR", os.path.join(HERE, "../build"))
from alcodetest import Alcode, Dovecot, TempDir, load_expected, require_tools  # noqa: E402
import corpusscore  # noqa: E402

RUNS = int(os.environ.get("RUNS", "3"))
TRUSTED = ["actionlogement.fr", "al-in.fr", "visale.fr"]
KEYWORDS = ["action logement", "al'in", "alin", "visale"]


def timed(f):
    t = time.monotonic()
    out = f()
    return time.monotonic() - t, out


def main():
    require_tools("mbsync", "rg", "dovecot", "doveadm")
    mailbox = sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench-mailbox"
    if not os.path.exists(os.path.join(mailbox, "expected.json")):
        r = corpusscore.mkmail(mailbox, 42, int(os.environ.get("COUNT", "50000")), profile="realistic")
        if r.returncode != 0:
            sys.exit(r.stderr)
    employer = load_expected(mailbox)["config"]["employer_domains"]
    domains = TRUSTED + employer
    tmp = TempDir(prefix="alcode-bench-")
    try:
        d = Dovecot(tmp)
        n = 0
        for root, dirs, files in os.walk(mailbox):
            dirs.sort()
            rel = os.path.relpath(root, mailbox)
            if rel == "." or not files:
                continue
            folder = rel.replace("INBOX", "Inbox") if rel != "perso/INBOX" else "INBOX"
            for name in sorted(files):
                with open(os.path.join(root, name), "rb") as f:
                    d.deliver("alice", folder, f.read(), name=name + "." + str(n))
                n += 1
        d.start()
        doveadm = ["doveadm", "-c", d.conf]
        # Index every folder once, so that no contender pays for dovecot's first look.
        subprocess.run(doveadm + ["search", "-u", "alice", "mailbox", "*", "all"], check=True,
                       capture_output=True)
        print("mailbox: %d messages in %s" % (n, mailbox))

        rows = {}

        def alcoded():
            a = Alcode(TempDir(prefix="alcode-bench-run-"))
            a.write_config("employer_domains = %s\n" % ", ".join(domains[3:]) + d.account_config("bench"))
            a.daemon("--once", timeout=900)
            codes = len(a.list_json())
            a.tmp.cleanup()
            return codes

        def mbsync_rg():
            local = tmp.join("maildir-%d" % time.monotonic_ns())
            os.makedirs(local)
            rc = tmp.join("mbsyncrc")
            with open(rc, "w") as f:
                f.write("IMAPAccount b\nHost localhost\nPort %d\nUser alice\nPass secret1\nSSLType IMAPS\n"
                        "CertificateFile %s\n\nIMAPStore r\nAccount b\n\nMaildirStore l\nPath %s/\n"
                        "Inbox %s/INBOX\nSubFolders Verbatim\n\nChannel c\nFar :r:\nNear :l:\nPatterns *\n"
                        "Create Near\nSync Pull\nSyncState *\n" % (d.tls_port, d.ca, local, local))
            t_sync, _ = timed(lambda: subprocess.run(["mbsync", "-q", "-c", rc, "c"], check=True,
                                                     capture_output=True))
            pattern = "|".join([x.replace(".", r"\.") for x in domains] + ["action logement", "al.in", "visale"])
            t_rg, out = timed(lambda: subprocess.run(["rg", "-l", "-i", "-e", pattern, local],
                                                     capture_output=True, text=True).stdout)
            subprocess.run(["rm", "-rf", local])
            rows.setdefault("  (mbsync sync only)", []).append((t_sync, ""))
            return len(out.splitlines())

        def search(keys):
            q = ["("]
            for k in keys:
                q += (["OR"] if len(q) > 1 else []) + list(k)
            out = subprocess.run(doveadm + ["search", "-u", "alice", "mailbox", "*"] + q + [")"],
                                 check=True, capture_output=True, text=True).stdout
            return len(out.splitlines())

        def doveadm_search():
            return search([("FROM", x) for x in domains] + [("TEXT", k) for k in KEYWORDS])

        def doveadm_from():
            return search([("FROM", x) for x in domains])

        contenders = [("alcoded --once (codes stored)", alcoded),
                      ("mbsync + rg (candidate files)", mbsync_rg),
                      ("doveadm search FROM or TEXT (hits)", doveadm_search),
                      ("doveadm search FROM only (hits)", doveadm_from)]
        for _ in range(RUNS):
            for name, f in contenders:
                rows.setdefault(name, []).append(timed(f))
        med = {k: statistics.median(t for t, _ in v) for k, v in rows.items()}
        print("\n%-40s %10s %10s" % ("", "median s", "found"))
        for k, v in rows.items():
            print("%-40s %10.2f %10s" % (k, med[k], v[-1][1]))
        a = med["alcoded --once (codes stored)"]
        print("\nalcoded vs mbsync + rg:        %.1fx faster (target >= 10x)" % (med["mbsync + rg (candidate files)"] / a))
        print("alcoded vs doveadm FROM|TEXT:   %.2fx the time (target <= 2x)" % (a / med["doveadm search FROM or TEXT (hits)"]))
        d.stop()
    finally:
        tmp.cleanup()


if __name__ == "__main__":
    main()
