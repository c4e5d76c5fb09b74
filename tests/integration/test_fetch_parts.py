"""Reading only headers and text parts finds exactly what reading whole messages finds.

A real dovecot holds the generator's functional mailbox (forwards as message/rfc822 and inline,
HTML, quoted replies, many charsets and transfer encodings, attachments with codes printed in
them) plus hand-made mails that probe how a message is put back together: attachments of a
few hundred KB next to the text, a forward inside a forward, a message/rfc822 sent base64,
text attachments and calendars, a message that is only a message/rfc822, no MIME at all, an
unclosed multipart, a mail over 256 KB. `alcoded --once` runs twice on it: as it works now
(BODYSTRUCTURE, then the sections) and, through a test hook, as it used to (every message
whole). Asserts that
- both store the same codes, with the same provenance (folder, UID) and trust, and these are
  what `alcode scan` finds in the files;
- STATUS= says "found your code spécifique" while the scan goes on;
- the partial read does not download the attachments (dovecot's own count, logged at logout);
- in a folder of many messages, an HTML alternative next to a plain one is read only for the
  mail a rule reads (a trusted sender's, or one that names the brand), mail whose sender claims
  or imitates a trusted domain or names the brand only in a link, or when the plain one is short
  enough to be a stub, and the codes are still those of the whole messages.
Messages come in 1,000-UID chunks: one folder holds every generated message again (1,300), so
that the order of the stored codes (the first sighting of a code is its source) is checked
across chunks too, and both ways of listing a folder (SEARCH first, or not) are used.
"""

import base64
import json
import os
import re
import subprocess
import sys
import unittest

from alcodetest import Alcode, Dovecot, NotifySocket, TempDir, main

HERE = os.path.dirname(os.path.abspath(__file__))
MKMAIL = os.path.join(HERE, "..", "tools", "mkmail.py")

SPEC = "Bonjour,\r\nVotre code sp\xe9cifique AL'in : %s\r\nL'\xe9quipe AL'in\r\n"


