#!/usr/bin/env python3
"""tests/mock/conformance_mocks.py CASES.jsonl OUT_DIR - the mock config for the recorded AWS
cases of the local_mocking groups (read in place from ../shared/conformance, never copied).

Those cases were recorded with every service call mocked by the service's recorded response,
and they keep that response only through the execution's output. So each case's Task is
mocked with the response that, through the rest of the definition, gives the recorded result:
  - SUCCEEDED: Return = the recorded output, with the data flow after the Task undone (a Pass
    state with only ResultPath "$.x" copies its input to x: x is removed again);
  - FAILED: Throw = the recorded error and cause.
A case this rule cannot invert (more than one Task, other states after it, paths on the Task)
is an error here, so the suite fails instead of skipping it.

Writes OUT_DIR/mock.json (one StateMachines entry "CaseN" per case, test case "Recorded")
and OUT_DIR/ids.json (case id -> machine name). Prints the number of cases."""
import json
import os
import sys


def tasks_of(states):
    out = []
    for name, st in states.items():
        if st.get("Type") == "Task":
            out.append((name, st))
        for b in st.get("Branches", []):
            out += tasks_of(b.get("States", {}))
        for k in ("Iterator", "ItemProcessor"):
            if k in st:
                out += tasks_of(st[k].get("States", {}))
    return out


def undo_after(defn, task_name, value):
    """The Task's result from the execution's output, or raise ValueError."""
    states = defn["States"]
    st = states[task_name]
    for k in ("ResultPath", "OutputPath", "ResultSelector", "Output", "Assign"):
        if k in st:
            raise ValueError(f"Task '{task_name}' has {k}")
    nxt = st.get("Next")
    while nxt is not None:
        s = states[nxt]
        rp = s.get("ResultPath", "")
        if (s.get("Type") != "Pass" or set(s) - {"Type", "ResultPath", "Next", "End", "Comment"}
                or not rp.startswith("$.") or "." in rp[2:] or "[" in rp):
            raise ValueError(f"cannot undo state '{nxt}' after the Task")
        if not isinstance(value, dict) or rp[2:] not in value:
            raise ValueError(f"the output has no '{rp}' for state '{nxt}'")
        value = {k: v for k, v in value.items() if k != rp[2:]}
        nxt = s.get("Next")
    return value


def main():
    cases_path, out = sys.argv[1], sys.argv[2]
    machines, responses, ids = {}, {}, {}
    n = 0
    bad = []
    for line in open(cases_path):
        c = json.loads(line)
        if not c.get("group", "").startswith("local_mocking/") or c.get("kind") != "execution":
            continue
        n += 1
        name = f"Case{n}"
        ids[c["id"]] = name
        tasks = tasks_of(c["definition"]["States"])
        exp = c["expected"]
        try:
            if len(tasks) != 1:
                raise ValueError(f"{len(tasks)} Task states")
            tname = tasks[0][0]
            if exp["status"] == "SUCCEEDED":
                resp = {"0": {"Return": undo_after(c["definition"], tname, exp["output"])}}
            elif exp["status"] == "FAILED":
                thr = {k: exp[k.lower()] for k in ("Error", "Cause") if exp.get(k.lower()) is not None}
                resp = {"0": {"Throw": thr}}
            else:
                raise ValueError(f"status {exp['status']}")
        except (ValueError, KeyError) as e:
            bad.append(f"{c['id']}: {e}")
            continue
        responses[f"{name}Response"] = resp
        machines[name] = {"TestCases": {"Recorded": {tname: f"{name}Response"}}}
    os.makedirs(out, exist_ok=True)
    json.dump({"StateMachines": machines, "MockedResponses": responses},
              open(os.path.join(out, "mock.json"), "w"), indent=1)
    json.dump(ids, open(os.path.join(out, "ids.json"), "w"), indent=1)
    for b in bad:
        print("FAIL mock conformance: no mock derivable for", b)
    print(n)
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
