#!/bin/sh
# examples/aws/run.sh - builds examples/aws/athena_query.c against build/libsfn.a (make first)
# and runs it against the fake AWS of tests/fakeaws/ over HTTPS: the fake makes a self-signed
# certificate in a temporary directory, and the program trusts it through AWS_CA_BUNDLE, finds
# the fake through AWS_ENDPOINT_URL_ATHENA and signs with the keys in the environment. The fake
# is stopped by its PID and the directory removed on exit.
#
#     make && sh examples/aws/run.sh ['SELECT 1']
set -eu
BUILD=${BUILD:-build}
CC=${CC:-cc}
bin="$BUILD/examples/athena_query"
pkgs="jansson libuv libcurl openssl"
src=examples/aws/athena_query.c
if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "$BUILD/libsfn.a" -nt "$bin" ]; then
    mkdir -p "$BUILD/examples"
    # shellcheck disable=SC2046
    $CC -std=c11 -O2 -g -I. -Iinclude -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
        $(pkg-config --cflags $pkgs) ${SANFLAGS:-} -o "$bin" "$src" \
        "$BUILD/libsfn.a" $(pkg-config --libs $pkgs) -lm
fi

dir=$(mktemp -d)
fake=""
cleanup() {
    rc=$?
    if [ -n "$fake" ]; then
        kill "$fake" 2>/dev/null || true
        wait "$fake" 2>/dev/null || true
    fi
    rm -rf "$dir"
    exit "$rc"
}
trap cleanup EXIT INT TERM
/usr/bin/python3 tests/fakeaws/fakeaws.py --tls-dir "$dir" >"$dir/ports" &
fake=$!
i=0
while [ ! -s "$dir/ports" ] && [ $i -lt 200 ]; do
    sleep 0.05
    i=$((i + 1))
done
tls_port=$(cut -d' ' -f2 "$dir/ports")
[ -n "$tls_port" ] || { echo "run.sh: the fake AWS did not start" >&2; exit 1; }

env AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    AWS_ENDPOINT_URL_ATHENA="https://127.0.0.1:$tls_port" AWS_CA_BUNDLE="$dir/cert.pem" \
    "$bin" "${1:-SELECT 1}"
