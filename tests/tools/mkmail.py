#!/usr/bin/env python3
"""mkmail.py: alcode's own test mailbox generator.

Writes a synthetic mailbox of RFC 5322 `.eml` files in a folder tree (one person's personal
mailbox `perso/` and work mailbox `travail/`), and `expected.json`, which lists for every file
the codes a correct extractor reports. Standard library only; the same arguments always give
byte-identical output (each message draws from its own random source, seeded with the seed and
its number).

    mkmail.py OUT [--seed N] [--count N] [--profile functional|realistic]
                  [--half train|heldout|all] [--force] [--check] [--quiet]

OUT        the folder to write; it must be empty or absent, or (--force) a folder this script
           wrote before, whose mail folders and expected.json are then replaced.
--seed     random seed (default 1).
--count    number of messages (default 1500 for functional, 50000 for realistic).
--profile  functional: a dense mailbox for tests, about 30 % of the messages carry codes, the
           rest are near misses, phishing, other services' codes and ordinary mail.
           realistic: a mailbox for benchmarks, about 0.5 % of the messages carry codes, with
           realistic sizes (see "Sizes" below).
--half     which templates to draw from (see "Halves"); default all.
--check    after writing, re-read every file with Python's email parser and verify that
           expected.json matches it: every file listed, every expected value present in the
           decoded subject or text parts, every attachment-only value absent from them.
--force    replace a mailbox this script wrote before.
--quiet    print only errors and the --check summary.

Halves
------
Every template (a way of writing one kind of mail: its wording, language and layout) belongs to
exactly one half, fixed here in the code: within each category, templates alternate train,
heldout, train, ... in the order they are defined; templates added later (the "Train templates
added" section) are train templates by name, so the held-out half stays the same mail. `--half train` draws only from train
templates, `--half heldout` only from held-out ones. Rules are written and tuned against
`train`; `heldout` measures them on wording they were never fitted to, so the gap between the
two halves shows overfitting. Do not read held-out mail, or this file's held-out templates,
while writing rules. The renderings that are not wording (charset, transfer encoding, text or
HTML, code grouping and case where a template leaves them open, folder) are drawn in both
halves alike.

Folders
-------
perso/INBOX, perso/Junk, perso/Trash, perso/Archives, perso/Sent, travail/INBOX, travail/Junk,
travail/Archives, "travail/Sent Items". A folder exists only when it holds a message. Files are
named after the message's number (six digits, unique over the mailbox).

expected.json (format "alcode-corpus/1")
----------------------------------------
{"format": "alcode-corpus/1", "generator": "mkmail.py N", "seed", "profile", "half", "count",
 "config": {"trusted_domains", "employer_domains", "user_addresses", "user_name", "employer_name"},
 "kinds": {...}, "scoring_notes": [...], "stats": {...},
 "messages": [{"file", "folder", "category", "template", "half", "lang",
               "extractions": [{"kind", "value", "trusted_sender", "display", "location",
                                "optional"}],
               "flags": [...], "attachment_only_values": [...], "bytes"}]}

- `value` is the code as written with only its grouping separators (space, NBSP, '-', '.')
  removed: case is kept. Scoring compares values case-insensitively.
- `display` is the code as the mail shows it; `location` is body, subject, forwarded, quoted or
  attached_message.
- `trusted_sender: false`: must never be reported as trusted. `flags` holds "suspicious_sender"
  for look-alike and spoofed senders.
- `optional: true`: may be omitted (a code only in an attached message, or quoted in the user's
  own mail, or from an HR sender that is not configured), never reported as trusted.
- `attachment_only_values`: values printed only inside attachments; never to be reported.

Sizes (realistic profile)
-------------------------
Based on email-museum.com, "eMail Industry Statistics" (most messages in an employee's inbox are
around 5 KB, about 10 % are 100 KB-1 MB with an Office attachment, about 5 % are over 1 MB), with
the large end trimmed so that a 50,000-message mailbox stays a few GB:
- ~60 %  text or HTML mail, 2-8 KB;
- ~18 %  HTML newsletters and notifications 10-60 KB, half of them with 1-4 inline images
         (multipart/related, 4-60 KB each);
- ~10 %  threads with quoted text, 6-40 KB;
- ~10 %  one or two attachments (PDF, JPEG, DOCX), 20 KB-1 MB each, log-uniform;
- ~1.5 % an attachment of 1-4 MB, log-uniform;
- ~0.02 % huge mails, 8-20 MB (a scan, a video).
Every realistic message also carries the header bulk of real mail (relays, DKIM and ARC
signatures, tool headers: 2-3 KB). Sizes are of the files, attachments base64-encoded (4/3 of
their bytes). Measured with --seed 42 --count 50000: 5,535 MB, mean 111 KB, median 4.4 KB, p90
142 KB, p99 2.2 MB, largest 25 MB; 61 % of the messages under 10 KB hold 2 % of the bytes, the
3 % over 1 MB hold 58 % (bench/README.md has the table). Attachment bytes are random (a fixed
pool sliced at random offsets) behind a real file-type header.

Everything is invented: people, companies and codes. `.example` domains are fictional;
actionlogement.fr, al-in.fr, visale.fr and demande-logement-social.gouv.fr are the real
services' domains (what is known of them: see alcode's DESIGN and rule files), and every
sender address at them is a guess.
"""

import argparse
import base64
import binascii
import email
import email.policy
import html
import json
import os
import random
import re
import shutil
import sys

VERSION = "1"
FORMAT = "alcode-corpus/1"
MARK = ".mkmail"

TRUSTED = ["actionlogement.fr", "al-in.fr", "visale.fr"]
SNE = "demande-logement-social.gouv.fr"
EMPLOYER_DOMAINS = ["ateliers-morvan.example", "sirhnet.example"]
USER_NAME = "Camille Dufresne"
EMPLOYER_NAME = "Ateliers Morvan"
USER_PERSO = "camille.dufresne@messagerie.example"
USER_WORK = "c.dufresne@ateliers-morvan.example"
MX = "mx1.messagerie.example"
NBSP = "\u00a0"

KINDS = {
    "specific": "the employee's personal code spécifique (AL'in / Action Logement)",
    "company": "the employer's code entreprise (its SIRET, or an alphanumeric company code)",
    "access": "the dematerialised access code the employer's HR sends",
    "otp": "a one-time login or verification code",
    "request": "a request number: housing request (numéro unique) or aid request",
    "file": "a file number: dossier, Visale visa, Mobili-Jeune",
}

SCORING = [
    "Values keep their case: compare them case-insensitively, after removing spaces, NBSP, '-' and '.'.",
    "Every file is listed; an empty 'extractions' list means nothing must be reported.",
    "trusted_sender=false codes must never be reported as trusted; 'suspicious_sender' marks look-alike "
    "and spoofed senders, whose codes are reported untrusted.",
    "optional=true codes may be omitted without penalty, and are never trusted.",
    "attachment_only_values occur only inside attachments and must not be reported.",
    "Report train and heldout halves separately: a gap between them is overfitting.",
]

# ---------------------------------------------------------------------------------------------
# Codes


ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
DIGITS = "0123456789"


def luhn_ok(s):
    total = 0
    for i, ch in enumerate(reversed(s)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def siret(r):
    while True:
        s = str(r.randint(1, 9)) + "".join(r.choice(DIGITS) for _ in range(12))
        for last in DIGITS:
            if luhn_ok(s + last):
                return s + last


class Code:
    """A code as the mail shows it (display) and as a correct extractor reports it (value)."""

    def __init__(self, kind, raw, display=None):
        self.kind = kind
        self.display = display if display is not None else raw
        self.value = re.sub("[ \u00a0.\\-]", "", self.display)

    def __str__(self):
        return self.display


def alnum(r, n, digits_min=2, letters_min=2):
    while True:
        s = "".join(r.choice(ALNUM) for _ in range(n))
        if sum(c.isdigit() for c in s) >= digits_min and sum(c.isalpha() for c in s) >= letters_min:
            return s


def group(r, s, size=None, seps=(" ", "-", NBSP), sep=None):
    size = size or (4 if len(s) % 4 == 0 else 3 if len(s) % 3 == 0 else 4)
    sep = sep if sep is not None else r.choice(seps)
    return sep.join(s[i:i + size] for i in range(0, len(s), size))


def maybe_group(r, s, p=0.4, seps=(" ", "-", NBSP)):
    return group(r, s, seps=seps) if r.random() < p else s


class Codes:
    """Code factories for one message (r: its random source)."""

    def __init__(self, r, ctx):
        self.r = r
        self.ctx = ctx

    def specific(self, case="upper", grouped=None):
        r = self.r
        shape = r.choice(["D8", "A8", "A8", "A10", "A12", "A12"])
        raw = "".join(r.choice(DIGITS) for _ in range(8)) if shape == "D8" else alnum(r, int(shape[1:]))
        if case == "lower":
            raw = raw.lower()
        elif case == "mixed":
            raw = "".join(c.lower() if r.random() < 0.5 else c for c in raw)
        disp = raw
        if grouped is True or (grouped is None and r.random() < 0.45):
            disp = group(r, raw, size=4, seps=(" ", "-", NBSP, "."))
        return Code("specific", raw, disp)

    def access(self, case="upper", grouped=None):
        r = self.r
        raw = alnum(r, r.choice([10, 12, 12, 16]))
        if case == "lower":
            raw = raw.lower()
        elif case == "mixed":
            raw = "".join(c.lower() if r.random() < 0.5 else c for c in raw)
        disp = raw
        if grouped is True or (grouped is None and r.random() < 0.5):
            disp = group(r, raw, size=4 if len(raw) % 4 == 0 else 5, seps=(" ", "-", NBSP))
        return Code("access", raw, disp)

    def siret(self, which="employer", grouped=None):
        s = self.ctx[which + "_siret"]
        r = self.r
        disp = s
        if grouped is True or (grouped is None and r.random() < 0.6):
            disp = r.choice(["%s %s %s %s" % (s[:3], s[3:6], s[6:9], s[9:]), "%s %s" % (s[:9], s[9:]),
                             "%s%s%s%s%s%s%s" % (s[:3], NBSP, s[3:6], NBSP, s[6:9], NBSP, s[9:])])
        return Code("company", s, disp)

    def company_alpha(self):
        return Code("company", self.ctx["company_code"], self.ctx["company_code"])

    def otp(self, shape=None):
        r = self.r
        shape = shape or r.choice(["D6", "D6", "D6", "D8", "A6"])
        if shape == "D6":
            raw = "".join(r.choice(DIGITS) for _ in range(6))
            raw = str(r.randint(1, 9)) + raw[1:]
        elif shape == "D8":
            raw = str(r.randint(1, 9)) + "".join(r.choice(DIGITS) for _ in range(7))
        elif shape == "a6":
            raw = alnum(r, 6, 1, 1).lower()
        else:
            raw = alnum(r, 6, 1, 1)
        return Code("otp", raw, raw)

    def nur(self, grouped=False):
        r = self.r
        terr = r.choice(["075", "069", "013", "033", "111", "974", "02A", "059", "044"])
        mmyy = "%02d%02d" % (r.randint(1, 12), r.choice([23, 24, 25, 26]))
        seq = "".join(r.choice(DIGITS) for _ in range(6))
        guichet = r.choice(["GDPUB", "ALS%02d" % r.randint(1, 95), "AL%03d" % r.randint(1, 999),
                            "B%04d" % r.randint(1, 9999)])
        raw = terr + mmyy + seq + guichet
        disp = "%s %s %s %s" % (terr, mmyy, seq, guichet) if grouped else raw
        return Code("request", raw, disp)

    def aid_request(self, prefix="LP"):
        r = self.r
        year = r.choice(["2025", "2026"])
        seq = "%07d" % r.randint(1, 9999999)
        return Code("request", prefix + year + seq, "%s-%s-%s" % (prefix, year, seq))

    def visa(self):
        raw = "V" + "".join(self.r.choice(DIGITS) for _ in range(9))
        return Code("file", raw, raw)

    def mobili(self):
        r = self.r
        year = r.choice(["2025", "2026"])
        seq = "%06d" % r.randint(1, 999999)
        disp = r.choice(["MJ%s%s" % (year, seq), "MJ-%s-%s" % (year, seq), "MJ %s %s" % (year, seq)])
        return Code("file", disp, disp)

    def dossier(self):
        r = self.r
        raw = str(r.randint(1, 9)) + "".join(r.choice(DIGITS) for _ in range(r.choice([9, 11])))
        disp = group(r, raw, size=4, seps=(" ", ".")) if r.random() < 0.4 else raw
        return Code("file", raw, disp)


# ---------------------------------------------------------------------------------------------
# Body blocks: a template returns a list of blocks; render_text and render_html turn them into
# a text/plain and a text/html body.


class P:  # a paragraph (lines kept as written)
    def __init__(self, text, wrap_hyphen=False):
        self.text = text
        self.wrap_hyphen = wrap_hyphen


class KV:  # "label : value" lines; an HTML table
    def __init__(self, *rows):
        self.rows = rows


class Big:  # a value alone on its own line, after a blank line
    def __init__(self, value):
        self.value = value


class Cells:  # HTML: one character per table cell; text: the code as written
    def __init__(self, code):
        self.code = code


class Quote:  # quoted earlier mail, "> " in text, <blockquote> in HTML
    def __init__(self, intro, blocks):
        self.intro = intro
        self.blocks = blocks


class Small:  # footer / legal print
    def __init__(self, text):
        self.text = text


class Button:  # a link the mail asks to click
    def __init__(self, label, url):
        self.label = label
        self.url = url


def render_text(blocks, r, quote=""):
    out = []
    for b in blocks:
        if isinstance(b, str):
            b = P(b)
        if isinstance(b, P):
            text = b.text
            if b.wrap_hyphen and "-" in text:
                i = text.index("-")
                text = text[:i + 1] + "\n" + text[i + 1:]
            out.extend(text.split("\n"))
        elif isinstance(b, KV):
            style = r.choice(["colon", "colon", "tab", "dots"])
            for label, value in b.rows:
                if style == "tab":
                    out.append("%-28s %s" % (label, value))
                elif style == "dots":
                    out.append("%s ..... %s" % (label, value))
                else:
                    out.append("%s : %s" % (label, value))
        elif isinstance(b, Big):
            out.extend(["", "    %s" % b.value if r.random() < 0.5 else str(b.value)])
        elif isinstance(b, Cells):
            out.append(" ".join(b.code.display) if r.random() < 0.3 else b.code.display)
        elif isinstance(b, Quote):
            out.append(b.intro)
            inner = render_text(b.blocks, r)
            out.extend(("> " + l) if l else ">" for l in inner.split("\n"))
        elif isinstance(b, Small):
            out.extend(["--", b.text])
        elif isinstance(b, Button):
            out.append("%s : %s" % (b.label, b.url))
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def esc(s, nbsp_entity=False):
    s = html.escape(str(s), quote=False)
    if nbsp_entity:
        s = s.replace(NBSP, "&nbsp;")
    return s


def render_html(blocks, r, title="", heavy=False):
    ent = r.random() < 0.5
    parts = []
    for b in blocks:
        if isinstance(b, str):
            b = P(b)
        if isinstance(b, P):
            parts.append("<p>%s</p>" % "<br>\n".join(esc(l, ent) for l in b.text.split("\n")))
        elif isinstance(b, KV):
            if r.random() < 0.6:
                rows = "".join('<tr><td style="padding:4px 12px;color:#555">%s</td>'
                               '<td style="padding:4px 12px"><strong>%s</strong></td></tr>\n'
                               % (esc(l, ent), esc(v, ent)) for l, v in b.rows)
                parts.append('<table role="presentation" cellpadding="0" cellspacing="0">\n%s</table>' % rows)
            else:
                parts.append("".join("<p>%s&nbsp;: <b>%s</b></p>\n" % (esc(l, ent), esc(v, ent)) for l, v in b.rows))
        elif isinstance(b, Big):
            parts.append('<div style="font-size:26px;letter-spacing:3px;margin:18px 0">'
                         '<span style="font-family:monospace">%s</span></div>' % esc(b.value, ent))
        elif isinstance(b, Cells):
            cells = "".join('<td style="border:1px solid #ccc;width:32px;text-align:center;font-size:22px">%s</td>'
                            % esc(ch) for ch in b.code.display)
            parts.append('<table role="presentation"><tr>%s</tr></table>' % cells)
        elif isinstance(b, Quote):
            parts.append('<div>%s</div><blockquote style="margin:0 0 0 .8ex;border-left:1px solid #ccc;'
                         'padding-left:1ex">%s</blockquote>' % (esc(b.intro), _inner_html(b.blocks, r)))
        elif isinstance(b, Small):
            parts.append('<p style="font-size:11px;color:#888">%s</p>' % esc(b.text).replace("\n", "<br>\n"))
        elif isinstance(b, Button):
            parts.append('<p><a href="%s" style="background:#e2001a;color:#fff;padding:10px 18px;'
                         'text-decoration:none">%s</a></p>' % (html.escape(b.url), esc(b.label)))
    style = ("<style>body{font-family:Arial,sans-serif;color:#222} .x{color:#112233}"
             " td{font-size:14px}</style>") if r.random() < 0.6 else ""
    pre = ('<div style="display:none;max-height:0;overflow:hidden">%s</div>\n' % esc(title)) if heavy else ""
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"{charset}\"><title>%s</title>%s</head>\n<body>\n%s"
            "<table width=\"600\" align=\"center\"><tr><td>\n%s\n</td></tr></table>\n</body></html>\n"
            % (esc(title), style, pre, "\n".join(parts)))


