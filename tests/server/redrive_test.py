#!/usr/bin/python3
"""StartSyncExecution (api.md 6.2) and RedriveExecution (9.2) of sfnd, through Debian's boto3
and AWS CLI against build/sfnd on 127.0.0.1 with a temporary --db. Debian's botocore predates
RedriveExecution: newer_model.py gives both clients the members they lack (AWS_DATA_PATH).

- sync: the reply's shape on success, failure (HTTP 200), TIMED_OUT, METADATA_ONLY; a Standard
  machine refused; concurrent sync calls parked while other requests are served; the `sync-`
  host prefix: boto3 with inject_host_prefix=False, the AWS CLI through HTTP_PROXY, and any
  Host header accepted;
- redrive of a failed activity Task (the worker fails it once), of a Parallel whose other
  branch succeeded (its activity is not handed out again), of an inline Map with failed and
  aborted iterations (the succeeded ones are not run again), of an ABORTED and of a TIMED_OUT
  execution; the history's ids contiguous across ExecutionRedriven; $$.Execution.RedriveCount
  and RedriveTime; DescribeExecution and ListExecutions (redriveFilter); the not-redrivable
  errors; clientToken idempotency; redrive after kill -9 and a redriven execution continued
  after kill -9; the AWS CLI's redrive-execution.
Every process started here is stopped by its PID. Ends with "N passed, N failed"."""
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
    del os.environ[_k]
os.environ.update(CLIENT_ENV)
for _k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
    os.environ.pop(_k, None)

sys.path.insert(0, HERE)
import newer_model  # noqa: E402
import server_test as st  # noqa: E402

TMP = tempfile.mkdtemp(prefix="sfnd-redrive-")
os.environ["AWS_DATA_PATH"] = newer_model.install(os.path.join(TMP, "models"))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

# the daemon, check() and ARNs of the server suite (imported before AWS_DATA_PATH is set:
# server_test clears the AWS_ environment when it loads)
ACCOUNT, SM_PREFIX, EX_PREFIX, ACT_PREFIX, ROLE = (
    st.ACCOUNT, st.SM_PREFIX, st.EX_PREFIX, st.ACT_PREFIX, st.ROLE)
check, free_port, Daemon, procs = st.check, st.free_port, st.Daemon, st.procs


def client(d, read_timeout=30):
    # api.md 1.2: botocore puts "sync-" before the endpoint's host for StartSyncExecution
    return boto3.client("stepfunctions", endpoint_url=d.url(), region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, read_timeout=read_timeout,
                                      inject_host_prefix=False))


def code_of(fn, **kw):
    try:
        fn(**kw)
        return "OK", ""
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"].get("Message", "")


def wait_status(sfn, arn, want, timeout=20):
    deadline = time.time() + timeout
    d = None
    while time.time() < deadline:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] in want:
            return d
        time.sleep(0.05)
    return d


def history(sfn, arn):
    events, kw = [], {"executionArn": arn, "maxResults": 1000}
    while True:
        r = sfn.get_execution_history(**kw)
        events.extend(r["events"])
        if "nextToken" not in r:
            return events
        kw["nextToken"] = r["nextToken"]


def contiguous(events):
    return [e["id"] for e in events] == list(range(1, len(events) + 1)) and all(
        0 <= e["previousEventId"] < e["id"] for e in events)


def create(sfn, name, definition, typ="STANDARD"):
    return sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE,
                                    type=typ)["stateMachineArn"]


class Worker:
    """Activity workers, one long-polling thread per activity: the decision function set last
    (`decide(activity_name, input)` returns ("ok", output), ("fail", error) or ("hold", None))
    answers each task; `handed` lists each activity's task inputs, recorded once answered."""

    def __init__(self, d, names):
        self.sfn = short_poll(d)
        self.acts = {n: self.sfn.create_activity(name=n)["activityArn"] for n in names}
        self.handed = {n: [] for n in names}
        self.held = []
        self.decide = lambda n, i: ("hold", None)
        self.stop = False
        self.busy = 0  # tasks received and not yet recorded in `handed`
        self.lock = threading.Lock()
        for n in names:
            threading.Thread(target=self.poll, args=(n,), daemon=True).start()

    def poll(self, name):
        while not self.stop:
            try:
                c = self.sfn
                t = c.get_activity_task(activityArn=self.acts[name], workerName="w")
            except Exception:
                time.sleep(0.1)  # the daemon restarts (kill -9) or stops
                continue
            if not t.get("taskToken"):
                continue
            with self.lock:
                self.busy += 1
            inp = json.loads(t["input"])
            try:
                what, val = self.decide(name, inp)
                if what == "ok":
                    c.send_task_success(taskToken=t["taskToken"], output=json.dumps(val))
                elif what == "fail":
                    c.send_task_failure(taskToken=t["taskToken"], error=val,
                                        cause="worker said no")
                else:
                    with self.lock:
                        self.held.append(t["taskToken"])
            except Exception:
                pass  # the answer is lost with the daemon; the task was still handed out
            finally:
                with self.lock:
                    self.handed[name].append(inp)
                    self.busy -= 1

    def set(self, decide):
        self.decide = decide

    def wait(self, until, timeout=20):
        deadline = time.time() + timeout
        while not until() and time.time() < deadline:
            time.sleep(0.05)

    def settle(self):
        """Waits until every task received is recorded (the execution may end first)."""
        self.wait(lambda: self.busy == 0, timeout=10)

    def take_held(self):
        with self.lock:
            held, self.held = self.held, []
        return held


