#!/usr/bin/python3
"""Activities through a boto3 worker against build/sfnd (issue 4; api.md 7.3-7.5, 8):

- the Activity* event family, its details and previousEventId chain for a succeeded and a
  failed activity, a worker with and without a name;
- the clocks (api.md 8.4, AWS's stuck-execution guide): TimeoutSeconds counts from
  ActivityScheduled, also while no worker has the task; HeartbeatSeconds from ActivityStarted
  (a worker that takes the task late is not timed out by heartbeats it could not send);
  both expire with States.Timeout in ActivityTimedOut;
- sfnd SIGKILLed while a worker holds a task, restarted on the same file: the worker's token
  still works, the history has one ActivityStarted, and the heartbeat clock went on from the
  start instead of starting again;
- task tokens: 64 hex characters, different for two executions of one machine; forged ones
  are refused (InvalidToken, or TaskTimedOut for a well-shaped guess);
- a deleted activity: TaskStateEntered then ExecutionFailed States.Runtime, no activity event;
- DeleteStateMachine while a worker holds a task of it: the worker's token is closed, also
  after a kill -9 right after the answer.
Timing checks read the history's own timestamps with wide margins (they assert which clock
runs, not how fast sfnd is). Every process started here is stopped by its PID. Ends with
"N passed, N failed".
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server_test as st  # noqa: E402  (the daemon, clients and check() of the server suite)

check = st.check
ACT = st.ACT_PREFIX
SM = st.SM_PREFIX


def machine(sfn, name, act_arn, timeout=None, heartbeat=None):
    task = {"Type": "Task", "Resource": act_arn, "End": True}
    if timeout is not None:
        task["TimeoutSeconds"] = timeout
    if heartbeat is not None:
        task["HeartbeatSeconds"] = heartbeat
    sfn.create_state_machine(name=name, roleArn=st.ROLE, definition=json.dumps(
        {"StartAt": "Work", "States": {"Work": task}}))
    return SM + name


def history(sfn, arn):
    return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def types(events):
    return [e["type"] for e in events]


def event(events, type_):
    found = [e for e in events if e["type"] == type_]
    return found[0] if found else {}


def ts(e):
    return e["timestamp"].timestamp() if "timestamp" in e else float("nan")


def chained(events):
    """api.md 7.4 in a sequential run: the first state event points at 0, the rest at id-1."""
    return all(e["id"] == i + 1 for i, e in enumerate(events)) and \
        all(e["previousEventId"] == (0 if e["id"] <= 2 else e["id"] - 1) for e in events)


def test_succeeded(d, sfn, worker, act):
    sm = machine(sfn, "ok", act, timeout=60, heartbeat=30)
    ex = sfn.start_execution(stateMachineArn=sm, name="ok1", input='{"job": 1}')["executionArn"]
    task = worker.get_activity_task(activityArn=act, workerName="w1")
    tok = task.get("taskToken", "")
    check(len(tok) == 64 and all(c in "0123456789abcdef" for c in tok),
          "token: 64 hex characters (%r)" % tok)
    worker.send_task_success(taskToken=tok, output='{"done": 1}')
    st.wait_status(sfn, ex, "SUCCEEDED")
    ev = history(sfn, ex)
    check(types(ev) == ["ExecutionStarted", "TaskStateEntered", "ActivityScheduled",
                        "ActivityStarted", "ActivitySucceeded", "TaskStateExited",
                        "ExecutionSucceeded"], "succeeded: event types %r" % types(ev))
    check(chained(ev), "succeeded: previousEventId chain %r" %
          [(e["id"], e["previousEventId"]) for e in ev])
    sch = event(ev, "ActivityScheduled").get("activityScheduledEventDetails")
    check(sch == {"resource": act, "input": '{"job":1}', "inputDetails": {"truncated": False},
                  "timeoutInSeconds": 60, "heartbeatInSeconds": 30},
          "succeeded: ActivityScheduled details %r" % sch)
    sta = event(ev, "ActivityStarted").get("activityStartedEventDetails")
    check(sta == {"workerName": "w1"}, "succeeded: ActivityStarted details %r" % sta)
    suc = event(ev, "ActivitySucceeded").get("activitySucceededEventDetails")
    check(suc == {"output": '{"done":1}', "outputDetails": {"truncated": False}},
          "succeeded: ActivitySucceeded details %r" % suc)
    check(not any(e["type"].startswith("Task") and e["type"] not in
                  ("TaskStateEntered", "TaskStateExited") for e in ev),
          "succeeded: no Task* event for an activity")
    return tok


def test_failed(d, sfn, worker, act):
    sm = machine(sfn, "bad", act)
    ex = sfn.start_execution(stateMachineArn=sm, name="bad1")["executionArn"]
    task = worker.get_activity_task(activityArn=act)  # no workerName
    worker.send_task_failure(taskToken=task["taskToken"], error="Disk.Full", cause="no space")
    dx = st.wait_status(sfn, ex, "FAILED")
    ev = history(sfn, ex)
    check(dx.get("error") == "Disk.Full" and dx.get("cause") == "no space",
          "failed: execution error %r" % dx.get("error"))
    check(types(ev) == ["ExecutionStarted", "TaskStateEntered", "ActivityScheduled",
                        "ActivityStarted", "ActivityFailed", "ExecutionFailed"],
          "failed: event types %r" % types(ev))
    check(chained(ev), "failed: previousEventId chain")
    sch = event(ev, "ActivityScheduled").get("activityScheduledEventDetails", {})
    check("timeoutInSeconds" not in sch and "heartbeatInSeconds" not in sch,
          "failed: no timeouts declared, none in ActivityScheduled %r" % sch)
    check(event(ev, "ActivityStarted").get("activityStartedEventDetails") == {},
          "failed: a worker without a name: ActivityStarted details {}")
    fd = event(ev, "ActivityFailed").get("activityFailedEventDetails")
    check(fd == {"error": "Disk.Full", "cause": "no space"}, "failed: details %r" % fd)
    return task["taskToken"]


def test_clocks(d, sfn, worker, act):
    # nobody takes it: TimeoutSeconds runs from the scheduling
    sm = machine(sfn, "unclaimed", act + "-idle", timeout=2)
    ex = sfn.start_execution(stateMachineArn=sm, name="u1")["executionArn"]
    dx = st.wait_status(sfn, ex, "FAILED", timeout=15)
    ev = history(sfn, ex)
    check(dx.get("error") == "States.Timeout" and types(ev) ==
          ["ExecutionStarted", "TaskStateEntered", "ActivityScheduled", "ActivityTimedOut",
           "ExecutionFailed"], "not taken: times out without ActivityStarted %r" % types(ev))
    check(event(ev, "ActivityTimedOut").get("activityTimedOutEventDetails") ==
          {"error": "States.Timeout"}, "not taken: ActivityTimedOut{States.Timeout}, no cause")

    # HeartbeatSeconds 1, the worker comes after 2.5 s: not timed out before it takes the
    # task, then timed out 1 s after ActivityStarted
    sm = machine(sfn, "late-hb", act, heartbeat=1)
    ex = sfn.start_execution(stateMachineArn=sm, name="lh1")["executionArn"]
    time.sleep(2.5)
    check(sfn.describe_execution(executionArn=ex)["status"] == "RUNNING",
          "late worker: the heartbeat clock does not run before a worker takes the task")
    task = worker.get_activity_task(activityArn=act, workerName="late")
    check("taskToken" in task, "late worker: gets the task")
    dx = st.wait_status(sfn, ex, "FAILED", timeout=15)
    ev = history(sfn, ex)
    gap = ts(event(ev, "ActivityTimedOut")) - ts(event(ev, "ActivityStarted"))
    wait = ts(event(ev, "ActivityStarted")) - ts(event(ev, "ActivityScheduled"))
    check(dx.get("error") == "States.Timeout" and 0.9 <= gap < 2.0 and wait >= 2.4,
          "late worker: heartbeat timeout 1 s after ActivityStarted (%.2f s; taken after "
          "%.2f s)" % (gap, wait))
    check(st.code_of(worker.send_task_success, taskToken=task["taskToken"], output="{}") ==
          "TaskTimedOut", "late worker: its token is closed after the timeout")

    # TimeoutSeconds 3, the worker comes after 2 s: the timeout counts from the scheduling
    sm = machine(sfn, "late-to", act, timeout=3)
    ex = sfn.start_execution(stateMachineArn=sm, name="lt1")["executionArn"]
    time.sleep(2)
    task = worker.get_activity_task(activityArn=act, workerName="slow")
    dx = st.wait_status(sfn, ex, "FAILED", timeout=15)
    ev = history(sfn, ex)
    total = ts(event(ev, "ActivityTimedOut")) - ts(event(ev, "ActivityScheduled"))
    held = ts(event(ev, "ActivityTimedOut")) - ts(event(ev, "ActivityStarted"))
    check(dx.get("error") == "States.Timeout" and "ActivityStarted" in types(ev) and
          2.9 <= total < 4.5 and held < 2.5,
          "timeout: TimeoutSeconds counts from ActivityScheduled (%.2f s after it, %.2f s "
          "after ActivityStarted)" % (total, held))


def test_restart(tmp, db, log, d, sfn, act):
    worker = st.worker_client(d)
    sm = machine(sfn, "crash", act, timeout=300, heartbeat=60)
    ex = sfn.start_execution(stateMachineArn=sm, name="k1", input='{"n": 7}')["executionArn"]
    task = worker.get_activity_task(activityArn=act, workerName="survivor")
    sm2 = machine(sfn, "crash-hb", act, heartbeat=4)
    ex2 = sfn.start_execution(stateMachineArn=sm2, name="k2")["executionArn"]
    task2 = worker.get_activity_task(activityArn=act, workerName="silent")
    time.sleep(2)
    d.kill9()
    d = st.Daemon(db, st.free_port(), log)
    sfn = st.client(d)
    worker = st.worker_client(d)
    check(worker.send_task_heartbeat(taskToken=task["taskToken"]) is not None,
          "restart: the held token still takes heartbeats")
    worker.send_task_success(taskToken=task["taskToken"], output='{"after": "restart"}')
    dx = st.wait_status(sfn, ex, "SUCCEEDED")
    check(dx["status"] == "SUCCEEDED" and json.loads(dx["output"]) == {"after": "restart"},
          "restart: SendTaskSuccess with the old token completes the execution")
    ev = history(sfn, ex)
    check(types(ev).count("ActivityStarted") == 1 and types(ev).count("ActivityScheduled") == 1,
          "restart: one ActivityScheduled and one ActivityStarted %r" % types(ev))
    check(event(ev, "ActivityStarted").get("activityStartedEventDetails") ==
          {"workerName": "survivor"}, "restart: the worker's name kept")
    check(chained(ev), "restart: previousEventId chain")
    # the silent worker: its heartbeat clock went on across the restart (4 s from the start,
    # 2 s of them before the kill), it did not start again
    dx2 = st.wait_status(sfn, ex2, "FAILED", timeout=20)
    ev2 = history(sfn, ex2)
    gap = ts(event(ev2, "ActivityTimedOut")) - ts(event(ev2, "ActivityStarted"))
    check(dx2.get("error") == "States.Timeout" and 3.9 <= gap < 5.5 and
          types(ev2).count("ActivityStarted") == 1,
          "restart: the heartbeat clock continues from ActivityStarted (%.2f s)" % gap)
    check(st.code_of(worker.send_task_success, taskToken=task2["taskToken"], output="{}") ==
          "TaskTimedOut", "restart: the timed-out token is closed")
    return d, sfn


def test_tokens(d, sfn, worker, act, seen):
    sm = machine(sfn, "twice", act)
    e1 = sfn.start_execution(stateMachineArn=sm, name="t1")["executionArn"]
    e2 = sfn.start_execution(stateMachineArn=sm, name="t2")["executionArn"]
    a = worker.get_activity_task(activityArn=act)["taskToken"]
    b = worker.get_activity_task(activityArn=act)["taskToken"]
    check(a != b and a not in seen and b not in seen,
          "tokens: two executions of one machine get different tokens")
    check(st.code_of(worker.send_task_success, taskToken="not-a-token", output="{}") ==
          "InvalidToken", "forged: garbage -> InvalidToken")
    check(st.code_of(worker.send_task_success, taskToken="%016x-4-0" % 12345, output="{}") ==
          "InvalidToken", "forged: the old predictable shape -> InvalidToken")
    check(st.code_of(worker.send_task_success, taskToken=a.upper(), output="{}") ==
          "InvalidToken", "forged: upper-case hex is not a token")
    guess = format(int(a, 16) ^ 1, "064x")  # one bit off a real token
    check(st.code_of(worker.send_task_success, taskToken=guess, output="{}") ==
          "TaskTimedOut", "forged: a well-shaped guess is not held -> TaskTimedOut")
    check(sfn.describe_execution(executionArn=e1)["status"] == "RUNNING" and
          sfn.describe_execution(executionArn=e2)["status"] == "RUNNING",
          "forged: no execution moved")
    worker.send_task_success(taskToken=a, output='"a"')
    worker.send_task_success(taskToken=b, output='"b"')
    outs = sorted(json.loads(st.wait_status(sfn, e, "SUCCEEDED").get("output", "null"))
                  for e in (e1, e2))
    check(outs == ["a", "b"], "tokens: each token completes its own execution %r" % outs)


def test_deleted_activity(d, sfn):
    gone = sfn.create_activity(name="gone")["activityArn"]
    sm = machine(sfn, "on-gone", gone)
    sfn.delete_activity(activityArn=gone)
    ex = sfn.start_execution(stateMachineArn=sm, name="g1")["executionArn"]
    dx = st.wait_status(sfn, ex, "FAILED")
    ev = history(sfn, ex)
    check(types(ev) == ["ExecutionStarted", "TaskStateEntered", "ExecutionFailed"],
          "deleted activity: no activity event %r" % types(ev))
    cause = dx.get("cause", "")
    check(dx.get("error") == "States.Runtime" and
          cause.endswith("The activity %s does not exist." % gone) and "'Work'" in cause,
          "deleted activity: States.Runtime naming the state and the activity %r" % cause)


def test_delete_machine(d, sfn, worker, act):
    sm = machine(sfn, "doomed", act)
    ex = sfn.start_execution(stateMachineArn=sm, name="dm1")["executionArn"]
    task = worker.get_activity_task(activityArn=act, workerName="w")
    sfn.delete_state_machine(stateMachineArn=sm)
    check(st.code_of(sfn.describe_state_machine, stateMachineArn=sm) ==
          "StateMachineDoesNotExist", "delete machine: gone once its execution has ended")
    check(st.code_of(sfn.describe_execution, executionArn=ex) == "ExecutionDoesNotExist",
          "delete machine: its executions go with it")
    check(st.code_of(worker.send_task_success, taskToken=task["taskToken"], output="{}") ==
          "TaskTimedOut", "delete machine: the worker's token is closed")


def test_delete_restart(db, log, d, sfn, act):
    """The deletion is durable: sfnd killed right after DeleteStateMachine answered."""
    worker = st.worker_client(d)
    sm = machine(sfn, "doomed-k", act, heartbeat=60)
    ex = sfn.start_execution(stateMachineArn=sm, name="dk1")["executionArn"]
    task = worker.get_activity_task(activityArn=act, workerName="w")
    sfn.delete_state_machine(stateMachineArn=sm)
    d.kill9()
    d = st.Daemon(db, st.free_port(), log)
    sfn = st.client(d)
    worker = st.worker_client(d)
    check(st.code_of(sfn.describe_state_machine, stateMachineArn=sm) ==
          "StateMachineDoesNotExist" and
          st.code_of(sfn.describe_execution, executionArn=ex) == "ExecutionDoesNotExist",
          "delete machine + kill -9: still deleted after the restart")
    check(st.code_of(worker.send_task_success, taskToken=task["taskToken"], output="{}") ==
          "TaskTimedOut", "delete machine + kill -9: the worker's token stays closed")
    return d, sfn


def main():
    tmp = tempfile.mkdtemp(prefix="sfnd-activity-")
    db = os.path.join(tmp, "sfnd.db")
    log = os.path.join(tmp, "sfnd.log")
    try:
        d = st.Daemon(db, st.free_port(), log)
        sfn = st.client(d)
        worker = st.worker_client(d)
        act = sfn.create_activity(name="jobs")["activityArn"]
        sfn.create_activity(name="jobs-idle")
        seen = set()
        for name, fn in [("succeeded", lambda: seen.add(test_succeeded(d, sfn, worker, act))),
                         ("failed", lambda: seen.add(test_failed(d, sfn, worker, act))),
                         ("clocks", lambda: test_clocks(d, sfn, worker, act)),
                         ("tokens", lambda: test_tokens(d, sfn, worker, act, seen)),
                         ("deleted activity", lambda: test_deleted_activity(d, sfn)),
                         ("delete machine", lambda: test_delete_machine(d, sfn, worker, act))]:
            try:
                fn()
            except Exception as e:  # a crash of one group is one failure, the rest goes on
                check(False, "%s: %r" % (name, e))
        try:
            d, sfn = test_restart(tmp, db, log, d, sfn, act)
        except Exception as e:
            check(False, "restart: %r" % e)
        try:
            d, sfn = test_delete_restart(db, log, d, sfn, act)
        except Exception as e:
            check(False, "delete + restart: %r" % e)
        check(d.term() == 0, "SIGTERM: exit 0")
    finally:
        for p in st.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        if st.failed:
            with open(log, "rb") as f:
                sys.stdout.write(f.read().decode(errors="replace")[-3000:])
        subprocess.run(["rm", "-rf", tmp])
    print("%d passed, %d failed" % (st.passed, st.failed))
    return 1 if st.failed else 0


if __name__ == "__main__":
    sys.exit(main())
