#!/bin/sh
# tests/suites/example_durable.sh - examples/durable/demo.sh runs as its README says: the
# execution is RUNNING in the store after kill -9, `sfn resume` ends it with the output of
# expected.json, and the history is whole (ids 1..n, one ExecutionStarted, ends succeeded).
BUILD=${BUILD:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
SUITE=examples/durable
. tests/suitelib.sh
sh examples/durable/demo.sh "$BUILD/sfn" "$dir/n.db" >"$dir/out" 2>&1
check "demo exit status" [ $? -eq 0 ]
sed -n '/^--- after the crash/,/^--- sfn resume/p' "$dir/out" | grep -q '^RUNNING .*nightly-2026-11-22$'
check "RUNNING in the store after the crash" [ $? -eq 0 ]
result=$(sed -n '/^--- sfn resume/{n;p;}' "$dir/out")
python3 - "$result" examples/durable/expected.json <<'PY'
import json, sys
r = json.loads(sys.argv[1])
want = json.load(open(sys.argv[2]))
sys.exit(0 if r["status"] == "SUCCEEDED" and r["output"] == want else 1)
PY
check "resume result: $result" [ $? -eq 0 ]
"$BUILD/sfn" history --db "$dir/n.db" nightly-2026-11-22 --json >"$dir/h.json"
python3 - "$dir/h.json" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))["events"]
ids = [e["id"] for e in ev]
types = [e["type"] for e in ev]
ok = ids == list(range(1, len(ev) + 1)) and types.count("ExecutionStarted") == 1 \
    and types[-1] == "ExecutionSucceeded" and types.count("WaitStateEntered") == 4
sys.exit(0 if ok else 1)
PY
check "the history is whole" [ $? -eq 0 ]
[ "$failed" -ne 0 ] && cat "$dir/out"
finish