def short_poll(d):
    """A client for GetActivityTask (which holds a request up to 60 s)."""
    return boto3.client("stepfunctions", endpoint_url=d.url(), region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, read_timeout=70,
                                      inject_host_prefix=False))


# ---- StartSyncExecution ------------------------------------------------------------------

def test_sync(d, sfn):
    arn = create(sfn, "sync-pass", {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Parameters": {"got.$": "$.x"}, "End": True}}}, "EXPRESS")
    r = sfn.start_sync_execution(stateMachineArn=arn, name="s1", input='{"x": 7}')
    check(r["status"] == "SUCCEEDED" and json.loads(r["output"]) == {"got": 7},
          "sync: SUCCEEDED with the output (%r)" % r)
    check(r["executionArn"].startswith(
        "arn:aws:states:us-east-1:%s:express:sync-pass:s1:" % ACCOUNT) and r["name"] == "s1"
          and r["stateMachineArn"] == arn, "sync: the Express ARN (%s)" % r["executionArn"])
    check(r["inputDetails"] == {"included": True} and r["outputDetails"] == {"included": True}
          and json.loads(r["input"]) == {"x": 7}, "sync: input and data details")
    b = r.get("billingDetails", {})
    check(b.get("billedMemoryUsedInMB") == 64 and b.get("billedDurationInMilliseconds", 0) >= 100
          and b["billedDurationInMilliseconds"] % 100 == 0, "sync: billingDetails %r" % b)
    check(r["stopDate"] >= r["startDate"] and "error" not in r and "cause" not in r,
          "sync: dates, no error on success")

    farn = create(sfn, "sync-fail", {"StartAt": "F", "States": {
        "F": {"Type": "Fail", "Error": "Bad.Thing", "Cause": "it broke"}}}, "EXPRESS")
    r = sfn.start_sync_execution(stateMachineArn=farn)
    check(r["ResponseMetadata"]["HTTPStatusCode"] == 200 and r["status"] == "FAILED" and
          r["error"] == "Bad.Thing" and r["cause"] == "it broke" and "output" not in r and
          r["outputDetails"] == {"included": True}, "sync: FAILED is HTTP 200 with error/cause %r"
          % r)
    farn2 = create(sfn, "sync-fail-bare", {"StartAt": "F", "States": {
        "F": {"Type": "Fail", "Error": "OnlyError"}}}, "EXPRESS")
    r = sfn.start_sync_execution(stateMachineArn=farn2)
    check(r["status"] == "FAILED" and r["error"] == "OnlyError" and "cause" not in r,
          "sync: an empty cause is left out (%r)" % r)

    tarn = create(sfn, "sync-timeout", {"TimeoutSeconds": 1, "StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 30, "End": True}}}, "EXPRESS")
    r = sfn.start_sync_execution(stateMachineArn=tarn)
    check(r["status"] == "TIMED_OUT" and "output" not in r and
          r["error"] == "States.Timeout", "sync: TIMED_OUT (%r)" % r)

    r = sfn.start_sync_execution(stateMachineArn=arn, input='{"x": 1}',
                                 includedData="METADATA_ONLY")
    check(r["status"] == "SUCCEEDED" and "input" not in r and "output" not in r,
          "sync: METADATA_ONLY leaves the data out (%r)" % r)

    std = create(sfn, "sync-standard", {"StartAt": "P", "States": {
        "P": {"Type": "Pass", "End": True}}})
    code, msg = code_of(sfn.start_sync_execution, stateMachineArn=std)
    check(code == "StateMachineTypeNotSupported", "sync: Standard refused (%s %s)" % (code, msg))
    code, _ = code_of(sfn.start_sync_execution, stateMachineArn=SM_PREFIX + "nope")
    check(code == "StateMachineDoesNotExist", "sync: unknown machine (%s)" % code)
    code, _ = code_of(sfn.start_sync_execution, stateMachineArn=arn, input="{not json")
    check(code == "InvalidExecutionInput", "sync: bad input (%s)" % code)

    # many sync calls at once are parked while the loop serves other requests
    warn = create(sfn, "sync-wait", {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 2, "Next": "P"},
        "P": {"Type": "Pass", "Parameters": {"i.$": "$.i"}, "End": True}}}, "EXPRESS")
    results = {}

    def one(i):
        c = client(d)
        results[i] = c.start_sync_execution(stateMachineArn=warn, input=json.dumps({"i": i}))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    served = sfn.describe_state_machine(stateMachineArn=warn)["name"] == "sync-wait"
    still = sum(t.is_alive() for t in threads)
    check(served and still == 12, "sync: other requests are answered while 12 sync calls wait "
          "(%d still waiting)" % still)
    for t in threads:
        t.join(30)
    ok = all(results.get(i, {}).get("status") == "SUCCEEDED" and
             json.loads(results[i]["output"]) == {"i": i} for i in range(12))
    check(ok and len({r["executionArn"] for r in results.values()}) == 12,
          "sync: 12 concurrent calls each get their own execution's answer")

    # DeleteStateMachine stops a sync execution before removing its records: it is answered
    darn = create(sfn, "sync-deleted", {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 60, "End": True}}}, "EXPRESS")
    got = {}

    def doomed():
        got["r"] = client(d).start_sync_execution(stateMachineArn=darn)

    t = threading.Thread(target=doomed)
    t.start()
    time.sleep(0.3)
    sfn.delete_state_machine(stateMachineArn=darn)
    t.join(30)
    r = got.get("r", {})
    # as AWS: the deleted machine's executions end FAILED, States.Runtime (api.md 5.4)
    check(r.get("status") == "FAILED" and r.get("error") == "States.Runtime"
          and r.get("cause") == "State machine sync-deleted has been deleted.",
          "sync: DeleteStateMachine ends a running sync call, which is answered (%r)" % r)
    check(sfn.describe_state_machine(stateMachineArn=arn)["name"] == "sync-pass",
          "sync: the daemon goes on after the deletion")

    # api.md 1.2: botocore's default puts the request to host sync-127.0.0.1
    seen = {}
    dflt = boto3.client("stepfunctions", endpoint_url=d.url(), region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}))

    def show(request, **kw):
        seen["url"] = request.url
        raise RuntimeError("stop here")

    dflt.meta.events.register("before-send", show)
    try:
        dflt.start_sync_execution(stateMachineArn=arn)
    except RuntimeError:
        pass
    check(seen.get("url", "").startswith("http://sync-127.0.0.1:"),
          "sync: botocore's host prefix, as documented (%s)" % seen.get("url"))
    # the daemon answers whatever Host the request names
    for host in ("sync-127.0.0.1:%d" % d.port, "sync-localhost", "example.invalid"):
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        conn.request("POST", "/", body=json.dumps({"stateMachineArn": arn, "input": '{"x": 1}'}),
                     headers={"Host": host, "Content-Type": "application/x-amz-json-1.0",
                              "X-Amz-Target": "AWSStepFunctions.StartSyncExecution"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        check(resp.status == 200 and body.get("status") == "SUCCEEDED",
              "sync: Host %s accepted (%s %r)" % (host, resp.status, body))
    # the same through an absolute-form request (what clients send to an HTTP proxy)
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    conn.request("POST", "http://sync-127.0.0.1:%d/" % d.port,
                 body=json.dumps({"stateMachineArn": arn, "input": '{"x": 1}'}),
                 headers={"Content-Type": "application/x-amz-json-1.0",
                          "X-Amz-Target": "AWSStepFunctions.StartSyncExecution"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    check(resp.status == 200 and body.get("status") == "SUCCEEDED",
          "sync: an absolute-form request line is served (%r)" % body)
    return arn


# ---- RedriveExecution --------------------------------------------------------------------

def types(events):
    return [e["type"] for e in events]


def not_running(sfn, ex):
    return lambda: sfn.describe_execution(executionArn=ex)["status"] != "RUNNING"


def test_redrive_task(d, sfn, w):
    """A Task that fails once: the redrive enters it again with its original input."""
    arn = create(sfn, "rd-task", {"StartAt": "Prep", "States": {
        "Prep": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "Work"},
        "Work": {"Type": "Task", "Resource": w.acts["rd-flaky"], "Next": "After"},
        "After": {"Type": "Pass", "Parameters": {"work.$": "$", "count.$":
                                                 "$$.Execution.RedriveCount",
                                                 "time.$": "$$.Execution.RedriveTime"},
                  "End": True}}})
    w.set(lambda n, i: ("fail", "Flaky.Error"))
    ex = sfn.start_execution(stateMachineArn=arn, name="t1", input='{"n": 5}')["executionArn"]
    dsc = wait_status(sfn, ex, ("FAILED",))
    w.settle()
    check(dsc["status"] == "FAILED" and dsc["error"] == "Flaky.Error" and
          dsc["redriveStatus"] == "REDRIVABLE" and dsc["redriveCount"] == 0,
          "redrive task: FAILED, REDRIVABLE (%r)" % dsc)
    before = history(sfn, ex)
    w.set(lambda n, i: ("ok", {"done": i["n"]}))
    r = sfn.redrive_execution(executionArn=ex)
    check("redriveDate" in r, "redrive task: redriveDate answered")
    dsc = wait_status(sfn, ex, ("SUCCEEDED", "FAILED"))
    w.settle()
    out = json.loads(dsc.get("output") or "null")
    check(dsc["status"] == "SUCCEEDED" and dsc["executionArn"] == ex and
          dsc["redriveCount"] == 1 and "redriveDate" in dsc and "error" not in dsc,
          "redrive task: SUCCEEDED under the same ARN, redriveCount 1 (%r)" % dsc)
    check(out is not None and out["work"] == {"done": 5} and out["count"] == 1 and
          out["time"].endswith("Z"), "redrive task: $$.Execution.RedriveCount/RedriveTime %r"
          % out)
    check(w.handed["rd-flaky"] == [{"n": 5}, {"n": 5}],
          "redrive task: the Task got its original input again (%r)" % w.handed["rd-flaky"])
    ev = history(sfn, ex)
    t = types(ev)
    k = len(before)
    check(ev[:k] == before, "redrive task: the history before the redrive is unchanged")
    check(len(t) > k + 1 and t[k] == "ExecutionRedriven" and
          ev[k].get("executionRedrivenEventDetails") == {"redriveCount": 1} and
          t[k + 1] == "TaskStateEntered" and ev[k + 1]["previousEventId"] == ev[k]["id"] and
          t.count("PassStateEntered") == 2 and t[-1] == "ExecutionSucceeded",
          "redrive task: ExecutionRedriven then the failed state again, Prep not re-run %r"
          % t[k - 1:])
    check(contiguous(ev), "redrive task: event ids contiguous across the redrive")
    return ex


def test_redrive_parallel(d, sfn, w):
    arn = create(sfn, "rd-par", {"StartAt": "Par", "States": {
        "Par": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": w.acts["rd-ok"],
                                              "End": True}}},
            {"StartAt": "B0", "States": {
                "B0": {"Type": "Pass", "Next": "B"},
                "B": {"Type": "Task", "Resource": w.acts["rd-flaky"], "End": True}}}]}}})
    ok0, fl0 = len(w.handed["rd-ok"]), len(w.handed["rd-flaky"])
    # branch A succeeds, B is held and then failed
    w.set(lambda n, i: ("ok", {"a": 1}) if n == "rd-ok" else ("hold", None))
    ex = sfn.start_execution(stateMachineArn=arn, name="p1", input='{"v": 1}')["executionArn"]
    w.wait(lambda: len(w.handed["rd-ok"]) > ok0 and len(w.handed["rd-flaky"]) > fl0)
    for tok in w.take_held():
        sfn.send_task_failure(taskToken=tok, error="Flaky.Error")
    dsc = wait_status(sfn, ex, ("FAILED",))
    w.settle()
    check(dsc["status"] == "FAILED", "redrive parallel: FAILED first (%s)" % dsc["status"])
    w.set(lambda n, i: ("ok", {"b": 2}) if n == "rd-flaky" else ("ok", {"again": True}))
    sfn.redrive_execution(executionArn=ex)
    dsc = wait_status(sfn, ex, ("SUCCEEDED", "FAILED"))
    w.settle()
    check(dsc["status"] == "SUCCEEDED" and json.loads(dsc["output"]) == [{"a": 1}, {"b": 2}],
          "redrive parallel: SUCCEEDED with the first branch's result reused (%r)"
          % dsc.get("output"))
    check(len(w.handed["rd-ok"]) == ok0 + 1 and len(w.handed["rd-flaky"]) == fl0 + 2,
          "redrive parallel: the succeeded branch's activity was handed out once (%d), the "
          "failed one twice (%d)" % (len(w.handed["rd-ok"]) - ok0,
                                     len(w.handed["rd-flaky"]) - fl0))
    ev = history(sfn, ex)
    t = types(ev)
    k = t.index("ExecutionRedriven")
    check(t[k + 1:].count("TaskStateEntered") == 1 and "PassStateEntered" not in t[k + 1:] and
          t[-2:] == ["ParallelStateExited", "ExecutionSucceeded"] and contiguous(ev),
          "redrive parallel: only the failed branch's Task entered again %r" % t[k:])


