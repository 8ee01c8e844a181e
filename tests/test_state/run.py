#!/usr/bin/env python3
"""tests/test_state/run.py BUILD - the TestState cases of tests/test_state/*.json, each run
through `sfn test-state` and through sfnd's TestState API with boto3 (on loopback, with host
prefix injection off: api.md 1.2). A case has a "request" (TestState's members, with the
definition, input and mock result as JSON values rather than text) and either the expected
"response" (output and inspection data as JSON values) or the expected "error" {code,
message}. Last line: "N passed, N failed"."""
import glob
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
SFN = os.path.join(ROOT, BUILD, "sfn")
SFND = os.path.join(ROOT, BUILD, "sfnd")
for k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[k]
os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                   "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/test-state"
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL test_state:", what, flush=True)


def decoded(resp):
    """The response with its JSON text members parsed (output, inspection data)."""
    out = {k: v for k, v in resp.items() if k != "ResponseMetadata"}
    if "output" in out:
        out["output"] = json.loads(out["output"])
    insp = out.get("inspectionData")
    if insp is not None:
        out["inspectionData"] = {k: (v if k == "errorDetails" else json.loads(v))
                                 for k, v in insp.items()}
    return out


def run_cli(name, req, tmp):
    d = os.path.join(tmp, name + ".asl.json")
    with open(d, "w") as f:
        json.dump(req["definition"], f)
    args = [SFN, "test-state", d]
    if "input" in req:
        args += ["--input", json.dumps(req["input"])]
    if "stateName" in req:
        args += ["--state-name", req["stateName"]]
    if "inspectionLevel" in req:
        args += ["--inspection-level", req["inspectionLevel"]]
    if req.get("roleArn"):
        args += ["--role-arn", ROLE]
    if "mock" in req:
        args += ["--mock", json.dumps(req["mock"])]
    rc = req.get("stateConfiguration", {}).get("retrierRetryCount")
    if rc is not None:
        args += ["--retrier-retry-count", str(rc)]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def api_request(req):
    r = {"definition": json.dumps(req["definition"])}
    if "input" in req:
        r["input"] = json.dumps(req["input"])
    for k in ("stateName", "inspectionLevel", "mock", "stateConfiguration"):
        if k in req:
            r[k] = req[k]
    if req.get("roleArn"):
        r["roleArn"] = ROLE
    return r


def hanging_call(port, activity):
    sfn = boto3.client("stepfunctions", region_name="us-east-1",
                       endpoint_url="http://127.0.0.1:%d" % port,
                       config=Config(inject_host_prefix=False, read_timeout=20,
                                     retries={"max_attempts": 1}))
    try:
        sfn.test_state(definition=json.dumps({"Type": "Task", "Resource": activity,
                                              "End": True}), roleArn=ROLE)
    except Exception:  # the connection closes as sfnd stops
        pass


