#!/bin/sh
# tests/creds/process.sh - a credential_process for test_creds (run as "sh .../process.sh MODE").
# Every secret printed contains "SeCrEt" so test_creds can check no cause ever quotes one.
case "$1" in
ok)
    printf '{"Version": 1, "AccessKeyId": "AKPROC", "SecretAccessKey": "SeCrEt-proc",'
    printf ' "SessionToken": "TOKEN-SeCrEt-proc", "Expiration": "2030-01-01T00:00:00Z"}\n'
    ;;
static)
    printf '{"Version": 1, "AccessKeyId": "AKPROCSTATIC", "SecretAccessKey": "SeCrEt-static"}\n'
    ;;
count)
    # $2: counter file, $3: Expiration of every reply
    n=$(cat "$2" 2>/dev/null || echo 0)
    n=$((n + 1))
    echo "$n" >"$2"
    printf '{"Version": 1, "AccessKeyId": "AKPROC%s", "SecretAccessKey": "SeCrEt-%s",' "$n" "$n"
    printf ' "Expiration": "%s"}\n' "$3"
    ;;
once)
    # succeeds the first time only ($2: marker file, $3: Expiration)
    if [ -e "$2" ]; then
        echo "already used" >&2
        exit 4
    fi
    : >"$2"
    printf '{"Version": 1, "AccessKeyId": "AKONCE", "SecretAccessKey": "SeCrEt-once",'
    printf ' "Expiration": "%s"}\n' "$3"
    ;;
args)
    # the access key id is the second argument: checks the command-line splitting
    printf '{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "SeCrEt-args"}\n' "$2"
    ;;
offset)
    printf '{"Version": 1, "AccessKeyId": "AKOFFSET", "SecretAccessKey": "SeCrEt-o",'
    printf ' "Expiration": "2024-01-01T02:00:00.123+02:00"}\n'
    ;;
slow)
    # answers after $2 seconds; $3: counter file of runs
    n=$(cat "$3" 2>/dev/null || echo 0)
    echo $((n + 1)) >"$3"
    sleep "$2"
    printf '{"Version": 1, "AccessKeyId": "AKSLOW%s", "SecretAccessKey": "SeCrEt-slow"}\n' $((n + 1))
    ;;
hang)
    # never answers; writes the PID of its sleep (same process group) to $2
    sleep 30 &
    echo $! >"$2"
    wait
    ;;
fail)
    echo "token service unreachable" >&2
    exit 3
    ;;
badjson)
    echo '{"Version": 1, "AccessKeyId": "AKBAD", "SecretAccessKey": SeCrEt-unquoted}'
    ;;
version2)
    printf '{"Version": 2, "AccessKeyId": "AKV2", "SecretAccessKey": "SeCrEt-v2"}\n'
    ;;
nosecret)
    printf '{"Version": 1, "AccessKeyId": "AKNOSECRET"}\n'
    ;;
badexpiry)
    printf '{"Version": 1, "AccessKeyId": "AKX", "SecretAccessKey": "SeCrEt-x",'
    printf ' "Expiration": "next tuesday"}\n'
    ;;
*)
    echo "unknown mode $1" >&2
    exit 2
    ;;
esac
