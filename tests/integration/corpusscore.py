"""Scoring of `alcode scan --json` against a mailbox written by tests/tools/mkmail.py, as its
expected.json says: values compare case-insensitively; optional codes may be missing; a code
found under another kind is both a miss and an extra; a finding reported trusted counts for
trusted precision only when expected.json lists it with trusted_sender true.

Used by tests/integration/test_corpus.py and bench/corpus_score.py."""

import collections
import json
import os
import subprocess
import sys

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
MKMAIL = os.path.join(SOURCE_DIR, "tests/tools/mkmail.py")


def mkmail(out, seed, count, profile="functional", half="all", check=False):
    """Writes a mailbox with the project's generator (replacing one it wrote before)."""
    cmd = [sys.executable, MKMAIL, out, "--seed", str(seed), "--count", str(count), "--profile", profile,
           "--half", half, "--force", "--quiet"]
    if check:
        cmd.append("--check")
    return subprocess.run(cmd, capture_output=True, text=True)


def load(sample):
    with open(os.path.join(sample, "expected.json"), encoding="utf-8") as f:
        return json.load(f)


def config_text(expected):
    """An alcode.conf for the mailbox: its employer domains, and the user's own addresses as the
    users of accounts that are never connected."""
    conf = expected["config"]
    text = "employer_domains = %s\n" % ", ".join(conf["employer_domains"])
    for i, address in enumerate(conf.get("user_addresses", [])):
        text += "\n[account a%d]\nhost = imap%d.example.org\nuser = %s\npassword_command = false\n" % (i, i, address)
    return text


def findings(stdout, sample, possible=None):
    """{file: {(kind, value lower case): finding}} from `alcode scan --json` output. Possible
    codes ("kind": "possible", no value) are not findings: their files go to the set
    `possible` when one is given."""
    found = collections.defaultdict(dict)
    for line in stdout.splitlines():
        if not line.strip():
            continue
        o = json.loads(line)
        if o["kind"] == "possible":
            if possible is not None:
                possible.add(os.path.relpath(o["source"], sample))
            continue
        found[os.path.relpath(o["source"], sample)][(o["kind"], o["value"].lower())] = o
    return found


def sender_domain(path):
    """The From domain of a mail file, lower case, or ""."""
    import email
    import email.policy
    import email.utils
    with open(path, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.compat32)
    addr = email.utils.parseaddr(str(m.get("From", "")))[1]
    return addr.rpartition("@")[2].lower()


def possible_alarms(expected, sample, possible, found=None):
    """How the safety net did: a NetScore with the mails from trusted senders (`trusted`), the
    false alarms among them (`alarms`: a possible code on a mail with no expected code, by
    template in `alarm_templates`), and, when `found` (from findings()) is given, the mails
    whose expected trusted code was not read (`missed`) and how many of those the net kept as
    a possible code (`caught`; the others by template in `silent_templates`). Trusted senders:
    the domains of expected.json's config (trusted and employer), subdomains included."""
    conf = expected["config"]
    domains = [d.lower() for d in conf.get("trusted_domains", []) + conf.get("employer_domains", [])]
    n = NetScore()
    for m in expected["messages"]:
        d = sender_domain(os.path.join(sample, m["file"]))
        if not any(d == t or d.endswith("." + t) for t in domains) or "suspicious_sender" in m.get("flags", []):
            continue
        n.trusted += 1
        tpl = m.get("template", m.get("category"))
        wanted = [e for e in m["extractions"] if not e["optional"]]
        if m["file"] in possible and not wanted:
            n.alarms += 1
            n.alarm_templates[tpl] += 1
        if found is None or not any(e["trusted_sender"] for e in wanted):
            continue
        got = found.get(m["file"], {})
        if any(e["trusted_sender"] and (e["kind"], e["value"].lower()) not in got for e in wanted):
            n.missed += 1
            if m["file"] in possible:
                n.caught += 1
            else:
                n.silent_templates[tpl] += 1
    return n


class NetScore:
    def __init__(self):
        self.trusted = self.alarms = self.missed = self.caught = 0
        self.alarm_templates = collections.Counter()
        self.silent_templates = collections.Counter()

    def line(self):
        return ("  possible codes: on %d mails from trusted senders, false alarms (no code expected): %d (%.2f %%); "
                "mails whose trusted code was missed: %d, kept as possible codes: %d"
                % (self.trusted, self.alarms, 100.0 * self.alarms / max(1, self.trusted), self.missed, self.caught))