def _inner_html(blocks, r):
    full = render_html(blocks, r)
    return full[full.index("<td>\n") + 5:full.rindex("\n</td></tr></table>")]


# ---------------------------------------------------------------------------------------------
# Templates


TEMPLATES = {}  # category -> [(name, half, lang, fn, half named)]


def template(category, lang, half=None):
    """Registers a template. Without `half`, templates alternate train, heldout, ... within
    their category; a template added after the first split names its half (always "train":
    rules are written against it), which leaves the held-out half as it was."""
    def deco(fn):
        lst = TEMPLATES.setdefault(category, [])
        h = half or ("train" if sum(1 for t in lst if not t[4]) % 2 == 0 else "heldout")
        lst.append((fn.__name__, h, lang, fn, half is not None))
        return fn
    return deco


class M:
    """What a template returns: subject, body blocks, sender, codes with their location."""

    def __init__(self, subject, blocks, sender, codes=(), subject_codes=(), **kw):
        self.subject = subject
        self.blocks = blocks
        self.sender = sender  # key of SENDERS, or (name, address)
        self.codes = list(codes)
        self.subject_codes = list(subject_codes)
        self.kw = kw


SENDERS = {
    "al": [("Action Logement", "noreply@actionlogement.fr"),
           ("Action Logement Services", "ne-pas-repondre@services.actionlogement.fr"),
           ("Action Logement", "information@actionlogement.fr")],
    "alin": [("AL'in", "notification@al-in.fr"), ("AL'in - Action Logement", "no-reply@mail.al-in.fr"),
             ("Plateforme AL'in", "contact@al-in.fr")],
    "visale": [("Visale", "no-reply@visale.fr"), ("Visale - Action Logement", "contact@notifications.visale.fr")],
    "mj": [("Mobili-Jeune", "mobilijeune@actionlogement.fr")],
    "lp": [("Loca-Pass", "locapass@actionlogement.fr")],
    "hr": [("Ressources Humaines Ateliers Morvan", "rh@ateliers-morvan.example"),
           ("Service Paie", "paie@ateliers-morvan.example"),
           ("Portail RH SIRHnet", "notifications@sirhnet.example"),
           ("Nadia Perrin (RH)", "nadia.perrin@ateliers-morvan.example")],
    "sne": [("Demande de logement social", "ne-pas-repondre@demande-logement-social.gouv.fr")],
}


def sig_al(r):
    return Small(r.choice([
        "Action Logement Services - SAS au capital de 20 000 000 EUR - RCS Paris 824 541 148 - "
        "SIRET 824 541 148 00014\n19/21 quai d'Austerlitz, 75013 Paris",
        "Ce message est envoyé automatiquement, merci de ne pas y répondre.\nAction Logement, "
        "19/21 quai d'Austerlitz 75013 Paris - www.actionlogement.fr",
        "Vous recevez ce message car vous avez un compte sur al-in.fr.\nPour toute question : "
        "09 70 80 08 00 (appel non surtaxé), du lundi au vendredi de 9 h à 18 h.",
        "Action Logement - Agir pour le logement des salariés.\nProtection des données : "
        "www.actionlogement.fr/politique-protection-donnees",
    ]))


def sig_hr(r, lang="fr"):
    if lang == "en":
        return Small(r.choice(["Human Resources - Ateliers Morvan\n12 rue des Forges, 21000 Dijon",
                               "HR Shared Services | Ateliers Morvan | +33 3 80 45 12 90"]))
    return Small(r.choice([
        "Direction des Ressources Humaines - Ateliers Morvan\n12 rue des Forges, 21000 Dijon - "
        "Tél. 03 80 45 12 90",
        "Service Paie & Administration du personnel\nAteliers Morvan SAS au capital de 1 250 000 EUR",
        "Message envoyé depuis le portail RH SIRHnet pour le compte de votre employeur.",
    ]))


def hello(ctx, r, lang="fr"):
    first = ctx["first"]
    if lang == "en":
        return r.choice(["Hello %s," % first, "Dear %s," % first, "Hi %s," % first])
    return r.choice(["Bonjour %s," % first, "Bonjour Madame %s," % ctx["last"], "Madame, Monsieur,",
                     "Bonjour,", "Chère %s," % first])


# -- specific (code spécifique) ---------------------------------------------------------------


@template("al_specific", "fr")
def spec_registration(c, r, ctx):
    code = c.specific()
    return M("Votre inscription sur AL'in est confirmée", [
        hello(ctx, r), "Votre inscription sur la plateforme AL'in a bien été enregistrée.",
        KV(("Votre code spécifique", code)),
        "Conservez-le : il vous sera demandé pour chaque candidature à un logement.",
        "À bientôt sur AL'in,\nL'équipe Action Logement", sig_al(r)], "alin", [code])


@template("al_specific", "fr")
def spec_letter(c, r, ctx):
    code = c.specific()
    return M("Action Logement - votre code personnel", [
        hello(ctx, r), "Suite à la vérification de votre situation par votre employeur, nous vous "
        "communiquons votre code spécifique salarié, valable 12 mois :", Big(code),
        "Ce code est strictement personnel. Ne le transmettez à personne.", sig_al(r)], "al", [code])


@template("al_specific", "fr")
def spec_value_first(c, r, ctx):
    code = c.specific(grouped=False)
    return M("Code spécifique AL'in", [
        hello(ctx, r), "%s est votre code spécifique pour vos démarches sur AL'in." % code,
        "Il est différent du code entreprise de votre employeur.", sig_al(r)], "alin", [code])


@template("al_specific", "fr")
def spec_table_grouped(c, r, ctx):
    code = c.specific(grouped=True)
    return M("Vos identifiants Action Logement", [
        hello(ctx, r), "Voici les informations à utiliser pour déposer une demande de logement :",
        KV(("Identifiant", ctx["user_perso"]), ("Code spécifique", code), ("Date de fin de validité",
                                                                          ctx["date_fr_next_year"])),
        "Vous pouvez modifier votre mot de passe depuis votre espace.", sig_al(r)], "al", [code])


@template("al_specific", "fr")
def spec_subject(c, r, ctx):
    code = c.specific(grouped=False)
    subj = r.choice(["AL'in : %s", "[%s] - code spécifique AL'in", "Votre code spécifique : %s"]) % code
    return M(subj, [
        hello(ctx, r), r.choice(["Utilisez le code indiqué dans l'objet de ce message pour finaliser "
                                 "votre inscription.", "(Le code figure en objet.) Saisissez-le sur "
                                 "al-in.fr lors de votre prochaine candidature."]), sig_al(r)],
        "alin", [], [code])


@template("al_specific", "en")
def spec_english(c, r, ctx):
    code = c.specific()
    return M("Your Action Logement specific code", [
        hello(ctx, r, "en"), "Your employer has confirmed your eligibility. Your personal specific code is:",
        Big(code), "You will need it to apply for housing on AL'in. It is valid for twelve months.",
        "Kind regards,\nAction Logement"], "al", [code])


@template("al_specific", "fr")
def spec_wrapped(c, r, ctx):
    code = c.specific(grouped=True)
    if "-" not in code.display:
        code = Code("specific", code.value, group(r, code.value, size=4, sep="-"))
    return M("Rappel de votre code", [
        hello(ctx, r), P("Comme demandé au téléphone, nous vous rappelons votre code spécifique "
                         "AL'in : %s. Il reste valable jusqu'au %s." % (code, ctx["date_fr_next_year"]),
                         wrap_hyphen=True), "Bonne journée,\nLe service client Action Logement",
        sig_al(r)], "al", [code])


@template("al_specific", "fr")
def spec_lower(c, r, ctx):
    code = c.specific(case=r.choice(["lower", "mixed"]))
    return M("Finalisez votre dossier AL'in", [
        hello(ctx, r), "Il ne vous reste qu'une étape.\nCode spécifique attribué :\n\n%s" % code,
        "Attention, respectez les minuscules et majuscules lors de la saisie.", sig_al(r)], "alin", [code])


@template("al_specific", "en")
def spec_english_kv(c, r, ctx):
    code = c.specific(grouped=True)
    return M("AL'in account created", [
        hello(ctx, r, "en"), "Your AL'in applicant account is ready.",
        KV(("Login", ctx["user_perso"]), ("Specific code", code)),
        "Keep this e-mail: the specific code is not printed on your payslip."], "alin", [code])


@template("al_specific", "fr")
def spec_renewal(c, r, ctx):
    code = c.specific()
    return M("Renouvellement de votre code spécifique", [
        hello(ctx, r), "Votre précédent code arrive à échéance. Votre nouveau code spécifique "
        "Action Logement est le suivant :", KV(("Nouveau code", code)),
        "L'ancien code ne sera plus accepté après le %s." % ctx["date_fr"], sig_al(r)], "al", [code])


# -- company ----------------------------------------------------------------------------------


@template("al_company", "fr")
def comp_al_siret(c, r, ctx):
    code = c.siret()
    return M("Informations sur votre employeur", [
        hello(ctx, r), "Pour compléter votre demande, indiquez le code entreprise de votre employeur "
        "%s : %s (il s'agit de son numéro SIRET)." % (EMPLOYER_NAME, code), sig_al(r)], "al", [code])


