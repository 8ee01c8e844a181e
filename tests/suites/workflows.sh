#!/bin/sh
# tests/suites/workflows.sh - the four workflows users bring (../shared/workflows, unchanged)
# and the project's own (examples/workflows/) end to end through sfnd against the fake AWS:
# happy path, failure paths, 20% faults, SIGKILL in every .sync wait, StopExecution
# (tests/workflows/run.py); then each example's run.sh (sfnd + the AWS CLI), happy and
# failing, four at a time beside it. Last line "N passed, N failed".
BUILD=${BUILD:-build}
export BUILD
dir=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$dir"' EXIT
SUITE=examples/workflows
. tests/suitelib.sh

# name, then the line the happy run's output must hold and the fail run's error
set -- emr-cluster '"Terminated":true' ClusterStepsFailed \
       emr-eks-athena '"QueryState":"SUCCEEDED"' SparkJobFailed \
       emr-serverless '"JobName":"process-ds-salaries"' SparkJobFailed \
       emr-analyze '"Analyzed":["bakery_sales","stocks","movies","ratings"]' AnalysisFailed
for name in emr-cluster emr-eks-athena emr-serverless emr-analyze; do
    ( sh examples/workflows/run.sh "$name" >"$dir/$name.ok" 2>&1; echo $? >"$dir/$name.ok.rc"
      sh examples/workflows/run.sh "$name" fail >"$dir/$name.fail" 2>&1
      echo $? >"$dir/$name.fail.rc" ) &
    pids="$pids $!"
done

/usr/bin/python3 tests/workflows/run.py >"$dir/run.out" 2>&1
rc=$?
fold_result "$dir/run.out"
check "run.py exited $rc without a result line" [ $? -eq 0 ]

for p in $pids; do
    wait "$p"
done
pids=""
while [ $# -gt 0 ]; do
    name=$1 want=$2 error=$3
    shift 3
    check "$name: run.sh exited $(cat "$dir/$name.ok.rc")" [ "$(cat "$dir/$name.ok.rc")" = 0 ]
    check "$name: SUCCEEDED and $want" sh -c \
        'head -n 1 "$1" | grep -qx SUCCEEDED && grep -qF "$2" "$1"' - "$dir/$name.ok" "$want"
    check "$name: run.sh fail exited $(cat "$dir/$name.fail.rc")" [ "$(cat "$dir/$name.fail.rc")" = 1 ]
    check "$name: FAILED with $error" sh -c \
        'head -n 1 "$1" | grep -qx FAILED && sed -n 2p "$1" | grep -qx "$2"' - "$dir/$name.fail" "$error"
    for f in ok fail; do
        [ "$(cat "$dir/$name.$f.rc")" = "$([ $f = ok ] && echo 0 || echo 1)" ] || cat "$dir/$name.$f"
    done
done
finish
