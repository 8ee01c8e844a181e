#!/usr/bin/env python3
"""`make bench`, the store's part (issue 3): build/tools/storebench measures, on a scratch
directory on the same disk as the working tree (not a tmpfs):

  - SQLite's own rate of single-row commits with an fsync each (WAL, synchronous=FULL): the
    reference for what "durable" costs on this disk;
  - durable state transitions per second with durability full and normal, on workloads of
    ../shared/bench run as many executions at once (every transition in the store, one
    transaction per loop turn);
  - resident memory per execution waiting in a Wait state (100,000 of them), and the time
    and memory to recover those 100,000 from the store.

Targets: >= 20,000 transitions/s at full, <= 4 KiB per waiting execution, recovery of
100,000 executions in under 3 s. Prints a table; --json prints the raw figures.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = os.path.join(os.path.dirname(ROOT), "shared", "bench", "workloads")

DURABLE = [  # workload, executions at once
    ("pass_chain_1000", 100),
    ("parallel_fanout", 200),
    ("retry_catch", 20),
    ("map_10k", 2),
]


def run(tool, *args):
    p = subprocess.run([tool] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        raise SystemExit("storebench %s failed: %s" % (args[0], p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--waiting", type=int, default=100000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tool = os.path.join(ROOT, a.build, "tools", "storebench")
    scratch = tempfile.mkdtemp(prefix=".bench-store-", dir=ROOT)
    figures = {}
    try:
        db = os.path.join(scratch, "b.db")
        ref = [run(tool, "sqlite", db, 300)["sqlite_commits_per_s"] for _ in range(a.runs)]
        figures["sqlite_commits_per_s"] = statistics.median(ref)
        for name, n in DURABLE:
            d = os.path.join(WORKLOADS, name)
            for dur in ("full", "normal"):
                rates = []
                for _ in range(a.runs):
                    r = run(tool, "durable", db, os.path.join(d, "definition.json"),
                            os.path.join(d, "input.json"), n, dur)
                    if r["failed"]:
                        raise SystemExit("%s: %d executions did not succeed" % (name, r["failed"]))
                    rates.append(r["transitions_per_s"])
                figures["%s x%d %s" % (name, n, dur)] = (statistics.median(rates), min(rates),
                                                         max(rates))
        w = run(tool, "wait", db, a.waiting)
        figures["bytes_per_waiting_execution"] = w["bytes_per_waiting_execution"]
        rec = [run(tool, "recover", db) for _ in range(a.runs)]
        figures["recover_seconds"] = statistics.median(r["seconds"] for r in rec)
        figures["recovered"] = rec[0]["recovered"]
        figures["bytes_per_recovered_execution"] = statistics.median(
            r["bytes_per_recovered_execution"] for r in rec)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if a.json:
        print(json.dumps(figures, indent=1))
        return 0
    print("store (medians of %d runs, min-max)" % a.runs)
    print("  SQLite single-row commits with fsync: %.0f/s" % figures["sqlite_commits_per_s"])
    print("  durable transitions/s:")
    ok = True
    for k, v in figures.items():
        if isinstance(v, tuple):
            target = k.endswith(" full") and v[0] < 20000
            ok = ok and not target
            print("    %-28s %9.0f/s  (%.0f-%.0f)%s" % (k, v[0], v[1], v[2],
                                                    "  BELOW 20,000/s" if target else ""))
    print("  per waiting execution: %.0f bytes (target <= 4096)"
          % figures["bytes_per_waiting_execution"])
    print("  recovery of %d executions: %.2f s (target < 3 s), %.0f bytes each"
          % (figures["recovered"], figures["recover_seconds"],
             figures["bytes_per_recovered_execution"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
