#!/bin/sh
# tests/suites/mock.sh - mocked service integrations (Step Functions Local's MockConfigFile):
#   - the fixtures of tests/mock/*/case.json (tests/mock/run_cases.py): Return, Throw with
#     Retry over ranges, past the last invocation, .sync and .waitForTaskToken, Map and
#     Parallel, Catch, --mock-only, unmocked Tasks, the name-from-file rule, invalid configs;
#   - the recorded AWS cases of the local_mocking groups (../shared/conformance, read in
#     place) through ../shared/conformance/run.py with tests/mock/adapter.sh;
#   - the lite build/sfn runs a fully mocked AWS integration itself, and hands an unmocked one
#     over to sfn-aws with the mock options;
#   - a mocked run on a store (--db); usage errors; examples/mock;
#   - sfnd --mock-config with StartExecution on "stateMachineArn#TestCaseName" (boto3).
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
SUITE=mock
. tests/suitelib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SFN="$BUILD/sfn"

python3 tests/mock/run_cases.py "$SFN" >"$tmp/cases.out" 2>&1
fold_result "$tmp/cases.out" || check "tests/mock/run_cases.py printed no result" false

# recorded AWS cases: every local_mocking case must pass (none may be skipped or missing)
n=$(python3 tests/mock/conformance_mocks.py "$SHARED/conformance/cases.jsonl" "$tmp/conf")
rc=$?
check "mock configs for the recorded local_mocking cases: $n" [ "$rc" -eq 0 ]
MOCK_DIR="$tmp/conf" SFN="$SFN" python3 "$SHARED/conformance/run.py" \
    --cli "sh tests/mock/adapter.sh" --groups '^local_mocking/' --jobs 2 --timeout 60 \
    --max-diffs 0 >"$tmp/conf.out" 2>&1
last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$tmp/conf.out" | tail -n 1)
check "recorded local_mocking cases: '$last' (of $n)" [ "${last%%,*}" = "$n passed" ]
case "$last" in
*" 0 failed"*) check "recorded local_mocking cases: none failed" true ;;
*) check "recorded local_mocking cases: $(grep -i fail "$tmp/conf.out" | head -5)" false ;;
esac

# the lite build runs mocked AWS integrations itself: here it has no sfn-aws to hand over to
mkdir "$tmp/lite"
cp "$SFN" "$tmp/lite/sfn"
ex=examples/mock
"$tmp/lite/sfn" run $ex/OrderReport.asl.json --mock-config $ex/MockConfigFile.json \
    --test-case HappyPath >"$tmp/lite.out" 2>&1
check "lite sfn ran a mocked Athena task itself: $(cat "$tmp/lite.out")" \
    cmp -s "$tmp/lite.out" $ex/expected-HappyPath.json
# an unmocked integration goes to sfn-aws, with the mock options (a stand-in prints them)
printf '#!/bin/sh\necho "sfn-aws $*"\n' >"$tmp/lite/sfn-aws"
chmod +x "$tmp/lite/sfn-aws"
sed 's/"CountOrders": "QuerySucceeded",//' $ex/MockConfigFile.json >"$tmp/partial.json"
out=$("$tmp/lite/sfn" run $ex/OrderReport.asl.json --mock-config "$tmp/partial.json" \
    --test-case HappyPath 2>&1)
check "unmocked Athena task not handed to sfn-aws with the mock options: $out" \
    [ "$out" = "sfn-aws run $ex/OrderReport.asl.json --mock-config $tmp/partial.json --test-case HappyPath" ]
"$tmp/lite/sfn" run $ex/OrderReport.asl.json --mock-config "$tmp/partial.json" \
    --test-case HappyPath --mock-only --result >"$tmp/only.out" 2>&1
check "--mock-only: the unmocked Athena task fails in lite sfn: $(cat "$tmp/only.out")" \
    grep -q '"error":"States.Runtime","cause":"state .CountOrders. is not mocked' "$tmp/only.out"
# sfn-aws itself serves mocks the same way
out=$("$BUILD/sfn-aws" run $ex/OrderReport.asl.json --mock-config $ex/MockConfigFile.json \
    --test-case ThrottledThenFormatted --fast-time 2>&1)
check "sfn-aws with mocks: $out" [ "$out" = "$(cat $ex/expected-ThrottledThenFormatted.json)" ]

# examples/mock, as its README says
for tc in HappyPath ThrottledThenFormatted; do
    "$SFN" run $ex/OrderReport.asl.json --mock-config $ex/MockConfigFile.json --test-case $tc \
        --mock-only --fast-time >"$tmp/ex.out" 2>&1
    check "examples/mock $tc: $(cat "$tmp/ex.out")" cmp -s "$tmp/ex.out" $ex/expected-$tc.json
done
"$SFN" run $ex/OrderReport.asl.json --mock-config $ex/MockConfigFile.json \
    --test-case FormatterBroken --mock-only >"$tmp/ex.out" 2>&1
rc=$?
check "examples/mock FormatterBroken: exit $rc" [ "$rc" -eq 1 ]
check "examples/mock FormatterBroken: $(cat "$tmp/ex.out")" \
    cmp -s "$tmp/ex.out" $ex/expected-FormatterBroken.txt
out=$("$SFN" run $ex/OrderReport.asl.json --mock-config $ex/MockConfigFile.json \
    --test-case ThrottledThenFormatted --mock-only --fast-time --result --events)
n_sched=$(echo "$out" | grep -o '"LambdaFunctionScheduled"\|"TaskScheduled"' | wc -l)
check "examples/mock retry: 5 TaskScheduled (1 Athena, 3 Lambda, 1 SNS), got $n_sched" \
    [ "$n_sched" -eq 5 ]

# on a store: starts wait for the commit, the mocks answer then
"$SFN" run $ex/OrderReport.asl.json --mock-config $ex/MockConfigFile.json \
    --test-case ThrottledThenFormatted --fast-time --db "$tmp/m.db" --durability off \
    --name n1 >"$tmp/db.out" 2>&1
check "mocked run with --db: $(cat "$tmp/db.out")" \
    cmp -s "$tmp/db.out" $ex/expected-ThrottledThenFormatted.json
h=$("$SFN" history --db "$tmp/m.db" n1 --json | grep -o '"type":"TaskFailed"' | wc -l)
check "mocked run with --db: the store holds 2 TaskFailed, got $h" [ "$h" -eq 2 ]

# sfnd --mock-config: StartExecution on "stateMachineArn#TestCaseName"
python3 tests/mock/sfnd_test.py "$BUILD" >"$tmp/sfnd.out" 2>&1
fold_result "$tmp/sfnd.out" || check "tests/mock/sfnd_test.py printed no result: $(tail -5 "$tmp/sfnd.out")" false

# usage
"$SFN" run $ex/OrderReport.asl.json --test-case HappyPath >/dev/null 2>"$tmp/u.err"
rc=$?
check "--test-case without --mock-config: exit $rc" [ "$rc" -eq 2 ]
check "--test-case without --mock-config: $(cat "$tmp/u.err")" grep -q 'go together' "$tmp/u.err"
"$SFN" run $ex/OrderReport.asl.json --mock-config /nonexistent/m.json --test-case T \
    >/dev/null 2>"$tmp/u.err"
rc=$?
check "missing mock file: exit $rc" [ "$rc" -eq 2 ]
check "missing mock file: $(cat "$tmp/u.err")" \
    grep -q "cannot read mock config '/nonexistent/m.json'" "$tmp/u.err"
finish