def main():
    tmp = tempfile.mkdtemp()
    cases = sorted(glob.glob(os.path.join(HERE, "*.json")))
    port_s = socket.socket()
    port_s.bind(("127.0.0.1", 0))
    port = port_s.getsockname()[1]
    port_s.close()
    log = open(os.path.join(tmp, "sfnd.log"), "wb")
    proc = subprocess.Popen([SFND, "--listen", "127.0.0.1:%d" % port, "--db",
                             os.path.join(tmp, "t.db"), "--durability", "off"],
                            stdout=log, stderr=log)
    try:
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        sfn = boto3.client("stepfunctions", region_name="us-east-1",
                           endpoint_url="http://127.0.0.1:%d" % port,
                           config=Config(inject_host_prefix=False,
                                         retries={"max_attempts": 1}))
        for path in cases:
            name = os.path.basename(path)[:-5]
            case = json.load(open(path))
            req = case["request"]
            want = case.get("response")
            werr = case.get("error")
            # the command line
            p = run_cli(name, req, tmp)
            if werr is not None:
                check(p.returncode == 2 and
                      p.stderr.strip() == "%s: %s" % (werr["code"], werr["message"]),
                      "%s (sfn test-state): exit %d, %r" % (name, p.returncode, p.stderr))
            else:
                try:
                    got = decoded(json.loads(p.stdout))
                except ValueError:
                    got = p.stdout + p.stderr
                ok_rc = 0 if want["status"] in ("SUCCEEDED", "CAUGHT_ERROR") else 1
                check(got == want and p.returncode == ok_rc,
                      "%s (sfn test-state): exit %d\n  got  %s\n  want %s" %
                      (name, p.returncode, json.dumps(got), json.dumps(want)))
            # the API
            try:
                got = decoded(sfn.test_state(**api_request(req)))
                if werr is not None:
                    check(False, "%s (API): no error, got %s" % (name, json.dumps(got)))
                else:
                    check(got == want, "%s (API):\n  got  %s\n  want %s" %
                          (name, json.dumps(got), json.dumps(want)))
            except ClientError as e:
                err = e.response["Error"]
                if werr is None:
                    check(False, "%s (API): %s: %s" % (name, err["Code"], err["Message"]))
                else:
                    check(err["Code"] == werr["code"] and err["Message"] == werr["message"],
                          "%s (API): %s: %s" % (name, err["Code"], err["Message"]))
        # an unmocked Task goes to what sfnd serves: here an activity, done by a worker
        act = sfn.create_activity(name="test-state-worker")["activityArn"]
        res = {}

        def test_activity():
            try:
                res["r"] = sfn.test_state(
                    definition=json.dumps({"Type": "Task", "Resource": act,
                                           "ResultPath": "$.w", "Next": "After"}),
                    roleArn=ROLE, input='{"a":1}', inspectionLevel="DEBUG")
            except ClientError as e:
                res["r"] = e.response["Error"]
        t = threading.Thread(target=test_activity)
        t.start()
        task = sfn.get_activity_task(activityArn=act)
        check(task.get("input") == '{"a":1}', "activity task input %r" % task.get("input"))
        if task.get("taskToken"):
            sfn.send_task_success(taskToken=task["taskToken"], output='{"done":true}')
        t.join(30)
        got = decoded(res.get("r", {}))
        after = {"a": 1, "w": {"done": True}}
        check(got == {"status": "SUCCEEDED", "nextState": "After", "output": after,
                      "inspectionData": {"input": {"a": 1}, "afterInputPath": {"a": 1},
                                         "afterParameters": {"a": 1},
                                         "result": {"done": True},
                                         "afterResultSelector": {"done": True},
                                         "afterResultPath": after}},
              "TestState of an activity Task: %s" % json.dumps(got))
        sfn.delete_activity(activityArn=act)
        # nothing of TestState is recorded: no state machine, no execution
        check(sfn.list_state_machines()["stateMachines"] == [],
              "TestState left a state machine behind")
        # the member checks
        try:
            sfn.test_state(definition="{}", inspectionLevel="LOUD")
            check(False, "inspectionLevel LOUD accepted")
        except ClientError as e:
            check(e.response["Error"]["Code"] == "ValidationException" and
                  "inspectionLevel" in e.response["Error"]["Message"],
                  "inspectionLevel LOUD: %s" % e.response["Error"])
        try:
            sfn.test_state(definition='{"Type":"Pass","End":true}', variables='{"a":1}')
            check(False, "variables accepted")
        except ClientError as e:
            check(e.response["Error"]["Code"] == "ValidationException" and
                  "'variables'" in e.response["Error"]["Message"] and
                  "not supported" in e.response["Error"]["Message"],
                  "variables: %s" % e.response["Error"])
        # a TestState still waiting when sfnd stops: abandoned, nothing leaks (the exit
        # status below; sanitizer builds report leaks through it)
        idle = sfn.create_activity(name="test-state-no-worker")["activityArn"]
        waiting = threading.Thread(target=lambda: hanging_call(port, idle))
        waiting.start()
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    check(proc.returncode == 0, "sfnd exit status %s on SIGTERM" % proc.returncode)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
