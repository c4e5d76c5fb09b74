#!/usr/bin/env python3
"""Backfill benchmark: `alcoded --once` against the alternatives, same dovecot, same mailbox,
on loopback and through a simulated WAN (bench/wanproxy.py).

    python3 bench/backfill.py [MAILBOX] [--mkmail N] [--links loopback,wan,slow] [--runs R]
                              [--only alcoded,download,bytes,mbsync,doveadm] [--concurrent]
                              [--no-mbsync] [--mbsync-links L] [--no-doveadm] [--alcoded-only] [--trace]

MAILBOX is a folder tree of .eml files with expected.json, made when missing by the project's
generator: --mkmail N (default 50,000) messages of its
realistic profile (tests/tools/mkmail.py --profile realistic: attachments, newsletters with
images, threads) in /tmp/bench-mkmail-N. It is loaded into a private dovecot (implicit TLS on
127.0.0.1), indexed once, then on each link:
- alcoded --once with an empty store: every message through the pipeline (exact recall),
  reading headers and text parts only; bytes it downloaded, time, and the time from start to
  the first trusted code spécifique in the store;
- a client that downloads every message whole (UID FETCH 1:* BODY.PEEK[] per folder, one
  command each, over TLS): the floor of any client-side scan that reads everything;
- the same client stopped once it has downloaded as many bytes as alcoded did: the time
  those bytes take on that link, whatever asks for them;
- mbsync full sync of every folder into a Maildir, then rg for the trusted domains and brand
  words over it (the classic "sync then grep");
- (loopback only) doveadm search for the same candidates on the server itself.
--only picks contenders (bytes, the download stopped at alcoded's byte count, needs alcoded);
--alcoded-only is --only alcoded (quick figures for the first code). --concurrent runs every link,
and every contender of a link, at the same time, each through its own proxy (its own simulated
link: a bandwidth-bound client is not slowed by the others as long as the CPU keeps up), bytes
after alcoded on the same proxy; --lanes says exactly which clients run in turn and which at
the same time. With more than one lane, every loopback client goes through a pass-through proxy
(no delay, no pacing) that counts alcoded's bytes, dovecot's log then holding every client's
sessions: the same relay for each contender, one more process hop than a direct connection. Every result
states the load average (1 min, lowest-highest) while it ran. --trace prints alcoded's "phase:"
debug lines (time into the session of each step of the first look: login, LIST, the first look
at every folder, each folder's likely code mail).
Links: loopback (direct), wan (30 ms RTT, 50 Mbit/s), slow (100 ms, 8 Mbit/s), through the
proxy. Each is run RUNS times (default 1), medians reported; without --concurrent one after the
other, links in the order given. Build first:
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build."""

import argparse
import email.utils
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../tests/integration"))
sys.path.insert(0, HERE)
os.environ.setdefault("ALCODE_BUILD_DIR", os.path.join(HERE, "../build"))
from alcodetest import Alcode, Dovecot, TempDir, require_tools  # noqa: E402
from wanproxy import WanProxy  # noqa: E402

DOMAINS = ["actionlogement.fr", "al-in.fr", "visale.fr"]
KEYWORDS = ["action logement", "al'in", "alin", "visale"]
LINKS = {"loopback": (0, 0), "wan": (30, 50), "slow": (100, 8)}


def timed(f):
    t = time.monotonic()
    out = f()
    return time.monotonic() - t, out


