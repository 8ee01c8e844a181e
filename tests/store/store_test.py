#!/usr/bin/env python3
"""The store's behaviour at its edges (issue 3), through the sfn command: each situation in
CASES sets up a directory, runs one sfn command and checks its exit code, a text its
stderr (or stdout) must contain, and that a database file it refused was not changed (same
bytes before and after). Also: the file is created with mode 0600, histories page forwards
and backwards and without data, a name cannot be reused, a second writer is refused while
the first runs. Prints one line per failure and ends with "N passed, N failed".
"""
import hashlib
import json
import os
import sqlite3
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SFN = os.path.abspath(os.path.join(ROOT, os.environ.get("BUILD", "build"), "sfn"))
HELLO = os.path.join(ROOT, "examples", "hello", "definition.json")
HELLO_IN = os.path.join(ROOT, "examples", "hello", "input.json")
WAIT = os.path.join(HERE, "wait.json")
BIG = os.path.join(HERE, "big.json")

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def digest(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def sfn(*args, as_nobody=False, stdin=None):
    argv = [SFN] + list(args)
    if as_nobody:
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, input=stdin)


def run_hello(db, *extra):
    return sfn("run", HELLO, "--input-file", HELLO_IN, "--fast-time", "--db", db, *extra)


def make_db(tmp):
    db = os.path.join(tmp, "s.db")
    p = run_hello(db, "--name", "first")
    assert p.returncode == 0, p.stderr
    return db


# ---- situations: (why, setup(tmp) -> (db, argv, needs_nobody), exit, text) ----

def s_missing_dir(tmp):
    return os.path.join(tmp, "no", "such", "dir", "s.db"), None, False


def s_readonly_dir(tmp):
    d = os.path.join(tmp, "ro")
    os.mkdir(d)
    os.chmod(d, 0o555)
    return os.path.join(d, "s.db"), None, True


def s_readonly_file(tmp):
    db = make_db(tmp)
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.chmod(f, 0o444)
    return db, None, True


def s_corrupt(tmp):
    db = os.path.join(tmp, "s.db")
    with open(db, "wb") as f:
        f.write(os.urandom(8192))
    return db, None, False