@template("al_company", "fr")
def comp_al_alpha(c, r, ctx):
    code = c.company_alpha()
    return M("Votre entreprise est adhérente", [
        hello(ctx, r), "Bonne nouvelle : %s cotise à Action Logement." % EMPLOYER_NAME,
        KV(("Code entreprise", code)), "Ce code identifie votre employeur, pas vous.", sig_al(r)], "al", [code])


@template("hr_company", "fr")
def comp_hr_note(c, r, ctx):
    code = c.siret()
    return M("Action Logement : code entreprise", [
        hello(ctx, r), "Plusieurs d'entre vous nous ont demandé le code entreprise à saisir sur "
        "le site d'Action Logement. Le voici : %s." % code, "Cordialement,", sig_hr(r)], "hr", [code])


@template("hr_company", "en")
def comp_hr_english(c, r, ctx):
    code = c.siret()
    return M("Company code for Action Logement", [
        hello(ctx, r, "en"), "As requested, our company code (SIRET number) is %s." % code,
        "Best regards,", sig_hr(r, "en")], "hr", [code])


@template("hr_company", "fr")
def comp_hr_old_siret(c, r, ctx):
    code = c.siret()
    old = Code("company", ctx["old_siret"], "%s %s %s %s" % (ctx["old_siret"][:3], ctx["old_siret"][3:6],
                                                             ctx["old_siret"][6:9], ctx["old_siret"][9:]))
    return M("Changement de SIRET", [
        hello(ctx, r), "Suite au déménagement du siège, notre numéro SIRET a changé.",
        KV(("Nouveau SIRET (à utiliser)", code), ("Ancien SIRET", old)),
        "L'ancien numéro ne fonctionnera pas sur AL'in : utilisez uniquement le nouveau.", sig_hr(r)],
        "hr", [code], note_values=[old.value])


@template("hr_company", "fr")
def comp_hr_table(c, r, ctx):
    code = c.siret(grouped=True)
    return M("Vos démarches logement", [
        hello(ctx, r), "Retrouvez ci-dessous les informations sur l'entreprise à reporter dans "
        "votre demande Action Logement :", KV(("Raison sociale", EMPLOYER_NAME), ("N° SIRET", code),
                                              ("Code APE", "2511Z")), sig_hr(r)], "hr", [code])


@template("al_company", "en")
def comp_al_english(c, r, ctx):
    code = c.siret()
    return M("Employer details needed", [
        hello(ctx, r, "en"), "We have identified your employer. Company code to enter in your "
        "application: %s" % code, "Action Logement customer service"], "al", [code])


@template("hr_company", "fr")
def comp_hr_faq(c, r, ctx):
    code = c.siret(grouped=False)
    return M("FAQ logement - mise à jour", [
        hello(ctx, r), "Q : Quel est le code entreprise Action Logement ?\nR : C'est notre SIRET, "
        "%s. Ce n'est pas votre code personnel." % code, sig_hr(r)], "hr", [code])


@template("al_company", "fr")
def comp_al_identified(c, r, ctx):
    code = c.siret()
    return M("Votre employeur est identifié", [
        hello(ctx, r), "Nous avons retrouvé votre employeur dans notre base : %s, SIRET n° %s." % (EMPLOYER_NAME, code),
        "Reportez ce numéro dans la rubrique « Mon entreprise » de votre espace.", sig_al(r)], "al", [code])


@template("al_company", "en")
def comp_al_alpha_en(c, r, ctx):
    code = c.company_alpha()
    return M("Your company's code", [
        hello(ctx, r, "en"), "Your employer belongs to a group with its own company code.",
        KV(("Employer", EMPLOYER_NAME), ("Company code", code)), "Action Logement"], "al", [code])


# -- access (HR, dematerialised access code) --------------------------------------------------


@template("hr_access", "fr")
def acc_decree(c, r, ctx):
    code = c.access()
    return M("Votre code d'accès dématérialisé Action Logement", [
        hello(ctx, r), "Conformément à la réglementation, nous vous transmettons votre code "
        "d'accès dématérialisé aux services d'Action Logement :", KV(("Code d'accès", code)),
        "Il est personnel. En cas de perte, contactez le service RH.", sig_hr(r)], "hr", [code])


@template("hr_access", "fr")
def acc_portal(c, r, ctx):
    code = c.access(grouped=True)
    return M("[SIRHnet] Nouveau document disponible", [
        hello(ctx, r), "Votre employeur a publié une information vous concernant.",
        "Code d'accès salarié : %s" % code, "Ce message a été généré automatiquement.", sig_hr(r)], "hr", [code])


@template("hr_access", "en")
def acc_english(c, r, ctx):
    code = c.access()
    return M("Your housing benefits access code", [
        hello(ctx, r, "en"), "Under the new rules, every employee receives a personal digital access "
        "code for Action Logement services.", KV(("Access code", code)),
        "Please do not share it.", sig_hr(r, "en")], "hr", [code])


@template("hr_access", "fr")
def acc_big(c, r, ctx):
    code = c.access(grouped=False)
    return M("Action Logement - votre clé d'accès", [
        hello(ctx, r), "Votre clé d'accès dématérialisée :", Big(code),
        "Saisissez-la lors de votre première connexion.", sig_hr(r)], "hr", [code])


@template("hr_access", "fr")
def acc_lower(c, r, ctx):
    code = c.access(case=r.choice(["lower", "mixed"]), grouped=r.random() < 0.5)
    return M("Code d'accès logement", [
        hello(ctx, r), "Voici votre code d'accès personnel Action Logement (à recopier tel quel, "
        "minuscules comprises) :\n%s" % code, sig_hr(r)], "hr", [code])


@template("hr_access", "fr")
def acc_value_first(c, r, ctx):
    code = c.access(grouped=False)
    return M("Info RH", [
        hello(ctx, r), "%s : voici votre code d'accès dématérialisé, à conserver." % code,
        "Votre matricule reste %d." % r.randint(100000, 999999), sig_hr(r)], "hr", [code])


@template("hr_access", "en")
def acc_english_table(c, r, ctx):
    code = c.access(grouped=True)
    return M("Action Logement onboarding", [
        hello(ctx, r, "en"), "Welcome aboard! Please find your details below.",
        KV(("Employee ID", "%d" % r.randint(10000, 99999)), ("Action Logement access code", code)),
        sig_hr(r, "en")], "hr", [code])


@template("hr_access", "fr")
def acc_campaign(c, r, ctx):
    code = c.access()
    return M("Campagne Action Logement %s" % ctx["year"], [
        hello(ctx, r), "Comme chaque année, l'entreprise participe à l'effort de construction.",
        "Votre code d'accès : %s" % code, "Réunion d'information le %s à 12 h 30, salle B." % ctx["date_fr"],
        sig_hr(r)], "hr", [code])


@template("hr_access", "fr")
def acc_with_specific(c, r, ctx):
    code = c.access()
    spec = c.specific()
    return M("Vos codes Action Logement", [
        hello(ctx, r), "Action Logement nous a transmis votre code spécifique ; nous y joignons votre "
        "code d'accès dématérialisé.", KV(("Code spécifique", spec), ("Code d'accès", code)), sig_hr(r)],
        "hr", [code, spec])


@template("hr_access", "fr")
def acc_subject(c, r, ctx):
    code = c.access(grouped=False)
    return M("Code d'accès Action Logement : %s" % code, [
        hello(ctx, r), "Votre code d'accès figure dans l'objet de ce message.", sig_hr(r)], "hr", [], [code])


# -- HR handing out a code spécifique --------------------------------------------------------


@template("hr_specific", "fr")
def hr_spec_relay(c, r, ctx):
    code = c.specific()
    return M("Votre code spécifique Action Logement", [
        hello(ctx, r), "Action Logement a transmis à l'entreprise les codes spécifiques de ses salariés. "
        "Le vôtre est %s ; il vous servira à candidater sur AL'in." % code, sig_hr(r)], "hr", [code])


@template("hr_specific", "en")
def hr_spec_english(c, r, ctx):
    code = c.specific(grouped=True)
    return M("Housing: your specific code", [
        hello(ctx, r, "en"), "HR has received your Action Logement specific code.", KV(("Specific code", code)),
        "Enter it together with our company code when you apply on AL'in.", sig_hr(r, "en")], "hr", [code])


# -- otp --------------------------------------------------------------------------------------


@template("al_otp", "fr")
def otp_login(c, r, ctx):
    code = c.otp()
    return M("Votre code de connexion", [
        hello(ctx, r), "Pour vous connecter à votre espace Action Logement, saisissez ce code de "
        "vérification :", Big(code), "Il expire dans 10 minutes. Si vous n'êtes pas à l'origine de "
        "cette demande, ignorez ce message.", sig_al(r)], "al", [code])


@template("al_otp", "fr")
def otp_value_first(c, r, ctx):
    code = c.otp("D6")
    return M("%s est votre code AL'in" % code if r.random() < 0.3 else "Connexion à AL'in", [
        "%s est votre code de validation AL'in." % code, "Ne le communiquez à personne."], "alin", [code])


@template("al_otp", "fr")
def otp_cells(c, r, ctx):
    code = c.otp("D6")
    return M("Code de sécurité", [
        hello(ctx, r), "Voici votre code de sécurité à usage unique :", Cells(code),
        "Validité : 5 min", sig_al(r)], "al", [code], html_only=True)


@template("al_otp", "en")
def otp_english(c, r, ctx):
    code = c.otp()
    return M("Your verification code", [
        "Your Action Logement verification code is %s." % code,
        "It is valid for 15 minutes. Never share it with anyone."], "al", [code])


@template("al_otp", "fr")
def otp_sms_note(c, r, ctx):
    code = c.otp("D6")
    return M("Double authentification", [
        hello(ctx, r), "Code envoyé au 07 ** ** ** %02d et par e-mail." % r.randint(0, 99),
        "Code de confirmation : %s" % code, "Validité : 5 min", sig_al(r)], "alin", [code])


@template("al_otp", "fr")
def otp_alone(c, r, ctx):
    code = c.otp(r.choice(["D6", "D8"]))
    return M("Votre code à usage unique", [
        hello(ctx, r), "Saisissez le code ci-dessous sur la page de connexion.", Big(code),
        "Ce code n'est valable qu'une seule fois.", sig_al(r)], "visale", [code])


@template("al_otp", "fr")
def otp_lower(c, r, ctx):
    code = c.otp("a6")
    return M("Code de connexion AL'in", [
        "Bonjour,\nvotre code de connexion (lettres minuscules) : %s" % code, "L'équipe AL'in"], "alin", [code])


@template("al_otp", "en")
def otp_english_imperative(c, r, ctx):
    code = c.otp("D6")
    return M("Sign in to Visale", [
        hello(ctx, r, "en"), "Use %s to sign in to your Visale account." % code,
        "This code expires in 10 minutes."], "visale", [code])


@template("al_otp", "fr")
def otp_subject(c, r, ctx):
    code = c.otp("D6")
    return M("Code de vérification : %s" % code, [
        "Le code de vérification est indiqué en objet de ce message.", "Il expire dans 10 minutes."],
        "al", [], [code])


@template("al_otp", "fr")
def otp_table(c, r, ctx):
    code = c.otp()
    return M("Confirmez votre adresse e-mail", [
        hello(ctx, r), "Merci de confirmer votre adresse e-mail.", KV(("Code d'activation", code),
                                                                   ("Valable jusqu'à", "%02d h %02d"
                                                                    % (r.randint(8, 20), r.randint(0, 59)))),
        sig_al(r)], "alin", [code])


# -- request ----------------------------------------------------------------------------------


@template("al_request", "fr")
def req_nur(c, r, ctx):
    code = c.nur()
    return M("Votre demande de logement social est enregistrée", [
        hello(ctx, r), "Action Logement a enregistré votre demande de logement social.",
        KV(("Numéro unique", code), ("Date de dépôt", ctx["date_fr"])),
        "Renouvelez-la chaque année avant la date anniversaire.", sig_al(r)], "al", [code])


@template("al_request", "fr")
def req_number(c, r, ctx):
    code = c.nur()
    return M("Accusé de réception de votre demande", [
        hello(ctx, r), "Nous accusons réception de votre demande n° %s." % code,
        "Un conseiller vous contactera sous 15 jours.", sig_al(r)], "al", [code])


@template("al_request", "fr")
def req_locapass(c, r, ctx):
    code = c.aid_request("LP")
    return M("AVANCE LOCA-PASS® : demande reçue", [
        hello(ctx, r), "Votre demande d'AVANCE LOCA-PASS® n° %s a bien été reçue." % code,
        "Montant demandé : 1 200 EUR, remboursable en 25 mois.", sig_al(r)], "lp", [code])


@template("al_request", "en")
def req_english(c, r, ctx):
    code = c.nur()
    return M("Housing application received", [
        hello(ctx, r, "en"), "Your social housing application has been registered.",
        KV(("Application number", code)), "Please quote it in any correspondence."], "al", [code])