class Downloader:
    """A plain IMAP client over TLS that fetches every message whole, one command a folder."""

    def __init__(self, port, ca, folders, limit=None):
        self.port, self.ca, self.folders, self.limit = port, ca, folders, limit
        self.bytes = 0

    def run(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.port)), server_hostname="localhost")
        f = s.makefile("rb", buffering=1 << 20)
        self.tag = 0
        try:
            self._line(f)
            self._cmd(s, f, b"LOGIN alice secret1")
            for folder in self.folders:
                self._cmd(s, f, b'EXAMINE "%s"' % folder.encode())
                if not self._cmd(s, f, b"UID FETCH 1:* (BODY.PEEK[])"):
                    break
        finally:
            s.close()
        return self.bytes

    def _line(self, f):
        line = f.readline()
        if not line:
            raise RuntimeError("server closed the connection")
        self.bytes += len(line)
        return line

    def _cmd(self, s, f, command):
        self.tag += 1
        tag = b"a%d" % self.tag
        s.sendall(tag + b" " + command + b"\r\n")
        while True:
            line = self._line(f)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                n = int(m.group(1))
                got = 0
                while got < n:
                    chunk = f.read(min(n - got, 1 << 20))
                    if not chunk:
                        raise RuntimeError("server closed the connection")
                    got += len(chunk)
                    self.bytes += len(chunk)
                    if self.limit and self.bytes >= self.limit:
                        return False
                continue
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise RuntimeError("%s failed: %r" % (command, line))
                return True


def internal_date(raw):
    """The Date: of a message as seconds since the epoch, or None."""
    head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"^Date:[ \t]*(.+)$", head, re.M | re.I)
    try:
        return email.utils.parsedate_to_datetime(m.group(1).decode("latin-1").strip()).timestamp() if m else None
    except (TypeError, ValueError):
        return None


def load(d, mailbox):
    n, folders = 0, []
    for root, dirs, files in os.walk(mailbox):
        dirs.sort()
        rel = os.path.relpath(root, mailbox)
        if rel == "." or not files:
            continue
        folder = rel.replace("INBOX", "Inbox") if rel != "perso/INBOX" else "INBOX"
        folders.append(folder)
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                raw = f.read()
            dest = d.deliver("alice", folder, raw, name=name + "." + str(n))
            # Its internal date, as the MDA that delivered it would have set it (dovecot's
            # maildir takes it from the file's mtime): a real mailbox's mail is spread over
            # years, not all delivered a minute ago.
            when = internal_date(raw)
            if when:
                os.utime(dest, (when, when))
            n += 1
    return n, folders


CONTENDERS = ["alcoded", "download", "bytes", "mbsync", "doveadm"]


