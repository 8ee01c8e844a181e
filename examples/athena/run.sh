#!/bin/sh
# examples/athena/run.sh - runs the daily report (definition.json, input.json) with
# `sfn run` against the fake AWS of tests/fakeaws/ on loopback: the fake is found through
# AWS_ENDPOINT_URL, the keys and region come from the environment as the AWS CLI reads them,
# and SFN_POLL_ATHENA makes the .sync task poll every 100 ms instead of every 2 s. The fake
# is stopped by its PID on exit.
#
#     make && sh examples/athena/run.sh [fail]
#
# With "fail" the fake's query ends FAILED and the run shows the Catch and the Fail state.
set -eu
BUILD=${BUILD:-build}
dir=$(mktemp -d)
fake=""
cleanup() {
    rc=$?
    if [ -n "$fake" ]; then
        kill "$fake" 2>/dev/null || true
        wait "$fake" 2>/dev/null || true
    fi
    rm -rf "$dir"
    exit "$rc"
}
trap cleanup EXIT INT TERM
/usr/bin/python3 tests/fakeaws/fakeaws.py >"$dir/port" &
fake=$!
i=0
while [ ! -s "$dir/port" ] && [ $i -lt 200 ]; do
    sleep 0.05
    i=$((i + 1))
done
port=$(cat "$dir/port")
[ -n "$port" ] || { echo "run.sh: the fake AWS did not start" >&2; exit 1; }
# what the fake's queries return, and with "fail" how they end (posted to a control endpoint
# of the fake, not an AWS call)
outcome=SUCCEEDED
[ "${1:-}" = fail ] && outcome=FAILED
cat >"$dir/script.json" <<JSON
{"lifecycles": {"athena_query": {"outcome": "$outcome",
  "rows": [["region", "total"], ["eu-west", "1200.50"], ["us-east", "980.00"]]}}}
JSON
/usr/bin/python3 -c "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(
    sys.argv[1], method='POST', data=open(sys.argv[2], 'rb').read()))" \
    "http://127.0.0.1:$port/__fake/script" "$dir/script.json"

env AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_ENDPOINT_URL="http://127.0.0.1:$port" SFN_POLL_ATHENA=100 \
    "$BUILD/sfn" run examples/athena/definition.json --input-file examples/athena/input.json