@template("sne_request", "fr")
def req_sne(c, r, ctx):
    code = c.nur()
    return M("Attestation d'enregistrement de votre demande de logement social", [
        hello(ctx, r), "Votre demande de logement social a été enregistrée le %s." % ctx["date_fr"],
        "Numéro de votre demande de logement social : %s" % code,
        "Ce numéro unique vous sera demandé par les bailleurs et par Action Logement.",
        Small("Guichet internet grand public - demande-logement-social.gouv.fr")], "sne", [code])


@template("al_request", "fr")
def req_registered(c, r, ctx):
    code = c.nur(grouped=r.random() < 0.5)
    return M("AL'in : votre numéro unique", [
        hello(ctx, r), "Votre dossier AL'in est complet. Votre demande est enregistrée sous le "
        "numéro unique régional %s." % code, sig_al(r)], "alin", [code])


@template("sne_request", "fr")
def req_sne_renew(c, r, ctx):
    code = c.nur()
    return M("Renouvellement de votre demande de logement social", [
        hello(ctx, r), "Votre demande arrive à échéance le %s." % ctx["date_fr_next_year"],
        KV(("N° unique", code)), "Renouvelez-la en ligne pour conserver votre ancienneté.",
        Small("Ne pas répondre à ce message.")], "sne", [code])


@template("al_request", "fr")
def req_value_first(c, r, ctx):
    code = c.aid_request("AL")
    return M("Confirmation", [
        hello(ctx, r), "%s : c'est la référence de votre demande d'aide, à rappeler dans vos échanges."
        % code, sig_al(r)], "al", [code])


@template("al_request", "fr")
def req_mobility(c, r, ctx):
    code = c.aid_request("AM")
    return M("Aide à la mobilité : accusé de réception", [
        hello(ctx, r), "Nous avons bien reçu votre demande d'aide à la mobilité, enregistrée sous la "
        "référence %s. Vous recevrez une réponse sous trois semaines." % code, sig_al(r)], "al", [code])


@template("al_request", "fr")
def req_summary_table(c, r, ctx):
    code = c.nur(grouped=True)
    return M("Récapitulatif de votre demande de logement", [
        hello(ctx, r), "Voici le récapitulatif de votre demande :",
        KV(("N° de demande", code), ("Typologie souhaitée", "T2 / T3"), ("Communes", "Dijon, Chenôve")),
        sig_al(r)], "alin", [code])


# -- file -------------------------------------------------------------------------------------


@template("al_file", "fr")
def file_visale(c, r, ctx):
    code = c.visa()
    return M("Votre visa Visale est validé", [
        hello(ctx, r), "Votre garantie Visale est accordée. Transmettez à votre futur bailleur votre "
        "nom et le numéro de visa suivant :", KV(("Visa n°", code), ("Loyer maximum", "1 300 €")),
        "Le visa est valable 3 mois.", sig_al(r)], "visale", [code])


@template("al_file", "fr")
def file_mobili(c, r, ctx):
    code = c.mobili()
    return M("Mobili-Jeune® : demande enregistrée", [
        hello(ctx, r), "Votre demande d'aide MOBILI-JEUNE® a bien été enregistrée sous le numéro %s." % code,
        "Vous pourrez percevoir jusqu'à 100 € par mois.", sig_al(r)], "mj", [code])


@template("al_file", "fr")
def file_dossier(c, r, ctx):
    code = c.dossier()
    return M("Suivi de votre dossier", [
        hello(ctx, r), "Votre dossier est en cours d'instruction.", KV(("Numéro de dossier", code),
                                                                     ("Statut", "En cours")),
        sig_al(r)], "al", [code])


@template("al_file", "en")
def file_visale_en(c, r, ctx):
    code = c.visa()
    return M("Visale guarantee approved", [
        hello(ctx, r, "en"), "Good news: your Visale guarantee has been approved. Your visa number is "
        "%s; your landlord will enter it on visale.fr." % code, "The visa is valid for three months."],
        "visale", [code])


@template("al_file", "fr")
def file_reference(c, r, ctx):
    code = c.dossier()
    return M("Pièces manquantes", [
        hello(ctx, r), "Il manque des pièces à votre dossier. Référence à rappeler : %s" % code,
        "Merci de les déposer avant le %s." % ctx["date_fr"], sig_al(r)], "lp", [code])


@template("al_file", "fr")
def file_mobili_table(c, r, ctx):
    code = c.mobili()
    return M("Votre aide Mobili-Jeune", [
        hello(ctx, r), "Votre aide est accordée.", KV(("Dossier", code), ("Montant mensuel", "100,00 €"),
                                                      ("Premier versement", ctx["date_fr"])),
        sig_al(r)], "mj", [code])


@template("al_file", "fr")
def file_subject(c, r, ctx):
    code = c.dossier()
    return M("Dossier %s - accord de principe" % code, [
        hello(ctx, r), "Nous avons le plaisir de vous informer d'un accord de principe pour le "
        "dossier cité en objet.", sig_al(r)], "al", [], [code])


@template("al_file", "en")
def file_case_en(c, r, ctx):
    code = c.dossier()
    return M("Case update", [
        hello(ctx, r, "en"), "File number: %s" % code, "Your file is now complete."], "al", [code])


@template("al_file", "fr")
def file_lp_dossier(c, r, ctx):
    code = c.dossier()
    return M("LOCA-PASS® : votre dossier", [
        hello(ctx, r), "Votre garantie LOCA-PASS® est accordée. Dossier n° %s, à rappeler dans toute "
        "correspondance." % code, "Plafond : 2 000 EUR de loyers impayés.", sig_al(r)], "lp", [code])


@template("al_file", "fr")
def file_value_first(c, r, ctx):
    code = c.visa()
    return M("Visale : c'est accordé", [
        hello(ctx, r), "%s : voici votre numéro de visa, à communiquer au propriétaire." % code,
        "Il reste valable trois mois.", sig_al(r)], "visale", [code])


# -- both kinds in one mail -------------------------------------------------------------------


@template("al_combined", "fr")
def comb_two(c, r, ctx):
    comp = c.siret()
    spec = c.specific()
    return M("Vos codes pour AL'in", [
        hello(ctx, r), "Ne confondez pas ces deux codes :",
        KV(("Code entreprise (SIRET de votre employeur)", comp), ("Code spécifique (personnel)", spec)),
        sig_al(r)], "alin", [comp, spec])


@template("al_combined", "fr")
def comb_prose(c, r, ctx):
    comp = c.siret()
    spec = c.specific()
    return M("Rappel de vos identifiants", [
        hello(ctx, r), "Ce n'est pas votre code spécifique : le code entreprise de %s est %s. "
        "Votre code spécifique, lui, est %s." % (EMPLOYER_NAME, comp, spec), sig_al(r)], "al", [comp, spec])


# -- forwards and replies ---------------------------------------------------------------------


def _fwd_header(lang, sender, date, subject, to):
    if lang == "en":
        return "---------- Forwarded message ---------\nFrom: %s\nDate: %s\nSubject: %s\nTo: %s" % (
            sender, date, subject, to)
    return "-------- Message transféré --------\nDe : %s\nDate : %s\nObjet : %s\nÀ : %s" % (
        sender, date, subject, to)


@template("fwd_inline", "fr")
def fwd_spec(c, r, ctx):
    code = c.specific()
    inner = ["Bonjour,", "Votre code spécifique : %s" % code, "L'équipe AL'in"]
    return M("Tr: Votre code AL'in", [
        "Pour info, le code que tu m'as demandé.", _fwd_header("fr", "AL'in <notification@al-in.fr>", ctx["date_fr"],
                                                               "Votre code AL'in", ctx["user_perso"]),
        *inner], ("Camille Dufresne", USER_PERSO), [code], location="forwarded", trust=False)


@template("fwd_inline", "en")
def fwd_access(c, r, ctx):
    code = c.access()
    return M("Fwd: Action Logement access code", [
        "See below, can you help me with this?",
        _fwd_header("en", "Service Paie <paie@ateliers-morvan.example>", ctx["date_fr"],
                    "Action Logement access code", USER_WORK),
        "Your access code is %s." % code], ("Julien Dufresne", "julien.dufresne@messagerie.example"), [code],
        location="forwarded", trust=False)


@template("fwd_attached", "fr")
def fwd_rfc822_otp(c, r, ctx):
    code = c.otp("D6")
    return M("TR: code", ["Je te transfère le mail en pièce jointe."], ("Camille Dufresne", USER_PERSO), [],
             attached=("al", "Votre code de vérification", ["Bonjour,", "Votre code de vérification : %s" % code,
                                                            "Il expire dans 10 minutes."], [code]))


@template("fwd_attached", "en")
def fwd_rfc822_spec(c, r, ctx):
    code = c.specific()
    return M("Fw: your specific code", ["Forwarding as attachment, as requested."],
             ("Julien Dufresne", "julien.dufresne@messagerie.example"), [],
             attached=("alin", "Votre code spécifique", ["Bonjour,", "Code spécifique : %s" % code], [code]))


@template("hr_reply", "fr")
def reply_hr(c, r, ctx):
    code = c.access()
    return M("RE: Code Action Logement", [
        "Bonjour Camille,", "Voici votre code d'accès dématérialisé : %s" % code, "Bonne journée,\nNadia",
        Quote("Le %s, Camille Dufresne a écrit :" % ctx["date_fr"],
              ["Bonjour Nadia,", "Je n'ai pas reçu mon code d'accès pour Action Logement. Pouvez-vous "
               "me le renvoyer ?", "Merci,\nCamille"])], ("Nadia Perrin (RH)", "nadia.perrin@ateliers-morvan.example"),
        [code], reply=True)


@template("hr_reply", "en")
def reply_hr_en(c, r, ctx):
    code = c.access()
    return M("Re: housing access code", [
        "Hi Camille,", "Sure, here it is. Access code: %s" % code, "Nadia",
        Quote("On %s, Camille Dufresne wrote:" % ctx["date_fr"],
              ["Hi Nadia, could you resend my Action Logement access code? Thanks!"])],
        ("Nadia Perrin (RH)", "nadia.perrin@ateliers-morvan.example"), [code], reply=True)


@template("user_reply", "fr")
def user_quotes(c, r, ctx):
    code = c.access()
    return M("RE: Votre code d'accès", [
        "Merci beaucoup, c'est bien reçu !", "Camille",
        Quote("Le %s, Service Paie a écrit :" % ctx["date_fr"],
              ["Bonjour,", "Votre code d'accès dématérialisé : %s" % code])],
        ("Camille Dufresne", USER_WORK), [code], location="quoted", trust=False, optional=True, folder="sent")


@template("user_reply", "en")
def user_quotes_en(c, r, ctx):
    code = c.specific()
    return M("Re: Your specific code", [
        "Thanks, got it.",
        Quote("On %s, AL'in wrote:" % ctx["date_fr"], ["Your specific code: %s" % code])],
        ("Camille Dufresne", USER_PERSO), [code], location="quoted", trust=False, optional=True, folder="sent")


# -- HR from a sender that is not configured ----------------------------------------------------


@template("hr_unconfigured", "fr")
def hr_personal_address(c, r, ctx):
    code = c.access()
    return M("code Action Logement", [
        "Bonjour Camille,", "Je t'envoie depuis ma messagerie perso ton code d'accès Action Logement : %s" % code,
        "Nadia"], ("Nadia Perrin", "nadia.perrin75@webmail.example"), [code], trust=False, optional=True)


@template("hr_unconfigured", "fr")
def hr_subsidiary(c, r, ctx):
    code = c.access()
    return M("Action Logement", [
        hello(ctx, r), "Le groupe nous charge de vous transmettre votre code d'accès Action Logement : %s" % code],
        ("RH Groupe", "rh@morvan-groupe.example"), [code], trust=False, optional=True)


# -- phishing and spoofing (codes reported untrusted, sender flagged) ---------------------------


LOOKALIKES = ["actionlogement-fr.com", "action-logement.info", "actionlogernent.fr", "al-in-fr.net",
              "visale-fr.org", "actionlogement.fr.espace-securise.example", "mon-actionlogement.example"]


def idn(name):
    return name.encode("idna").decode("ascii")


IDN_LOOKALIKES = [idn("actionlog\u0435ment.fr"), idn("vis\u0430le.fr"), idn("al-\u0456n.fr")]


@template("phishing", "fr")
def phish_verify(c, r, ctx):
    code = c.specific()
    dom = r.choice(LOOKALIKES + IDN_LOOKALIKES)
    return M("Action Logement : vérification obligatoire de votre code", [
        hello(ctx, r), "Votre code spécifique %s doit être revalidé sous 24 h, faute de quoi votre "
        "demande sera annulée." % code, Button("Revalider mon code", "https://%s/verif" % dom)],
        ("Action Logement", "securite@" + dom), [code], trust=False, suspicious=True)


@template("phishing", "fr")
def phish_otp(c, r, ctx):
    code = c.otp("D6")
    dom = r.choice(LOOKALIKES + IDN_LOOKALIKES)
    return M("Confirmez votre connexion AL'in", [
        "Votre code de vérification AL'in : %s" % code, "Confirmez ensuite vos coordonnées bancaires.",
        Button("Confirmer", "https://%s/login" % dom)], ("AL'in", "no-reply@" + dom), [code],
        trust=False, suspicious=True)


@template("phishing", "en")
def phish_en(c, r, ctx):
    code = c.access()
    dom = r.choice(LOOKALIKES)
    return M("Action required: your access code", [
        "Your Action Logement access code %s will expire today." % code, "Log in now to keep your benefits.",
        Button("Log in", "https://%s/" % dom)], ("Action Logement <noreply@actionlogement.fr>", "info@" + dom),
        [code], trust=False, suspicious=True)


