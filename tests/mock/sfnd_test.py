#!/usr/bin/env python3
"""tests/mock/sfnd_test.py BUILD - sfnd --mock-config: StartExecution on
"stateMachineArn#TestCaseName" runs that test case (Step Functions Local's convention), over
the API with boto3, on loopback. Last line: "N passed, N failed"."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SFND = os.path.join(ROOT, BUILD, "sfnd")
EX = os.path.join(ROOT, "examples", "mock")
CB = os.path.join(ROOT, "tests", "mock", "callbacks")
for k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[k]
os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                   "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/sfn-test"
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL mock/sfnd:", what, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_done(sfn, arn):
    deadline = time.time() + 20
    while time.time() < deadline:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.05)
    return d


def main():
    tmp = tempfile.mkdtemp()
    # an invalid mock config stops sfnd at start, naming the place
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        json.dump({"StateMachines": {}, "MockedResponses": {"R": {"2-1": {"Return": 1}}}}, f)
    p = subprocess.run([SFND, "--listen", "127.0.0.1:%d" % free_port(), "--db",
                        os.path.join(tmp, "bad.db"), "--mock-config", bad],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 2 and "invocation range '2-1' ends before it starts" in p.stderr,
          "invalid mock config: exit %d, %r" % (p.returncode, p.stderr))

    port = free_port()
    log = open(os.path.join(tmp, "sfnd.log"), "wb")
    proc = subprocess.Popen([SFND, "--listen", "127.0.0.1:%d" % port, "--db",
                             os.path.join(tmp, "m.db"), "--durability", "off",
                             "--mock-config", os.path.join(EX, "MockConfigFile.json")],
                            stdout=log, stderr=log)
    try:
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("sfnd did not start")
                time.sleep(0.05)
        sfn = boto3.client("stepfunctions", endpoint_url="http://127.0.0.1:%d" % port,
                           region_name="us-east-1",
                           config=Config(retries={"max_attempts": 1}, read_timeout=30))
        sm = sfn.create_state_machine(name="OrderReport", roleArn=ROLE,
                                      definition=open(os.path.join(EX, "OrderReport.asl.json")).read())
        arn = sm["stateMachineArn"]
        want = json.load(open(os.path.join(EX, "expected-HappyPath.json")))
        ex = sfn.start_execution(stateMachineArn=arn + "#HappyPath", name="happy")
        check(ex["executionArn"].endswith(":execution:OrderReport:happy"),
              "execution ARN %s" % ex["executionArn"])
        d = wait_done(sfn, ex["executionArn"])
        check(d["status"] == "SUCCEEDED" and json.loads(d.get("output", "null")) == want,
              "HappyPath: %s %s" % (d["status"], d.get("output")))
        check(d["stateMachineArn"] == arn, "stateMachineArn %s" % d["stateMachineArn"])

        ex = sfn.start_execution(stateMachineArn=arn + "#ThrottledThenFormatted")
        d = wait_done(sfn, ex["executionArn"])
        want = json.load(open(os.path.join(EX, "expected-ThrottledThenFormatted.json")))
        check(d["status"] == "SUCCEEDED" and json.loads(d.get("output", "null")) == want,
              "ThrottledThenFormatted: %s %s" % (d["status"], d.get("output")))
        h = sfn.get_execution_history(executionArn=ex["executionArn"])["events"]
        fails = [e["taskFailedEventDetails"] for e in h if e["type"] == "TaskFailed"]
        check(len(fails) == 2 and fails[0]["error"] == "Lambda.TooManyRequestsException"
              and fails[0]["cause"] == "Rate exceeded", "history TaskFailed: %s" % fails)

        # the same machine without a test case: not mocked; sfnd has no Athena handler
        ex = sfn.start_execution(stateMachineArn=arn)
        d = wait_done(sfn, ex["executionArn"])
        check(d["status"] == "FAILED", "unmocked run: %s" % d["status"])

        try:
            sfn.start_execution(stateMachineArn=arn + "#Nope")
            check(False, "unknown test case accepted")
        except ClientError as e:
            check(e.response["Error"]["Code"] == "ValidationException"
                  and "no test case 'Nope'" in e.response["Error"]["Message"],
                  "unknown test case: %s" % e.response["Error"])

        # .waitForTaskToken: the mock answers before sfnd's own callback handler
        mock2 = sfn.create_state_machine(name="Callbacks", roleArn=ROLE,
                                         definition=open(os.path.join(CB, "Callbacks.asl.json")).read())
        # the example's mock config has no test case for Callbacks
        try:
            sfn.start_execution(stateMachineArn=mock2["stateMachineArn"] + "#Approved")
            check(False, "test case of another mock config accepted")
        except ClientError as e:
            check(e.response["Error"]["Code"] == "ValidationException", str(e.response["Error"]))
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.close()
        check(rc == 0, "sfnd exit status %s on SIGTERM (see its log)" % rc)
    # a second daemon with the callbacks' mock config: .waitForTaskToken answered by the mock
    port = free_port()
    log = open(os.path.join(tmp, "sfnd2.log"), "wb")
    proc = subprocess.Popen([SFND, "--listen", "127.0.0.1:%d" % port, "--db",
                             os.path.join(tmp, "c.db"), "--durability", "off",
                             "--mock-config", os.path.join(CB, "mock.json")],
                            stdout=log, stderr=log)
    try:
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("sfnd did not start")
                time.sleep(0.05)
        sfn = boto3.client("stepfunctions", endpoint_url="http://127.0.0.1:%d" % port,
                           region_name="us-east-1",
                           config=Config(retries={"max_attempts": 1}, read_timeout=30))
        sm = sfn.create_state_machine(name="Callbacks", roleArn=ROLE,
                                      definition=open(os.path.join(CB, "Callbacks.asl.json")).read())
        ex = sfn.start_execution(stateMachineArn=sm["stateMachineArn"] + "#Approved")
        d = wait_done(sfn, ex["executionArn"])
        check(d["status"] == "SUCCEEDED" and json.loads(d.get("output", "null")) ==
              {"job": {"exit": 0}, "approval": {"approved": True, "by": "alice"}},
              ".waitForTaskToken mocked in sfnd: %s %s" % (d["status"], d.get("output")))
        h = [e["type"] for e in sfn.get_execution_history(executionArn=ex["executionArn"])["events"]]
        check(h.count("TaskSubmitted") == 2, "TaskSubmitted events: %s" % h)
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.close()
        check(rc == 0, "sfnd exit status %s on SIGTERM (see its log)" % rc)
    shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
