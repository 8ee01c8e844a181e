#!/bin/sh
# tests/suites/fakeaws.sh - self-test of the fake AWS (tests/fakeaws/) with botocore's own
# clients, which the C transport tests rely on; then the AWS transport example
# (examples/aws/run.sh: examples/aws/athena_query.c against the fake over HTTPS, trusting the
# fake's certificate through AWS_CA_BUNDLE). Last line "N passed, N failed".
BUILD=${BUILD:-build}
export BUILD
out=$(mktemp)
trap 'rm -f "$out"' EXIT
SUITE=examples/aws
. tests/suitelib.sh

/usr/bin/python3 tests/fakeaws/selftest.py >"$out" 2>&1
rc=$?
fold_result "$out"
check "selftest.py exited $rc without a result line" [ $? -eq 0 ]

# Under `make check` the library is instrumented: the example is linked the same way.
if nm "$BUILD/libsfn.a" 2>/dev/null | grep -q __asan_init; then
    SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    export SANFLAGS
fi
sh examples/aws/run.sh 'SELECT 1' >"$out" 2>&1
rc=$?
check "run.sh exited $rc" [ "$rc" -eq 0 ]
check "no HTTPS endpoint from AWS_ENDPOINT_URL_ATHENA" \
    grep -q '^endpoint: https://127.0.0.1:' "$out"
check "no query id" grep -Eq '^query: [0-9a-f-]{36} \(1 attempt\)$' "$out"
states=$(sed -n 's/^state: //p' "$out" | tr '\n' ' ')
check "states '$states'" [ "$states" = "RUNNING SUCCEEDED " ]
[ "$failed" -ne 0 ] && cat "$out"
finish
