#!/bin/sh
# examples/durable/demo.sh - an execution on a store survives kill -9: start the nightly
# report with --db, kill the process while it waits, resume it, then list and show it.
#   sh examples/durable/demo.sh [SFN] [DB]
set -u
here=$(dirname "$0")
sfn=${1:-build/sfn}
db=${2:-nightly.db}
rm -f "$db" "$db-wal" "$db-shm"

"$sfn" run "$here/definition.json" --input-file "$here/input.json" --db "$db" \
    --state-machine-name NightlyReport --name nightly-2026-11-22 &
pid=$!
sleep 1
kill -9 "$pid"           # a crash, in the middle of WaitForData
wait "$pid" 2>/dev/null
echo "--- after the crash"
"$sfn" executions --db "$db"
echo "--- sfn resume"
"$sfn" resume --db "$db" --result
echo "--- sfn executions"
"$sfn" executions --db "$db"
echo "--- sfn history"
"$sfn" history --db "$db" nightly-2026-11-22