def test_redrive_map(d, sfn, w):
    arn = create(sfn, "rd-map", {"StartAt": "M", "States": {
        "M": {"Type": "Map", "End": True, "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "T", "States": {
                "T": {"Type": "Task", "Resource": w.acts["rd-item"], "End": True}}}}}})
    # items 0 and 2 succeed; 1 and 3 are held, then one fails and the other is aborted
    w.set(lambda n, i: ("ok", i * 10) if i in (0, 2) else ("hold", None))
    ex = sfn.start_execution(stateMachineArn=arn, name="m1",
                             input="[0, 1, 2, 3]")["executionArn"]
    w.wait(lambda: len(w.handed["rd-item"]) >= 4)
    first = sorted(w.handed["rd-item"])
    check(first == [0, 1, 2, 3], "redrive map: 4 iterations started (%r)" % first)
    held = w.take_held()
    sfn.send_task_failure(taskToken=held[0], error="Item.Error")
    dsc = wait_status(sfn, ex, ("FAILED",))
    w.settle()
    check(dsc["status"] == "FAILED" and dsc.get("error") == "Item.Error",
          "redrive map: FAILED first (%r)" % dsc.get("error"))
    n_before = len(w.handed["rd-item"])
    w.set(lambda n, i: ("ok", i * 10))
    sfn.redrive_execution(executionArn=ex)
    dsc = wait_status(sfn, ex, ("SUCCEEDED", "FAILED"))
    w.settle()
    again = sorted(w.handed["rd-item"][n_before:])
    check(dsc["status"] == "SUCCEEDED" and json.loads(dsc["output"]) == [0, 10, 20, 30],
          "redrive map: SUCCEEDED with every result (%r)" % dsc.get("output"))
    check(again == [1, 3], "redrive map: only the failed and aborted iterations ran again (%r)"
          % again)
    ev = history(sfn, ex)
    check(contiguous(ev) and types(ev)[-2:] == ["MapStateExited", "ExecutionSucceeded"],
          "redrive map: history ids contiguous, MapStateExited at the end")


