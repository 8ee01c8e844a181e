#!/bin/sh
# tests/suites/cli_client.sh - the sfn client commands (create, start --wait, describe,
# history --follow, ls, stop) against a build/sfnd of their own on a free loopback port with
# a temporary store: the cases of tests/cli_client/cases.json (outputs as data, --json
# compared with boto3's answers, errors), examples/daemon/demo.sh, the examples of
# man/sfn.1, and the lite build/sfn still free of libcurl. sfnd is stopped by its PID.
BUILD=${BUILD:-build}
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "$pid" ] && wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
SUITE=cli_client
. tests/suitelib.sh

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
dead=$(free_port) # nothing listens there
"$BUILD/sfnd" --listen "127.0.0.1:$port" --db "$dir/sfnd.db" --durability normal \
    >"$dir/sfnd.log" 2>&1 &
pid=$!
SFN_ENDPOINT=http://127.0.0.1:$port
SFN_DEAD_ENDPOINT=http://127.0.0.1:$dead
SFN_TEST_DB=$dir/sfnd.db
export SFN_ENDPOINT SFN_DEAD_ENDPOINT SFN_TEST_DB
up=1
for _ in $(seq 1 100); do
    if "$BUILD/sfn" ls >/dev/null 2>&1; then
        up=0
        break
    fi
    sleep 0.1
done
check "sfnd answers on 127.0.0.1:$port" [ "$up" -eq 0 ]

/usr/bin/python3 tests/cli_client/run.py >"$dir/cases.out" 2>&1
check "cases.json ran to the end" fold_result "$dir/cases.out"

sh examples/daemon/demo.sh "$BUILD/sfn" >"$dir/demo.out" 2>"$dir/demo.err"
check "examples/daemon/demo.sh exits 0" [ $? -eq 0 ]
grep -qxF "$(cat examples/hello/expected.json)" "$dir/demo.out"
check "demo: start --wait prints the order's output" [ $? -eq 0 ]
grep -qE '^ +[0-9]+\.[0-9]{3}s  exited   Done$' "$dir/demo.err"
check "demo: start --wait shows the states on stderr" [ $? -eq 0 ]
grep -qE '^status +ABORTED$' "$dir/demo.out" && grep -qE '^error +Demo.Stopped$' "$dir/demo.out"
check "demo: the nap is stopped" [ $? -eq 0 ]
sh examples/daemon/demo.sh "$BUILD/sfn" >"$dir/demo2.out" 2>&1
check "demo runs again on the same daemon (create --update)" [ $? -eq 0 ]

# man/sfn.1's examples against a running daemon, each line as written (sfn = $BUILD/sfn)
sed -n '/^Against a running daemon/,/^\.fi/p' man/sfn.1 | grep '^sfn ' |
    sed -e 's/\\-/-/g' -e 's/\\\\/\\/g' >"$dir/man.sh"
check "man/sfn.1 has client examples" [ "$(wc -l <"$dir/man.sh")" -ge 5 ]
n=0
while IFS= read -r line; do
    n=$((n + 1))
    eval "\"\$BUILD/\"$line" >"$dir/man.out" 2>&1
    rc=$?
    check "man/sfn.1 example $n exits 0: $line" [ "$rc" -eq 0 ]
    [ "$rc" -eq 0 ] || cat "$dir/man.out"
done <"$dir/man.sh"

ldd "$BUILD/sfn" | grep -q libcurl
check "the lite build/sfn does not load libcurl" [ $? -ne 0 ]

kill "$pid"
wait "$pid"
check "sfnd stops cleanly on SIGTERM" [ $? -eq 0 ]
pid=
if [ "$failed" -ne 0 ]; then
    echo "--- demo"; cat "$dir/demo.out" "$dir/demo.err"
    echo "--- sfnd log"; tail -n 30 "$dir/sfnd.log"
fi
finish