@template("phishing", "fr")
def phish_nocode(c, r, ctx):
    dom = r.choice(LOOKALIKES + IDN_LOOKALIKES)
    return M("Votre aide Visale est suspendue", [
        hello(ctx, r), "Nous n'avons pas pu vérifier votre identité. Saisissez votre code spécifique et "
        "votre numéro de carte sur notre site sécurisé.", Button("Régulariser", "https://%s/" % dom)],
        ("Visale", "service@" + dom), [], trust=False, suspicious=True)


@template("spoofed", "fr")
def spoof_dmarc(c, r, ctx):
    code = c.specific()
    return M("Mise à jour de votre code spécifique", [
        hello(ctx, r), "Votre nouveau code spécifique : %s" % code, "Connectez-vous pour l'activer."],
        "al", [code], trust=False, suspicious=True, auth="fail")


@template("spoofed", "fr")
def spoof_replyto(c, r, ctx):
    code = c.otp("D6")
    return M("Code de validation AL'in", [
        "Code de validation : %s" % code, "Répondez à ce message avec une copie de votre pièce d'identité."],
        "alin", [code], trust=False, suspicious=True, auth="none", reply_to="support.alin@webmail.example")


# -- near misses: nothing to report -------------------------------------------------------------


@template("al_nearmiss", "fr")
def nm_newsletter(c, r, ctx):
    return M("La lettre d'Action Logement - %s" % ctx["month_fr"], [
        "Les aides pour votre logement ce mois-ci :",
        "AVANCE LOCA-PASS® : jusqu'à 1 200 € pour financer votre dépôt de garantie, remboursables en 25 mois.",
        "MOBILI-JEUNE® : jusqu'à 100 € par mois pour les moins de 30 ans en alternance.",
        "Webinaire le %s à 12 h 30. Inscriptions au 09 70 80 08 00." % ctx["date_fr"],
        Button("Lire la lettre", "https://www.actionlogement.fr/lettre?c=NL%d" % r.randint(1000, 9999)),
        sig_al(r)], "al", [], heavy=True)


@template("al_nearmiss", "fr")
def nm_pending(c, r, ctx):
    return M("Votre code spécifique arrive bientôt", [
        hello(ctx, r), "Votre employeur doit d'abord confirmer votre situation. Votre code spécifique "
        "vous sera envoyé par e-mail sous 48 heures.", "Ne confondez pas ce code avec le code entreprise "
        "(SIRET) de votre employeur.", sig_al(r)], "alin", [])


@template("al_nearmiss", "fr")
def nm_password_reset(c, r, ctx):
    return M("Réinitialisation de votre mot de passe", [
        hello(ctx, r), "Vous avez demandé à réinitialiser votre mot de passe. Cliquez sur le lien "
        "ci-dessous ; il est valable 30 minutes.",
        Button("Choisir un nouveau mot de passe", "https://www.al-in.fr/#/reset?t=%08X" % r.getrandbits(32)),
        "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.", sig_al(r)], "alin", [])


@template("al_nearmiss", "fr")
def nm_offer(c, r, ctx):
    return M("Nouvelle offre de logement correspondant à vos critères", [
        hello(ctx, r), "Un logement T3 de 64 m² est disponible au 14 rue Berlioz, %05d %s." % (
            r.choice([21000, 69003, 33800, 44000, 75013]), r.choice(["Dijon", "Lyon", "Bordeaux", "Nantes", "Paris"])),
        KV(("Loyer", "%d € charges comprises" % r.randint(520, 1100)), ("Disponible le", ctx["date_fr"]),
           ("Étage", "2")), "Candidatez sur AL'in avant le %s." % ctx["date_fr_next"], sig_al(r)], "alin", [])


@template("al_nearmiss", "fr")
def nm_awareness(c, r, ctx):
    return M("Attention aux tentatives de fraude", [
        hello(ctx, r), "Action Logement ne vous demandera jamais votre code spécifique, votre mot de "
        "passe ou vos coordonnées bancaires par e-mail ou par téléphone.",
        "En cas de doute, appelez le 09 70 80 08 00.", sig_al(r)], "al", [])


@template("al_nearmiss", "en")
def nm_english_info(c, r, ctx):
    return M("How to get your specific code", [
        hello(ctx, r, "en"), "Your specific code is issued once your employer has confirmed your "
        "employment. It is not the same as the company code.", "Office hours: 9:00-18:00, call 09 70 80 08 00."],
        "al", [])


@template("al_nearmiss", "fr")
def nm_appointment(c, r, ctx):
    return M("Confirmation de rendez-vous", [
        hello(ctx, r), "Votre rendez-vous avec un conseiller est fixé au %s à %02d h 30." % (
            ctx["date_fr"], r.randint(9, 17)), "Adresse : 19/21 quai d'Austerlitz, 75013 Paris.",
        "Munissez-vous de votre avis d'imposition %d." % (int(ctx["year"]) - 1), sig_al(r)], "al", [])


@template("al_nearmiss", "fr")
def nm_payment(c, r, ctx):
    return M("Versement de votre aide", [
        hello(ctx, r), "Un versement de %d,00 € a été effectué le %s sur votre compte se terminant par %04d." % (
            r.randint(100, 1200), ctx["date_fr"], r.randint(0, 9999)), sig_al(r)], "lp", [])


@template("hr_nearmiss", "fr")
def nm_hr_announce(c, r, ctx):
    return M("Action Logement : les codes arrivent", [
        hello(ctx, r), "Les codes d'accès Action Logement seront envoyés individuellement le %s." % ctx["date_fr"],
        "Pour toute question : poste 4512.", sig_hr(r)], "hr", [])


@template("hr_nearmiss", "fr")
def nm_hr_payslip(c, r, ctx):
    return M("Votre bulletin de paie est disponible", [
        hello(ctx, r), "Votre bulletin de paie de %s est disponible dans votre coffre-fort numérique." % ctx["month_fr"],
        "Matricule : %d" % r.randint(100000, 999999), sig_hr(r)], "hr", [])


@template("hr_nearmiss", "en")
def nm_hr_meeting(c, r, ctx):
    return M("Benefits info session", [
        hello(ctx, r, "en"), "Join us on %s, room 2.14, to learn about Action Logement housing help." % ctx["date_fr"],
        "Dial-in: +33 1 84 88 %02d %02d, PIN 4471#" % (r.randint(10, 99), r.randint(10, 99)), sig_hr(r, "en")], "hr", [])


@template("hr_nearmiss", "fr")
def nm_hr_mutuelle(c, r, ctx):
    return M("Mutuelle : nouvelle carte de tiers payant", [
        hello(ctx, r), "Votre nouvelle carte de tiers payant est disponible. Numéro d'adhérent : %d." % r.randint(
            10 ** 7, 10 ** 8 - 1), sig_hr(r)], "hr", [])


@template("landlord", "fr")
def landlord_portal(c, r, ctx):
    code = alnum(r, 8)
    return M("Votre espace locataire", [
        hello(ctx, r), "Bienvenue dans votre nouveau logement ! Votre code d'accès à l'espace "
        "locataire : %s" % code, "Vous y retrouverez vos avis d'échéance.",
        Small("Habitat Rive Ouest - Membre du Groupe Action Logement")],
        ("Habitat Rive Ouest", "espace-locataire@habitat-rive-ouest.example"), [])


@template("landlord", "fr")
def landlord_rent(c, r, ctx):
    return M("Avis d'échéance", [
        hello(ctx, r), "Votre avis d'échéance de %s est disponible. Montant : %d,%02d €." % (
            ctx["month_fr"], r.randint(400, 900), r.randint(0, 99)),
        "Référence locataire : %d" % r.randint(10 ** 6, 10 ** 7 - 1),
        Small("Logis Centre Est, une entreprise du Groupe Action Logement")],
        ("Logis Centre Est", "quittance@logis-centre-est.example"), [])


# -- other services' codes: nothing to report -------------------------------------------------


@template("other_otp", "fr")
def other_bank(c, r, ctx):
    return M("Code de sécurité", ["Votre code de sécurité pour valider votre virement : %06d." % r.randint(0, 999999),
                                  "Banque Cerisier - ne communiquez jamais ce code."],
             ("Banque Cerisier", "securite@banque-cerisier.example"), [])


@template("other_otp", "fr")
def other_caf(c, r, ctx):
    return M("Votre code de vérification", [
        hello(ctx, r), "Votre code de vérification est : %06d" % r.randint(0, 999999),
        "Il est valable 10 minutes.", Small("Caisse d'allocations familiales")],
        ("Caf", "ne-pas-repondre@caf.fr"), [])


@template("other_otp", "en")
def other_shop(c, r, ctx):
    return M("Your sign-in code", ["%06d is your sign-in code." % r.randint(0, 999999),
                                   "If you didn't request it, you can ignore this e-mail."],
             ("Shopwell", "account@shopwell.example"), [])


@template("other_otp", "fr")
def other_health(c, r, ctx):
    return M("Connexion à votre compte", [
        hello(ctx, r), "Code de connexion : %s" % alnum(r, 6, 1, 1), "Santé Plus, votre espace adhérent"],
        ("Santé Plus", "noreply@sante-plus.example"), [])


@template("other_otp", "fr")
def other_impots(c, r, ctx):
    return M("Code de confirmation", [
        hello(ctx, r), "Votre code de confirmation pour l'espace particulier : %08d" % r.randint(0, 10 ** 8 - 1)],
        ("Impots", "ne-pas-repondre@dgfip.finances.gouv.fr"), [])


@template("other_otp", "en")
def other_streaming(c, r, ctx):
    return M("Verify your e-mail", [
        "Enter this verification code: %04d" % r.randint(0, 9999), "Streamo Team"],
        ("Streamo", "hello@streamo.example"), [])


# -- ordinary mail ----------------------------------------------------------------------------


FIRSTS = ["Julien", "Sophie", "Karim", "Élodie", "Marc", "Inès", "Thomas", "Léa", "Hugo", "Aïcha", "Paul", "Chloé"]


@template("filler", "fr")
def fill_family(c, r, ctx):
    who = r.choice(FIRSTS)
    return M(r.choice(["Dimanche", "Photos du week-end", "Anniversaire de maman", "Re: vacances"]), [
        "Coucou,", r.choice(["On se retrouve dimanche vers midi ? J'apporte le dessert.",
                             "Voici les photos promises, il y en a d'autres sur le drive.",
                             "N'oublie pas l'anniversaire de maman le %s !" % ctx["date_fr"]]),
        "Bises,\n%s" % who], (who, "%s.%s@messagerie.example" % (who.lower().replace("é", "e").replace("ï", "i"),
                                                               r.choice(["martin", "bernard", "petit"]))), [])


@template("filler", "fr")
def fill_order(c, r, ctx):
    return M("Confirmation de votre commande n° %d" % r.randint(10 ** 8, 10 ** 9), [
        hello(ctx, r), "Merci pour votre commande.", KV(("Article", "Bouilloire inox 1,7 L"),
                                                        ("Total", "%d,%02d €" % (r.randint(10, 200), r.randint(0, 99))),
                                                        ("Livraison prévue", ctx["date_fr"])),
        Small("Boutique Lumen SAS - SIRET 512 884 961 00027 - 33000 Bordeaux")],
        ("Boutique Lumen", "commandes@boutique-lumen.example"), [], heavy=True)


@template("filler", "en")
def fill_work(c, r, ctx):
    who = r.choice(FIRSTS)
    return M(r.choice(["Q3 planning", "Minutes of Tuesday's meeting", "Re: budget", "Invoice 2026-0412"]), [
        "Hi all,", r.choice(["Please find the updated figures below. Revenue is up 4.2 % on last quarter.",
                             "Next meeting on %s at 10:30, room 3.07." % ctx["date_fr"],
                             "Could you review the draft before Friday?"]), "Thanks,\n%s" % who],
        (who, "%s@ateliers-morvan.example" % who.lower().replace("é", "e").replace("ï", "i")), [], work=True)


@template("filler", "fr")
def fill_shipping(c, r, ctx):
    return M("Votre colis est en route", [
        hello(ctx, r), "Votre colis %s est en cours de livraison." % ("XS%09dFR" % r.randint(0, 10 ** 9 - 1)),
        "Livraison estimée : %s entre 9 h et 13 h." % ctx["date_fr"]],
        ("Colis Express", "suivi@colis-express.example"), [])


@template("filler", "fr")
def fill_newsletter(c, r, ctx):
    return M(r.choice(["Les bons plans de la semaine", "-30 % sur tout le rayon jardin", "Votre sélection du mois"]), [
        "Découvrez nos offres jusqu'au %s." % ctx["date_fr"], "Code promo : ETE%02d" % r.randint(10, 40),
        Button("J'en profite", "https://shop.example/promo?u=%d" % r.randint(1, 10 ** 6)),
        Small("Pour vous désinscrire, cliquez ici. 12 avenue du Port, 44000 Nantes.")],
        ("Maison & Jardin", "newsletter@maison-jardin.example"), [], heavy=True)