def test_redrive_aborted(d, sfn, w):
    arn = create(sfn, "rd-abort", {"StartAt": "First", "States": {
        "First": {"Type": "Pass", "Next": "Work"},
        "Work": {"Type": "Task", "Resource": w.acts["rd-flaky"], "End": True}}})
    n0 = len(w.handed["rd-flaky"])
    w.set(lambda n, i: ("hold", None))
    ex = sfn.start_execution(stateMachineArn=arn, name="a1", input='{"k": 1}')["executionArn"]
    w.wait(lambda: len(w.handed["rd-flaky"]) > n0)
    w.take_held()
    sfn.stop_execution(executionArn=ex, error="Stop.Now", cause="by the test")
    dsc = wait_status(sfn, ex, ("ABORTED",))
    check(dsc["status"] == "ABORTED" and dsc["redriveStatus"] == "REDRIVABLE",
          "redrive aborted: ABORTED and REDRIVABLE (%r)" % dsc.get("redriveStatus"))
    sfn.redrive_execution(executionArn=ex)
    dsc = sfn.describe_execution(executionArn=ex)
    check(dsc["status"] == "RUNNING" and "stopDate" not in dsc and "error" not in dsc and
          dsc["redriveStatus"] == "NOT_REDRIVABLE" and
          dsc.get("redriveStatusReason") == "Execution is RUNNING and cannot be redriven",
          "redrive aborted: RUNNING again right after the answer (%r)" % dsc)
    w.wait(lambda: len(w.handed["rd-flaky"]) > n0 + 1)
    for tok in w.take_held():
        sfn.send_task_success(taskToken=tok, output='{"finished": 1}')
    dsc = wait_status(sfn, ex, ("SUCCEEDED", "FAILED"))
    check(dsc["status"] == "SUCCEEDED" and json.loads(dsc["output"]) == {"finished": 1},
          "redrive aborted: the stopped Task ran again and the execution SUCCEEDED")
    check(w.handed["rd-flaky"][n0:] == [{"k": 1}, {"k": 1}],
          "redrive aborted: the Task's input both times")
    t = types(history(sfn, ex))
    check(t.count("PassStateEntered") == 1 and t.count("TaskStateEntered") == 2 and
          "ExecutionAborted" in t, "redrive aborted: First not re-run %r" % t)


