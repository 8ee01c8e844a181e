#!/usr/bin/python3
"""sfnd through the clients users run (issue 4): Debian's boto3 and AWS CLI against
build/sfnd on 127.0.0.1 with a temporary --db.

- the life cycle: CreateStateMachine (idempotent, StateMachineAlreadyExists), Describe, List
  with paging; StartExecution (idempotent by name and input, ExecutionAlreadyExists),
  DescribeExecution until SUCCEEDED with examples/hello, GetExecutionHistory paging,
  reverseOrder, includeExecutionData; StopExecution of a long Wait; ListExecutions with
  statusFilter and paging; ValidateStateMachineDefinition (raw: Debian's botocore predates it);
- a table of bad requests and the AWS error code each must get;
- the HTTP layer with raw sockets: garbage, oversized header and body, pipelining, a stalled
  client that must not hold up others;
- activities with a boto3 worker: GetActivityTask (long poll, pollers answered in order, a
  poller that hangs up), SendTaskSuccess, SendTaskHeartbeat, SendTaskFailure, heartbeat
  timeout, tokens that are invalid or closed; a .waitForTaskToken flow; UpdateStateMachine,
  DeleteStateMachine, DescribeStateMachineForExecution; tags;
- kill -9 of sfnd while an execution waits and while a worker holds an activity task,
  restart on the same file: they complete, the worker's old token still works;
- a store of schema version 1 (v1.sql, written by the first slice's sfn) migrated in place;
- SIGTERM: exit 0, a parked long poll answered; the same flows once with the AWS CLI.
Every process started here is stopped by its PID. Ends with "N passed, N failed".
"""
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")
SFND = os.path.abspath(os.path.join(ROOT, BUILD, "sfnd"))
SFN = os.path.abspath(os.path.join(ROOT, BUILD, "sfn"))
HELLO = os.path.join(ROOT, "examples", "hello", "definition.json")
HELLO_IN = os.path.join(ROOT, "examples", "hello", "input.json")
AWS = "/usr/bin/aws"

CLIENT_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_PAGER": "",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}
for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]  # no profile, endpoint or token of the machine leaks into the clients
os.environ.update(CLIENT_ENV)

import boto3  # noqa: E402  (after the environment: no profile, no credentials file)
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

ACCOUNT = "123456789012"
SM_PREFIX = "arn:aws:states:us-east-1:%s:stateMachine:" % ACCOUNT
EX_PREFIX = "arn:aws:states:us-east-1:%s:execution:" % ACCOUNT
ROLE = "arn:aws:iam::%s:role/sfn-test" % ACCOUNT
ACT_PREFIX = "arn:aws:states:us-east-1:%s:activity:" % ACCOUNT
V1_SQL = os.path.join(HERE, "v1.sql")

PASS_DEF = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
LONG_WAIT_DEF = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600,
                                                             "End": True}}})
SHORT_WAIT_DEF = json.dumps({"StartAt": "W", "States": {
    "W": {"Type": "Wait", "Seconds": 3, "Next": "Done"},
    "Done": {"Type": "Pass", "Result": {"woke": True}, "End": True}}})

passed = failed = 0
procs = []


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)
    return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    """sfnd on 127.0.0.1:port with the store `db` at durability normal, or with `args`
    instead (edge_test: a config file, other options); the log is appended to `log`."""

    def __init__(self, db, port, log, args=None, umask=None):
        self.port = port
        self.log_path = log
        self.log = open(log, "ab")
        if args is None:
            args = ["--db", db, "--durability", "normal"]
        pre = (lambda: os.umask(umask)) if umask is not None else None
        self.proc = subprocess.Popen([SFND] + args + ["--listen", "127.0.0.1:%d" % port],
                                     stdout=self.log, stderr=self.log, preexec_fn=pre)
        procs.append(self.proc)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sfnd exited with %d" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sfnd did not start listening")

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def term(self):
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            rc = self.proc.wait()
        self.log.close()
        return rc


def client(d):
    return boto3.client("stepfunctions", endpoint_url=d.url(), region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, read_timeout=30))


def worker_client(d):
    """A client for GetActivityTask: AWS tells workers to wait at least 65 s."""
    return boto3.client("stepfunctions", endpoint_url=d.url(), region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, read_timeout=70))


def code_of(fn, **kw):
    try:
        fn(**kw)
        return "OK"
    except ClientError as e:
        return e.response["Error"]["Code"]


