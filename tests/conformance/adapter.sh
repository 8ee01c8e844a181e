#!/bin/sh
# tests/conformance/adapter.sh - the CLI adapter ../shared/conformance/run.py drives:
# ADAPTER DEFINITION-FILE < input.json, printing one JSON result object.
# Executions run through `sfn run --result --events --fast-time`; definition-only cases go
# through `sfn validate --json`, rendered as CreateStateMachine's InvalidDefinition error or,
# for cases recorded from ValidateStateMachineDefinition, as its first diagnostic.
SFN=${SFN:-build/sfn}
type=${SFN_CONFORMANCE_STATE_MACHINE_TYPE:-STANDARD}
case "$SFN_CONFORMANCE_KIND" in
invalid_definition | valid_definition)
    out=$("$SFN" validate --json --type "$type" "$1")
    api=create
    case "$SFN_CONFORMANCE_CASE_ID" in
    *validate_state_machine_definition*) api=validate ;;
    esac
    exec python3 -c '
import json, sys
r = json.loads(sys.argv[1]); api = sys.argv[2]
if r["result"] == "OK":
    print(json.dumps({"status": "VALID"}))
elif api == "validate":
    d = r["diagnostics"][0]
    print(json.dumps({"status": "INVALID_DEFINITION", "error": d["code"], "cause": d["message"]}))
else:
    parts = [d["code"] + ": " + d["message"] + " at " + (d.get("location") or "null") for d in r["diagnostics"]]
    print(json.dumps({"status": "INVALID_DEFINITION", "error": "InvalidDefinition",
                      "cause": "Invalid State Machine Definition: \x27" + ", ".join(parts) + "\x27"}))
' "$out" "$api"
    ;;
*)
    # a crash or a sanitizer report (exit status other than 0, or 2 for a rejected
    # definition) must not pass for a result: print nothing then
    out=$("$SFN" run --result --events --fast-time --type "$type" "$1")
    rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ]; then
        printf '%s\n' "$out"
    else
        echo "sfn exited with status $rc" >&2
    fi
    ;;
esac