@template("filler", "en")
def fill_travel(c, r, ctx):
    return M("Your booking confirmation", [
        hello(ctx, r, "en"), "Booking reference: %s" % alnum(r, 6, 1, 1),
        "Departure %s 07:42, Paris Gare de Lyon - Dijon Ville, coach 14, seat 52." % ctx["date_fr"]],
        ("RailGo", "booking@railgo.example"), [])


@template("filler", "fr")
def fill_bank(c, r, ctx):
    return M("Votre relevé de compte est disponible", [
        hello(ctx, r), "Votre relevé de %s est disponible dans votre espace client." % ctx["month_fr"],
        "Solde au %s : %d,%02d €" % (ctx["date_fr"], r.randint(100, 5000), r.randint(0, 99))],
        ("Banque Cerisier", "info@banque-cerisier.example"), [])


@template("filler", "fr")
def fill_association(c, r, ctx):
    return M("Assemblée générale de l'association", [
        "Bonjour à toutes et à tous,", "L'assemblée générale aura lieu le %s à 18 h 30, salle polyvalente, "
        "2 place de la Mairie, 21000 Dijon." % ctx["date_fr"], "Cotisation annuelle : 25 €.",
        "Le bureau"], ("Les Amis du Parc", "bureau@amis-du-parc.example"), [])


# ---------------------------------------------------------------------------------------------
# Train templates added for issue 12 (classes the first train half lacked: a request number
# written before its label, a code spécifique in lower or mixed case, a formal letter, English
# information mail that speaks of codes without giving one). Each is a train template by name.


@template("al_request", "fr", half="train")
def req_number_before(c, r, ctx):
    code = c.nur(grouped=r.random() < 0.4) if r.random() < 0.6 else c.aid_request(r.choice(["LP", "MJ", "AM"]))
    line = r.choice([
        "%s : c'est le numéro de votre demande, à rappeler dans tous vos échanges avec nous.",
        "%s - tel est le numéro unique sous lequel votre demande de logement social est enregistrée.",
        "La référence %s est désormais celle de votre demande ; notez-la.",
        "%s, voilà votre numéro de demande. Il figure aussi sur l'accusé de réception.",
    ]) % code
    return M(r.choice(["Accusé de réception de votre demande", "Votre demande a bien été reçue"]), [
        hello(ctx, r), "Nous avons bien reçu votre demande et les pièces jointes.", line,
        "Un conseiller l'étudiera sous quinze jours.", sig_al(r)], r.choice(["al", "alin", "lp"]), [code])


@template("al_request", "en", half="train")
def req_number_before_en(c, r, ctx):
    code = c.nur() if r.random() < 0.5 else c.aid_request("LP")
    line = r.choice(["%s is the number of your request: please quote it when you contact us.",
                     "%s - this is your application number.",
                     "Reference %s now identifies your housing request."]) % code
    return M("We have received your request", [
        hello(ctx, r, "en"), "Thank you, your file is complete.", line, "Kind regards,\nAction Logement"],
        r.choice(["al", "alin"]), [code])


@template("sne_request", "fr", half="train")
def req_sne_before(c, r, ctx):
    code = c.nur(grouped=r.random() < 0.3)
    return M("Votre demande de logement social : renouvellement effectué", [
        hello(ctx, r), "Le renouvellement de votre demande a été pris en compte le %s." % ctx["date_fr"],
        r.choice(["%s reste le numéro unique de votre demande.", "%s : numéro unique de votre demande (inchangé)."]) % code,
        Small("Ne répondez pas à ce message automatique.")], "sne", [code])


@template("al_specific", "fr", half="train")
def spec_case_kept(c, r, ctx):
    code = c.specific(case=r.choice(["lower", "mixed"]), grouped=r.random() < 0.4)
    return M(r.choice(["Votre code spécifique AL'in", "AL'in : votre code"]), [
        hello(ctx, r), r.choice([
            "Votre code spécifique (à saisir exactement comme écrit) : %s",
            "Voici le code spécifique qui vous a été attribué : %s. Respectez bien les minuscules.",
            "Code spécifique personnel\n%s"]) % code,
        "Il vous sera demandé à chaque candidature.", sig_al(r)], "alin", [code])


@template("al_specific", "en", half="train")
def spec_case_kept_en(c, r, ctx):
    code = c.specific(case=r.choice(["lower", "mixed"]))
    return M("Your AL'in specific code", [
        hello(ctx, r, "en"), r.choice(["Your specific code (case-sensitive): %s",
                                      "Please type this specific code exactly as shown: %s"]) % code,
        "The AL'in team"], "alin", [code])


@template("al_specific", "fr", half="train")
def spec_formal(c, r, ctx):
    code = c.specific()
    intro = r.choice([
        "Suite à votre demande du %s, nous vous communiquons ci-après votre code spécifique, strictement "
        "personnel, qui vous permettra de candidater aux logements proposés sur AL'in." % ctx["date_fr"],
        "Nous faisons suite à votre appel et vous adressons, comme convenu, le code spécifique attaché "
        "à votre compte AL'in.",
    ])
    return M("Courrier : votre code spécifique", [
        "Action Logement Services\n19/21 quai d'Austerlitz\n75013 Paris",
        "%s %s\n12 rue des Tilleuls\n21000 Dijon" % (ctx["first"], ctx["last"]),
        "Paris, le %s" % ctx["date_fr"], "Objet : code spécifique AL'in",
        "Madame, Monsieur,", intro, Big(code),
        "Nous vous prions d'agréer, Madame, Monsieur, l'expression de nos salutations distinguées.",
        "Le service Relation clients", sig_al(r)], "al", [code])


@template("al_nearmiss", "en", half="train")
def nm_explain_codes_en(c, r, ctx):
    body = r.choice([
        ["The company code is the SIRET number of your employer; it is printed on your payslip.",
         "Your specific code is personal and is sent to you by e-mail when you register on AL'in."],
        ["Your access code is something your employer gives you; Action Logement does not send it.",
         "If it is lost, please ask your HR department."],
        ["Why is a request number needed? It is how the landlords find your social housing request.",
         "Keep it with your documents."],
        ["Your file number is required for every claim. It is shown in each letter we send you."],
    ])
    return M(r.choice(["Your questions about codes", "Frequently asked questions", "Good to know"]),
             [hello(ctx, r, "en")] + body + ["Best regards,\nAction Logement"], r.choice(["al", "alin"]), [])


@template("al_nearmiss", "en", half="train")
def nm_reminder_en(c, r, ctx):
    return M(r.choice(["Reminder: finish your application", "Your application is incomplete"]), [
        hello(ctx, r, "en"), r.choice([
            "Your application still lacks a document. The code you received when you registered is "
            "still valid; nothing else is needed from you.",
            "To finish your application, upload your last tax notice. Your specific code is the one "
            "you already have.",
            "We are waiting for your employer's certificate. Your request number is unchanged."]),
        "The AL'in team"], "alin", [])


@template("al_nearmiss", "fr", half="train")
def nm_explain_codes(c, r, ctx):
    return M(r.choice(["Code entreprise, code spécifique : quelle différence ?", "Bon à savoir"]), [
        hello(ctx, r), r.choice([
            "Le code entreprise est le numéro SIRET de votre employeur. Le code spécifique est un code "
            "personnel que vous avez reçu à votre inscription.",
            "Votre numéro de demande est celui qui figure sur votre attestation d'enregistrement.",
            "Le code d'accès est fourni par votre employeur : adressez-vous à votre service RH."]),
        sig_al(r)], r.choice(["al", "alin"]), [])


# ---------------------------------------------------------------------------------------------
# Profiles: category weights, folder choices

FUNCTIONAL = {
    "al_specific": 45, "al_company": 10, "hr_company": 16, "hr_access": 38, "al_otp": 35, "al_request": 24,
    "sne_request": 8, "al_file": 26, "al_combined": 10, "fwd_inline": 8, "fwd_attached": 5, "hr_reply": 6,
    "user_reply": 5, "hr_unconfigured": 4, "phishing": 35, "spoofed": 10, "al_nearmiss": 120, "hr_nearmiss": 45,
    "landlord": 12, "other_otp": 100, "filler": 430, "hr_specific": 8,
}
CODE_CATEGORIES = {"al_specific", "al_company", "hr_company", "hr_access", "hr_specific", "al_otp", "al_request", "sne_request",
                   "al_file", "al_combined", "fwd_inline", "fwd_attached", "hr_reply", "user_reply",
                   "hr_unconfigured", "phishing", "spoofed"}


def realistic_weights():
    w = {k: v for k, v in FUNCTIONAL.items()}
    total_codes = sum(v for k, v in w.items() if k in CODE_CATEGORIES and k != "phishing")
    # ~0.5 % of messages carry codes; phishing ~0.1 %, near misses ~1 %, other OTPs ~2 %.
    scale = 0.5 / total_codes
    out = {k: v * scale for k, v in w.items() if k in CODE_CATEGORIES}
    out["phishing"] = 0.08
    out["al_nearmiss"] = 0.7
    out["hr_nearmiss"] = 0.25
    out["landlord"] = 0.1
    out["other_otp"] = 2.0
    out["filler"] = 100.0 - sum(out.values())
    return out


FOLDERS_BY_CATEGORY = {
    "phishing": [("perso/Junk", 6), ("perso/INBOX", 3), ("perso/Trash", 1)],
    "spoofed": [("perso/Junk", 5), ("perso/INBOX", 5)],
    "user_reply": [("travail/Sent Items", 1)],
    "fwd_inline": [("travail/INBOX", 2), ("perso/INBOX", 1)],
}
HR = {"hr_company", "hr_access", "hr_specific", "hr_reply", "hr_nearmiss"}
PERSO_AL = [("perso/INBOX", 14), ("perso/Archives", 3), ("perso/Junk", 2), ("perso/Trash", 1)]
WORK = [("travail/INBOX", 8), ("travail/Archives", 2), ("travail/Junk", 1)]
FILLER = [("perso/INBOX", 12), ("perso/Archives", 3), ("perso/Junk", 2), ("perso/Trash", 2), ("perso/Sent", 1),
          ("travail/INBOX", 4), ("travail/Archives", 1)]


def weighted(r, pairs):
    total = sum(w for _, w in pairs)
    x = r.random() * total
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def make_date(r, i, count):
    # Spread over 2023-01-01 .. 2026-11-30 roughly in message order (days since 2023-01-01).
    import datetime
    day = int(1430 * (i + r.random()) / max(1, count))
    d = datetime.datetime(2023, 1, 1, 7, 0) + datetime.timedelta(days=day, minutes=r.randint(0, 14 * 60))
    return d


# ---------------------------------------------------------------------------------------------
# MIME writing

LATIN1_FIX = str.maketrans({"\u2019": "'", "\u2018": "'", "\u0153": "oe", "\u0152": "OE", "\u20ac": "EUR",
                            "\u2026": "...", "\u2013": "-", "\u2014": "-", "\u201c": '"', "\u201d": '"',
                            "\u0435": "e", "\u0430": "a", "\u0456": "i"})
CP1252_FIX = str.maketrans({"\u0435": "e", "\u0430": "a", "\u0456": "i"})


def fit_charset(text, charset):
    """Text the charset can encode: typographic characters replaced by plain ones."""
    if text.isascii() or charset not in ("iso-8859-1", "windows-1252"):
        return text
    table = LATIN1_FIX if charset == "iso-8859-1" else CP1252_FIX
    for code, rep in table.items():
        ch = chr(code)
        if ch in text:
            text = text.replace(ch, rep)
    return text


def qp_encode(data, break_inside=None):
    """Quoted-printable (RFC 2045, binascii's encoder) of bytes with LF line ends; break_inside:
    an ASCII code whose first occurrence gets a soft line break in its middle."""
    enc = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    if break_inside:
        code = break_inside.encode("ascii")
        k = enc.find(code)
        if k >= 0:
            k += len(code) // 2
            enc = enc[:k] + b"=\n" + enc[k:]
    return enc


def b64_lines(data):
    s = base64.b64encode(data)
    return b"\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def encode_word(text, charset, mode):
    raw = text.encode(charset, "replace")
    words = []
    if mode == "B":
        step = 36 if charset == "utf-8" else 45
        i = 0
        while i < len(raw):
            j = min(len(raw), i + step)
            if charset == "utf-8":
                while j < len(raw) and (raw[j] & 0xC0) == 0x80:
                    j -= 1
            words.append("=?%s?B?%s?=" % (charset, base64.b64encode(raw[i:j]).decode()))
            i = j
    else:
        cur = ""
        for ch in text:
            b = ch.encode(charset, "replace")
            piece = "".join(chr(x) if (48 <= x <= 57 or 65 <= x <= 90 or 97 <= x <= 122) else
                            "_" if x == 32 else "=%02X" % x for x in b)
            if len(cur) + len(piece) > 40:
                words.append("=?%s?Q?%s?=" % (charset, cur))
                cur = ""
            cur += piece
        if cur:
            words.append("=?%s?Q?%s?=" % (charset, cur))
    return "\n ".join(words)


def header_text(text, r, charset=None):
    try:
        text.encode("ascii")
        return text
    except UnicodeEncodeError:
        pass
    cs = charset if charset in ("utf-8", "iso-8859-1", "windows-1252") else "utf-8"
    text = fit_charset(text, cs)
    return encode_word(text, cs, r.choice("BQ"))