def raw(d, target, body, content_type="application/x-amz-json-1.0"):
    """One request with http.client: (status, headers, parsed body)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target
    if isinstance(body, str):
        body = body.encode()
    conn.request("POST", "/", body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    conn.close()
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    return r.status, hdrs, parsed


def wait_status(sfn, arn, want, timeout=20):
    deadline = time.time() + timeout
    d = None
    while time.time() < deadline:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] == want:
            return d
        time.sleep(0.1)
    return d


def all_pages(fn, key, **kw):
    items, tokens, pages = [], set(), 0
    while True:
        r = fn(**kw)
        items.extend(r[key])
        pages += 1
        tok = r.get("nextToken")
        if tok is None:
            return items, pages
        if tok in tokens or pages > 1000:
            raise RuntimeError("paging loops")
        tokens.add(tok)
        kw["nextToken"] = tok


# ---- the life cycle ----------------------------------------------------------------------

def test_machines(sfn):
    hello = open(HELLO).read()
    r1 = sfn.create_state_machine(name="hello", definition=hello, roleArn=ROLE)
    check(r1["stateMachineArn"] == SM_PREFIX + "hello", "create: ARN %s" % r1["stateMachineArn"])
    r2 = sfn.create_state_machine(name="hello", definition=hello, roleArn=ROLE)
    check(r2["stateMachineArn"] == r1["stateMachineArn"] and
          r2["creationDate"] == r1["creationDate"], "create: same definition is idempotent")
    check(code_of(sfn.create_state_machine, name="hello", definition=hello + " ", roleArn=ROLE)
          == "StateMachineAlreadyExists", "create: other text -> StateMachineAlreadyExists")
    d = sfn.describe_state_machine(stateMachineArn=r1["stateMachineArn"])
    check(d["definition"] == hello and d["name"] == "hello" and d["status"] == "ACTIVE" and
          d["type"] == "STANDARD" and d["roleArn"] == ROLE and
          d["loggingConfiguration"]["level"] == "OFF" and
          d["tracingConfiguration"]["enabled"] is False, "describe: %r" % {
              k: v for k, v in d.items() if k != "definition"})
    names = ["sm_1_x", "sm_10_x", "waiter", "sleeper", "quick", "b-1", "a.2"]
    for n in names:
        sfn.create_state_machine(name=n, definition=SHORT_WAIT_DEF if n == "sleeper" else
                                 LONG_WAIT_DEF if n == "waiter" else PASS_DEF, roleArn=ROLE)
    items, pages = all_pages(sfn.list_state_machines, "stateMachines", maxResults=2)
    got = [i["name"] for i in items]
    want = sorted(names + ["hello"], key=lambda s: s.encode())
    check(got == want, "list: paged names in code-unit order: %s" % got)
    check(pages == 4, "list: 8 machines in 4 pages of 2 (%d)" % pages)
    check(all(i["stateMachineArn"] == SM_PREFIX + i["name"] and i["type"] == "STANDARD"
              for i in items), "list: items' shape")
    one = sfn.list_state_machines()
    check(len(one["stateMachines"]) == 8 and "nextToken" not in one,
          "list: one page without nextToken")
    pag = [i["name"] for p in sfn.get_paginator("list_state_machines").paginate(
        PaginationConfig={"PageSize": 3}) for i in p["stateMachines"]]
    check(pag == want, "list: boto3 paginator")


def test_executions(sfn):
    hello_in = open(HELLO_IN).read()
    sm = SM_PREFIX + "hello"
    s1 = sfn.start_execution(stateMachineArn=sm, name="order-1", input=hello_in)
    check(s1["executionArn"] == EX_PREFIX + "hello:order-1", "start: ARN")
    s2 = sfn.start_execution(stateMachineArn=sm, name="order-1", input=hello_in)
    check(s2["executionArn"] == s1["executionArn"] and s2["startDate"] == s1["startDate"],
          "start: same name and input while running -> the same execution")
    s3 = sfn.start_execution(stateMachineArn=sm, name="order-1",
                             input=json.dumps(json.loads(hello_in), indent=2))
    check(s3["startDate"] == s1["startDate"], "start: same input, other formatting")
    check(code_of(sfn.start_execution, stateMachineArn=sm, name="order-1", input='{"id":1}')
          == "ExecutionAlreadyExists", "start: other input -> ExecutionAlreadyExists")
    d = sfn.describe_execution(executionArn=s1["executionArn"])
    check(d["status"] == "RUNNING" and d["name"] == "order-1" and d["stateMachineArn"] == sm and
          json.loads(d["input"]) == json.loads(hello_in) and "stopDate" not in d and
          "output" not in d, "describe: running %r" % d.get("status"))
    d = wait_status(sfn, s1["executionArn"], "SUCCEEDED")
    expected = subprocess.run([SFN, "run", HELLO, "--input-file", HELLO_IN, "--fast-time"],
                              capture_output=True, text=True, timeout=60)
    check(d["status"] == "SUCCEEDED" and json.loads(d["output"]) == json.loads(expected.stdout),
          "describe: SUCCEEDED with sfn run's output (%s)" % d.get("status"))
    check(d["stopDate"] >= d["startDate"] and d.get("outputDetails") == {"included": True},
          "describe: stopDate, outputDetails")
    check(code_of(sfn.start_execution, stateMachineArn=sm, name="order-1", input=hello_in)
          == "ExecutionAlreadyExists", "start: same name after it ended -> ExecutionAlreadyExists")

    arn = s1["executionArn"]
    full = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    ids = [e["id"] for e in full]
    check(ids == list(range(1, len(ids) + 1)) and len(ids) > 10, "history: ids 1..%d" % len(ids))
    check(full[0]["type"] == "ExecutionStarted" and full[-1]["type"] == "ExecutionSucceeded",
          "history: first and last events")
    check(json.loads(full[0]["executionStartedEventDetails"]["input"]) == json.loads(hello_in),
          "history: ExecutionStarted input")
    paged, pages = all_pages(sfn.get_execution_history, "events", executionArn=arn,
                             maxResults=3)
    check([e["id"] for e in paged] == ids and pages == (len(ids) + 2) // 3,
          "history: pages of 3 (%d pages)" % pages)
    rev = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=1000)
    check([e["id"] for e in rev["events"]] == ids[::-1], "history: reverseOrder")
    rpaged, _ = all_pages(sfn.get_execution_history, "events", executionArn=arn,
                          maxResults=4, reverseOrder=True)
    check([e["id"] for e in rpaged] == ids[::-1], "history: reverse pages of 4")
    nodata = sfn.get_execution_history(executionArn=arn, includeExecutionData=False,
                                       maxResults=1000)["events"]
    check(len(nodata) == len(full) and
          "input" not in nodata[0].get("executionStartedEventDetails", {}) and
          "output" not in nodata[-1].get("executionSucceededEventDetails", {}),
          "history: includeExecutionData=false drops the data")
    check(code_of(sfn.get_execution_history, executionArn=arn, maxResults=3,
                  nextToken=sfn.get_execution_history(executionArn=arn, maxResults=3,
                                                      reverseOrder=True)["nextToken"])
          == "InvalidToken", "history: a token of another listing -> InvalidToken")

    # stop a long Wait
    w = SM_PREFIX + "waiter"
    sw = sfn.start_execution(stateMachineArn=w, name="w1")
    check(sfn.describe_execution(executionArn=sw["executionArn"])["status"] == "RUNNING",
          "stop: running before")
    st = sfn.stop_execution(executionArn=sw["executionArn"], error="Manual", cause="test stop")
    d = sfn.describe_execution(executionArn=sw["executionArn"])
    check(d["status"] == "ABORTED" and d.get("error") == "Manual" and
          d.get("cause") == "test stop" and d["stopDate"] == st["stopDate"],
          "stop: ABORTED with error and cause, committed before the answer: %r" % d["status"])
    h = sfn.get_execution_history(executionArn=sw["executionArn"], reverseOrder=True,
                                  maxResults=1)["events"][0]
    check(h["type"] == "ExecutionAborted" and
          h["executionAbortedEventDetails"] == {"error": "Manual", "cause": "test stop"},
          "stop: ExecutionAborted event %r" % h)
    again = sfn.stop_execution(executionArn=sw["executionArn"])
    check(again["stopDate"] == st["stopDate"], "stop: a closed execution keeps its stop date")
    sfn.start_execution(stateMachineArn=w, name="w2")

    # list executions: filters and paging
    q = SM_PREFIX + "quick"
    started = [sfn.start_execution(stateMachineArn=q, name="q%d" % i)["executionArn"]
               for i in range(7)]
    for a in started:
        wait_status(sfn, a, "SUCCEEDED")
    items, pages = all_pages(sfn.list_executions, "executions", stateMachineArn=q, maxResults=3)
    check([i["executionArn"] for i in items] == started[::-1] and pages == 3,
          "list executions: newest first in pages of 3")
    check(all(i["status"] == "SUCCEEDED" and "stopDate" in i for i in items),
          "list executions: item shape")
    sel = sfn.list_executions(stateMachineArn=w, statusFilter="ABORTED")["executions"]
    check([i["name"] for i in sel] == ["w1"], "list executions: ABORTED filter %r" % sel)
    sel = sfn.list_executions(stateMachineArn=w, statusFilter="RUNNING")["executions"]
    check([i["name"] for i in sel] == ["w2"], "list executions: RUNNING filter")
    sel = sfn.list_executions(stateMachineArn=sm, statusFilter="SUCCEEDED")["executions"]
    check([i["name"] for i in sel] == ["order-1"], "list executions: SUCCEEDED filter")
    check(sfn.list_executions(stateMachineArn=q, statusFilter="FAILED")["executions"] == [],
          "list executions: empty filter result")
    pag = [i["name"] for p in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=q, PaginationConfig={"PageSize": 2}) for i in p["executions"]]
    check(pag == ["q%d" % i for i in range(6, -1, -1)], "list executions: boto3 paginator")


def test_validate(d):
    st, _, body = raw(d, "AWSStepFunctions.DescribeStateMachine",
                      json.dumps({"stateMachineArn": SM_PREFIX + "hello",
                                  "includedData": "METADATA_ONLY"}))
    check(st == 200 and body["definition"] == "{}" and body["name"] == "hello",
          "describe: METADATA_ONLY (raw: newer than Debian's botocore)")
    st, _, body = raw(d, "AWSStepFunctions.ValidateStateMachineDefinition",
                      json.dumps({"definition": PASS_DEF}))
    check(st == 200 and body == {"result": "OK", "diagnostics": [], "truncated": False},
          "validate: OK %r" % body)
    bad = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}})
    st, _, body = raw(d, "AWSStepFunctions.ValidateStateMachineDefinition",
                      json.dumps({"definition": bad}))
    check(st == 200 and body["result"] == "FAIL" and
          body["diagnostics"][0]["code"] == "MISSING_TRANSITION_TARGET" and
          body["diagnostics"][0]["severity"] == "ERROR", "validate: FAIL %r" % body)


# ---- activities and task tokens -----------------------------------------------------------

def act_machine(act_arn, heartbeat=None, catch=False):
    task = {"Type": "Task", "Resource": act_arn, "End": True}
    if heartbeat is not None:
        task["HeartbeatSeconds"] = heartbeat
    states = {"Work": task}
    if catch:
        task["Catch"] = [{"ErrorEquals": ["MyError"], "ResultPath": "$.caught",
                          "Next": "Caught"}]
        states["Caught"] = {"Type": "Pass", "End": True}
    return json.dumps({"StartAt": "Work", "States": states})


def last_task_event(sfn, arn):
    """The type of the last task-level event (Task* or Activity*) of an execution."""
    ev = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    kinds = [e["type"] for e in ev if e["type"].startswith(("Task", "Activity")) and
             e["type"] not in ("TaskStateEntered", "TaskStateExited")]
    return kinds[-1] if kinds else None


class Poll(threading.Thread):
    """GetActivityTask in a thread: .result is the response (or the error code)."""

    def __init__(self, d, arn, worker=None):
        super().__init__(daemon=True)
        self.sfn, self.arn, self.worker = worker_client(d), arn, worker
        self.result, self.elapsed = None, None

    def run(self):
        t0 = time.time()
        kw = {"activityArn": self.arn}
        if self.worker:
            kw["workerName"] = self.worker
        try:
            self.result = self.sfn.get_activity_task(**kw)
        except ClientError as e:
            self.result = e.response["Error"]["Code"]
        except Exception as e:  # noqa: BLE001 - a timeout is a result too
            self.result = repr(e)
        self.elapsed = time.time() - t0


def test_activities(d, sfn):
    r1 = sfn.create_activity(name="work", tags=[{"key": "team", "value": "a"}])
    check(r1["activityArn"] == ACT_PREFIX + "work", "create activity: ARN %s" % r1)
    r2 = sfn.create_activity(name="work")
    check(r2["activityArn"] == r1["activityArn"] and r2["creationDate"] == r1["creationDate"],
          "create activity: idempotent by name")
    da = sfn.describe_activity(activityArn=r1["activityArn"])
    check(da["name"] == "work" and da["creationDate"] == r1["creationDate"],
          "describe activity %r" % da)
    tags = sfn.list_tags_for_resource(resourceArn=r1["activityArn"])["tags"]
    check(tags == [{"key": "team", "value": "a"}], "create activity: tags %r" % tags)
    for n in ["act-b", "act-c", "act-d", "act-e"]:
        sfn.create_activity(name=n)
    items, pages = all_pages(sfn.list_activities, "activities", maxResults=2)
    check([i["name"] for i in items] == ["work", "act-b", "act-c", "act-d", "act-e"] and
          pages == 3 and all(i["activityArn"] == ACT_PREFIX + i["name"] for i in items),
          "list activities: creation order in pages of 2 (%d)" % pages)
    pag = [i["name"] for p in sfn.get_paginator("list_activities").paginate(
        PaginationConfig={"PageSize": 3}) for i in p["activities"]]
    check(len(pag) == 5, "list activities: boto3 paginator")

    work = r1["activityArn"]
    worker = worker_client(d)
    sfn.create_state_machine(name="act-ok", definition=act_machine(work, heartbeat=2),
                             roleArn=ROLE)
    sfn.create_state_machine(name="act-catch", definition=act_machine(work, catch=True),
                             roleArn=ROLE)
    sfn.create_state_machine(name="act-hb", definition=act_machine(work, heartbeat=1),
                             roleArn=ROLE)

    # the task is waiting before the worker polls: it gets it at once
    e1 = sfn.start_execution(stateMachineArn=SM_PREFIX + "act-ok", name="a1",
                             input='{"job": 1}')["executionArn"]
    t0 = time.time()
    task = worker.get_activity_task(activityArn=work, workerName="w1")
    check("taskToken" in task and json.loads(task["input"]) == {"job": 1} and
          time.time() - t0 < 5, "worker: a waiting task is handed at once %r" % task)
    check(sfn.describe_execution(executionArn=e1)["status"] == "RUNNING",
          "worker: the execution runs while the worker holds the task")
    # heartbeats every 0.5 s keep a 2 s HeartbeatSeconds alive for 3.5 s
    ok = True
    for _ in range(7):
        time.sleep(0.5)
        ok = ok and worker.send_task_heartbeat(taskToken=task["taskToken"]) is not None
    check(ok and sfn.describe_execution(executionArn=e1)["status"] == "RUNNING",
          "worker: heartbeats keep the task alive past HeartbeatSeconds")
    worker.send_task_success(taskToken=task["taskToken"], output='{"done": true}')
    d1 = wait_status(sfn, e1, "SUCCEEDED")
    check(d1["status"] == "SUCCEEDED" and json.loads(d1["output"]) == {"done": True},
          "worker: SendTaskSuccess completes the execution (%s)" % d1["status"])
    check(last_task_event(sfn, e1) in ("TaskSucceeded", "ActivitySucceeded"),
          "worker: a succeeded task event")
    check(code_of(worker.send_task_success, taskToken=task["taskToken"], output="{}")
          == "TaskTimedOut", "worker: a token used once -> TaskTimedOut")
    check(code_of(worker.send_task_heartbeat, taskToken=task["taskToken"]) == "TaskTimedOut",
          "worker: heartbeat on a closed task -> TaskTimedOut")

    # failure, caught by the state machine
    e2 = sfn.start_execution(stateMachineArn=SM_PREFIX + "act-catch", name="c1",
                             input='{"job": 2}')["executionArn"]
    task = worker.get_activity_task(activityArn=work)
    check(code_of(worker.send_task_success, taskToken=task["taskToken"], output="{not json")
          == "InvalidOutput", "worker: output that is not JSON -> InvalidOutput")
    worker.send_task_failure(taskToken=task["taskToken"], error="MyError", cause="it broke")
    d2 = wait_status(sfn, e2, "SUCCEEDED")
    check(d2["status"] == "SUCCEEDED" and json.loads(d2["output"]) ==
          {"job": 2, "caught": {"Error": "MyError", "Cause": "it broke"}},
          "worker: SendTaskFailure is caught by the Catch (%r)" % d2.get("output"))
    # uncaught failure
    e3 = sfn.start_execution(stateMachineArn=SM_PREFIX + "act-ok", name="a2")["executionArn"]
    task = worker.get_activity_task(activityArn=work)
    worker.send_task_failure(taskToken=task["taskToken"], error="Bad", cause="no luck")
    d3 = wait_status(sfn, e3, "FAILED")
    check(d3["status"] == "FAILED" and d3.get("error") == "Bad" and d3.get("cause") == "no luck",
          "worker: an uncaught SendTaskFailure fails the execution (%r)" % d3.get("error"))

    # heartbeat timeout: HeartbeatSeconds 1 and a silent worker
    e4 = sfn.start_execution(stateMachineArn=SM_PREFIX + "act-hb", name="h1")["executionArn"]
    task = worker.get_activity_task(activityArn=work)
    d4 = wait_status(sfn, e4, "FAILED", timeout=15)
    check(d4["status"] == "FAILED" and d4.get("error") == "States.Timeout",
          "heartbeat timeout: FAILED with States.Timeout (%r)" % d4.get("error"))
    check(last_task_event(sfn, e4) in ("TaskTimedOut", "ActivityTimedOut"),
          "heartbeat timeout: a timed-out task event")
    check(code_of(worker.send_task_success, taskToken=task["taskToken"], output="{}")
          == "TaskTimedOut", "heartbeat timeout: the late worker gets TaskTimedOut")

    # many pollers, answered in the order they came
    sfn.create_activity(name="fifo")
    fifo = ACT_PREFIX + "fifo"
    sfn.create_state_machine(name="fifo-m", definition=act_machine(fifo), roleArn=ROLE)
    polls = []
    for i in range(3):
        p = Poll(d, fifo, "p%d" % i)
        p.start()
        polls.append(p)
        time.sleep(0.3)
    gone = socket.create_connection(("127.0.0.1", d.port))  # a poller that hangs up
    gone.sendall(request_bytes("GetActivityTask", json.dumps({"activityArn": fifo})))
    time.sleep(0.3)
    gone.close()
    time.sleep(0.3)
    late = Poll(d, fifo, "p3")
    late.start()
    time.sleep(0.3)
    fifo_execs = [sfn.start_execution(stateMachineArn=SM_PREFIX + "fifo-m", name="f%d" % i,
                                      input=json.dumps({"n": i}))["executionArn"]
                  for i in range(4)]
    for p in polls + [late]:
        p.join(20)
    got = [json.loads(p.result["input"])["n"] if isinstance(p.result, dict) and
           "input" in p.result else p.result for p in polls + [late]]
    check(got == [0, 1, 2, 3], "pollers answered in order; the one that hung up is skipped: "
          "%r" % got)
    for p in polls + [late]:
        if isinstance(p.result, dict) and "taskToken" in p.result:
            worker.send_task_success(taskToken=p.result["taskToken"], output='"ok"')
    check(all(wait_status(sfn, a, "SUCCEEDED")["status"] == "SUCCEEDED" for a in fifo_execs),
          "pollers: every execution completes")

    # tokens that were never issued
    check(code_of(worker.send_task_success, taskToken="garbage", output="{}") == "InvalidToken",
          "token: garbage -> InvalidToken")
    check(code_of(worker.send_task_heartbeat, taskToken="0123456789abcdef" * 4)
          == "TaskTimedOut", "token: well-formed but not held -> TaskTimedOut")
    check(code_of(worker.send_task_heartbeat, taskToken="0123456789abcdef-2-0")
          == "InvalidToken", "token: the old guessable shape -> InvalidToken")

    # deleting an activity: tasks not taken fail, new polls are refused
    sfn.create_activity(name="doomed")
    doomed = ACT_PREFIX + "doomed"
    sfn.create_state_machine(name="doomed-m", definition=act_machine(doomed), roleArn=ROLE)
    e5 = sfn.start_execution(stateMachineArn=SM_PREFIX + "doomed-m",
                             name="d1")["executionArn"]
    time.sleep(0.3)
    sfn.delete_activity(activityArn=doomed)
    d5 = wait_status(sfn, e5, "FAILED")
    check(d5["status"] == "FAILED" and d5.get("error") == "States.Runtime",
          "delete activity: its waiting task fails (%r)" % d5.get("error"))
    check(code_of(sfn.describe_activity, activityArn=doomed) == "ActivityDoesNotExist",
          "delete activity: describe -> ActivityDoesNotExist")
    check(code_of(worker.get_activity_task, activityArn=doomed) == "ActivityDoesNotExist",
          "delete activity: poll -> ActivityDoesNotExist")
    check(code_of(sfn.delete_activity, activityArn=doomed) == "OK",
          "delete activity: again is not an error")
    e6 = sfn.start_execution(stateMachineArn=SM_PREFIX + "doomed-m",
                             name="d2")["executionArn"]
    d6 = wait_status(sfn, e6, "FAILED")
    check(d6["status"] == "FAILED" and "does not exist" in d6.get("cause", ""),
          "delete activity: a task scheduled later fails (%r)" % d6.get("cause"))


def test_callbacks(d, sfn):
    """.waitForTaskToken: the token reaches the outside through $$.Task.Token."""
    definition = json.dumps({"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/1/q",
                               "MessageBody": {"token.$": "$$.Task.Token", "order.$": "$.order"}},
                "ResultPath": "$.answer",
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejected",
                           "Next": "No"}],
                "Next": "Yes"},
        "Yes": {"Type": "Pass", "End": True},
        "No": {"Type": "Pass", "End": True}}})
    sfn.create_state_machine(name="callback", definition=definition, roleArn=ROLE)

    def token_of(arn):
        deadline = time.time() + 10
        while time.time() < deadline:
            for e in sfn.get_execution_history(executionArn=arn)["events"]:
                if e["type"] == "TaskScheduled":
                    params = json.loads(e["taskScheduledEventDetails"]["parameters"])
                    return params["MessageBody"]["token"]
            time.sleep(0.1)
        return None

    e1 = sfn.start_execution(stateMachineArn=SM_PREFIX + "callback", name="cb1",
                             input='{"order": 7}')["executionArn"]
    tok = token_of(e1)
    check(tok is not None, "callback: the token is in TaskScheduled's parameters")
    time.sleep(0.3)
    check(sfn.describe_execution(executionArn=e1)["status"] == "RUNNING",
          "callback: the execution waits for the token")
    sfn.send_task_success(taskToken=tok, output='{"approved": true}')
    d1 = wait_status(sfn, e1, "SUCCEEDED")
    check(d1["status"] == "SUCCEEDED" and json.loads(d1["output"]) ==
          {"order": 7, "answer": {"approved": True}},
          "callback: SendTaskSuccess's output is the task's result (%r)" % d1.get("output"))
    check(code_of(sfn.send_task_failure, taskToken=tok) == "TaskTimedOut",
          "callback: the token closed with the task")
    e2 = sfn.start_execution(stateMachineArn=SM_PREFIX + "callback", name="cb2",
                             input='{"order": 8}')["executionArn"]
    sfn.send_task_failure(taskToken=token_of(e2), error="Rejected", cause="too late")
    d2 = wait_status(sfn, e2, "SUCCEEDED")
    check(json.loads(d2["output"]).get("rejected") == {"Error": "Rejected", "Cause": "too late"},
          "callback: SendTaskFailure is caught (%r)" % d2.get("output"))
    e3 = sfn.start_execution(stateMachineArn=SM_PREFIX + "callback", name="cb3",
                             input='{"order": 9}')["executionArn"]
    tok3 = token_of(e3)
    sfn.stop_execution(executionArn=e3)
    check(code_of(sfn.send_task_success, taskToken=tok3, output="{}") == "TaskTimedOut",
          "callback: a stopped execution's token -> TaskTimedOut")
    return e1


# ---- update, delete, describe for execution, tags ---------------------------------------------

def rawj(d, op, **members):
    """A request whose answer members Debian's botocore (2022 model) would drop (revisionId):
    the parsed body of a 200, else the error code."""
    st, _, body = raw(d, "AWSStepFunctions." + op, json.dumps(members))
    if st == 200:
        return body
    return (body or {}).get("__type", "?").split("#")[-1]


def test_update_delete(d, sfn):
    sm = sfn.create_state_machine(name="upd", definition=LONG_WAIT_DEF,
                                  roleArn=ROLE)["stateMachineArn"]
    check("revisionId" not in rawj(d, "DescribeStateMachine", stateMachineArn=sm),
          "update: no revisionId before the first update")
    e1 = sfn.start_execution(stateMachineArn=sm, name="before")["executionArn"]
    upd = sfn.update_state_machine(stateMachineArn=sm, definition=PASS_DEF)
    check("updateDate" in upd, "update: boto3 %r" % upd)
    desc = rawj(d, "DescribeStateMachine", stateMachineArn=sm)
    rev1 = desc.get("revisionId")
    check(isinstance(rev1, str) and len(rev1) == 36 and desc["definition"] == PASS_DEF and
          desc["roleArn"] == ROLE, "update: describe shows the new revision %r" % rev1)
    u2 = rawj(d, "UpdateStateMachine", stateMachineArn=sm, definition=PASS_DEF)
    check(u2.get("revisionId") == rev1 and isinstance(u2.get("updateDate"), float),
          "update: the same values -> the same revision %r" % u2)
    role2 = ROLE + "-2"
    u3 = rawj(d, "UpdateStateMachine", stateMachineArn=sm, roleArn=role2,
              tracingConfiguration={"enabled": True}, loggingConfiguration={"level": "OFF"})
    desc = rawj(d, "DescribeStateMachine", stateMachineArn=sm)
    check(u3["revisionId"] not in (rev1, None) and desc["revisionId"] == u3["revisionId"] and
          desc["roleArn"] == role2 and desc["tracingConfiguration"] == {"enabled": True} and
          desc["definition"] == PASS_DEF, "update: role and tracing make a new revision")
    check(code_of(sfn.update_state_machine, stateMachineArn=sm) == "MissingRequiredParameter",
          "update: nothing to change -> MissingRequiredParameter")
    check(code_of(sfn.update_state_machine, stateMachineArn=sm, definition='{"StartAt":"X"}')
          == "InvalidDefinition", "update: invalid definition -> InvalidDefinition")
    check(rawj(d, "DescribeStateMachine", stateMachineArn=sm)["revisionId"] == u3["revisionId"],
          "update: a refused update changes nothing")
    check(rawj(d, "UpdateStateMachine", stateMachineArn=sm, definition=PASS_DEF,
               versionDescription="v") == "ValidationException",
          "update: versionDescription without publish -> ValidationException")
    check(sfn.describe_execution(executionArn=e1)["status"] == "RUNNING",
          "update: the running execution keeps its definition")
    f1 = sfn.describe_state_machine_for_execution(executionArn=e1)
    check(f1["definition"] == LONG_WAIT_DEF and f1["roleArn"] == ROLE and
          "revisionId" not in f1 and f1["stateMachineArn"] == sm and f1["name"] == "upd" and
          "status" not in f1 and "updateDate" in f1,
          "describe for execution: the revision it started with %r" % {
              k: v for k, v in f1.items() if k != "ResponseMetadata"})
    e2 = sfn.start_execution(stateMachineArn=sm, name="after")["executionArn"]
    d2 = wait_status(sfn, e2, "SUCCEEDED")
    f2 = rawj(d, "DescribeStateMachineForExecution", executionArn=e2)
    check(d2["status"] == "SUCCEEDED" and f2["definition"] == PASS_DEF and
          f2.get("revisionId") == u3["revisionId"] and f2["roleArn"] == role2 and
          f2["tracingConfiguration"] == {"enabled": True},
          "describe for execution: a later execution runs the new revision")

    # delete while an execution runs: it is stopped, then everything goes
    sfn.tag_resource(resourceArn=sm, tags=[{"key": "k", "value": "v"}])
    check(sfn.delete_state_machine(stateMachineArn=sm) is not None, "delete: 200")
    check(code_of(sfn.describe_state_machine, stateMachineArn=sm) == "StateMachineDoesNotExist",
          "delete: the machine is gone")
    check(code_of(sfn.describe_execution, executionArn=e1) == "ExecutionDoesNotExist",
          "delete: its executions are gone")
    check("upd" not in [m["name"] for m in sfn.list_state_machines()["stateMachines"]],
          "delete: not listed")
    check(code_of(sfn.start_execution, stateMachineArn=sm) == "StateMachineDoesNotExist",
          "delete: no new execution")
    check(code_of(sfn.delete_state_machine, stateMachineArn=sm) == "OK",
          "delete: an unknown machine is not an error")
    again = sfn.create_state_machine(name="upd", definition=PASS_DEF, roleArn=ROLE)
    check(again["stateMachineArn"] == sm and
          sfn.list_tags_for_resource(resourceArn=sm)["tags"] == [] and
          "revisionId" not in rawj(d, "DescribeStateMachine", stateMachineArn=sm),
          "delete: the name can be used again, without the old tags")
    e3 = sfn.start_execution(stateMachineArn=sm, name="before")["executionArn"]
    check(wait_status(sfn, e3, "SUCCEEDED")["status"] == "SUCCEEDED",
          "delete: an old execution name can be used again")
    sfn.delete_state_machine(stateMachineArn=sm)

    # create with logging, tracing and tags; idempotency compares the configuration
    lg = {"level": "ERROR", "includeExecutionData": True, "destinations": [
        {"cloudWatchLogsLogGroup": {"logGroupArn":
                                    "arn:aws:logs:us-east-1:%s:log-group:g:*" % ACCOUNT}}]}
    cfg = sfn.create_state_machine(name="configured", definition=PASS_DEF, roleArn=ROLE,
                                   loggingConfiguration=lg,
                                   tracingConfiguration={"enabled": True},
                                   tags=[{"key": "b", "value": "2"}, {"key": "a", "value": "1"}])
    desc = sfn.describe_state_machine(stateMachineArn=cfg["stateMachineArn"])
    check(desc["loggingConfiguration"] == lg and desc["tracingConfiguration"] ==
          {"enabled": True}, "create: logging and tracing recorded %r" %
          desc["loggingConfiguration"])
    check(sfn.create_state_machine(name="configured", definition=PASS_DEF, roleArn=ROLE,
                                   loggingConfiguration=lg,
                                   tracingConfiguration={"enabled": True})["creationDate"]
          == cfg["creationDate"], "create: the same configuration is idempotent")
    check(code_of(sfn.create_state_machine, name="configured", definition=PASS_DEF,
                  roleArn=ROLE) == "StateMachineAlreadyExists",
          "create: another configuration -> StateMachineAlreadyExists")
    return cfg["stateMachineArn"]


def test_tags(d, sfn, configured):
    tags = sfn.list_tags_for_resource(resourceArn=configured)["tags"]
    check(tags == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
          "tags: from CreateStateMachine, by key %r" % tags)
    sm = SM_PREFIX + "hello"
    check(sfn.list_tags_for_resource(resourceArn=sm)["tags"] == [], "tags: none")
    sfn.tag_resource(resourceArn=sm, tags=[{"key": "env", "value": "test"},
                                           {"key": "owner", "value": "me"}])
    sfn.tag_resource(resourceArn=sm, tags=[{"key": "env", "value": "prod"},
                                           {"key": "empty", "value": ""}])
    tags = sfn.list_tags_for_resource(resourceArn=sm)["tags"]
    check(tags == [{"key": "empty", "value": ""}, {"key": "env", "value": "prod"},
                   {"key": "owner", "value": "me"}], "tags: set and overwritten %r" % tags)
    sfn.untag_resource(resourceArn=sm, tagKeys=["owner", "missing"])
    tags = sfn.list_tags_for_resource(resourceArn=sm)["tags"]
    check([t["key"] for t in tags] == ["empty", "env"], "tags: untag %r" % tags)
    act = ACT_PREFIX + "act-b"
    sfn.tag_resource(resourceArn=act, tags=[{"key": "x", "value": "y"}])
    check(sfn.list_tags_for_resource(resourceArn=act)["tags"] == [{"key": "x", "value": "y"}],
          "tags: on an activity")
    many = [{"key": "k%d" % i, "value": "v"} for i in range(49)]
    check(code_of(sfn.tag_resource, resourceArn=sm, tags=many) == "TooManyTags",
          "tags: 2 + 49 > 50 -> TooManyTags")
    check(len(sfn.list_tags_for_resource(resourceArn=sm)["tags"]) == 2,
          "tags: a refused TagResource changes nothing")
    try:
        sfn.tag_resource(resourceArn=SM_PREFIX + "ghost", tags=[{"key": "a", "value": "b"}])
        body = None
    except ClientError as e:
        body = e.response
    check(body is not None and body["Error"]["Code"] == "ResourceNotFound",
          "tags: unknown resource -> ResourceNotFound")


# ---- a store of schema version 1 ------------------------------------------------------------

def start_migration(tmp, log):
    """v1.sql was dumped from a store the first slice's sfn wrote (user_version 1): sfnd
    migrates it in place at its start. Returns (daemon, db)."""
    db = os.path.join(tmp, "v1.db")
    con = sqlite3.connect(db)
    con.executescript(open(V1_SQL).read())
    con.close()
    con = sqlite3.connect(db)
    check(con.execute("PRAGMA user_version").fetchone()[0] == 1, "migration: a version-1 file")
    MIGRATED_HISTORY[:] = [json.loads(e) for (e,) in con.execute(
        "SELECT event FROM history WHERE execution_id = (SELECT id FROM executions "
        "WHERE name = 'first') ORDER BY id")]
    con.close()
    return Daemon(db, free_port(), log), db


MIGRATED_HISTORY = []  # the version-1 file's events of execution "first", read before sfnd


def test_migration(d, db):
    """The migrated store serves what it holds, and the new operations work on it."""
    try:
        sfn = client(d)
        names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
        check(names == ["hello", "legacy-wait"], "migration: the machines %r" % names)
        first = sfn.describe_execution(executionArn=EX_PREFIX + "hello:first")
        check(first["status"] == "SUCCEEDED" and json.loads(first["output"])["orderId"]
              == "order-42", "migration: a finished execution")
        # schema 4 keeps history in batches: every event of the version-1 file is served as
        # it was, forwards, backwards and in pages
        hist = sfn.get_execution_history(executionArn=first["executionArn"])["events"]
        want = [(e["id"], e["type"]) for e in MIGRATED_HISTORY]
        check(len(want) > 3 and [(e["id"], e["type"]) for e in hist] == want,
              "migration: the history of a version-1 execution (%d events)" % len(want))
        pages, token = [], None
        while True:
            kw = {"nextToken": token} if token else {}
            r = sfn.get_execution_history(executionArn=first["executionArn"], maxResults=2,
                                          reverseOrder=True, **kw)
            pages.extend(e["id"] for e in r["events"])
            token = r.get("nextToken")
            if not token:
                break
        check(pages == [i for i, _ in reversed(want)],
              "migration: that history in reverse, two events a page")
        w = wait_status(sfn, EX_PREFIX + "legacy-wait:waiting", "SUCCEEDED")
        check(w["status"] == "SUCCEEDED" and json.loads(w["output"]) == {"migrated": True},
              "migration: the execution left waiting is recovered and completes")
        desc = sfn.describe_state_machine(stateMachineArn=SM_PREFIX + "hello")
        check(desc["status"] == "ACTIVE" and desc["loggingConfiguration"]["level"] == "OFF" and
              "revisionId" not in desc, "migration: new columns read as their defaults")
        u = rawj(d, "UpdateStateMachine", stateMachineArn=SM_PREFIX + "legacy-wait",
                 definition=PASS_DEF)
        f = rawj(d, "DescribeStateMachineForExecution",
                 executionArn=EX_PREFIX + "legacy-wait:waiting")
        check("revisionId" in u and f["definition"] != PASS_DEF and "revisionId" not in f,
              "migration: update, and the old revision for the old execution")
        a = sfn.create_activity(name="after-migration")
        sfn.tag_resource(resourceArn=a["activityArn"], tags=[{"key": "k", "value": "v"}])
        check(len(sfn.list_tags_for_resource(resourceArn=a["activityArn"])["tags"]) == 1,
              "migration: activities and tags on the migrated file")
    finally:
        rc = d.term()
    check(rc == 0, "migration: SIGTERM exit 0")
    con = sqlite3.connect(db)
    check(con.execute("PRAGMA user_version").fetchone()[0] == 4, "migration: now version 4")
    view = [json.loads(e) for (e,) in con.execute(
        "SELECT event FROM history WHERE execution_id = (SELECT id FROM executions "
        "WHERE name = 'first') ORDER BY id")]
    check(view == MIGRATED_HISTORY, "migration: the view `history` shows the events as stored")
    con.close()


# ---- bad requests -------------------------------------------------------------------------

def test_bad_requests(d, sfn):
    sm = SM_PREFIX + "hello"
    big = json.dumps({"x": "a" * 262144})
    cases = [
        ("create: name with a space", sfn.create_state_machine,
         dict(name="bad name", definition=PASS_DEF, roleArn=ROLE), "InvalidName"),
        ("create: name with '/'", sfn.create_state_machine,
         dict(name="a/b", definition=PASS_DEF, roleArn=ROLE), "InvalidName"),
        ("create: name of 81 characters", sfn.create_state_machine,
         dict(name="n" * 81, definition=PASS_DEF, roleArn=ROLE), "ValidationException"),
        ("create: invalid definition", sfn.create_state_machine,
         dict(name="x1", definition='{"StartAt":"X","States":{}}', roleArn=ROLE),
         "InvalidDefinition"),
        ("create: definition not JSON", sfn.create_state_machine,
         dict(name="x2", definition="not json", roleArn=ROLE), "InvalidDefinition"),
        ("create: role not an ARN", sfn.create_state_machine,
         dict(name="x3", definition=PASS_DEF, roleArn="role"), "InvalidArn"),
        ("create: bad type", sfn.create_state_machine,
         dict(name="x4", definition=PASS_DEF, roleArn=ROLE, type="FAST"),
         "ValidationException"),
        ("create: logging level without destination", sfn.create_state_machine,
         dict(name="x5", definition=PASS_DEF, roleArn=ROLE,
              loggingConfiguration={"level": "ALL"}), "InvalidLoggingConfiguration"),
        ("describe machine: not an ARN", sfn.describe_state_machine,
         dict(stateMachineArn="nope"), "InvalidArn"),
        ("describe machine: unknown", sfn.describe_state_machine,
         dict(stateMachineArn=SM_PREFIX + "ghost"), "StateMachineDoesNotExist"),
        ("describe machine: execution ARN", sfn.describe_state_machine,
         dict(stateMachineArn=EX_PREFIX + "hello:order-1"), "InvalidArn"),
        ("list machines: maxResults 1001", sfn.list_state_machines,
         dict(maxResults=1001), "ValidationException"),
        ("list machines: garbage token", sfn.list_state_machines,
         dict(nextToken="garbage"), "InvalidToken"),
        ("list machines: token of 1025", sfn.list_state_machines,
         dict(nextToken="t" * 1025), "ValidationException"),
        ("start: unknown machine", sfn.start_execution,
         dict(stateMachineArn=SM_PREFIX + "ghost"), "StateMachineDoesNotExist"),
        ("start: machine ARN malformed", sfn.start_execution,
         dict(stateMachineArn="arn:aws:states:us-east-1"), "InvalidArn"),
        ("start: bad name", sfn.start_execution,
         dict(stateMachineArn=sm, name="a b"), "InvalidName"),
        ("start: input not JSON", sfn.start_execution,
         dict(stateMachineArn=sm, input="not json"), "InvalidExecutionInput"),
        ("start: non-JSON multibyte input (the parser's excerpt is cut mid-character)",
         sfn.start_execution, dict(stateMachineArn=sm, input="\u00fc" * 300),
         "InvalidExecutionInput"),
        ("start: empty input", sfn.start_execution,
         dict(stateMachineArn=sm, input=""), "InvalidExecutionInput"),
        ("start: input over 256 KiB", sfn.start_execution,
         dict(stateMachineArn=sm, input=big), "ValidationException"),
        ("describe execution: not an ARN", sfn.describe_execution,
         dict(executionArn="x"), "InvalidArn"),
        ("describe execution: machine ARN", sfn.describe_execution,
         dict(executionArn=sm), "InvalidArn"),
        ("describe execution: express ARN", sfn.describe_execution,
         dict(executionArn="arn:aws:states:us-east-1:%s:express:hello:e:1" % ACCOUNT),
         "InvalidArn"),
        ("describe execution: unknown", sfn.describe_execution,
         dict(executionArn=EX_PREFIX + "hello:ghost"), "ExecutionDoesNotExist"),
        ("stop: unknown", sfn.stop_execution,
         dict(executionArn=EX_PREFIX + "hello:ghost"), "ExecutionDoesNotExist"),
        ("stop: cause over 32768", sfn.stop_execution,
         dict(executionArn=EX_PREFIX + "hello:ghost", cause="c" * 32769),
         "ValidationException"),
        ("list executions: no ARN", sfn.list_executions, dict(), "ValidationException"),
        ("list executions: bad status", sfn.list_executions,
         dict(stateMachineArn=sm, statusFilter="DONE"), "ValidationException"),
        ("list executions: unknown machine", sfn.list_executions,
         dict(stateMachineArn=SM_PREFIX + "ghost"), "StateMachineDoesNotExist"),
        ("history: unknown", sfn.get_execution_history,
         dict(executionArn=EX_PREFIX + "hello:ghost"), "ExecutionDoesNotExist"),
        ("history: maxResults 1001", sfn.get_execution_history,
         dict(executionArn=EX_PREFIX + "hello:order-1", maxResults=1001),
         "ValidationException"),
        # the second slice's operations
        ("create activity: bad name", sfn.create_activity, dict(name="a b"), "InvalidName"),
        ("create activity: name of 81", sfn.create_activity, dict(name="a" * 81),
         "ValidationException"),
        ("create activity: 51 tags", sfn.create_activity,
         dict(name="many", tags=[{"key": "k%d" % i, "value": ""} for i in range(51)]),
         "TooManyTags"),
        ("describe activity: not an ARN", sfn.describe_activity, dict(activityArn="act"),
         "InvalidArn"),
        ("describe activity: machine ARN", sfn.describe_activity, dict(activityArn=sm),
         "InvalidArn"),
        ("describe activity: unknown", sfn.describe_activity,
         dict(activityArn=ACT_PREFIX + "ghost"), "ActivityDoesNotExist"),
        ("delete activity: not an ARN", sfn.delete_activity, dict(activityArn="x"),
         "InvalidArn"),
        ("get activity task: unknown", sfn.get_activity_task,
         dict(activityArn=ACT_PREFIX + "ghost"), "ActivityDoesNotExist"),
        ("get activity task: malformed", sfn.get_activity_task,
         dict(activityArn="arn:aws:states"), "InvalidArn"),
        ("get activity task: workerName of 81", sfn.get_activity_task,
         dict(activityArn=ACT_PREFIX + "work", workerName="w" * 81), "ValidationException"),
        ("list activities: garbage token", sfn.list_activities, dict(nextToken="zz"),
         "InvalidToken"),
        ("list activities: maxResults 1001", sfn.list_activities, dict(maxResults=1001),
         "ValidationException"),
        ("send task success: token of 2049", sfn.send_task_success,
         dict(taskToken="t" * 2049, output="{}"), "ValidationException"),
        ("send task success: output over 256 KiB", sfn.send_task_success,
         dict(taskToken="0123456789abcdef-2-0", output=big), "ValidationException"),
        ("send task failure: error of 257", sfn.send_task_failure,
         dict(taskToken="0123456789abcdef-2-0", error="e" * 257), "ValidationException"),
        ("send task heartbeat: garbage token", sfn.send_task_heartbeat,
         dict(taskToken="not-a-token"), "InvalidToken"),
        ("update: unknown machine", sfn.update_state_machine,
         dict(stateMachineArn=SM_PREFIX + "ghost", definition=PASS_DEF),
         "StateMachineDoesNotExist"),
        ("update: role not an ARN", sfn.update_state_machine,
         dict(stateMachineArn=sm, roleArn="role"), "InvalidArn"),
        ("update: logging level not in the set", sfn.update_state_machine,
         dict(stateMachineArn=sm, loggingConfiguration={"level": "LOUD"}),
         "ValidationException"),
        ("update: two log destinations", sfn.update_state_machine,
         dict(stateMachineArn=sm, loggingConfiguration={"level": "ALL", "destinations": [
             {"cloudWatchLogsLogGroup": {"logGroupArn": "arn:aws:logs:x"}},
             {"cloudWatchLogsLogGroup": {"logGroupArn": "arn:aws:logs:y"}}]}),
         "InvalidLoggingConfiguration"),
        ("delete machine: execution ARN", sfn.delete_state_machine,
         dict(stateMachineArn=EX_PREFIX + "hello:order-1"), "InvalidArn"),
        ("delete machine: Map-labelled ARN", sfn.delete_state_machine,
         dict(stateMachineArn=sm + "/label"), "ValidationException"),
        ("describe for execution: express ARN", sfn.describe_state_machine_for_execution,
         dict(executionArn="arn:aws:states:us-east-1:%s:express:hello:e:1" % ACCOUNT),
         "InvalidArn"),
        ("describe for execution: unknown", sfn.describe_state_machine_for_execution,
         dict(executionArn=EX_PREFIX + "hello:ghost"), "ExecutionDoesNotExist"),
        ("tag: execution ARN", sfn.tag_resource,
         dict(resourceArn=EX_PREFIX + "hello:order-1", tags=[{"key": "a", "value": "b"}]),
         "InvalidArn"),
        ("tag: version ARN", sfn.tag_resource,
         dict(resourceArn=sm + ":1", tags=[{"key": "a", "value": "b"}]), "ResourceNotFound"),
        ("tag: key of 129", sfn.tag_resource,
         dict(resourceArn=sm, tags=[{"key": "k" * 129, "value": "b"}]), "ValidationException"),
        ("tag: value of 257", sfn.tag_resource,
         dict(resourceArn=sm, tags=[{"key": "k", "value": "v" * 257}]), "ValidationException"),
        ("untag: unknown activity", sfn.untag_resource,
         dict(resourceArn=ACT_PREFIX + "ghost", tagKeys=["a"]), "ResourceNotFound"),
        ("list tags: not an ARN", sfn.list_tags_for_resource, dict(resourceArn="x"),
         "InvalidArn"),
        ("create machine: 51 tags", sfn.create_state_machine,
         dict(name="tagged", definition=PASS_DEF, roleArn=ROLE,
              tags=[{"key": "k%d" % i, "value": ""} for i in range(51)]), "TooManyTags"),
    ]
    for what, fn, kw, want in cases:
        got = code_of(fn, **kw)
        check(got == want, "bad request %s: %s, want %s" % (what, got, want))

    raw_cases = [
        ("malformed JSON", "AWSStepFunctions.ListStateMachines", "{not json",
         "SerializationException"),
        ("body is an array", "AWSStepFunctions.ListStateMachines", "[1]",
         "SerializationException"),
        ("member of the wrong type", "AWSStepFunctions.ListStateMachines",
         '{"maxResults":"10"}', "SerializationException"),
        ("unknown operation", "AWSStepFunctions.Frobnicate", "{}", "UnknownOperationException"),
        ("no X-Amz-Target", None, "{}", "UnknownOperationException"),
        ("other service's target", "AmazonSQS.ListQueues", "{}", "UnknownOperationException"),
        ("missing required members", "AWSStepFunctions.CreateStateMachine", "{}",
         "ValidationException"),
        ("versionDescription without publish", "AWSStepFunctions.CreateStateMachine",
         json.dumps({"name": "v", "definition": PASS_DEF, "roleArn": ROLE,
                     "versionDescription": "v1"}), "ValidationException"),
        ("RedriveExecution of a SUCCEEDED execution", "AWSStepFunctions.RedriveExecution",
         json.dumps({"executionArn": EX_PREFIX + "hello:order-1"}), "ExecutionNotRedrivable"),
        ("SendTaskSuccess without output", "AWSStepFunctions.SendTaskSuccess",
         json.dumps({"taskToken": "0123456789abcdef-2-0"}), "ValidationException"),
        ("tags that are not a list", "AWSStepFunctions.TagResource",
         json.dumps({"resourceArn": SM_PREFIX + "hello", "tags": {"a": "b"}}),
         "SerializationException"),
        ("a tag that is not an object", "AWSStepFunctions.TagResource",
         json.dumps({"resourceArn": SM_PREFIX + "hello", "tags": ["a"]}),
         "SerializationException"),
    ]
    check(len(cases) + len(raw_cases) >= 30, "the table has %d bad requests"
          % (len(cases) + len(raw_cases)))
    for what, target, body, want in raw_cases:
        st, hdrs, b = raw(d, target, body)
        ok = (st == 400 and isinstance(b, dict) and b.get("__type", "").split("#")[-1] == want
              and isinstance(b.get("message"), str) and hdrs.get("x-amzn-errortype") == want
              and len(hdrs.get("x-amzn-requestid", "")) == 36)
        check(ok, "raw bad request %s: %s %r %r" % (what, st, b, hdrs.get("x-amzn-errortype")))
    st, _, b = raw(d, "AWSStepFunctions.CreateStateMachine", "{}")
    check("3 validation errors detected" in b.get("message", "") and
          "Value null at 'name' failed to satisfy constraint: Member must not be null"
          in b["message"], "ValidationException message format: %r" % b)
    st, _, b = raw(d, "AWSStepFunctions.TagResource",
                   json.dumps({"resourceArn": SM_PREFIX + "ghost",
                               "tags": [{"key": "a", "value": "b"}]}))
    check(st == 400 and b.get("resourceName") == SM_PREFIX + "ghost" and
          b.get("message") == "Resource not found: '%s'" % (SM_PREFIX + "ghost"),
          "ResourceNotFound carries resourceName: %r" % b)


# ---- the HTTP layer -------------------------------------------------------------------------

def recv_all(s, timeout=5):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


def request_bytes(target, body, extra=""):
    body = body.encode()
    return ("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSStepFunctions.%s\r\n"
            "Content-Type: application/x-amz-json-1.0\r\n%sContent-Length: %d\r\n\r\n"
            % (target, extra, len(body))).encode() + body


def test_http(d, sfn):
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"\x00\x01\x02GARBAGE / NOTHTTP\r\n\r\n")
    data = recv_all(s)
    s.close()
    check(data.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in data,
          "garbage: 400 and closed: %r" % data[:80])

    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(request_bytes("ListStateMachines", "{}", "X-Big: %s\r\n" % ("b" * 20000)))
    data = recv_all(s)
    s.close()
    check(data.startswith(b"HTTP/1.1 400 ") and data.count(b"HTTP/1.1") == 1,
          "oversized header: 400 and closed: %r" % data[:60])

    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AWSStepFunctions.ListStateMachines"
              b"\r\nContent-Length: 3000000\r\n\r\n" + b"{" * 1000)
    data = recv_all(s)
    s.close()
    check(data.startswith(b"HTTP/1.1 413 "), "oversized body: 413: %r" % data[:60])

    # a stalled client (half a request) and a slow one do not hold up the others
    stalled = socket.create_connection(("127.0.0.1", d.port))
    stalled.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar")
    t0 = time.time()
    ok = len(sfn.list_state_machines()["stateMachines"]) > 0
    check(ok and time.time() - t0 < 2, "a stalled client does not block others")
    stalled.close()

    # pipelining: three requests in one write, answered in order on the same connection
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(request_bytes("DescribeStateMachine",
                            json.dumps({"stateMachineArn": SM_PREFIX + "quick"})) +
              request_bytes("StartExecution",
                            json.dumps({"stateMachineArn": SM_PREFIX + "quick",
                                        "name": "pipelined"})) +
              request_bytes("DescribeExecution",
                            json.dumps({"executionArn": EX_PREFIX + "quick:pipelined"}),
                            "Connection: close\r\n"))
    data = recv_all(s)
    s.close()
    parts = data.split(b"HTTP/1.1 ")[1:]
    bodies = []
    for p in parts:
        try:
            bodies.append(json.loads(p.split(b"\r\n\r\n", 1)[1]))
        except (ValueError, IndexError):
            bodies.append(None)
    check(len(parts) == 3 and all(p.startswith(b"200 ") for p in parts) and
          bodies[0].get("name") == "quick" and
          bodies[1].get("executionArn") == EX_PREFIX + "quick:pipelined" and
          bodies[2].get("name") == "pipelined",
          "pipelining: answered in order, the start committed before the next read: %r"
          % bodies)

    # keep-alive: many requests on one connection
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    ok = True
    for _ in range(20):
        conn.request("POST", "/", body=b"{}", headers={
            "X-Amz-Target": "AWSStepFunctions.ListStateMachines",
            "Content-Type": "application/x-amz-json-1.0"})
        r = conn.getresponse()
        ok = ok and r.status == 200 and "stateMachines" in json.loads(r.read())
    conn.close()
    check(ok, "keep-alive: 20 requests on one connection")


# ---- crash and restart --------------------------------------------------------------------

def test_crash(tmp, db, d, log):
    sfn = client(d)
    s = sfn.start_execution(stateMachineArn=SM_PREFIX + "sleeper", name="s1",
                            input='{"k":1}')
    check(sfn.describe_execution(executionArn=s["executionArn"])["status"] == "RUNNING",
          "crash: waiting execution is running")
    n_machines = len(sfn.list_state_machines()["stateMachines"])
    # a worker holds an activity task, another task waits for a worker, a callback waits
    crash_act = sfn.create_activity(name="crash-act")["activityArn"]
    sfn.create_state_machine(name="crash-m", definition=act_machine(crash_act), roleArn=ROLE)
    held = sfn.start_execution(stateMachineArn=SM_PREFIX + "crash-m", name="held",
                               input='{"which": "held"}')["executionArn"]
    worker = worker_client(d)
    task = worker.get_activity_task(activityArn=crash_act, workerName="crash-worker")
    check(json.loads(task.get("input", "null")) == {"which": "held"},
          "crash: the worker holds the task")
    queued = sfn.start_execution(stateMachineArn=SM_PREFIX + "crash-m", name="queued",
                                 input='{"which": "queued"}')["executionArn"]
    cb = sfn.start_execution(stateMachineArn=SM_PREFIX + "callback", name="cb-crash",
                             input='{"order": 10}')["executionArn"]
    cb_token = None
    deadline = time.time() + 10
    while cb_token is None and time.time() < deadline:
        for e in sfn.get_execution_history(executionArn=cb)["events"]:
            if e["type"] == "TaskScheduled":
                cb_token = json.loads(e["taskScheduledEventDetails"]["parameters"])[
                    "MessageBody"]["token"]
        time.sleep(0.05)
    time.sleep(0.3)
    d.kill9()
    d2 = Daemon(db, free_port(), log)
    sfn = client(d2)
    s2 = sfn.start_execution(stateMachineArn=SM_PREFIX + "sleeper", name="s1",
                             input='{"k": 1}')
    check(s2 == {k: s2[k] for k in s2} and s2["executionArn"] == s["executionArn"] and
          s2["startDate"] == s["startDate"], "crash: idempotent start after the restart")
    done = wait_status(sfn, s["executionArn"], "SUCCEEDED")
    check(done["status"] == "SUCCEEDED" and json.loads(done["output"]) == {"woke": True},
          "crash: the execution completes after the restart (%s)" % done["status"])
    ev = sfn.get_execution_history(executionArn=s["executionArn"])["events"]
    check([e["id"] for e in ev] == list(range(1, len(ev) + 1)) and
          [e["type"] for e in ev][-3:] == ["PassStateEntered", "PassStateExited",
                                          "ExecutionSucceeded"],
          "crash: one contiguous history across the restart")
    names = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    check(len(names) == n_machines + 1, "crash: the machines are still there")
    worker = worker_client(d2)
    # the handed-out task was committed as taken: only the other one is offered again
    again = worker.get_activity_task(activityArn=crash_act)
    check(json.loads(again.get("input", "null")) == {"which": "queued"},
          "crash: the task no worker had taken is offered again, the taken one is not")
    check(sfn.describe_execution(executionArn=held)["status"] == "RUNNING",
          "crash: the held task still waits for its worker")
    worker.send_task_heartbeat(taskToken=task["taskToken"])
    worker.send_task_success(taskToken=task["taskToken"], output='{"after": "crash"}')
    h = wait_status(sfn, held, "SUCCEEDED")
    check(h["status"] == "SUCCEEDED" and json.loads(h["output"]) == {"after": "crash"},
          "crash: the worker's SendTaskSuccess with the old token completes it (%s)"
          % h["status"])
    if "taskToken" in again:
        worker.send_task_success(taskToken=again["taskToken"], output='{"q": 1}')
    check(wait_status(sfn, queued, "SUCCEEDED")["status"] == "SUCCEEDED",
          "crash: the re-offered task completes")
    if cb_token is not None:
        sfn.send_task_success(taskToken=cb_token, output='{"approved": false}')
    c = wait_status(sfn, cb, "SUCCEEDED")
    check(c["status"] == "SUCCEEDED" and json.loads(c["output"])["answer"] ==
          {"approved": False}, "crash: a .waitForTaskToken token survives the restart")
    w2 = sfn.describe_execution(executionArn=EX_PREFIX + "waiter:w2")
    check(w2["status"] == "RUNNING", "crash: the long wait still runs after the restart")
    sfn.stop_execution(executionArn=EX_PREFIX + "waiter:w2")
    check(sfn.describe_execution(executionArn=EX_PREFIX + "waiter:w2")["status"] == "ABORTED",
          "crash: a recovered execution can be stopped")
    return d2


# ---- the AWS CLI ----------------------------------------------------------------------------

def test_cli(d):
    n_machines = len(client(d).list_state_machines()["stateMachines"])
    env = dict(os.environ)
    env.update(CLIENT_ENV)

    def aws(*args):
        p = subprocess.run([AWS, "stepfunctions", "--endpoint-url", d.url(), "--output",
                            "json"] + list(args), capture_output=True, text=True, env=env,
                           timeout=60)
        return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None), p.stderr

    rc, out, err = aws("create-state-machine", "--name", "cli-machine", "--definition",
                       "file://" + HELLO, "--role-arn", ROLE)
    check(rc == 0 and out["stateMachineArn"] == SM_PREFIX + "cli-machine",
          "aws cli: create-state-machine %s" % err)
    rc, out, err = aws("start-execution", "--state-machine-arn", SM_PREFIX + "cli-machine",
                       "--name", "cli-1", "--input", "file://" + HELLO_IN)
    check(rc == 0 and out["executionArn"] == EX_PREFIX + "cli-machine:cli-1",
          "aws cli: start-execution %s" % err)
    status = None
    deadline = time.time() + 30
    while time.time() < deadline:
        rc, out, err = aws("describe-execution", "--execution-arn",
                           EX_PREFIX + "cli-machine:cli-1")
        status = out["status"] if rc == 0 else err
        if status == "SUCCEEDED":
            break
        time.sleep(0.3)
    check(status == "SUCCEEDED" and json.loads(out["output"])["orderId"] == "order-42",
          "aws cli: describe-execution SUCCEEDED (%s)" % status)
    rc, out, err = aws("list-executions", "--state-machine-arn", SM_PREFIX + "cli-machine",
                       "--status-filter", "SUCCEEDED")
    check(rc == 0 and [e["name"] for e in out["executions"]] == ["cli-1"],
          "aws cli: list-executions")
    rc, out, err = aws("get-execution-history", "--execution-arn",
                       EX_PREFIX + "cli-machine:cli-1", "--max-items", "5")
    check(rc == 0 and len(out["events"]) == 5 and "NextToken" in out,
          "aws cli: get-execution-history paged")
    rc, out, err = aws("list-state-machines", "--page-size", "2")
    check(rc == 0 and len(out["stateMachines"]) == n_machines + 1,
          "aws cli: list-state-machines auto-paginates to the end")
    rc, out, err = aws("create-activity", "--name", "cli-act")
    check(rc == 0 and out["activityArn"] == ACT_PREFIX + "cli-act", "aws cli: create-activity")
    rc, out, err = aws("send-task-success", "--task-token", "0123456789abcdef" * 4,
                       "--task-output", "{}")
    check(rc != 0 and "TaskTimedOut" in err, "aws cli: send-task-success error %s" % err)
    rc, out, err = aws("describe-state-machine", "--state-machine-arn", SM_PREFIX + "nope")
    check(rc != 0 and "StateMachineDoesNotExist" in err, "aws cli: an error code: %s" % err)


def main():
    if not os.path.exists(SFND):
        print("no %s: run make first" % SFND)
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="sfnd-test-")
    db = os.path.join(tmp, "sfnd.db")
    log = os.path.join(tmp, "sfnd.log")
    d = None
    try:
        d = Daemon(db, free_port(), log)
        sfn = client(d)
        # a second daemon on a migrated version-1 store; its empty long poll runs beside
        # everything else and is answered without a task at 60 s
        md, mdb = start_migration(tmp, log)
        client(md).create_activity(name="idle")
        idle = Poll(md, ACT_PREFIX + "idle")
        idle.start()
        configured = [None]
        for name, fn in [("machines", lambda: test_machines(sfn)),
                         ("executions", lambda: test_executions(sfn)),
                         ("validate", lambda: test_validate(d)),
                         ("activities", lambda: test_activities(d, sfn)),
                         ("callbacks", lambda: test_callbacks(d, sfn)),
                         ("update/delete", lambda: configured.__setitem__(
                             0, test_update_delete(d, sfn))),
                         ("tags", lambda: test_tags(d, sfn, configured[0])),
                         ("bad requests", lambda: test_bad_requests(d, sfn)),
                         ("http", lambda: test_http(d, sfn))]:
            try:
                fn()
            except Exception as e:  # a crash of one group is one failure, the rest goes on
                check(False, "%s: %r" % (name, e))
        try:
            d = test_crash(tmp, db, d, log)
        except Exception as e:
            check(False, "crash: %r" % e)
        try:
            test_cli(d)
        except Exception as e:
            check(False, "aws cli: %r" % e)
        n_machines = len(client(d).list_state_machines()["stateMachines"])
        drained = client(d).start_execution(stateMachineArn=SM_PREFIX + "sleeper", name="s2")
        parked = Poll(d, ACT_PREFIX + "work")
        parked.start()
        time.sleep(0.5)
        rc = d.term()
        check(rc == 0, "SIGTERM: exit 0 (got %s)" % rc)
        parked.join(10)
        check(isinstance(parked.result, dict) and "taskToken" not in parked.result and
              parked.elapsed < 10, "SIGTERM: a parked long poll is answered with no task (%r)"
              % parked.result)
        check(os.stat(db).st_mode & 0o777 == 0o600, "the database file has mode 0600")
        d = Daemon(db, free_port(), log)
        sfn = client(d)
        n = len(sfn.list_state_machines()["stateMachines"])
        check(n == n_machines, "restart after SIGTERM: %d machines" % n)
        done = wait_status(sfn, drained["executionArn"], "SUCCEEDED")
        check(done["status"] == "SUCCEEDED" and done["startDate"] == drained["startDate"],
              "restart after SIGTERM: the execution left waiting completes")
        rc = d.term()
        check(rc == 0, "second SIGTERM: exit 0 (got %s)" % rc)
        idle.join(80)
        check(isinstance(idle.result, dict) and "taskToken" not in idle.result and
              59 <= idle.elapsed < 66, "long poll: no task after 60 s (%r after %s s)"
              % (idle.result, idle.elapsed))
        try:
            test_migration(md, mdb)
        except Exception as e:
            check(False, "migration: %r" % e)
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        if failed:
            with open(log, "rb") as f:
                sys.stdout.write(f.read().decode(errors="replace")[-3000:])
        subprocess.run(["rm", "-rf", tmp])
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
