#!/bin/sh
# examples/workflows/run.sh - runs one of the four workflows of examples/workflows/ through
# sfnd and the AWS CLI (`aws stepfunctions --endpoint-url`) against the fake AWS of
# tests/fakeaws/ on loopback. sfnd finds the fake through AWS_ENDPOINT_URL and reads keys and
# region from the environment, as the AWS CLI does; SFN_POLL_<SERVICE>=100 makes its .sync
# tasks poll every 100 ms instead of every minute, and SFN_RATE_<SERVICE>=unlimited lifts the
# AWS API rates (EMR: 0.5 calls/s) that do not apply to a fake. The fake and sfnd (with a temporary --db)
# are stopped by their PIDs on exit.
#
#     make && sh examples/workflows/run.sh emr-cluster|emr-eks-athena|emr-serverless|emr-analyze [fail]
#
# Prints the execution's status, then its output (exit 0) or its error and cause (exit 1).
# With "fail", NAME/fail.json is posted to the fake first: a step, job run or query of the
# workflow ends FAILED, and the workflow's Catch and Fail states show what AWS would give.
set -eu
BUILD=${BUILD:-build}
name=${1:-}
case "$name" in
emr-cluster|emr-eks-athena|emr-serverless|emr-analyze) ;;
*) echo "usage: run.sh emr-cluster|emr-eks-athena|emr-serverless|emr-analyze [fail]" >&2; exit 2 ;;
esac
ex=examples/workflows/$name
dir=$(mktemp -d)
fake=""
sfnd=""
cleanup() {
    rc=$?
    for pid in $sfnd $fake; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
    exit "$rc"
}
trap cleanup EXIT INT TERM

# waits until FILE has a line matching REGEX (10 s at most)
wait_for() {
    i=0
    while ! grep -q "$2" "$1" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    grep -q "$2" "$1"
}

/usr/bin/python3 tests/fakeaws/fakeaws.py >"$dir/fake.port" &
fake=$!
wait_for "$dir/fake.port" '^[0-9]' || { echo "run.sh: the fake AWS did not start" >&2; exit 1; }
fport=$(cat "$dir/fake.port")
if [ "${2:-}" = fail ]; then # a control endpoint of the fake, not an AWS call
    /usr/bin/python3 -c "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(
        sys.argv[1], method='POST', data=open(sys.argv[2], 'rb').read()))" \
        "http://127.0.0.1:$fport/__fake/script" "$ex/fail.json"
fi

env AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_ENDPOINT_URL="http://127.0.0.1:$fport" SFN_POLL_EMR=100 SFN_POLL_EMR_CONTAINERS=100 \
    SFN_POLL_EMR_SERVERLESS=100 SFN_POLL_ATHENA=100 SFN_RATE_EMR=unlimited \
    SFN_RATE_EMR_CONTAINERS=unlimited SFN_RATE_EMR_SERVERLESS=unlimited \
    "$BUILD/sfnd" --listen 127.0.0.1:0 --db "$dir/sfnd.db" 2>"$dir/sfnd.log" &
sfnd=$!
wait_for "$dir/sfnd.log" 'listening on' || { cat "$dir/sfnd.log" >&2; exit 1; }
sport=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$dir/sfnd.log")

# the AWS CLI as a user runs it against sfnd (any keys: sfnd does not check them)
sfn() {
    env AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER= \
        aws stepfunctions --endpoint-url "http://127.0.0.1:$sport" --output text "$@"
}
machine=$(sfn create-state-machine --name "$name" --definition "file://$ex/definition.json" \
    --role-arn arn:aws:iam::123456789012:role/sfnd-example --query stateMachineArn)
execution=$(sfn start-execution --state-machine-arn "$machine" \
    --input "file://$ex/input.json" --query executionArn)
status=RUNNING
while [ "$status" = RUNNING ]; do
    sleep 0.2
    status=$(sfn describe-execution --execution-arn "$execution" --query status)
done
echo "$status"
if [ "$status" = SUCCEEDED ]; then
    sfn describe-execution --execution-arn "$execution" --query output
    exit 0
fi
sfn describe-execution --execution-arn "$execution" --query error
sfn describe-execution --execution-arn "$execution" --query cause
exit 1