def address(name, addr, r):
    if not name:
        return addr
    try:
        name.encode("ascii")
        if re.search(r"[(),.:;<>@\[\]\"']", name):
            return '"%s" <%s>' % (name.replace('"', ""), addr)
        return "%s <%s>" % (name, addr)
    except UnicodeEncodeError:
        return "%s <%s>" % (encode_word(name, "utf-8", "B"), addr)


class Part:
    def __init__(self, ctype, body=None, children=None, headers=None):
        self.ctype = ctype
        self.body = body  # bytes, already encoded
        self.children = children or []
        self.headers = headers or []


def text_part(text, subtype, r, charset=None, cte=None, soft_break=None, features=None):
    ascii_only = text.isascii()
    charset = charset or r.choice(["utf-8", "utf-8", "utf-8", "iso-8859-1", "windows-1252"])
    if ascii_only and r.random() < 0.3:
        charset = "us-ascii"
    text = fit_charset(text, charset)
    if subtype == "html":
        text = text.replace("{charset}", charset)
    data = text.encode(charset, "replace")
    if cte is None:
        choices = ["quoted-printable", "quoted-printable", "base64", "8bit"]
        if all(b < 128 for b in data):
            choices.append("7bit")
        cte = r.choice(choices)
    if cte == "7bit" and any(b >= 128 for b in data):
        cte = "quoted-printable"
    if cte == "quoted-printable":
        body = qp_encode(data, soft_break)
        if soft_break and features is not None and soft_break.encode() not in body:
            features.append("qp_softbreak_in_code")
    elif cte == "base64":
        body = b64_lines(data)
    else:
        body = data
    if features is not None:
        features.append("%s:%s:%s" % (subtype, charset, cte))
    return Part("text/%s; charset=%s" % (subtype, charset if r.random() < 0.8 else '"%s"' % charset), body,
                headers=[("Content-Transfer-Encoding", cte)])


def serialize(part, r, depth=0):
    """Bytes of a part without the top-level headers for the root (caller adds them)."""
    if part.children:
        boundary = "=_%s_%d" % ("".join(r.choice("abcdef0123456789") for _ in range(16)), depth)
        head = "%s;\n boundary=\"%s\"" % (part.ctype, boundary)
        chunks = [b"This is a multi-part message in MIME format.\n"] if depth == 0 and r.random() < 0.5 else []
        for ch in part.children:
            chunks.append(("--%s\n" % boundary).encode())
            h, b = serialize(ch, r, depth + 1)
            chunks.append(h + b"\n" + b + b"\n")
        chunks.append(("--%s--\n" % boundary).encode())
        body = b"".join(chunks)
        headers = [("Content-Type", head)] + part.headers
    else:
        body = part.body
        headers = [("Content-Type", part.ctype)] + part.headers
    return "".join("%s: %s\n" % hv for hv in headers).encode(), body


# Attachment bytes: a pool of random base64 lines sliced at random offsets (fast, deterministic).
POOL_LINES = None


def pool(seed):
    global POOL_LINES
    if POOL_LINES is None:
        pr = random.Random("pool:%d" % seed)
        raw = pr.randbytes(57 * 40000)  # 2.3 MB -> 40,000 base64 lines
        enc = base64.b64encode(raw)
        POOL_LINES = [enc[i:i + 76] for i in range(0, len(enc), 76)]
    return POOL_LINES


FILE_HEADS = {
    "pdf": ("application/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"),
    "jpg": ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
    "png": ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml"),
}


def binary_part(kind, size, r, seed, name, inline_cid=None):
    ctype, head = FILE_HEADS[kind]
    head = head + b"\x00" * (57 - len(head) % 57)
    lines = pool(seed)
    n = max(1, (size - len(head)) // 57)
    parts = [b64_lines(head)]
    while n > 0:
        start = r.randrange(len(lines))
        take = min(n, len(lines) - start)
        parts.append(b"\n".join(lines[start:start + take]))
        n -= take
    body = b"\n".join(parts)
    headers = [("Content-Transfer-Encoding", "base64")]
    if inline_cid:
        headers += [("Content-ID", "<%s>" % inline_cid), ("Content-Disposition", "inline; filename=\"%s\"" % name)]
    else:
        headers += [("Content-Disposition", "attachment;\n filename=\"%s\"" % name)]
    return Part('%s; name="%s"' % (ctype, name), body, headers=headers)


def text_attachment(text, name):
    return Part('text/plain; charset=utf-8; name="%s"' % name, b64_lines(text.encode("utf-8")),
                headers=[("Content-Transfer-Encoding", "base64"),
                         ("Content-Disposition", "attachment; filename=\"%s\"" % name)])


# ---------------------------------------------------------------------------------------------
# One message


def auth_results(domain, status):
    if status == "pass":
        return "%s;\n dkim=pass header.d=%s header.s=s%d;\n spf=pass smtp.mailfrom=bounce.%s;\n dmarc=pass header.from=%s" % (
            MX, domain, 1, domain, domain)
    return "%s;\n dkim=fail header.d=%s;\n spf=fail smtp.mailfrom=%s;\n dmarc=fail (p=REJECT) header.from=%s" % (
        MX, domain, domain, domain)


def build_message(i, count, args, ctx_base, weights_pairs, templates_by_cat, profile):
    r = random.Random("%d:%d" % (args.seed, i))
    category = weighted(r, weights_pairs)
    name, half, lang, fn = r.choice(templates_by_cat[category])[:4]
    d = make_date(r, i, count)
    ctx = dict(ctx_base)
    ctx["date_fr"] = "%02d/%02d/%d" % (d.day, d.month, d.year)
    ctx["date_fr_next"] = "%02d/%02d/%d" % (min(28, d.day + 7), d.month, d.year)
    ctx["date_fr_next_year"] = "%02d/%02d/%d" % (min(28, d.day), d.month, d.year + 1)
    ctx["year"] = str(d.year)
    ctx["month_fr"] = MONTHS_FR[d.month - 1]
    codes = Codes(r, ctx)
    m = fn(codes, r, ctx)
    kw = m.kw
    features = []
    flags = []

    # Sender, trust
    if isinstance(m.sender, tuple):
        from_name, from_addr = m.sender
        skey = None
    else:
        skey = m.sender
        from_name, from_addr = r.choice(SENDERS[skey])
    domain = from_addr.rsplit("@", 1)[1]
    trusted_kind = skey in ("al", "alin", "visale", "mj", "lp", "hr", "sne")
    own = from_addr in (USER_PERSO, USER_WORK)
    trust = kw.get("trust", not own and any(domain == t or domain.endswith("." + t)
                                            for t in TRUSTED + [SNE] + EMPLOYER_DOMAINS))
    if kw.get("suspicious"):
        flags.append("suspicious_sender")
    optional = kw.get("optional", False)

    # Folder
    if category in FOLDERS_BY_CATEGORY:
        folder = weighted(r, FOLDERS_BY_CATEGORY[category])
    elif category in HR or kw.get("work"):
        folder = weighted(r, WORK)
    elif category in ("filler", "other_otp"):
        folder = weighted(r, FILLER)
    else:
        folder = weighted(r, PERSO_AL)
    if kw.get("folder") == "sent":
        folder = "travail/Sent Items" if from_addr == USER_WORK else "perso/Sent"
    to_addr = USER_WORK if folder.startswith("travail/") else USER_PERSO
    if folder.startswith("perso/Junk"):
        features.append("spam_folder")

    extractions = []
    location = kw.get("location", "body")
    for code in m.codes:
        extractions.append({"kind": code.kind, "value": code.value, "trusted_sender": bool(trust),
                            "display": code.display, "location": location, "optional": bool(optional)})
    for code in m.subject_codes:
        extractions.append({"kind": code.kind, "value": code.value, "trusted_sender": bool(trust),
                            "display": code.display, "location": "subject", "optional": bool(optional)})
        features.append("code_in_subject")

    # Body
    title = m.subject
    blocks = list(m.blocks)
    size_plan = plan_size(r, profile, category)
    if size_plan.get("thread"):
        blocks = blocks + [Quote("Le %s, %s a écrit :" % (ctx["date_fr"], r.choice(FIRSTS)),
                                 thread_text(r, size_plan["thread"]))]
    if profile == "realistic" and category == "filler" and r.random() < 0.6:
        blocks.insert(-1, P(" ".join(r.choice(THREAD_SENTENCES) for _ in range(r.randint(3, 30)))))
    heavy = kw.get("heavy") or size_plan.get("newsletter")
    text = render_text(blocks, r)
    html_body = render_html(blocks, r, title, heavy=bool(heavy))
    if size_plan.get("newsletter"):
        html_body = pad_newsletter(html_body, r, size_plan["newsletter"])
    shape = "html" if kw.get("html_only") else r.choice(["text", "text", "html", "alt", "alt", "alt"])
    if heavy and shape == "text" and r.random() < 0.7:
        shape = "alt"
    soft = None
    for code in m.codes:
        if code.display.isalnum() and len(code.display) >= 6 and r.random() < 0.35:
            soft = code.display
    charset = None
    cte = None
    if soft:
        cte = "quoted-printable"
    if shape == "text":
        body = text_part(text, "plain", r, charset, cte, soft, features)
    elif shape == "html":
        body = text_part(html_body, "html", r, charset, cte, soft, features)
    else:
        body = Part("multipart/alternative", children=[text_part(text, "plain", r, charset, cte, soft, features),
                                                       text_part(html_body, "html", r, charset, cte, soft, features)])
    features.append("structure:" + shape)

    images = size_plan.get("images", [])
    if images:
        body = Part("multipart/related", children=[body] + [
            binary_part(kind, size, r, args.seed, "image%03d.%s" % (k, kind), "img%d.%d@mkmail" % (i, k))
            for k, (kind, size) in enumerate(images)])
        features.append("inline_image")

    attach = []
    attach_only = []
    if kw.get("attached"):
        skey2, subj2, lines2, codes2 = kw["attached"]
        n2, a2 = SENDERS[skey2][0]
        inner_head = ("From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%d.inner@%s>\nMIME-Version: 1.0\n" % (
            address(n2, a2, r), address(USER_NAME, USER_PERSO, r), header_text(subj2, r),
            fmt_date(d), i, a2.rsplit("@", 1)[1])).encode()
        ih, ib = serialize(text_part("\n\n".join(lines2) + "\n", "plain", r, features=features), r, 1)
        attach.append(Part("message/rfc822", inner_head + ih + b"\n" + ib,
                           headers=[("Content-Disposition", "attachment; filename=\"message.eml\"")]))
        for code in codes2:
            extractions.append({"kind": code.kind, "value": code.value, "trusted_sender": False,
                                "display": code.display, "location": "attached_message", "optional": True})
        features.append("forward_attached")
    for kind, size in size_plan.get("attachments", []):
        fname = r.choice({"pdf": ["attestation.pdf", "facture_%d.pdf" % r.randint(1, 999), "Contrat.pdf"],
                          "jpg": ["IMG_%04d.jpg" % r.randint(1, 9999), "photo.jpg"],
                          "docx": ["compte-rendu.docx", "CV_2026.docx"]}[kind])
        attach.append(binary_part(kind, size, r, args.seed, fname))
    if extractions and category in ("al_specific", "al_file") and r.random() < 0.25:
        # A guide attached as text: the example code in it must never be reported.
        example = alnum(r, 8)
        attach.append(text_attachment("Guide AL'in\n\nExemple : code spécifique %s\n" % example, "guide.txt"))
        attach_only.append(example)
    if attach:
        body = Part("multipart/mixed", children=[body] + attach)
        features.append("attachments")

    # Headers
    subj = header_text(m.subject, r, r.choice(["utf-8", "iso-8859-1", "windows-1252"]))
    if domain.startswith("xn--") or "xn--" in domain:
        features.append("idn_homograph")
    hdrs = []
    auth = kw.get("auth")
    if auth is None and trusted_kind and skey != "hr" and r.random() < 0.8:
        auth = "pass"
    if auth == "pass":
        hdrs.append(("Authentication-Results", auth_results(domain, "pass")))
    elif auth == "fail":
        hdrs.append(("Authentication-Results", auth_results(domain, "fail")))
        features.append("auth_fail_trusted_domain")
    if kw.get("suspicious") and not auth:
        hdrs.append(("Authentication-Results", "%s;\n dkim=pass header.d=%s;\n spf=pass;\n dmarc=pass header.from=%s"
                     % (MX, domain, domain)))
    hdrs.append(("Received", "from out.%s (out.%s [192.0.2.%d])\n by %s with ESMTPS id %08X;\n %s" % (
        domain, domain, r.randint(1, 254), MX, r.getrandbits(32), fmt_date(d))))
    if profile == "realistic":
        hdrs.extend(bulk_headers(r, domain, d))
    if skey == "hr" and r.random() < 0.5:
        hdrs.append(("X-MS-Exchange-Organization-AuthAs", "Internal"))
    hdrs += [("From", address(from_name, from_addr, r)), ("To", address(USER_NAME, to_addr, r)),
             ("Subject", subj), ("Date", fmt_date(d)),
             ("Message-ID", "<%d.%08x@%s>" % (i, r.getrandbits(32), domain))]
    if kw.get("reply_to"):
        hdrs.append(("Reply-To", kw["reply_to"]))
        features.append("reply_to_mismatch")
    if kw.get("reply"):
        hdrs.append(("In-Reply-To", "<q%d@ateliers-morvan.example>" % i))
    hdrs.append(("MIME-Version", "1.0"))
    if heavy:
        hdrs.append(("List-Unsubscribe", "<https://%s/unsub?u=%d>" % (domain, r.randint(1, 10 ** 6))))
    bh, bb = serialize(body, r)
    raw = "".join("%s: %s\n" % hv for hv in hdrs).encode() + bh + b"\n" + bb
    if r.random() < 0.15:
        raw = raw.replace(b"\n", b"\r\n")
        features.append("crlf")
    rec = {"file": None, "folder": folder, "category": category, "template": name, "half": half, "lang": lang,
           "extractions": extractions, "flags": flags, "features": sorted(set(features))}
    if attach_only:
        rec["attachment_only_values"] = attach_only
    if kw.get("note_values"):
        rec["rejected_values"] = kw["note_values"]
    return folder, raw, rec


def bulk_headers(r, domain, d):
    """What real mail carries above its body: relays, a DKIM signature, an ARC set, tool headers
    (about 2-3 KB; realistic profile only)."""
    sig = base64.b64encode(r.randbytes(256)).decode()
    bh = base64.b64encode(r.randbytes(32)).decode()
    out = [("Received", "from relay%d.%s (relay%d.%s [198.51.100.%d])\n by out.%s with ESMTP id %08X\n for <%s>;"
            "\n %s" % (k, domain, k, domain, r.randint(1, 254), domain, r.getrandbits(32), USER_PERSO, fmt_date(d)))
           for k in range(r.randint(1, 3))]
    out.append(("DKIM-Signature", "v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=mail%d;\n t=%d; h=from:to:subject:"
                "date:message-id:mime-version:content-type;\n bh=%s;\n b=%s" % (
                    domain, r.randint(1, 9), r.randint(1600000000, 1800000000), bh,
                    "\n ".join(sig[i:i + 72] for i in range(0, len(sig), 72)))))
    if r.random() < 0.5:
        out.append(("ARC-Seal", "i=1; a=rsa-sha256; t=%d; cv=none; d=%s; s=arc;\n b=%s" % (
            r.randint(1600000000, 1800000000), MX.split(".", 1)[1],
            "\n ".join(sig[i:i + 72] for i in range(0, len(sig), 72)))))
    out.append(("X-Mailer", r.choice(["Microsoft Outlook 16.0", "Mailchimp Mailer", "Thunderbird 128.3",
                                     "PHPMailer 6.9", "Apple Mail (2.3774)"])))
    out.append(("Return-Path", "<bounce-%d@%s>" % (r.randint(1, 10 ** 7), domain)))
    return out


def fmt_date(d):
    return "%s, %02d %s %d %02d:%02d:%02d +0100" % (DAYS[d.weekday()], d.day, MONTHS[d.month - 1], d.year, d.hour,
                                                   d.minute, d.second)


def plan_size(r, profile, category):
    if profile != "realistic":
        p = {}
        if r.random() < 0.06:
            p["attachments"] = [("pdf", r.randint(3000, 20000))]
        if category == "filler" and r.random() < 0.05:
            p["thread"] = r.randint(3, 8)
        return p
    x = r.random()
    p = {}
    if x < 0.0002:
        p["attachments"] = [(r.choice(["pdf", "jpg", "docx"]), int(r.uniform(8e6, 20e6)))]
    elif x < 0.0152:
        p["attachments"] = [(r.choice(["pdf", "jpg", "jpg", "docx"]), int(loguniform(r, 1e6, 4e6)))]
    elif x < 0.1152:
        p["attachments"] = [(r.choice(["pdf", "pdf", "jpg", "docx"]), int(loguniform(r, 2e4, 1e6)))
                            for _ in range(r.choice([1, 1, 1, 2]))]
    elif x < 0.2152:
        p["thread"] = r.randint(6, 40)
    elif x < 0.3952:
        p["newsletter"] = int(r.uniform(8000, 45000))
        if r.random() < 0.5:
            p["images"] = [(r.choice(["jpg", "png"]), int(loguniform(r, 4000, 60000))) for _ in range(r.randint(1, 4))]
    return p


def loguniform(r, a, b):
    import math
    return math.exp(r.uniform(math.log(a), math.log(b)))


THREAD_SENTENCES = [
    "Je te propose qu'on en reparle demain matin.", "Ok pour moi, je valide la version 3.",
    "Peux-tu relire le paragraphe sur les délais ?", "On a reçu la réponse du fournisseur hier soir.",
    "I'll send the revised quote by Thursday.", "Merci pour ton retour rapide.",
    "Le comité se réunit le 14, on pourra trancher à ce moment-là.", "See the attached notes from the call.",
    "Attention, la salle a changé : ce sera au deuxième étage.", "Je suis d'accord avec la remarque de Paul.",
]


def thread_text(r, kb):
    blocks = []
    size = 0
    n = 0
    while size < kb * 1000:
        lines = [r.choice(THREAD_SENTENCES) for _ in range(r.randint(2, 6))]
        who = r.choice(FIRSTS)
        blocks.append("Le %02d/%02d, %s a écrit :" % (r.randint(1, 28), r.randint(1, 12), who))
        blocks.append("\n".join(("> " * (n % 4)) + l for l in lines))
        size += sum(len(l) for l in lines) + 40
        n += 1
    return blocks


def pad_newsletter(html_body, r, size):
    rows = []
    total = len(html_body)
    while total < size:
        row = ('<tr><td class="x" style="padding:12px;border-bottom:1px solid #eee">'
               '<a href="https://news.example/a/%d?utm_source=nl&amp;utm_medium=email">'
               '<img src="https://cdn.news.example/i/%d.jpg" width="160" alt=""></a></td>'
               '<td style="padding:12px"><h3 style="margin:0">%s</h3><p>%s</p></td></tr>\n'
               % (r.randint(1, 10 ** 6), r.randint(1, 10 ** 6), r.choice(THREAD_SENTENCES), r.choice(THREAD_SENTENCES)))
        rows.append(row)
        total += len(row)
    return html_body.replace("</body>", '<table width="600" align="center">%s</table>\n</body>' % "".join(rows))


# ---------------------------------------------------------------------------------------------
# Driver


def context(seed):
    r = random.Random("ctx:%d" % seed)
    emp = siret(r)
    old = siret(r)
    return {"first": "Camille", "last": "Dufresne", "user_perso": USER_PERSO, "employer_siret": emp,
            "old_siret": old, "company_code": "ENT%06d" % r.randint(0, 999999)}


def select_templates(half):
    out = {}
    for cat, lst in TEMPLATES.items():
        chosen = [t for t in lst if half == "all" or t[1] == half]
        if chosen:
            out[cat] = chosen
    return out


def generate(args):
    profile = args.profile
    count = args.count if args.count is not None else (1500 if profile == "functional" else 50000)
    weights = FUNCTIONAL if profile == "functional" else realistic_weights()
    templates = select_templates(args.half)
    pairs = [(k, v) for k, v in sorted(weights.items()) if k in templates]
    out = args.out
    prepare_out(out, args.force)
    ctx = context(args.seed)
    messages = []
    made = set()
    total_bytes = 0
    for i in range(1, count + 1):
        folder, raw, rec = build_message(i, count, args, ctx, pairs, templates, profile)
        d = os.path.join(out, folder)
        if folder not in made:
            os.makedirs(d, exist_ok=True)
            made.add(folder)
        name = "%06d.eml" % i
        with open(os.path.join(d, name), "wb") as f:
            f.write(raw)
        rec["file"] = folder + "/" + name
        rec["bytes"] = len(raw)
        total_bytes += len(raw)
        messages.append(rec)
        if not args.quiet and i % 5000 == 0:
            print("  %d messages" % i, file=sys.stderr)
    stats = {"messages": count, "bytes": total_bytes, "categories": {}, "folders": {}, "extractions_by_kind": {},
             "templates": {}, "messages_with_extractions": 0}
    for m in messages:
        for key, v in (("categories", m["category"]), ("folders", m["folder"]), ("templates", m["template"])):
            stats[key][v] = stats[key].get(v, 0) + 1
        if m["extractions"]:
            stats["messages_with_extractions"] += 1
        for e in m["extractions"]:
            stats["extractions_by_kind"][e["kind"]] = stats["extractions_by_kind"].get(e["kind"], 0) + 1
    for key in ("categories", "folders", "templates", "extractions_by_kind"):
        stats[key] = dict(sorted(stats[key].items()))
    doc = {"format": FORMAT, "generator": "mkmail.py " + VERSION, "seed": args.seed, "profile": profile,
           "half": args.half, "count": count,
           "config": {"trusted_domains": TRUSTED + [SNE], "employer_domains": EMPLOYER_DOMAINS,
                      "user_addresses": [USER_PERSO, USER_WORK], "user_name": USER_NAME,
                      "employer_name": EMPLOYER_NAME},
           "kinds": KINDS, "scoring_notes": SCORING,
           "halves": {cat: {t[0]: t[1] for t in lst} for cat, lst in sorted(TEMPLATES.items())},
           "stats": stats, "messages": messages}
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1, sort_keys=False)
        f.write("\n")
    if not args.quiet:
        print("mkmail: %d messages (%.1f MB), %d with codes, %d codes, profile %s, half %s, in %s" % (
            count, total_bytes / 1e6, stats["messages_with_extractions"],
            sum(stats["extractions_by_kind"].values()), profile, args.half, out))
    return doc


