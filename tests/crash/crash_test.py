#!/usr/bin/env python3
"""The crash test (issue 3): executions on a store survive SIGKILL at random moments.

Part 1, the embedding API: tests/crash/crashd runs the mixed workload of workload.json (Wait,
Map with MaxConcurrency, Parallel, Retry with back-off, Catch) over an asynchronous Task
resource that logs each submission. It is killed with SIGKILL at seeded random moments (at
least --kills times; a new batch of executions is started whenever all are done before
that) and started again each time, which recovers everything from the store. Then the same
executions run once without interruption on a fresh store, and for every execution:
  - status and output equal the uninterrupted run's;
  - history ids are 1..n without a gap, each previousEventId points backwards;
  - the events (type and state) are the same multiset as in the uninterrupted run;
  - the resource saw every task attempt submitted exactly once (one log line per token,
    as many tokens as LambdaFunctionScheduled events).
Part 2, the CLI: `sfn run --db` on cli_workload.json is killed, then `sfn resume --db` is
killed again and again until it completes; the result and the events equal a plain
`sfn run`'s.

Prints one line per check and ends with "N passed, N failed".
"""
import argparse
import collections
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("BUILD", "build")
CRASHD = os.path.join(BUILD, "tools", "crashd")
SFN = os.path.join(BUILD, "sfn")

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def crashd(db, log, count):
    return [CRASHD, "--db", db, "--log", log, "--definition",
            os.path.join(HERE, "workload.json"), "--count", str(count)]


def run_killed(argv, rng, lo, hi):
    """Starts argv and kills it after a random delay. True if it was killed, False if it
    ended by itself first (its exit code must then be 0)."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=rng.uniform(lo, hi))
        if p.returncode != 0:
            raise SystemExit("%s exited %d: %s" % (argv[0], p.returncode, err.decode()))
        return False
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.communicate()
        return True


def executions(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    out = {}
    for eid, name, status, output in con.execute(
            "SELECT id, name, status, output FROM executions"):
        events = [json.loads(e) for (e,) in con.execute(
            "SELECT event FROM history WHERE execution_id = ? ORDER BY id", (eid,))]
        out[name] = {"status": status, "output": json.loads(output) if output else None,
                     "events": events}
    con.close()
    return out


def state_of(event):
    for v in event.values():
        if isinstance(v, dict) and "name" in v:
            return v["name"]
    return None


def shape(events):
    return collections.Counter((e["type"], state_of(e)) for e in events)


def part_embedding(tmp, seed, kills):
    rng = random.Random(seed)
    db = os.path.join(tmp, "crash.db")
    log = os.path.join(tmp, "crash.log")
    count, done_kills = 8, 0
    while True:
        if done_kills >= kills:
            p = subprocess.run(crashd(db, log, count), capture_output=True, timeout=120)
            check(p.returncode == 0, "final crashd run exited %d: %s" % (p.returncode,
                                                                          p.stderr.decode()))
            break
        if run_killed(crashd(db, log, count), rng, 0.05, 0.6):
            done_kills += 1
        else:
            count += 8  # everything ended before enough kills: another batch
    print("embedding: %d kills, %d executions" % (done_kills, count))
    check(done_kills >= kills, "at least %d kills" % kills)

    ref_db = os.path.join(tmp, "ref.db")
    ref_log = os.path.join(tmp, "ref.log")
    p = subprocess.run(crashd(ref_db, ref_log, count), capture_output=True, timeout=120)
    check(p.returncode == 0, "reference run exited %d" % p.returncode)

    got, ref = executions(db), executions(ref_db)
    check(len(got) == count and len(ref) == count,
          "%d executions stored (reference %d), want %d" % (len(got), len(ref), count))
    scheduled = 0
    for name in sorted(ref):
        g, r = got.get(name), ref[name]
        if g is None:
            check(False, "%s: missing after the kills" % name)
            continue
        check(g["status"] == r["status"] == "SUCCEEDED",
              "%s: status %s, uninterrupted %s" % (name, g["status"], r["status"]))
        check(g["output"] == r["output"], "%s: output %s, uninterrupted %s"
              % (name, g["output"], r["output"]))
        ids = [e["id"] for e in g["events"]]
        check(ids == list(range(1, len(ids) + 1)), "%s: event ids not contiguous" % name)
        check(all(e["previousEventId"] < e["id"] for e in g["events"]),
              "%s: a previousEventId points forwards" % name)
        diff = (shape(g["events"]) - shape(r["events"])) + (shape(r["events"]) - shape(g["events"]))
        check(not diff, "%s: events differ from the uninterrupted run: %s" % (name, dict(diff)))
        scheduled += sum(1 for e in g["events"] if e["type"] == "LambdaFunctionScheduled")
    with open(log) as f:
        tokens = [line.split()[1] for line in f if line.startswith("S ")]
    dup = [t for t, n in collections.Counter(tokens).items() if n > 1]
    check(not dup, "attempts submitted more than once: %s" % dup[:5])
    check(len(set(tokens)) == scheduled,
          "%d attempts submitted, %d scheduled in the histories" % (len(set(tokens)), scheduled))
    print("embedding: %d task attempts, each submitted once" % len(set(tokens)))


def part_cli(tmp, seed, kills):
    rng = random.Random(seed + 1)
    wl = os.path.join(HERE, "cli_workload.json")
    ref = subprocess.run([SFN, "run", wl, "--result", "--events"], capture_output=True,
                         timeout=60)
    want = json.loads(ref.stdout)
    db = os.path.join(tmp, "cli.db")
    argv = [SFN, "run", wl, "--db", db, "--name", "crash"]
    done_kills = 0
    if run_killed(argv, rng, 0.2, 1.5):
        done_kills += 1
    while done_kills < kills:
        if not run_killed([SFN, "resume", "--db", db], rng, 0.1, 1.0):
            break
        done_kills += 1
    p = subprocess.run([SFN, "resume", "--db", db], capture_output=True, timeout=60)
    print("cli: %d kills" % done_kills)
    check(done_kills >= 1, "sfn run --db was killed at least once")
    h = subprocess.run([SFN, "history", "--db", db, "crash", "--json"], capture_output=True,
                       timeout=60)
    events = json.loads(h.stdout)["events"]
    status = subprocess.run([SFN, "executions", "--db", db, "--json"], capture_output=True,
                            timeout=60)
    ex = json.loads(status.stdout)["executions"]
    check(len(ex) == 1 and ex[0]["status"] == want["status"],
          "cli: status %s, uninterrupted %s" % (ex, want["status"]))
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    (output,) = con.execute("SELECT output FROM executions").fetchone()
    con.close()
    check(output is not None and json.loads(output) == want.get("output"),
          "cli: output %s, uninterrupted %s" % (output, want.get("output")))
    check([e["id"] for e in events] == list(range(1, len(events) + 1)),
          "cli: event ids not contiguous")
    got_types = collections.Counter(e["type"] for e in events)
    check(got_types == collections.Counter(want["events"]),
          "cli: event types differ: %s vs %s" % (got_types, collections.Counter(want["events"])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CRASH_SEED", "20261122")))
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--cli-kills", type=int, default=6)
    a = ap.parse_args()
    print("seed %d" % a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        part_embedding(tmp, a.seed, a.kills)
        part_cli(tmp, a.seed, a.cli_kills)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