def s_truncated(tmp):
    db = make_db(tmp)
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(db, "r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 3000)  # the schema page is garbage now
    return db, None, False


def s_newer(tmp):
    db = make_db(tmp)
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA user_version = 99")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db, None, False


def s_foreign(tmp):
    db = os.path.join(tmp, "s.db")
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    return db, None, False


def s_not_a_file(tmp):
    d = os.path.join(tmp, "adir.db")
    os.mkdir(d)
    return d, None, False


CASES = [
    ("a missing directory", s_missing_dir, 2, "does not exist"),
    ("a read-only directory", s_readonly_dir, 2, "is not writable"),
    ("a read-only database file", s_readonly_file, 2, "read-only"),
    ("a file of random bytes", s_corrupt, 2, "not an sfn database or is corrupt"),
    ("a database with a damaged page", s_truncated, 2, "corrupt"),
    ("a schema from a newer sfn", s_newer, 2, "schema version 99, newer than this sfn"),
    ("an SQLite database of another application", s_foreign, 2, "not an sfn database"),
    ("a directory where the file should be", s_not_a_file, 2, "not a regular file"),
]


def run_cases(base):
    root = os.geteuid() == 0
    have_setpriv = shutil.which("setpriv") is not None
    for why, setup, want_exit, text in CASES:
        tmp = tempfile.mkdtemp(dir=base)
        os.chmod(tmp, 0o755)  # reachable by nobody when we drop privileges
        db, _, needs_nobody = setup(tmp)
        if needs_nobody and root and not have_setpriv:
            check(False, "%s: running as root without setpriv, cannot drop privileges" % why)
            continue
        nobody = needs_nobody and root
        if nobody:
            os.chmod(os.path.dirname(SFN), 0o755)
        before = digest(db) if os.path.isfile(db) else None
        for cmd in (["run", HELLO, "--input-file", HELLO_IN, "--fast-time", "--db", db],
                    ["resume", "--db", db]):
            p = sfn(*cmd, as_nobody=nobody)
            check(p.returncode == want_exit,
                  "%s: sfn %s exit %d, want %d (%s)" % (why, cmd[0], p.returncode, want_exit,
                                                       p.stderr.strip()))
            check(text in p.stderr, "%s: sfn %s stderr %r lacks %r" % (why, cmd[0],
                                                                     p.stderr.strip(), text))
            check(digest(db) == before if os.path.isfile(db) or before else True,
                  "%s: sfn %s changed the file" % (why, cmd[0]))


def test_full_disk(base):
    tmp = tempfile.mkdtemp(dir=base)
    db = os.path.join(tmp, "s.db")
    p = run_hello(db, "--name", "small")
    check(p.returncode == 0, "full disk: the first run fails: %s" % p.stderr)
    size_limit = os.path.getsize(db) + 64 * 1024
    pad = json.dumps({"p": "x" * 256})
    p = sfn("run", BIG, "--fast-time", "--db", db, "--db-max-size", str(size_limit),
            "--input", pad)
    check(p.returncode == 3, "full disk: exit %d, want 3 (%s)" % (p.returncode, p.stderr))
    check("the disk or the database is full" in p.stderr,
          "full disk: stderr %r" % p.stderr.strip())
    with sqlite3.connect("file:%s?mode=ro" % db, uri=True) as c:
        check(c.execute("PRAGMA integrity_check").fetchone()[0] == "ok",
              "full disk: the file is damaged")
    p = sfn("executions", "--db", db, "--json")
    names = [e["name"] for e in json.loads(p.stdout)["executions"]] if p.returncode == 0 else []
    check(names == ["small"], "full disk: executions after the failure %s" % names)
    p = run_hello(db, "--name", "after")
    check(p.returncode == 0, "full disk: the store is usable afterwards: %s" % p.stderr)


def test_store_behaviour(base):
    tmp = tempfile.mkdtemp(dir=base)
    db = os.path.join(tmp, "s.db")
    p = run_hello(db, "--name", "one", "--result", "--history")
    check(p.returncode == 0, "run --db: %s" % p.stderr)
    res = json.loads(p.stdout)
    check(res["status"] == "SUCCEEDED" and len(res["history"]) > 3,
          "run --db --result --history: %s" % res)
    check(os.stat(db).st_mode & 0o777 == 0o600, "database mode %o, want 600"
          % (os.stat(db).st_mode & 0o777))
    p = run_hello(db, "--name", "one")
    check(p.returncode == 2 and "ExecutionAlreadyExists" in p.stderr,
          "a reused name: exit %d %r" % (p.returncode, p.stderr))
    p = sfn("history", "--db", db, "one", "--json")
    events = json.loads(p.stdout)["events"]
    check(events == res["history"], "history --json equals run --history")
    p = sfn("history", "--db", db, "one", "--json", "--reverse")
    check(json.loads(p.stdout)["events"] == list(reversed(events)), "history --reverse")
    p = sfn("history", "--db", db, "one", "--json", "--no-data")
    nodata = json.loads(p.stdout)["events"]
    check(len(nodata) == len(events) and not any(
        k in d for e in nodata for d in e.values() if isinstance(d, dict)
        for k in ("input", "output", "parameters")), "history --no-data keeps no data")
    p = sfn("history", "--db", db, "nosuch")
    check(p.returncode == 2 and "ExecutionDoesNotExist" in p.stderr,
          "history of an unknown execution: %r" % p.stderr)
    p = sfn("resume", "--db", db)
    check(p.returncode == 0 and "no unfinished execution" in p.stderr,
          "resume with nothing to do: exit %d %r" % (p.returncode, p.stderr))
    p = sfn("executions", "--db", os.path.join(tmp, "missing.db"))
    check(p.returncode == 2 and "missing.db" in p.stderr, "executions of a missing file")
    # a second writer is refused while the first runs; readers are not
    bg = subprocess.Popen([SFN, "run", WAIT, "--db", db, "--name", "waiting"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        listed = []
        while time.time() < deadline and "waiting" not in listed:
            p = sfn("executions", "--db", db, "--json")
            if p.returncode == 0:
                listed = [e["name"] for e in json.loads(p.stdout)["executions"]]
            time.sleep(0.05)
        check("waiting" in listed, "a reader lists the running execution: %s" % listed)
        p = sfn("resume", "--db", db)
        check(p.returncode == 2 and "in use by another sfn process" in p.stderr,
              "a second writer: exit %d %r" % (p.returncode, p.stderr))
    finally:
        os.kill(bg.pid, signal.SIGKILL)
        bg.wait()
    p = sfn("resume", "--db", db, "--result")
    out = [json.loads(line) for line in p.stdout.splitlines()]
    check(p.returncode == 0 and [o["status"] for o in out] == ["SUCCEEDED"],
          "resume after the kill: exit %d %s %r" % (p.returncode, out, p.stderr))


def main():
    base = tempfile.mkdtemp()
    os.chmod(base, 0o755)
    try:
        run_cases(base)
        test_full_disk(base)
        test_store_behaviour(base)
    finally:
        for dirpath, dirnames, _ in os.walk(base):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
        shutil.rmtree(base, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
