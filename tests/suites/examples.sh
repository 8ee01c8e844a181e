#!/bin/sh
# tests/suites/examples.sh - everything in examples/ runs in `make test` (STYLE.md). Runs
# build/examples/embed (examples/embed/embed.c: the engine embedded on the program's own
# libuv loop with its own Task resource) and checks what it prints: the execution succeeds,
# the output, the Retry visible in the history (TaskFailed, then TaskScheduled again without
# a second TaskStateEntered), and a clean exit (uv_loop_close() == 0 inside the program).
BUILD=${BUILD:-build}
bin="$BUILD/examples/embed"
passed=0
failed=0
check() { # check DESCRIPTION COMMAND...
    desc=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL examples/embed: $desc"
    fi
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if [ ! -x "$bin" ]; then
    echo "FAIL examples/embed: $bin is not built (make tests-bin)"
    echo "0 passed, 1 failed"
    exit 1
fi

"$bin" >"$out" 2>&1
rc=$?
check "exit status $rc" [ "$rc" -eq 0 ]
check "the execution did not succeed" \
    grep -q '^execution .*:execution:Greeter:greet-1 ended: SUCCEEDED$' "$out"
check "wrong output" grep -qx 'output: {"message":"Hello, world!"}' "$out"
events=$(sed -n 's/^  [0-9][0-9]* //p' "$out" | tr '\n' ' ')
want="ExecutionStarted TaskStateEntered TaskScheduled TaskStarted TaskFailed TaskScheduled"
want="$want TaskStarted TaskSucceeded TaskStateExited PassStateEntered PassStateExited"
want="$want ExecutionSucceeded "
check "history: got '$events'" [ "$events" = "$want" ]

"$bin" "Ada Lovelace" >"$out" 2>&1
check "the name argument is not used" grep -qx 'output: {"message":"Hello, Ada Lovelace!"}' "$out"

[ "$failed" -ne 0 ] && cat "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
