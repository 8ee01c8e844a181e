#!/bin/sh
# tests/suites/sfn_test.sh - `sfn test` and TestState:
#   - every examples/*/test-suite.json (the shared workflows) and
#     examples/workflows/*/test-suite.json (ours) passes (one run, JUnit XML checked), also
#     with the lite build/sfn alone (a mocked suite never hands over to sfn-aws);
#   - the fixture tests/sfn_test/wrong.suite.json (deliberately wrong expectations) fails
#     with exit 1 and a readable diff, on the terminal and in the JUnit XML;
#   - bad suites and usage errors exit 2 with a message naming the problem;
#   - the TestState cases of tests/test_state/*.json through `sfn test-state` and through
#     sfnd's API with boto3 (tests/test_state/run.py).
BUILD=${BUILD:-build}
SUITE=sfn_test
. tests/suitelib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SFN="$BUILD/sfn"

suites=$(ls examples/*/test-suite.json examples/workflows/*/test-suite.json)
n_suites=$(echo "$suites" | wc -l)
check "the four shared workflows and our four have a suite each ($n_suites)" [ "$n_suites" -ge 8 ]
# every suite has a happy path and a failure path
for s in $suites; do
    check "$s: a case expecting SUCCEEDED and one expecting FAILED" python3 -c "
import json, sys
st = [c['expect'].get('status', 'SUCCEEDED') for c in json.load(open('$s'))['cases']]
sys.exit(0 if 'SUCCEEDED' in st and 'FAILED' in st else 1)"
done
# shellcheck disable=SC2086
"$SFN" test $suites --junit "$tmp/examples.xml" >"$tmp/examples.out" 2>&1
rc=$?
check "examples: sfn test exit 0 (got $rc): $(grep -A3 FAIL "$tmp/examples.out")" [ "$rc" -eq 0 ]
total=$(python3 -c "
import json
print(sum(len(json.load(open(s))['cases']) for s in '''$suites'''.split()))")
check "examples: summary '$(tail -n 1 "$tmp/examples.out")'" \
    grep -q "^$total cases, $total passed, 0 failed ($n_suites suites" "$tmp/examples.out"
check "examples: a PASS line per case" [ "$(grep -c '^PASS  ' "$tmp/examples.out")" -eq "$total" ]
check "examples: JUnit XML names every case, no failure" python3 -c "
import xml.etree.ElementTree as ET, sys
r = ET.parse('$tmp/examples.xml').getroot()
cases = r.findall('./testsuite/testcase')
sys.exit(0 if r.tag == 'testsuites' and r.get('tests') == '$total' and r.get('failures') == '0'
         and len(cases) == $total and not r.findall('.//failure') else 1)"

# the lite build runs mocked suites alone (no sfn-aws next to it)
mkdir "$tmp/lite"
cp "$SFN" "$tmp/lite/sfn"
# shellcheck disable=SC2086
"$tmp/lite/sfn" test $suites >"$tmp/lite.out" 2>&1
check "lite sfn ran every example suite itself: $(tail -n 2 "$tmp/lite.out")" \
    grep -q "^$total cases, $total passed, 0 failed" "$tmp/lite.out"

# a deliberately wrong expectation fails, with a readable diff
w=tests/sfn_test/wrong.suite.json
"$SFN" test $w --junit "$tmp/wrong.xml" >"$tmp/wrong.out" 2>&1
rc=$?
check "wrong expectations: exit 1 (got $rc)" [ "$rc" -eq 1 ]
check "wrong expectations: the right case passes" \
    grep -q '^PASS  right: the report is published (test case HappyPath' "$tmp/wrong.out"
check "wrong expectations: partial output diff" grep -qF \
    'outputContains $.report.text: expected "1000 orders yesterday", got "1024 orders yesterday"' \
    "$tmp/wrong.out"
check "wrong expectations: status diff" \
    grep -qF 'status: expected "SUCCEEDED", got "FAILED"' "$tmp/wrong.out"
check "wrong expectations: path diff" \
    grep -qF 'first difference at state 3: expected "Publish", got "ReportFailed"' "$tmp/wrong.out"
check "wrong expectations: summary" grep -q '^3 cases, 1 passed, 2 failed' "$tmp/wrong.out"
check "wrong expectations: JUnit XML failures with the diff" python3 -c "
import xml.etree.ElementTree as ET, sys
r = ET.parse('$tmp/wrong.xml').getroot()
s = r.find('testsuite')
f = {c.get('name'): c.find('failure') for c in s.findall('testcase')}
ok = (s.get('tests') == '3' and s.get('failures') == '2'
      and f['right: the report is published'] is None
      and f['wrong: expects the broken formatter to succeed'].get('message')
          == 'status: expected \"SUCCEEDED\", got \"FAILED\"'
      and 'got      [\"CountOrders\",\"FormatReport\",\"ReportFailed\"]'
          in f['wrong: expects the broken formatter to succeed'].text
      and '1000 orders yesterday' in f['wrong: expects another report text'].text)
sys.exit(0 if ok else 1)"

# bad suites: exit 2, the problem named
printf '{"definition": "x.json", "cases": [{"name": "a", "expect": {"outptu": 1}}]}' \
    >"$tmp/bad1.json"
out=$("$SFN" test "$tmp/bad1.json" 2>&1)
check "unknown expectation: exit 2, named: $out" sh -c \
    "[ $? -eq 2 ] && echo \"\$1\" | grep -q \"case 'a': unknown expectation 'outptu'\"" - "$out"
sed 's/"testCase": "FormatterBroken"/"testCase": "NoSuchCase"/' $w >"$tmp/bad2.json"
sed -i "s#\.\./\.\./examples#$PWD/examples#g" "$tmp/bad2.json"
"$SFN" test "$tmp/bad2.json" >"$tmp/bad2.out" 2>&1
rc=$?
check "unknown test case: exit 2 (got $rc), named: $(cat "$tmp/bad2.out")" sh -c \
    "[ $rc -eq 2 ] && grep -q \"has no test case 'NoSuchCase' for state machine 'OrderReport'\" '$tmp/bad2.out'"
"$SFN" test >/dev/null 2>&1
check "no suite: exit 2" [ $? -eq 2 ]
"$SFN" test-state >/dev/null 2>&1
check "test-state without a definition: exit 2" [ $? -eq 2 ]

# TestState cases, through the CLI and the API
python3 tests/test_state/run.py "$BUILD" >"$tmp/ts.out" 2>&1
fold_result "$tmp/ts.out" || check "tests/test_state/run.py printed no result: $(tail -5 "$tmp/ts.out")" false

finish
