#!/bin/sh
# tests/suites/integrations.sh - the AWS service integrations end to end: every case of
# tests/integrations/<service>/<case>/ through `sfn run` / `sfn run --db` + SIGKILL +
# `sfn resume` against the fake AWS (tests/integrations/run.py), then the Athena example
# (examples/athena/run.sh, both paths). Last line "N passed, N failed".
BUILD=${BUILD:-build}
export BUILD
out=$(mktemp)
trap 'rm -f "$out"' EXIT
passed=0
failed=0
check() { # check DESCRIPTION COMMAND...
    desc=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL examples/athena: $desc"
    fi
}

/usr/bin/python3 tests/integrations/run.py >"$out" 2>&1
rc=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$out"
last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
if [ -n "$last" ]; then
    passed=$((passed + $(echo "$last" | sed -E 's/^([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$last" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
fi
check "run.py exited $rc without a result line" [ -n "$last" ]

sh examples/athena/run.sh >"$out" 2>&1
rc=$?
check "run.sh exited $rc" [ "$rc" -eq 0 ]
check "no report" grep -q '"rows":\[{"Data":\[{"VarCharValue":"region"}' "$out"
[ "$rc" -ne 0 ] && cat "$out"
sh examples/athena/run.sh fail >"$out" 2>&1
rc=$?
check "run.sh fail exited $rc" [ "$rc" -eq 1 ]
want="ReportQueryFailed: SYNTAX_ERROR: line 1:8: Column 'x' cannot be resolved"
check "no Fail state error" grep -qxF "$want" "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
