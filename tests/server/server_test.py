#!/usr/bin/python3
"""sfnd through the clients users run (issue 4, first slice): Debian's boto3 and AWS CLI
against build/sfnd on 127.0.0.1 with a temporary --db.

- the life cycle: CreateStateMachine (idempotent, StateMachineAlreadyExists), Describe, List
  with paging; StartExecution (idempotent by name and input, ExecutionAlreadyExists),
  DescribeExecution until SUCCEEDED with examples/hello, GetExecutionHistory paging,
  reverseOrder, includeExecutionData; StopExecution of a long Wait; ListExecutions with
  statusFilter and paging; ValidateStateMachineDefinition (raw: Debian's botocore predates it);
- a table of bad requests and the AWS error code each must get;
- the HTTP layer with raw sockets: garbage, oversized header and body, pipelining, a stalled
  client that must not hold up others;
- kill -9 of sfnd while an execution waits, restart on the same file: it completes;
- SIGTERM: exit 0; the same flows once with the AWS CLI.
Every process started here is stopped by its PID. Ends with "N passed, N failed".
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
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
    def __init__(self, db, port, log):
        self.port = port
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([SFND, "--listen", "127.0.0.1:%d" % port, "--db", db,
                                      "--durability", "normal"],
                                     stdout=self.log, stderr=self.log)
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
        ("not implemented yet: CreateActivity", sfn.create_activity, dict(name="act"),
         "UnknownOperationException"),
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
    ]
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
              b"\r\nContent-Length: 2000000\r\n\r\n" + b"{" * 1000)
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
    check(len(names) == 8, "crash: the machines are still there")
    w2 = sfn.describe_execution(executionArn=EX_PREFIX + "waiter:w2")
    check(w2["status"] == "RUNNING", "crash: the long wait still runs after the restart")
    sfn.stop_execution(executionArn=EX_PREFIX + "waiter:w2")
    check(sfn.describe_execution(executionArn=EX_PREFIX + "waiter:w2")["status"] == "ABORTED",
          "crash: a recovered execution can be stopped")
    return d2


# ---- the AWS CLI ----------------------------------------------------------------------------

def test_cli(d):
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
    check(rc == 0 and len(out["stateMachines"]) == 9, "aws cli: list-state-machines "
          "auto-paginates to the end")
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
        for name, fn in [("machines", lambda: test_machines(sfn)),
                         ("executions", lambda: test_executions(sfn)),
                         ("validate", lambda: test_validate(d)),
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
        drained = client(d).start_execution(stateMachineArn=SM_PREFIX + "sleeper", name="s2")
        rc = d.term()
        check(rc == 0, "SIGTERM: exit 0 (got %s)" % rc)
        check(os.stat(db).st_mode & 0o777 == 0o600, "the database file has mode 0600")
        d = Daemon(db, free_port(), log)
        sfn = client(d)
        n = len(sfn.list_state_machines()["stateMachines"])
        check(n == 9, "restart after SIGTERM: %d machines" % n)
        done = wait_status(sfn, drained["executionArn"], "SUCCEEDED")
        check(done["status"] == "SUCCEEDED" and done["startDate"] == drained["startDate"],
              "restart after SIGTERM: the execution left waiting completes")
        rc = d.term()
        check(rc == 0, "second SIGTERM: exit 0 (got %s)" % rc)
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
