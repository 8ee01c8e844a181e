#!/usr/bin/env python3
"""tests/cli/run_cli_tests.py - data-driven tests of the `sfn` command (tests/cli/cases.json):
arguments, stdin, expected exit code, stdout/stderr (exact, as JSON, or containing a text).
Run from the repo root; the last line is "N passed, N failed"."""
import json
import os
import subprocess
import sys
import tempfile
import time

SFN = os.path.join(os.environ.get("BUILD", "build"), "sfn")


def get(obj, path):
    cur = obj
    for part in path.replace("]", "").replace("[", ".").split("."):
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur


def main():
    cases = json.load(open("tests/cli/cases.json"))
    big = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"x": "a" * 300000}, big)
    big.close()
    passed = failed = 0
    for c in cases:
        args = [big.name if a == "@big" else a for a in c["args"]]
        t0 = time.time()
        p = subprocess.run([SFN] + args, input=c.get("stdin", ""), capture_output=True, text=True,
                           timeout=60)
        took = time.time() - t0
        problems = []
        if p.returncode != c["exit"]:
            problems.append(f"exit {p.returncode}, expected {c['exit']}")
        if "stdout" in c and p.stdout != c["stdout"]:
            problems.append(f"stdout {p.stdout!r}")
        if "stderr" in c and p.stderr != c["stderr"]:
            problems.append(f"stderr {p.stderr!r}")
        for key, target in (("stdout_contains", p.stdout), ("stderr_contains", p.stderr)):
            if key in c and c[key] not in target:
                problems.append(f"{key.split('_')[0]} lacks {c[key]!r}: {target[:300]!r}")
        if "stderr_lines" in c and len(p.stderr.splitlines()) != c["stderr_lines"]:
            problems.append(f"stderr has {len(p.stderr.splitlines())} lines")
        out = None
        if any(k in c for k in ("stdout_json", "stdout_json_file", "stdout_json_keys", "history_span_ms")):
            try:
                out = json.loads(p.stdout)
            except ValueError:
                problems.append(f"stdout is not JSON: {p.stdout[:200]!r}")
        if out is not None:
            if "stdout_json" in c and out != c["stdout_json"]:
                problems.append(f"stdout JSON {out!r}")
            if "stdout_json_file" in c and out != json.load(open(c["stdout_json_file"])):
                problems.append(f"stdout JSON {out!r}")
            for k, v in c.get("stdout_json_keys", {}).items():
                try:
                    got = get(out, k)
                except (KeyError, IndexError, TypeError):
                    got = "<missing>"
                if got != v:
                    problems.append(f"{k} = {got!r}, expected {v!r}")
            if "history_span_ms" in c:
                h = out["history"]
                span = (h[-1]["timestamp"] - h[0]["timestamp"]) * 1000
                lo, hi = c["history_span_ms"]
                if not lo <= span <= hi:
                    problems.append(f"history spans {span} ms")
        if "max_seconds" in c and took > c["max_seconds"]:
            problems.append(f"took {took:.2f} s")
        if problems:
            failed += 1
            print(f"FAIL {c['why']}: " + "; ".join(problems))
        else:
            passed += 1
    os.unlink(big.name)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
