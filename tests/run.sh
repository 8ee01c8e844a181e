#!/bin/sh
# tests/run.sh - runs every test suite and prints one closing line "N passed, N failed".
# Each suite prints its own details and ends with its own "N passed, N failed" line.
BUILD=${BUILD:-build}
export BUILD
total_p=0
total_f=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run_suite() {
    name=$1
    shift
    "$@" >"$log" 2>&1
    rc=$?
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$last" ]; then
        cat "$log"
        echo "suite $name: no result line (exit $rc)"
        total_f=$((total_f + 1))
        return
    fi
    p=$(echo "$last" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$last" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
        grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 60
        [ "$f" -eq 0 ] && f=1
    fi
    printf '%-28s %s passed, %s failed\n' "$name" "$p" "$f"
    total_p=$((total_p + p))
    total_f=$((total_f + f))
}
for t in "$BUILD"/tests/*; do
    [ -x "$t" ] || continue
    run_suite "$(basename "$t")" "$t"
done
for s in tests/suites/*.sh; do
    [ -f "$s" ] || continue
    run_suite "$(basename "$s" .sh)" sh "$s"
done
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