class LoadSampler:
    """The load average every few seconds, so that each result can say what the machine was doing."""

    def __init__(self, every=5.0):
        self.samples, self.every = [], every
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            self.samples.append((time.monotonic(), os.getloadavg()[0]))
            if self._stop.wait(self.every):
                return

    def between(self, t0, t1):
        xs = [x for t, x in self.samples if t0 - self.every <= t <= t1] or [os.getloadavg()[0]]
        return "%.1f-%.1f" % (min(xs), max(xs))

    def stop(self):
        self._stop.set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mailbox", nargs="?")
    ap.add_argument("--mkmail", type=int, help="N messages of mkmail.py's realistic profile (default 50,000)")
    ap.add_argument("--links", default="loopback,wan,slow")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "1")))
    ap.add_argument("--only", help="comma-separated contenders to run, of: %s (bytes: the download "
                    "stopped at alcoded's byte count, run after alcoded; default: all)" % ",".join(CONTENDERS))
    ap.add_argument("--concurrent", action="store_true",
                    help="run every link, and every contender of a link, at the same time, each on its own "
                    "simulated link (its own proxy); bytes still follows alcoded")
    ap.add_argument("--lanes", help="instead of --links/--only/--concurrent: lanes run at the same time, "
                    "';'-separated; each a ','-separated list of LINK:CONTENDER[+CONTENDER...] run in turn, each "
                    "link of a lane through its own proxy, e.g. 'slow:download;slow:mbsync;"
                    "wan:alcoded+bytes,loopback:alcoded+bytes'")
    ap.add_argument("--no-mbsync", action="store_true")
    ap.add_argument("--mbsync-links", default=None, help="links to run mbsync + rg on (default: all)")
    ap.add_argument("--no-doveadm", action="store_true")
    ap.add_argument("--alcoded-only", action="store_true", help="the same as --only alcoded")
    ap.add_argument("--trace", action="store_true")
    args = ap.parse_args()

    only = set(args.only.split(",")) if args.only else set(CONTENDERS)
    if only - set(CONTENDERS):
        ap.error("--only: unknown contender %s" % ", ".join(sorted(only - set(CONTENDERS))))
    if args.alcoded_only:
        only = {"alcoded"}
    if args.no_mbsync:
        only.discard("mbsync")
    if args.no_doveadm:
        only.discard("doveadm")
    if "bytes" in only and "alcoded" not in only:
        ap.error("--only bytes needs alcoded too (it downloads as many bytes as alcoded did)")
    links = args.links.split(",")
    for link in links:
        if link not in LINKS:
            ap.error("--links: unknown link %s (of %s)" % (link, ",".join(LINKS)))

    if args.lanes:
        lanes = []
        for spec in args.lanes.split(";"):
            items = []
            for item in spec.split(","):
                link, _, steps = item.strip().partition(":")
                for step in steps.split("+"):
                    if link not in LINKS or step not in CONTENDERS:
                        ap.error("--lanes: %r is not LINK:CONTENDER[+CONTENDER...] (links %s; contenders %s)"
                                 % (item, ",".join(LINKS), ",".join(CONTENDERS)))
                    if step == "bytes" and (link, "alcoded") not in items:
                        ap.error("--lanes: %s:bytes needs %s:alcoded before it in its lane" % (link, link))
                    items.append((link, step))
            lanes.append(items)
        only = {step for items in lanes for _, step in items}
    else:
        lanes = []
        for link in links:
            steps = [c for c in CONTENDERS if c in only]
            if "mbsync" in steps and args.mbsync_links and link not in args.mbsync_links.split(","):
                steps.remove("mbsync")
            if link != "loopback" and "doveadm" in steps:
                steps.remove("doveadm")  # (the server's own search knows no link)
            if args.concurrent:
                # alcoded and the download of its byte count share a lane; every other its own.
                groups = [[s for s in steps if s in ("alcoded", "bytes")]] + \
                    [[s] for s in steps if s not in ("alcoded", "bytes")]
                lanes += [[(link, s) for s in g] for g in groups if g]
            elif steps:
                lanes.append([(link, s) for s in steps])
        if not args.concurrent:
            # One after the other, links in the order given.
            lanes = [[item for items in lanes for item in items]] if lanes else []

    require_tools("dovecot", "doveadm", *(["mbsync", "rg"] if "mbsync" in only else []))
    count = args.mkmail or int(os.environ.get("COUNT", "50000"))
    mailbox = args.mailbox or "/tmp/bench-mkmail-%d" % count
    if not os.path.exists(os.path.join(mailbox, "expected.json")):
        subprocess.run([sys.executable, os.path.join(HERE, "../tests/tools/mkmail.py"), mailbox, "--profile",
                        "realistic", "--seed", "42", "--count", str(count), "--quiet"], check=True)
    import json
    with open(os.path.join(mailbox, "expected.json")) as f:
        employer = json.load(f).get("config", {}).get("employer_domains") or \
            ["lefort-industrie.example", "sirh-horizon.example"]
    domains = DOMAINS + employer

    tmp = TempDir(prefix="alcode-bench-")
    load_avg = LoadSampler()
    try:
        d = Dovecot(tmp)
        t_load = time.monotonic()
        n, folders = load(d, mailbox)
        d.start()
        doveadm = ["doveadm", "-c", d.conf]
        # Index every folder once, so that no contender pays for dovecot's first look.
        subprocess.run(doveadm + ["search", "-u", "alice", "mailbox", "*", "all"], check=True, capture_output=True)
        # And write the copied mailbox out: the kernel's writeback of gigabytes of new files
        # would otherwise slow down whichever contender runs first.
        os.sync()
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(mailbox) for f in fs
                   if f.endswith(".eml"))
        print("mailbox: %d messages, %.1f MB in %d folders (%s), loaded and indexed in %.0f s"
              % (n, size / 1e6, len(folders), mailbox, time.monotonic() - t_load))
        print("build: %s; %s" % (os.path.abspath(os.environ["ALCODE_BUILD_DIR"]), " | ".join(
            ",".join("%s:%s" % i for i in items) for items in lanes)) +
            (" (these lanes at the same time, each link of each through its own proxy)" if len(lanes) > 1 else ""),
            flush=True)

        results = {}
        lock = threading.Lock()
        # Several sessions at once make dovecot's log useless for counting one client's bytes:
        # then loopback clients go through a pass-through proxy (no delay, no pacing) that counts,
        # every contender alike.
        count_by_proxy = len(lanes) > 1

        def record(link, name, t, t0, **extra):
            extra["load"] = load_avg.between(t0, t0 + t)
            with lock:
                results.setdefault(link, {}).setdefault(name, []).append(dict(extra, time=t))
                # As it comes, too: a long run cut short still says what it measured.
                print("  %s %s, %s: %.2f s %s" % (time.strftime("%H:%M:%S", time.gmtime()), link, name, t,
                                                  " ".join("%s=%s" % kv for kv in sorted(extra.items()))),
                      flush=True)

        def open_link(link):
            rtt, mbit = LINKS[link]
            if link != "loopback" or count_by_proxy:
                return WanProxy(d.tls_port, rtt, mbit).start()
            return None

        def counted(proxy, f):
            if proxy:
                proxy.reset()
            t0 = time.monotonic()
            t, out = timed(f)
            return t, t0, out, (proxy.down if proxy else None)

        def run_alcoded(link, proxy):
            port = proxy.port if proxy else d.tls_port
            # alcoded --once, watching the store for the first trusted code spécifique.
            a = Alcode(TempDir(prefix="alcode-bench-run-"))
            a.write_config("employer_domains = %s\n" % ", ".join(employer) +
                           "[account bench]\nhost = 127.0.0.1\nport = %d\ntls = implicit\nuser = alice\n"
                           "password = secret1\nca_file = %s\n" % (port, d.ca))
            first = []

            def watch(p, start):
                while p.poll() is None and not first:
                    try:
                        if a.sql("SELECT 1 FROM codes WHERE kind = 'specific' AND trusted = 1 LIMIT 1"):
                            first.append(time.monotonic() - start)
                    except Exception:
                        pass
                    time.sleep(0.02)

            def alcoded():
                start = time.monotonic()
                p = a.spawn_daemon("--once", *(["-v"] if args.trace else []))
                w = threading.Thread(target=watch, args=(p, start))
                w.start()
                p.wait(timeout=3600)
                w.join()
                if p.returncode != 0:
                    p.logfile.seek(0)
                    raise RuntimeError("alcoded failed: " + p.logfile.read()[-2000:])
                if args.trace:
                    p.logfile.seek(0)
                    lines = ["  [%s] %s" % (link, line.rstrip()) for line in p.logfile if "phase:" in line]
                    lines.append("  [%s] first trusted code spécifique in the store at +%s s"
                                 % (link, "%.3f" % first[0] if first else "-"))
                    with lock:
                        print("\n".join(lines), flush=True)
                return len(a.list_json())

            d_before = len(d.log())
            t, t0, codes, down = counted(proxy, alcoded)
            if down is None:
                down = sum(int(x) for x in re.findall(r"out=(\d+)", d.log()[d_before:]))
            record(link, "alcoded --once", t, t0, bytes=down, found=codes, first=first[0] if first else None)
            a.tmp.cleanup()
            return down

        def run_download(link, proxy, limit=None):
            port = proxy.port if proxy else d.tls_port
            t, t0, got, down = counted(proxy, lambda: Downloader(port, d.ca, folders, limit=limit).run())
            if limit:
                # (The proxy may have read more from the server than the client took: count the client's.)
                record(link, "download alcoded's bytes", t, t0, bytes=got)
            else:
                record(link, "download everything", t, t0, bytes=down or got)

        def run_mbsync(link, proxy):
            port = proxy.port if proxy else d.tls_port
            local = tmp.join("maildir-%s-%d" % (link, time.monotonic_ns()))
            os.makedirs(local)
            rc = local + ".mbsyncrc"
            with open(rc, "w") as f:
                f.write("IMAPAccount b\nHost localhost\nPort %d\nUser alice\nPass secret1\nSSLType IMAPS\n"
                        "CertificateFile %s\n\nIMAPStore r\nAccount b\n\nMaildirStore l\nPath %s/\n"
                        "Inbox %s/INBOX\nSubFolders Verbatim\n\nChannel c\nFar :r:\nNear :l:\nPatterns *\n"
                        "Create Near\nSync Pull\nSyncState *\n" % (port, d.ca, local, local))
            pattern = "|".join([x.replace(".", r"\.") for x in domains] + ["action logement", "al.in", "visale"])

            def mbsync_rg():
                subprocess.run(["mbsync", "-q", "-c", rc, "c"], check=True, capture_output=True)
                return subprocess.run(["rg", "-l", "-i", "-e", pattern, local], capture_output=True,
                                      text=True).stdout

            t, t0, out, down = counted(proxy, mbsync_rg)
            subprocess.run(["rm", "-rf", local, rc])
            record(link, "mbsync + rg", t, t0, bytes=down, found=len(out.splitlines()))

        def run_doveadm(link):
            def search(keys):
                q = ["("]
                for k in keys:
                    q += (["OR"] if len(q) > 1 else []) + list(k)
                out = subprocess.run(doveadm + ["search", "-u", "alice", "mailbox", "*"] + q + [")"],
                                     check=True, capture_output=True, text=True).stdout
                return len(out.splitlines())
            t0 = time.monotonic()
            t, hits = timed(lambda: search([("FROM", x) for x in domains] + [("TEXT", k) for k in KEYWORDS]))
            record(link, "doveadm search FROM|TEXT", t, t0, found=hits)

        failed = []

        def lane(items):
            """Clients one after the other, each link through its own proxy, (link, contender) pairs."""
            proxies, alcoded_bytes = {}, {}
            try:
                for _ in range(args.runs):
                    for link, step in items:
                        if link not in proxies:
                            proxies[link] = open_link(link)
                        proxy = proxies[link]
                        if step == "alcoded":
                            alcoded_bytes[link] = run_alcoded(link, proxy)
                        elif step == "bytes":
                            run_download(link, proxy, limit=alcoded_bytes[link])
                        elif step == "download":
                            run_download(link, proxy)
                        elif step == "mbsync":
                            run_mbsync(link, proxy)
                        elif step == "doveadm":
                            run_doveadm(link)
            except Exception as e:
                with lock:
                    print("  %s failed: %s" % (",".join("%s:%s" % i for i in items), e), flush=True)
                failed.append(e)
            finally:
                for proxy in proxies.values():
                    if proxy:
                        proxy.stop()
                time.sleep(0.5)

        if len(lanes) > 1:
            threads = [threading.Thread(target=lane, args=(l,)) for l in lanes]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
        elif lanes:
            lane(lanes[0])

        print()
        for link, rows in results.items():
            rtt, mbit = LINKS[link]
            print("== %s%s" % (link, " (RTT %d ms, %d Mbit/s)" % (rtt, mbit) if rtt else ""))
            print("%-28s %9s %10s %8s %14s %10s" % ("", "time s", "MB down", "found", "first code s", "load"))
            med = {}
            for name, runs in rows.items():
                med[name] = statistics.median(r["time"] for r in runs)
                last = runs[-1]
                print("%-28s %9.2f %10s %8s %14s %10s" % (
                    name, med[name], "%.1f" % (last["bytes"] / 1e6) if last.get("bytes") else "-",
                    last.get("found", "-"), "%.2f" % last["first"] if last.get("first") is not None else "-",
                    last["load"]))
            a = med.get("alcoded --once")
            if a is None:
                print()
                continue
            ab = rows["alcoded --once"][-1]["bytes"]
            if "download everything" in med:
                fb = rows["download everything"][-1]["bytes"]
                print("bytes: alcoded %.3f of a full download (target <= 1/3)" % (ab / fb))
                print("time: %.2fx a full download" % (a / med["download everything"]))
            if "download alcoded's bytes" in med:
                print("time: %.2fx a client downloading alcoded's bytes (target <= 1.2x)"
                      % (a / med["download alcoded's bytes"]))
            if "mbsync + rg" in med:
                print("vs mbsync + rg: %.1fx faster (target >= 10x)" % (med["mbsync + rg"] / a))
            print()
        d.stop()
        if failed:
            sys.exit(1)
    finally:
        load_avg.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
