#!/bin/sh
# tests/suites/conformance.sh - runs the cases recorded against real AWS
# (../shared/conformance, read in place) whose needs are pure language, through
# tests/conformance/adapter.sh. Every failure must be listed, with its reason, in
# tests/conformance/known-failures.txt; an unlisted failure, a listed case that now passes
# (stale entry), a crash, or a pass rate under 95% fails the suite.
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
report=$(mktemp)
trap 'rm -f "$report"' EXIT
SFN="$BUILD/sfn" python3 "$SHARED/conformance/run.py" --cli "sh tests/conformance/adapter.sh" \
    --pure --skip-needs jsonata,variables,distributed_map --jobs 2 --timeout 60 \
    --max-diffs 0 --report "$report" >/dev/null 2>&1
python3 - "$report" tests/conformance/known-failures.txt <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
known = {}
for line in open(sys.argv[2]):
    line = line.strip()
    if line and not line.startswith("#"):
        cid, _, reason = line.partition("\t")
        known[cid] = reason.strip()
passed = sum(1 for r in rows if r["pass"])
bad = 0
for r in rows:
    crash = r["result"].get("status") in ("HARNESS_ERROR", "HARNESS_TIMEOUT")
    if not r["pass"] and (r["id"] not in known or crash):
        bad += 1
        print("FAIL (unlisted)" if not crash else "FAIL (crash)", r["id"], "|", "; ".join(r["diffs"])[:300])
    if r["pass"] and r["id"] in known:
        bad += 1
        print("FAIL (stale known-failures entry, the case passes now):", r["id"])
listed_missing = [k for k in known if k not in {r["id"] for r in rows}]
for k in listed_missing:
    bad += 1
    print("FAIL (known-failures entry names no selected case):", k)
total = len(rows)
rate = 100.0 * passed / total if total else 0.0
print(f"conformance: {passed}/{total} recorded AWS cases pass ({rate:.1f}%), "
      f"{total - passed} known failures listed with reasons")
if total == 0 or rate < 95.0:
    bad += 1
    print("FAIL: pass rate under 95%")
print(f"{passed} passed, {bad} failed")
PY
