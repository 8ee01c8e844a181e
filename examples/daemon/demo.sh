#!/bin/sh
# examples/daemon/demo.sh - the sfn client commands against a running sfnd: create (or
# update) a state machine, start an execution and watch it with --wait, list, describe and
# print its history, then start a long Wait and stop it.
#   make run                              (in another terminal: sfnd on 127.0.0.1:8083)
#   sh examples/daemon/demo.sh [SFN]      (SFN_ENDPOINT or --endpoint picks another daemon)
set -eu
here=$(dirname "$0")
sfn=${1:-build/sfn}
run="order-$(date +%s)-$$"

echo "--- sfn create"
"$sfn" create demo-orders "$here/../hello/definition.json" --update
"$sfn" create demo-nap "$here/nap.json" --update
echo "--- sfn start --wait"
"$sfn" start demo-orders --name "$run" --input-file "$here/../hello/input.json" --wait
echo "--- sfn ls"
"$sfn" ls
echo "--- sfn describe"
"$sfn" describe "demo-orders:$run"
echo "--- sfn history"
"$sfn" history "demo-orders:$run"
echo "--- sfn stop"
nap=$("$sfn" start demo-nap --name "$run")
"$sfn" stop "$nap" --error Demo.Stopped --cause "stopped by demo.sh"
"$sfn" describe "$nap"
echo "--- sfn ls executions demo-nap"
"$sfn" ls executions demo-nap
