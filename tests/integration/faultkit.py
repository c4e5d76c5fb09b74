"""Helpers shared by the fault, memory and security tests: a big mailbox made of the generated
test mailbox, a store snapshot to compare a disturbed run with an undisturbed one, process memory
and CPU figures read from /proc, and log scanning."""

import os
import random
import sqlite3
import contextlib

from alcodetest import Alcode, TempDir, corpus_employer_domains, read_log, require_corpus, wait_for

FOLDERS = {"perso/INBOX": "INBOX", "perso/Junk": "Junk"}


def load_copies(dovecot, copies, user="alice"):
    """Delivers `copies` copies of the whole generated sample into the user's folders; returns
    the number of messages."""
    sample = require_corpus()
    n = 0
    for copy in range(copies):
        for root, dirs, files in os.walk(sample):
            dirs.sort()
            rel = os.path.relpath(root, sample)
            if rel == ".":
                continue
            folder = FOLDERS.get(rel, rel)
            for name in sorted(files):
                if name.endswith(".eml"):
                    with open(os.path.join(root, name), "rb") as f:
                        dovecot.deliver(user, folder, f.read(), name="%s.c%d.%d" % (name, copy, n))
                    n += 1
    return n


def employer_config():
    """The config line that makes the generated mailbox's HR senders the employer's."""
    return "employer_domains = %s\n" % corpus_employer_domains(require_corpus())


def snapshot(db, immutable=False):
    """What a user can get out of a store, in a form that does not depend on the order in
    which messages were read: codes, every sighting with its provenance, cursors.
    immutable: for a store on a read-only file system."""
    with contextlib.closing(sqlite3.connect("file:%s?%s" % (db, "immutable=1" if immutable else "mode=ro"),
                                            uri=True)) as c:
        codes = c.execute("SELECT kind, value, trusted, superseded FROM codes").fetchall()
        sightings = c.execute(
            "SELECT c.kind, c.value, m.account, m.folder, m.uidvalidity, m.uid, s.rule, s.trusted"
            " FROM sightings s JOIN codes c ON c.id = s.code JOIN messages m ON m.id = s.message").fetchall()
        cursors = c.execute("SELECT account, folder, uidvalidity, last_uid, messages_seen FROM cursors").fetchall()
        messages = c.execute("SELECT count(*) FROM messages").fetchone()[0]
    return {"codes": sorted(codes), "n_codes": len(codes), "sightings": sorted(sightings),
            "cursors": sorted(cursors), "messages": messages}


def messages_seen(db, account=None):
    """Messages counted in the committed cursors (of one account, or all; 0 while the store
    does not exist yet)."""
    try:
        with contextlib.closing(sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)) as c:
            row = c.execute("SELECT total(messages_seen) FROM cursors WHERE ?1 IS NULL OR account = ?1",
                            (account,)).fetchone()
            return int(row[0] or 0)
    except sqlite3.Error:
        return 0


def reference_store(dovecot, config):
    """An undisturbed `alcoded --once` over the same mailbox, in a store of its own."""
    tmp = TempDir()
    try:
        a = Alcode(tmp)
        a.write_config(config)
        a.daemon("--once", timeout=600)
        return snapshot(a.db)
    finally:
        tmp.cleanup()


def proc_status(pid, key):
    """A kB field of /proc/PID/status (VmHWM: peak RSS, VmRSS: current) in MiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    raise KeyError(key)


def stat_fields(pid):
    """/proc/PID/stat's fields after the command name (state first); OSError when it is gone."""
    with open("/proc/%s/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_in_log(p, text):
    return read_log(p).count(text)


def rng():
    """A random source whose seed is printed, so that a failing run can be replayed with
    ALCODE_TEST_SEED."""
    seed = int(os.environ.get("ALCODE_TEST_SEED", random.randrange(1 << 30)))
    print("random seed: %d (ALCODE_TEST_SEED to replay)" % seed)
    return random.Random(seed)


def soak():
    """ALCODE_SOAK=N multiplies the number of faults injected (bench/soak runs it long)."""
    try:
        return max(1, int(os.environ.get("ALCODE_SOAK", "1")))
    except ValueError:
        return 1


__all__ = ["load_copies", "employer_config", "snapshot", "messages_seen", "reference_store", "proc_status", "cpu_seconds",
           "count_in_log", "rng", "soak", "wait_for"]


def process_tree(pid):
    """pid and every descendant of it, from /proc (parents first)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(stat_fields(d)[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def signal_tree(pid, sig):
    """Sends sig to pid and its descendants, by id (a whole dovecot: master, logins, imap)."""
    for p in process_tree(pid):
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def kill_dovecot(d):
    """SIGKILL to every process of that dovecot instance, as a crash or an OOM kill would do;
    returns once its ports are free again."""
    import signal
    import socket
    # The master stopped first: a child it forked between reading /proc and the kill would
    # outlive it, holding the instance's sockets ("Socket already exists" at the restart).
    os.kill(d.proc.pid, signal.SIGSTOP)
    pids = process_tree(d.proc.pid)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    d.proc.wait()

    def gone(p):
        try:
            return stat_fields(p)[0] == "Z"
        except (OSError, IndexError):
            return True
    wait_for(lambda: all(gone(p) for p in pids[1:]), timeout=10, what="dovecot's processes to exit")

    def free():
        for port in (d.port, d.tls_port):
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
            finally:
                s.close()
        return True
    wait_for(free, timeout=10, what="dovecot's ports to be free")


__all__ += ["process_tree", "signal_tree", "kill_dovecot"]