def test_redrive_timed_out(d, sfn):
    arn = create(sfn, "rd-timeout", {"TimeoutSeconds": 1, "StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 3, "End": True}}})
    ex = sfn.start_execution(stateMachineArn=arn, name="to1")["executionArn"]
    dsc = wait_status(sfn, ex, ("TIMED_OUT",))
    check(dsc["status"] == "TIMED_OUT" and dsc["redriveStatus"] == "REDRIVABLE",
          "redrive timed out: TIMED_OUT, REDRIVABLE")
    sfn.redrive_execution(executionArn=ex)
    dsc = wait_status(sfn, ex, ("TIMED_OUT",), timeout=10)
    ev = history(sfn, ex)
    t = types(ev)
    check(dsc["status"] == "TIMED_OUT" and dsc["redriveCount"] == 1 and
          t[-3:] == ["ExecutionRedriven", "WaitStateEntered", "ExecutionTimedOut"] and
          contiguous(ev), "redrive timed out: the Wait entered again, TimeoutSeconds counted "
          "from the redrive %r" % t)


def test_not_redrivable(d, sfn, done_arn):
    code, msg = code_of(sfn.redrive_execution, executionArn=done_arn)
    check(code == "ExecutionNotRedrivable" and
          msg == "Execution is SUCCEEDED and cannot be redriven",
          "not redrivable: SUCCEEDED (%s %s)" % (code, msg))
    dsc = sfn.describe_execution(executionArn=done_arn)
    check(dsc["redriveStatus"] == "NOT_REDRIVABLE" and
          dsc["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven",
          "not redrivable: DescribeExecution says why")
    arn = create(sfn, "rd-running", {"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 3600, "End": True}}})
    ex = sfn.start_execution(stateMachineArn=arn, name="r1")["executionArn"]
    code, msg = code_of(sfn.redrive_execution, executionArn=ex)
    check(code == "ExecutionNotRedrivable" and msg == "Execution is RUNNING and cannot be "
          "redriven", "not redrivable: RUNNING (%s %s)" % (code, msg))
    sfn.stop_execution(executionArn=ex)
    code, msg = code_of(sfn.redrive_execution, executionArn=EX_PREFIX + "rd-running:nope")
    check(code == "ExecutionDoesNotExist", "redrive: unknown execution (%s)" % code)
    code, msg = code_of(sfn.redrive_execution, executionArn="not-an-arn")
    check(code == "InvalidArn", "redrive: not an ARN (%s)" % code)
    code, msg = code_of(sfn.redrive_execution, executionArn=(
        "arn:aws:states:us-east-1:%s:express:sync-pass:x:y" % ACCOUNT))
    check(code == "InvalidArn", "redrive: an Express execution ARN (%s)" % code)


def test_tokens(d, sfn, w):
    arn = create(sfn, "rd-token", {"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": w.acts["rd-flaky"], "End": True}}})
    w.set(lambda n, i: ("fail", "Once"))
    ex = sfn.start_execution(stateMachineArn=arn, name="k1")["executionArn"]
    wait_status(sfn, ex, ("FAILED",))
    w.settle()
    w.set(lambda n, i: ("hold", None))
    n0 = len(w.handed["rd-flaky"])
    r1 = sfn.redrive_execution(executionArn=ex, clientToken="token-1")
    r2 = sfn.redrive_execution(executionArn=ex, clientToken="token-1")
    check(r1["redriveDate"] == r2["redriveDate"], "clientToken: the same token answers the "
          "same redriveDate (%s, %s)" % (r1["redriveDate"], r2["redriveDate"]))
    dsc = sfn.describe_execution(executionArn=ex)
    check(dsc["redriveCount"] == 1 and dsc["status"] == "RUNNING",
          "clientToken: one redrive for two calls (%d)" % dsc["redriveCount"])
    code, _ = code_of(sfn.redrive_execution, executionArn=ex, clientToken="token-2")
    check(code == "ExecutionNotRedrivable", "clientToken: another token while RUNNING (%s)"
          % code)
    w.wait(lambda: len(w.handed["rd-flaky"]) > n0)
    for tok in w.take_held():
        sfn.send_task_failure(taskToken=tok, error="Twice")
    wait_status(sfn, ex, ("FAILED",))
    w.set(lambda n, i: ("ok", {}))
    r3 = sfn.redrive_execution(executionArn=ex, clientToken="token-3")
    dsc = wait_status(sfn, ex, ("SUCCEEDED", "FAILED"))
    check(dsc["redriveCount"] == 2 and r3["redriveDate"] != r1["redriveDate"] and
          dsc["status"] == "SUCCEEDED",
          "clientToken: a new token redrives again (count %d)" % dsc["redriveCount"])
    ev = history(sfn, ex)
    red = [e for e in ev if e["type"] == "ExecutionRedriven"]
    check([e["executionRedrivenEventDetails"]["redriveCount"] for e in red] == [1, 2] and
          contiguous(ev), "clientToken: two ExecutionRedriven events, counts 1 and 2")
    return arn


def test_list(d, sfn, token_machine):
    items = sfn.list_executions(stateMachineArn=token_machine)["executions"]
    check(len(items) == 1 and items[0]["redriveCount"] == 2 and "redriveDate" in items[0],
          "ListExecutions: redriveCount and redriveDate (%r)" % items)
    red = sfn.list_executions(stateMachineArn=SM_PREFIX + "rd-task",
                              redriveFilter="REDRIVEN")["executions"]
    nred = sfn.list_executions(stateMachineArn=SM_PREFIX + "rd-task",
                               redriveFilter="NOT_REDRIVEN")["executions"]
    check(len(red) == 1 and nred == [], "ListExecutions: redriveFilter (%d, %d)"
          % (len(red), len(nred)))
    nred = sfn.list_executions(stateMachineArn=SM_PREFIX + "rd-running",
                               redriveFilter="NOT_REDRIVEN")["executions"]
    check(len(nred) == 1 and nred[0]["redriveCount"] == 0,
          "ListExecutions: NOT_REDRIVEN keeps the others")


def test_crash(db, log, d, sfn, w):
    """A FAILED execution is redriven after kill -9; a redriven one continues after kill -9."""
    arn = create(sfn, "rd-crash", {"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": w.acts["rd-flaky"], "Next": "Count"},
        "Count": {"Type": "Pass", "Parameters": {"count.$": "$$.Execution.RedriveCount"},
                  "End": True}}})
    w.set(lambda n, i: ("fail", "Crash.Before"))
    ex = sfn.start_execution(stateMachineArn=arn, name="c1")["executionArn"]
    wait_status(sfn, ex, ("FAILED",))
    d.kill9()
    # api.md 9.2: only within 14 days of the end (the record aged while sfnd is down)
    old = EX_PREFIX + "rd-timeout:to1"
    con = sqlite3.connect(db)
    con.execute("UPDATE executions SET stop_ms = stop_ms - 15 * 86400000 WHERE arn = ?", (old,))
    con.commit()
    con.close()
    d = Daemon(db, free_port(), log)
    sfn = client(d)
    dsc = sfn.describe_execution(executionArn=old)
    code, msg = code_of(sfn.redrive_execution, executionArn=old)
    check(dsc["redriveStatus"] == "NOT_REDRIVABLE" and
          dsc.get("redriveStatusReason") == "Execution redrivable period exceeded" and
          code == "ExecutionNotRedrivable" and msg == "Execution redrivable period exceeded",
          "not redrivable after 14 days (%s %s, %s)" % (code, msg, dsc.get("redriveStatus")))
    w.settle()
    w.set(lambda n, i: ("hold", None))
    w.sfn = short_poll(d)
    n0 = len(w.handed["rd-flaky"])
    sfn.redrive_execution(executionArn=ex)
    w.wait(lambda: len(w.handed["rd-flaky"]) > n0)
    held = w.take_held()
    d.kill9()
    d = Daemon(db, free_port(), log)
    sfn = client(d)
    w.sfn = short_poll(d)
    dsc = sfn.describe_execution(executionArn=ex)
    check(dsc["status"] == "RUNNING" and dsc["redriveCount"] == 1,
          "kill -9: the redriven execution is RUNNING after the restart (%r)" % dsc["status"])
    for tok in held:
        sfn.send_task_success(taskToken=tok, output="{}")
    dsc = wait_status(sfn, ex, ("SUCCEEDED", "FAILED"))
    check(dsc["status"] == "SUCCEEDED" and json.loads(dsc["output"]) == {"count": 1},
          "kill -9: redrive after a restart, and the redriven execution completes after "
          "another (%r)" % dsc.get("output"))
    ev = history(sfn, ex)
    check(contiguous(ev) and types(ev).count("ExecutionRedriven") == 1,
          "kill -9: history contiguous with one ExecutionRedriven")
    return d, sfn


def test_cli(d, sfn, w):
    env = dict(os.environ)

    def aws(*args, extra=None):
        e = dict(env)
        e.update(extra or {})
        p = subprocess.run([AWS, "stepfunctions", "--endpoint-url", d.url(), "--output",
                            "json"] + list(args), capture_output=True, text=True, env=e,
                           timeout=60)
        return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None), p.stderr

    # api.md 1.2: the CLI sends StartSyncExecution to sync-127.0.0.1; a proxy setting takes
    # it to the daemon, which serves the absolute-form request
    rc, out, err = aws("start-sync-execution", "--state-machine-arn", SM_PREFIX + "sync-pass",
                       "--input", '{"x": 3}', extra={"HTTP_PROXY": d.url()})
    check(rc == 0 and out["status"] == "SUCCEEDED" and json.loads(out["output"]) == {"got": 3},
          "aws cli: start-sync-execution %s" % err[-300:])
    rc, out, err = aws("start-sync-execution", "--state-machine-arn",
                       SM_PREFIX + "sync-fail", extra={"HTTP_PROXY": d.url()})
    check(rc == 0 and out["status"] == "FAILED" and out["error"] == "Bad.Thing",
          "aws cli: start-sync-execution of a failing machine exits 0 %s" % err[-300:])
    arn = create(sfn, "rd-cli", {"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": w.acts["rd-flaky"], "End": True}}})
    w.set(lambda n, i: ("fail", "Cli.Error"))
    ex = sfn.start_execution(stateMachineArn=arn, name="cli1")["executionArn"]
    wait_status(sfn, ex, ("FAILED",))
    w.settle()
    w.set(lambda n, i: ("hold", None))
    n0 = len(w.handed["rd-flaky"])
    rc, out, err = aws("redrive-execution", "--execution-arn", ex)
    check(rc == 0 and "redriveDate" in (out or {}), "aws cli: redrive-execution %s" % err)
    rc, out, err = aws("describe-execution", "--execution-arn", ex)
    check(rc == 0 and out["redriveCount"] == 1 and out["status"] == "RUNNING",
          "aws cli: describe-execution shows the redrive %s" % err)
    rc, out, err = aws("redrive-execution", "--execution-arn", ex)
    check(rc != 0 and "ExecutionNotRedrivable" in err,
          "aws cli: redrive of a RUNNING execution fails %s" % err.strip())
    w.wait(lambda: len(w.handed["rd-flaky"]) > n0)
    for tok in w.take_held():
        sfn.send_task_success(taskToken=tok, output="{}")
    dsc = wait_status(sfn, ex, ("SUCCEEDED", "FAILED"))
    check(dsc["status"] == "SUCCEEDED", "aws cli: the redriven execution completes")