def blob(n, seed):
    """n bytes of base64 lines, as an attachment is sent."""
    raw = bytes((i * 7 + seed) % 256 for i in range(n * 3 // 4))
    b = base64.b64encode(raw)
    return b"\r\n".join(b[i:i + 76] for i in range(0, len(b), 76))


def head(subject, sender="AL'in <notifications@al-in.fr>", extra=""):
    head.n = getattr(head, "n", 0) + 1
    return ("From: %s\r\nTo: camille@test.example\r\nSubject: %s\r\nDate: Mon, 02 Mar 2026 09:14:00 +0100\r\n"
            "Message-ID: <probe%d@test.example>\r\nMIME-Version: 1.0\r\n%s" % (sender, subject, head.n, extra))


def edge_mails():
    """(name, bytes) of the hand-made probes."""
    out = []
    # Text, HTML and two big attachments (a PDF and a JPEG).
    out.append(("attachments", (head("Votre code", extra="Content-Type: multipart/mixed; boundary=\"mix\"\r\n") +
        "\r\n--mix\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
        "--alt\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
        SPEC % "KX7P 2M9Q" +
        "\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "<p>Votre code sp=C3=A9cifique AL'in : <b>KX7P 2M9Q</b></p>\r\n--alt--\r\n"
        "\r\n--mix\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; "
        "filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode("latin-1") + blob(300000, 1) +
        b"\r\n--mix\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n" + blob(200000, 2) +
        b"\r\n--mix--\r\n"))
    # A forward inside a forward, the inner one carrying a code.
    inner = (head("Code", extra="Content-Type: text/plain; charset=utf-8\r\n") + "\r\n" + SPEC % "QW3E 8R7T").encode("latin-1")
    middle = (head("Fwd: Code", sender="Camille <camille@test.example>",
                   extra="Content-Type: multipart/mixed; boundary=\"m2\"\r\n").encode() +
              b"\r\n--m2\r\nContent-Type: text/plain\r\n\r\nVoir ci-joint.\r\n--m2\r\nContent-Type: message/rfc822\r\n\r\n" +
              inner + b"\r\n--m2--\r\n")
    out.append(("forward-in-forward", head("Fwd: Fwd: Code", sender="Dominique <dominique@test.example>",
                                           extra="Content-Type: multipart/mixed; boundary=\"m1\"\r\n").encode() +
                b"\r\n--m1\r\nContent-Type: text/plain\r\n\r\nPour info.\r\n--m1\r\nContent-Type: message/rfc822\r\n\r\n" +
                middle + b"\r\n--m1\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                blob(50000, 3) + b"\r\n--m1--\r\n"))
    # A message/rfc822 sent base64 (clients do it).
    out.append(("encoded-forward", head("Fwd: encoded", sender="Dominique <dominique@test.example>",
                                        extra="Content-Type: multipart/mixed; boundary=\"e\"\r\n").encode() +
                b"\r\n--e\r\nContent-Type: text/plain\r\n\r\nCi-joint.\r\n--e\r\nContent-Type: message/rfc822\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(inner).replace(b"\n", b"\r\n") +
                b"\r\n--e--\r\n"))
    # Text attachments: a .txt with a code (not the message), a calendar, a CSV.
    out.append(("text-attachments", (head("Votre code", extra="Content-Type: multipart/mixed; boundary=\"t\"\r\n") +
        "\r\n--t\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n" + SPEC % "ZP4L 6N2B" +
        "\r\n--t\r\nContent-Type: text/plain; name=\"exemple.txt\"\r\nContent-Disposition: attachment\r\n\r\n" +
        SPEC % "AAAA 1111" +
        "\r\n--t\r\nContent-Type: text/calendar\r\n\r\nBEGIN:VCALENDAR\r\nSUMMARY:code 7HJK 9LMN\r\nEND:VCALENDAR\r\n"
        "\r\n--t\r\nContent-Type: text/csv\r\n\r\ncode;BBBB2222\r\n--t--\r\n").encode("latin-1")))
    # Only a message/rfc822 (read whole), and no MIME at all.
    out.append(("only-a-message", head("Fwd", sender="Dominique <dominique@test.example>",
                                       extra="Content-Type: message/rfc822\r\n").encode() + b"\r\n" + inner))
    out.append(("no-mime", ("From: AL'in <notifications@al-in.fr>\r\nSubject: Votre code\r\n"
                            "Message-ID: <nomime@test.example>\r\n\r\n" + SPEC % "HJ5K 3P8W").encode("latin-1")))
    # A multipart never closed, its text in the last part.
    out.append(("unclosed", (head("Votre code", extra="Content-Type: multipart/alternative; boundary=\"u\"\r\n") +
                             "\r\n--u\r\nContent-Type: text/html; charset=windows-1252\r\n\r\n<div>" + SPEC % "RT6Y 4U2I" +
                             "</div>\r\n").encode("cp1252")))
    # Over 256 KB, the code in the text (the worker used to read these separately).
    out.append(("large", (head("Votre code", extra="Content-Type: multipart/mixed; boundary=\"l\"\r\n") +
                          "\r\n--l\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                          base64.encodebytes((SPEC % "MN8B 5V4C").encode()).decode() +
                          "\r\n--l\r\nContent-Type: video/mp4\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode() +
                blob(2000000, 4) + b"\r\n--l--\r\n"))
    return out


def alternative(subject, sender, plain, html, extra="", plain_cte="8bit"):
    return (head(subject, sender=sender, extra=extra + "Content-Type: multipart/alternative; boundary=\"alt\"\r\n") +
            "\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: %s\r\n\r\n" % plain_cte + plain +
            "\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + html +
            "\r\n--alt--\r\n").encode()


PLAIN = "Bonjour,\r\n" + "Voici les nouvelles de la semaine, en bref, pour ceux qui lisent en texte.\r\n" * 5
ARTICLE = "<tr><td><h3>Les nouvelles</h3><p>Un article de la semaine, avec tout son texte et ses liens.</p></td></tr>\r\n"


def alternative_mails():
    """(name, bytes): 100 newsletters whose HTML is 60 KB next to a 400-byte plain text, and
    three mails whose code is only in their HTML alternative (10 KB: too large to read whole)."""
    out = [("newsletter%03d" % i, alternative("Les nouvelles n°%d" % i, "Le Journal <news@journal.example>",
                                              PLAIN, "<table>" + ARTICLE * 560 + "</table>")) for i in range(100)]
    # A trusted sender: the HTML is read again.
    out.append(("trusted", alternative("Votre espace AL'in", "AL'in <notifications@al-in.fr>", PLAIN,
                                       "<p>Votre code sp\u00e9cifique AL'in : <b>PL7K 3M4N</b></p>" + ARTICLE * 100)))
    # Anyone whose plain text names the brand: read again, the code untrusted.
    out.append(("brand-in-plain", alternative("Pour info", "Dominique <dominique@test.example>",
                                              PLAIN + "Cela concerne Action Logement.\r\n",
                                              "<p>Votre code sp\u00e9cifique AL'in : <b>WQ2E 9R4T</b></p>" + ARTICLE * 100)))
    # A plain text too short to say it all ("open it in a browser"): the HTML read at once.
    out.append(("stub", alternative("Message", "Dominique <dominique@test.example>",
                                    "Ouvrez ce message dans un navigateur.\r\n",
                                    "<p>Votre code sp\u00e9cifique AL'in : <b>ZX5C 7V6B</b></p>" + ARTICLE * 100)))
    return out


def claimed_mails(employer):
    """(name, bytes): the same 100 newsletters, and mails from senders no rule trusts whose plain
    text (over 256 bytes) does not name the brand in words, and whose HTML alternative (10 KB)
    does, next to a code: whole, each gives an untrusted code. Found by a user trial
    (usertrial3): the brand only in an address, the employer's domain failing DMARC, a look-alike
    domain with a plain display name, a plain part that does not decode."""
    out = [m for m in alternative_mails() if m[0].startswith("newsletter")]
    code = "<p>Action Logement : votre code sp\u00e9cifique : <b>%s</b></p>" + ARTICLE * 100
    # A forward as Gmail writes it when the original had no display name.
    out.append(("forward-address", alternative(
        "Fwd: pour toi", "Dominique <dominique@test.example>",
        PLAIN + "---------- Forwarded message ---------\r\nFrom: ne-pas-repondre@actionlogement.fr\r\n"
                "Subject: Votre code\r\n", code % "FW4D 2K17")))
    # A web address without a scheme.
    out.append(("www-address", alternative(
        "Votre dossier", "Service Dossiers <dossiers@logement-conseil.example>",
        PLAIN + "Suivez votre demande sur www.actionlogement.fr/suivi\r\n", code % "WW3B 2K18")))
    # The employer's domain, but its DMARC check failed: not trusted, yet read whole.
    out.append(("employer-dmarc-fail", alternative(
        "Information RH", "RH <rh@%s>" % employer, PLAIN, code % "DM4R 7C2F",
        extra="Authentication-Results: mx.test.example; dmarc=fail header.from=%s\r\n" % employer)))
    # A Cyrillic look-alike of actionlogement.fr, a plain display name.
    out.append(("lookalike", alternative("Information", "Service <noreply@\u0430ctionlogement.fr>", PLAIN,
                                         code % "LK8C 3P2W")))
    # A plain part labelled base64 that is not: nothing of it decodes.
    out.append(("undecodable-plain", alternative("Message", "Dominique <dominique@test.example>",
                                                 "%%%% not base64 %%%%\r\n" * 20, code % "UD5P 4L9N",
                                                 plain_cte="base64")))
    return out


def rows_of(a):
    """Every code with the message shown as its source, and every sighting (message, rule, trust)."""
    return (sorted((c["account"], c["folder"], c["uid"], c["kind"], c["value"], c["trusted"]) for c in a.list_json()) +
            sorted(tuple(r) for r in a.sql(
                "SELECT m.folder, m.uid, c.kind, c.value, s.rule, s.trusted FROM sightings s"
                " JOIN codes c ON c.id = s.code JOIN messages m ON m.id = s.message")))


def bytes_out(log, since):
    """What dovecot sent to the client, by its logout lines after offset since."""
    return sum(int(m) for m in re.findall(r"out=(\d+)", log[since:]))


class FetchParts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.box = cls.tmp.join("box")
        subprocess.run([sys.executable, MKMAIL, cls.box, "--count", "1300", "--seed", "16", "--quiet"], check=True)
        with open(os.path.join(cls.box, "expected.json")) as f:
            cls.config = json.load(f)["config"]
        cls.dovecot = Dovecot(cls.tmp, users={"alice": "secret1", "bob": "secret2", "carol": "secret3"})
        cls.files = []
        for root, dirs, files in os.walk(cls.box):
            dirs.sort()
            rel = os.path.relpath(root, cls.box)
            if rel == "." or not files:
                continue
            mailbox, folder = rel.split("/", 1)
            folder = "INBOX" if folder == "INBOX" and mailbox == "perso" else mailbox + "/" + folder
            for name in sorted(files):
                with open(os.path.join(root, name), "rb") as f:
                    raw = f.read()
                cls.dovecot.deliver("alice", folder, raw, name=name)
                # And all of them in one folder of more than 1,000 messages (listed with
                # SEARCH, then read in chunks; smaller folders are read without SEARCH).
                cls.dovecot.deliver("alice", "Big", raw, name=name + ".big")
                cls.files.append(os.path.join(root, name))
        edges = cls.tmp.join("edges")
        os.makedirs(edges)
        for name, raw in edge_mails():
            cls.dovecot.deliver("alice", "Edge", raw, name=name)
            with open(os.path.join(edges, name + ".eml"), "wb") as f:
                f.write(raw)
            cls.files.append(os.path.join(edges, name + ".eml"))
        for name, raw in alternative_mails():
            cls.dovecot.deliver("bob", "INBOX", raw, name=name)
        for name, raw in claimed_mails(cls.config["employer_domains"][0]):
            cls.dovecot.deliver("carol", "INBOX", raw, name=name)
        cls.dovecot.start()

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        cls.tmp.cleanup()

    def run_once(self, env=None, user="alice"):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        a = Alcode(tmp)
        a.notify = NotifySocket(tmp)
        self.addCleanup(a.notify.close)
        env = dict(env or {}, **a.notify.env())
        a.write_config("employer_domains = %s\notp_retention = 3650\n" % ", ".join(self.config["employer_domains"]) +
                       self.dovecot.account_config("box", user=user))
        since = len(self.dovecot.log())
        r = a.daemon("--once", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return a, bytes_out(self.dovecot.log(), since)

    def test_same_codes_as_whole_messages(self):
        parts, parts_bytes = self.run_once()
        # Said as soon as the user's code spécifique is stored (the mailbox has several).
        status = parts.notify.values("STATUS")
        self.assertTrue(any("box: scanning" in v and "found your code spécifique" in v for v in status), status)
        whole, whole_bytes = self.run_once(env={"ALCODE_TEST_FULL_FETCH": "1"})
        got, want = rows_of(parts), rows_of(whole)
        self.assertGreater(len(want), 100)
        self.assertEqual(sorted(set(got) - set(want)), [], "found only reading text parts")
        self.assertEqual(sorted(set(want) - set(got)), [], "missed reading text parts")
        self.assertEqual(got, want)

        # And what `alcode scan` finds in the files themselves.
        r = parts.run("scan", "--json", *self.files)
        scanned = {(c["kind"], c["value"], c["trusted"]) for c in map(json.loads, r.stdout.splitlines())}
        codes = [c for c in got if len(c) == 6 and c[0] == "box"]
        # Sighting by sighting (a message and what it gave), as scan reports them. Not in Big,
        # which holds copies out of their folders: the user's sent mail there is not in a Sent
        # folder, so it is judged as anyone's mail. scan names every other folder as IMAP does.
        sightings = [c for c in got if len(c) == 6 and c[0] != "box"]
        self.assertEqual({(k, v, bool(t)) for (f, _, k, v, _, t) in sightings if f != "Big"}, scanned)
        # The probes: the codes next to attachments are found, the one in an attached file is not.
        values = {v for (_, f, _, _, v, _) in codes if f == "Edge"}
        for v in ("KX7P2M9Q", "ZP4L6N2B", "HJ5K3P8W", "RT6Y4U2I", "MN8B5V4C"):
            self.assertIn(v, {x.replace(" ", "") for x in values})
        self.assertNotIn("AAAA1111", {x.replace(" ", "") for x in values})

        self.assertGreater(whole_bytes, 0)
        print("\n  %d codes and sightings; downloaded %.2f MB for headers and text parts, %.2f MB for whole messages"
              % (len(got), parts_bytes / 1e6, whole_bytes / 1e6))
        # The probes carry 2.55 MB of attachments, the generator's mail a few more. (The old way
        # read the first 256 KB of larger messages whole, then their text parts.)
        total = sum(os.path.getsize(f) for f in self.files)  # (Big holds most of it again)
        print("  the mailbox: %.2f MB" % (total / 1e6))
        self.assertLess(parts_bytes, 2 * total - 2550000)
        self.assertLess(parts_bytes, whole_bytes)

    def test_html_alternative_only_when_a_rule_reads_the_mail(self):
        parts, parts_bytes = self.run_once(user="bob")
        whole, whole_bytes = self.run_once(env={"ALCODE_TEST_FULL_FETCH": "1"}, user="bob")
        got, want = rows_of(parts), rows_of(whole)
        self.assertEqual(got, want)
        codes = {(c["value"].replace(" ", ""), c["trusted"]) for c in parts.list_json()}
        self.assertEqual(codes, {("PL7K3M4N", True), ("WQ2E9R4T", False), ("ZX5C7V6B", False)})
        # The newsletters' HTML (100 times 60 KB) is not downloaded: their plain text and headers
        # are under 1 KB each.
        print("\n  downloaded %.2f MB (whole messages: %.2f MB)" % (parts_bytes / 1e6, whole_bytes / 1e6))
        self.assertGreater(whole_bytes, 6000000)
        self.assertLess(parts_bytes, 500000)

    def test_html_alternative_when_a_link_or_the_sender_claims_the_brand(self):
        parts, _ = self.run_once(user="carol")
        whole, _ = self.run_once(env={"ALCODE_TEST_FULL_FETCH": "1"}, user="carol")
        self.assertEqual(rows_of(parts), rows_of(whole))
        # Past what a chunk may keep of its first reads, the messages read again are read
        # again whole text: the same codes.
        again_whole, _ = self.run_once(env={"ALCODE_TEST_KEPT_MAX": "0"}, user="carol")
        self.assertEqual(rows_of(again_whole), rows_of(whole))
        codes = {(c["value"].replace(" ", ""), c["trusted"]) for c in parts.list_json()}
        self.assertEqual(codes, {("FW4D2K17", False), ("WW3B2K18", False), ("DM4R7C2F", False),
                                 ("LK8C3P2W", False), ("UD5P4L9N", False)})

if __name__ == "__main__":
    main()
