#!/usr/bin/env python3
"""make bench: runs ../shared/bench/workloads with `sfn run --fast-time --stats`.

For each workload: checks the output against expected.json (a wrong output is reported and
no figure is given), then prints the median over --runs runs of state transitions per second
of execution time (start-up excluded, as the peers' figures in ../shared/bench/README.md),
the peak RSS of the whole process, and for the one-state machine the whole-process wall time.
Exit status 1 if any output is wrong. Targets (issue 2) are printed beside the figures."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGETS = {  # transitions/s; trivial: whole-process wall ms
    "choice_loop": 1_000_000, "map_10k": 500_000, "pass_chain_1000": 500_000,
    "big_payload": 5_000,
}


def run_once(sfn, wdir, env):
    cmd = [sfn, "run", os.path.join(wdir, "definition.json"), "--input-file",
           os.path.join(wdir, "input.json"), "--fast-time", "--stats"]
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env)
        # wait4: this child's own peak RSS (RUSAGE_CHILDREN would be the largest so far)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    if p.returncode != 0:
        return None, f"exit {p.returncode}: {err.decode().strip()[-300:]}"
    stats = json.loads(err.decode().strip().splitlines()[-1])
    return {"out": json.loads(out), "stats": stats, "wall": wall,
            "rss_kb": stats.get("peak_rss_kb", usage.ru_maxrss)}, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sfn", default="build/sfn")
    ap.add_argument("--workloads", default=os.path.join("..", "shared", "bench", "workloads"))
    ap.add_argument("--runs", type=int, default=5)
    opts = ap.parse_args()
    names = sorted(d for d in os.listdir(opts.workloads)
                   if os.path.isfile(os.path.join(opts.workloads, d, "definition.json")))
    bad = 0
    print(f"{'workload':18s} {'transitions':>11s} {'trans/s':>12s} {'target':>10s} "
          f"{'peak RSS':>10s} {'wall':>9s}")
    for name in names:
        wdir = os.path.join(opts.workloads, name)
        meta = json.load(open(os.path.join(wdir, "meta.json")))
        expected = json.load(open(os.path.join(wdir, "expected.json")))
        env = dict(os.environ)
        env.update(meta.get("env", {}))
        rates, walls, rss = [], [], 0
        error = None
        for _ in range(opts.runs):
            # each run in a fresh process: RUSAGE_CHILDREN's maxrss is the largest child so far
            r, error = run_once(opts.sfn, wdir, env)
            if r is None:
                break
            if r["out"] != expected:
                error = "output differs from expected.json"
                break
            if r["stats"]["transitions"] != meta["transitions"]:
                error = f"{r['stats']['transitions']} transitions, expected {meta['transitions']}"
                break
            rates.append(r["stats"]["transitions"] / (r["stats"]["run_ns"] / 1e9))
            walls.append(r["wall"])
            rss = max(rss, r["rss_kb"])
        if error:
            bad += 1
            print(f"{name:18s} FAILED: {error}")
            continue
        rate = statistics.median(rates)
        wall = statistics.median(walls)
        target = TARGETS.get(name)
        tgt = f">={target:,}" if target else ("<5 ms" if name == "trivial" else "")
        print(f"{name:18s} {meta['transitions']:11,d} {rate:12,.0f} {tgt:>10s} "
              f"{rss / 1024:8.1f}MB {wall * 1000:7.1f}ms")
    print(f"(median of {opts.runs} runs; trans/s = states entered per second of execution, "
          f"start-up excluded; wall = whole `sfn run` process; RSS = peak of the process)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