def main():
    db = os.path.join(TMP, "sfnd.db")
    log = os.path.join(TMP, "sfnd.log")
    w = None
    try:
        d = Daemon(db, free_port(), log)
        sfn = client(d)
        test_sync(d, sfn)
        w = Worker(d, ["rd-flaky", "rd-ok", "rd-item"])
        done = test_redrive_task(d, sfn, w)
        test_redrive_parallel(d, sfn, w)
        test_redrive_map(d, sfn, w)
        test_redrive_aborted(d, sfn, w)
        test_redrive_timed_out(d, sfn)
        test_not_redrivable(d, sfn, done)
        token_machine = test_tokens(d, sfn, w)
        test_list(d, sfn, token_machine)
        test_cli(d, sfn, w)
        d, sfn = test_crash(db, log, d, sfn, w)
        w.stop = True
        # a sync call still running when the daemon stops: no answer, a clean exit
        create(sfn, "sync-long", {"StartAt": "W", "States": {
            "W": {"Type": "Wait", "Seconds": 600, "End": True}}}, "EXPRESS")
        parked = {}

        def park():
            try:
                parked["r"] = client(d).start_sync_execution(
                    stateMachineArn=SM_PREFIX + "sync-long")
            except Exception as e:
                parked["e"] = e

        t = threading.Thread(target=park)
        t.start()
        time.sleep(0.5)
        rc = d.term()
        t.join(30)
        check(rc == 0 and "e" in parked, "SIGTERM with a sync call running: exit 0 (got %s), "
              "the call is dropped (%r)" % (rc, parked))
    except Exception as e:  # a crash of the test is a failure, with its trace
        import traceback
        traceback.print_exc()
        check(False, "the test raised %r" % e)
    finally:
        if w is not None:
            w.stop = True
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        if st.failed and os.path.exists(log):
            with open(log, "rb") as f:
                sys.stdout.write(f.read().decode(errors="replace")[-3000:])
        subprocess.run(["rm", "-rf", TMP])
    print("%d passed, %d failed" % (st.passed, st.failed))
    return 1 if st.failed else 0


if __name__ == "__main__":
    sys.exit(main())
