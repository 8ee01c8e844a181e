#!/bin/sh
# tests/mock/adapter.sh - the CLI adapter ../shared/conformance/run.py drives for the
# local_mocking cases: ADAPTER DEFINITION-FILE < input.json. Runs the execution with the
# case's test case of the mock config that tests/mock/conformance_mocks.py wrote to
# $MOCK_DIR (mock.json, ids.json), --mock-only so no service is ever called.
SFN=${SFN:-build/sfn}
machine=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
    "$MOCK_DIR/ids.json" "$SFN_CONFORMANCE_CASE_ID")
if [ -z "$machine" ]; then
    echo "no mock for case $SFN_CONFORMANCE_CASE_ID" >&2
    exit 1
fi
out=$("$SFN" run --result --events --fast-time --mock-config "$MOCK_DIR/mock.json" \
    --test-case Recorded --state-machine-name "$machine" --mock-only "$1")
rc=$?
if [ "$rc" -eq 0 ]; then
    printf '%s\n' "$out"
else
    echo "sfn exited with status $rc" >&2
fi
