# tests/suitelib.sh - shared by the shell suites in tests/suites/ (sourced, not run):
#   check DESCRIPTION COMMAND...   counts COMMAND's success; prints "FAIL $SUITE: ..." if not
#   fold_result FILE               adds a sub-runner's last "N passed, N failed" line of FILE
#                                  to the counts (its other lines are printed); 1 if none
#   finish                         prints "N passed, N failed"; exit status 0 only if none failed
passed=0
failed=0
check() {
    desc=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL ${SUITE:-suite}: $desc"
    fi
}
fold_result() {
    grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$1"
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    [ -n "$last" ] || return 1
    passed=$((passed + $(echo "$last" | sed -E 's/^([0-9]+) passed.*/\1/')))
    failed=$((failed + $(echo "$last" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')))
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
