#!/usr/bin/env python3
"""tests/mock/run_cases.py - the mock fixtures: each tests/mock/<case>/case.json runs
`sfn run DEFINITION --mock-config MOCK ARGS --result --events --history --fast-time` (paths
relative to the case's directory) and checks the result: `expect` (status, output, error,
cause, event types in order), `history` (each item: an event of that type whose details hold
those members; `output`/`input` compare as JSON), or `exit` and a `stderr` substring for a
refused run (MOCKPATH stands for the mock config's path). Last line: "N passed, N failed"."""
import json
import os
import subprocess
import sys

SFN = sys.argv[1] if len(sys.argv) > 1 else "build/sfn"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def details(ev):
    for k, v in ev.items():
        if k.endswith("EventDetails"):
            return v
    return {}


def history_ok(spec, history):
    want = dict(spec)
    typ = want.pop("type")
    for ev in history:
        if ev.get("type") != typ:
            continue
        d = details(ev)
        ok = True
        for k, v in want.items():
            got = d.get(k)
            if k in ("output", "input") and isinstance(got, str):
                got = json.loads(got)
            if got != v:
                ok = False
                break
        if ok:
            return None
    return f"no {typ} event with {want}"


def run_case(name):
    cdir = os.path.join(HERE, name)
    case = json.load(open(os.path.join(cdir, "case.json")))
    rel = lambda p: os.path.relpath(os.path.normpath(os.path.join(cdir, p)), ROOT)
    mock = rel(case["mock"])
    cmd = [SFN, "run", rel(case["definition"]), "--mock-config", mock] + case.get("args", [])
    cmd += ["--result", "--events", "--history", "--fast-time",
            "--input", json.dumps(case.get("input", {}))]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    if "exit" in case:
        errs = []
        if p.returncode != case["exit"]:
            errs.append(f"exit {p.returncode}, expected {case['exit']}")
        want = case["stderr"].replace("MOCKPATH", mock)
        if want not in p.stderr:
            errs.append(f"stderr {p.stderr.strip()!r} lacks {want!r}")
        if p.stdout.strip():
            errs.append(f"printed a result: {p.stdout.strip()[:200]}")
        return errs
    if p.returncode != 0:
        return [f"exit {p.returncode}: {p.stderr.strip()[-300:]}"]
    res = json.loads(p.stdout)
    errs = []
    for k, v in case["expect"].items():
        if res.get(k) != v:
            errs.append(f"{k}: expected {json.dumps(v)}, got {json.dumps(res.get(k))}")
    for k in ("output", "error", "cause"):
        if k in res and k not in case["expect"]:
            errs.append(f"unexpected {k}: {json.dumps(res[k])}")
    for spec in case.get("history", []):
        e = history_ok(spec, res.get("history", []))
        if e:
            errs.append(e)
    return errs


def main():
    names = sorted(d for d in os.listdir(HERE) if os.path.isfile(os.path.join(HERE, d, "case.json")))
    passed = failed = 0
    for n in names:
        errs = run_case(n)
        if errs:
            failed += 1
            print(f"FAIL mock/{n}: " + "; ".join(errs))
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
