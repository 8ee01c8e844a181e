#!/bin/sh
# tests/suites/integrations.sh - the AWS service integrations end to end: every case of
# tests/integrations/<service>/<case>/ through `sfn run` / `sfn run --db` + SIGKILL +
# `sfn resume` against the fake AWS (tests/integrations/run.py), then the Athena example
# (examples/athena/run.sh, both paths). Last line "N passed, N failed".
BUILD=${BUILD:-build}
export BUILD
out=$(mktemp)
trap 'rm -f "$out"' EXIT
SUITE=examples/athena
. tests/suitelib.sh

/usr/bin/python3 tests/integrations/run.py >"$out" 2>&1
rc=$?
fold_result "$out"
check "run.py exited $rc without a result line" [ $? -eq 0 ]

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
finish