def prepare_out(out, force):
    if os.path.exists(out):
        entries = os.listdir(out)
        if entries:
            if not (force and os.path.exists(os.path.join(out, MARK))):
                sys.exit("mkmail: %s is not empty (--force replaces a mailbox mkmail wrote)" % out)
            for e in entries:
                p = os.path.join(out, e)
                if os.path.isdir(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, MARK), "w") as f:
        f.write("written by mkmail.py; --force may replace this folder\n")


# ---------------------------------------------------------------------------------------------
# --check


def strip_html(s):
    s = re.sub(r"(?is)<(style|script|title)\b.*?</\1>", " ", s)
    s = re.sub(r"(?s)<[^>]*>", " ", s)
    return html.unescape(s)


def decoded_texts(msg):
    out = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_content_type() == "message/rfc822":
            continue
        disp = part.get_content_disposition()
        if part.get_content_maintype() != "text" or disp == "attachment":
            continue
        payload = part.get_payload(decode=True) or b""
        cs = part.get_content_charset() or "us-ascii"
        text = payload.decode(cs, "replace")
        out.append(strip_html(text) if part.get_content_subtype() == "html" else text)
    return out


def attached_texts(msg):
    out = []
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            for inner in part.get_payload():
                out.extend(decoded_texts(inner))
    return out


def squash(s):
    return re.sub("[\\s\u00a0.\\-]", "", s)


def check(out, quiet=False):
    with open(os.path.join(out, "expected.json"), encoding="utf-8") as f:
        doc = json.load(f)
    problems = []
    if doc.get("format") != FORMAT:
        problems.append("format is not " + FORMAT)
    listed = set()
    for m in doc["messages"]:
        listed.add(m["file"])
        path = os.path.join(out, m["file"])
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            problems.append("%s: %s" % (m["file"], e))
            continue
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg.defects:
            problems.append("%s: defects %s" % (m["file"], msg.defects))
        try:
            subject = str(msg["subject"])
            str(msg["from"].addresses[0].addr_spec)
        except Exception as e:  # noqa: BLE001 - any parse failure is a problem to report
            problems.append("%s: header: %r" % (m["file"], e))
            continue
        body = squash("\n".join(decoded_texts(msg)))
        attached = squash("\n".join(attached_texts(msg)))
        subj = squash(subject)
        for e in m["extractions"]:
            where = {"subject": subj, "attached_message": attached}.get(e["location"], body)
            if e["value"] not in where:
                problems.append("%s: %s %s not in the %s" % (m["file"], e["kind"], e["value"], e["location"]))
            if e["value"] != squash(e["display"]):
                problems.append("%s: value %s is not display %r without separators" % (m["file"], e["value"],
                                                                                       e["display"]))
            if e["optional"] and e["trusted_sender"]:
                problems.append("%s: an optional code is trusted" % m["file"])
        for v in m.get("attachment_only_values", []):
            if v in body or v in subj:
                problems.append("%s: attachment-only value %s in the text" % (m["file"], v))
    on_disk = set()
    for root, dirs, files in os.walk(out):
        for n in files:
            if n.endswith(".eml"):
                on_disk.add(os.path.relpath(os.path.join(root, n), out))
    if on_disk != listed:
        problems.append("files and expected.json differ: %d unlisted, %d missing" % (
            len(on_disk - listed), len(listed - on_disk)))
    for p in problems[:50]:
        print("mkmail --check: " + p, file=sys.stderr)
    print("mkmail --check: %d messages, %d problems" % (len(doc["messages"]), len(problems)))
    return not problems


def main(argv=None):
    ap = argparse.ArgumentParser(description="Writes alcode's synthetic test mailbox and its expected.json.",
                                 epilog="See the top of this file for the format, the halves and the sizes.")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int)
    ap.add_argument("--profile", choices=["functional", "realistic"], default="functional")
    ap.add_argument("--half", choices=["train", "heldout", "all"], default="all")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.count is not None and args.count < 1:
        ap.error("--count must be at least 1")
    generate(args)
    if args.check and not check(args.out, args.quiet):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