class Score:
    def __init__(self):
        self.c = collections.defaultdict(collections.Counter)  # kind -> counter
        self.problems = []  # (severity, text, template)
        self.extras = []  # (file, template, kind, value, trusted)
        self.misses = []  # (file, template, kind, value)

    def rates(self, kind=None):
        kinds = [kind] if kind else list(self.c)
        t = collections.Counter()
        for k in kinds:
            t.update(self.c[k])
        ratio = (lambda a, b: t[a] / t[b] if t[b] else 1.0)
        return {"expected": t["expected"], "found": t["found"], "missed": t["expected"] - t["found"],
                "extra": t["extra"], "recall": ratio("found", "expected"),
                "precision": (t["found"] + t["optional_found"]) / (t["found"] + t["optional_found"] + t["extra"])
                if t["found"] + t["optional_found"] + t["extra"] else 1.0,
                "trusted_expected": t["trusted_expected"], "trusted_found": t["trusted_found"],
                "trusted_recall": ratio("trusted_found", "trusted_expected"),
                "trusted_reported": t["trusted_reported"], "trusted_right": t["trusted_right"],
                "trusted_precision": ratio("trusted_right", "trusted_reported"),
                "phished_trusted": t["phished_trusted"], "trust_errors": t["trust_errors"]}


def score(expected, found, half=None):
    """Scores the messages of one half (None: all) of expected.json against found."""
    s = Score()
    for m in expected["messages"]:
        if half and m.get("half") != half:
            continue
        f = m["file"]
        tpl = m.get("template", m.get("category"))
        got = found.get(f, {})
        want = {}
        for e in m["extractions"]:
            want[(e["kind"], e["value"].lower())] = e
        suspicious = "suspicious_sender" in m.get("flags", [])
        for key, e in want.items():
            c = s.c[key[0]]
            o = got.get(key)
            if not e["optional"]:
                c["expected"] += 1
                if e["trusted_sender"]:
                    c["trusted_expected"] += 1
            if o is None:
                if not e["optional"]:
                    s.misses.append((f, tpl, key[0], e["value"]))
                continue
            c["optional_found" if e["optional"] else "found"] += 1
            if o["trusted"] and e["trusted_sender"] and not e["optional"]:
                c["trusted_found"] += 1
            if o["trusted"] and (not e["trusted_sender"] or e["optional"]):
                s.problems.append(("untrusted reported as trusted", "%s %s=%s" % (f, key[0], e["value"]), tpl))
                c["trust_errors"] += 1
            elif not o["trusted"] and e["trusted_sender"] and not e["optional"]:
                s.problems.append(("trusted reported as untrusted", "%s %s=%s" % (f, key[0], e["value"]), tpl))
                c["trust_errors"] += 1
            if suspicious and o["trusted"]:
                c["phished_trusted"] += 1
        for key, o in got.items():
            c = s.c[key[0]]
            if o["trusted"]:
                c["trusted_reported"] += 1
                e = want.get(key)
                if e and e["trusted_sender"] and not e["optional"]:
                    c["trusted_right"] += 1
            if key in want:
                continue
            c["extra"] += 1
            s.extras.append((f, tpl, key[0], o["value"], o["trusted"]))
            if suspicious and o["trusted"]:
                c["phished_trusted"] += 1
        for v in m.get("attachment_only_values", []):
            if any(k[1] == v.lower() for k in got):
                s.problems.append(("attachment-only value reported", "%s %s" % (f, v), tpl))
    return s


def table(s, title):
    lines = [title,
             "  %-9s %6s %6s %6s %6s  %9s %7s  %9s %9s" % ("kind", "codes", "found", "missed", "extra", "precision",
                                                        "recall", "trusted-p", "trusted-r")]
    for kind in sorted(s.c) + [None]:
        r = s.rates(kind)
        lines.append("  %-9s %6d %6d %6d %6d  %9.3f %7.3f  %9.3f %9.3f" % (
            kind or "all", r["expected"], r["found"], r["missed"], r["extra"], r["precision"], r["recall"],
            r["trusted_precision"], r["trusted_recall"]))
    r = s.rates()
    lines.append("  phished codes reported trusted: %d; trust errors: %d" % (r["phished_trusted"], r["trust_errors"]))
    return "\n".join(lines)


def by_template(items):
    """{template: count} of misses or extras."""
    return dict(sorted(collections.Counter(i[1] for i in items).items(), key=lambda kv: -kv[1]))
