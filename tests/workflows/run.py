#!/usr/bin/python3
"""tests/workflows/run.py - the four workflows users bring (../shared/workflows, read in place
and never copied) and the project's own versions (examples/workflows/), end to end through
sfnd and boto3 against the fake AWS of tests/fakeaws/ (issue 6).

Each case file tests/workflows/cases/<name>.json names a definition and its input and holds
the scenarios to run on it, each in a fresh fake AWS and a fresh sfnd (temporary --db,
loopback ports of the OS's choosing):

  "happy"     the fake as it comes: status, output (shape as AWS gives), the fake's log
  "failures"  a list; each posts "script" (or "script_file") to the fake (a step, job run or
              query that ends FAILED) and expects the execution's error and cause
  "faults"    20% of the fake's answers throttled, 500, 503, dropped or slow: still succeeds,
              each job submitted once
  "crash"     sfnd is killed with SIGKILL during every .sync wait and restarted on the same
              file: the fake holds each job (its "hold") until a kill has happened in its wait:
              once a new TaskSubmitted is in the history, every call that changes something is
              accounted for by the history (nothing in flight) and the fake has answered two
              more polls; then the jobs are released. The execution finishes, each job
              submitted once
  "restart"   the same with SIGTERM (sfnd drains and exits 0): a restart never cancels
  "stop"      StopExecution once "submit" (an operation, e.g. "emr-serverless.StartJobRun")
              has been answered "submit_count" times (default 1) and the jobs polled: ABORTED,
              and the fake sees "cancel" ("cancel_count" times, default 1)
  "tokens"    a list: the job run pattern's task token. The fake holds the job of the
              definition's one .sync task, whose parameters carry $$.Task.Token; once it is
              submitted the test sends SendTaskHeartbeat with that token every "every_s"
              seconds for "for_s" (the task must still be running; without "every_s" it sends
              none), then ends the task with "finish" ({"success": OUTPUT} or {"failure":
              {"error", "cause"}}) or else releases the job. After the end, a heartbeat with
              the token gets TaskTimedOut

Every scenario may carry "script" (posted before the run), "result" ({"status", "output" |
"error", "cause"}) and "log" (what the fake's /__fake/log must show). Expected values follow
tests/integrations/run.py ("<*>", "<string>", "<int>", "<re>REGEX"; a "cause" given as an
object is compared with the cause parsed as JSON; counts ">=N"), plus: an object with the key
"<more>" allows keys it does not list. Every scenario also requires that the fake counted no
bad signature, no validation error and no unknown member.

    /usr/bin/python3 tests/workflows/run.py [CASE_OR_SCENARIO_SUBSTRING ...]

The .sync tasks poll every 50 ms ("poll_ms" in a scenario sets it) through SFN_POLL_<SERVICE>,
at no rate limit (SFN_RATE_<SERVICE>); a scenario's "env" adds to sfnd's environment and
SFND_ARGS to its arguments (e.g. "--durability off"). Scenarios run in parallel
(WORKFLOW_JOBS, default 6); every process started is killed by its PID. The last line is
"N passed, N failed".
"""
import concurrent.futures
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")
SFND = os.path.join(ROOT, BUILD, "sfnd")
CASES = os.path.join(HERE, "cases")
ROLE = "arn:aws:iam::123456789012:role/workflows-test"
LIMIT = float(os.environ.get("WORKFLOW_TIMEOUT", "90"))  # seconds for one execution
SERVICES = ("ATHENA", "EMR", "EMR_CONTAINERS", "EMR_SERVERLESS")


def poll_env(ms):
    """.sync tasks poll every `ms`; the fake is not held to AWS's API rates (man/sfn-aws.7)."""
    env = {}
    for svc in SERVICES:
        env["SFN_POLL_" + svc] = str(ms)
        env["SFN_RATE_" + svc] = "unlimited"
    return env


_spec = importlib.util.spec_from_file_location(
    "integrations_run", os.path.join(ROOT, "tests", "integrations", "run.py"))
irun = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(irun)  # the fake's driver and the expected-value matcher

for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]  # the boto3 client of sfnd: no profile, endpoint or token leaks in
os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
                   "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

READ_ONLY = ("get", "describe", "list")  # actions that change nothing at the service
ENDED = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")


def match(want, got, where, errors):
    """irun.matches, plus objects holding "<more>": keys they do not list are allowed."""
    if isinstance(want, dict) and "<more>" in want:
        if not isinstance(got, dict):
            errors.append("%s: expected an object, got %r" % (where, got))
            return
        for k, w in want.items():
            if k == "<more>":
                continue
            if k not in got:
                errors.append("%s: missing %r" % (where, k))
            else:
                match(w, got[k], "%s.%s" % (where, k), errors)
    elif isinstance(want, dict) and isinstance(got, dict):
        for k in set(want) | set(got):
            if k not in got:
                errors.append("%s: missing %r" % (where, k))
            elif k not in want:
                errors.append("%s: unexpected %r: %r" % (where, k, got[k]))
            else:
                match(want[k], got[k], "%s.%s" % (where, k), errors)
    elif isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        for i, (w, g) in enumerate(zip(want, got)):
            match(w, g, "%s[%d]" % (where, i), errors)
    else:
        irun.matches(want, got, where, errors)


class Sfnd:
    """build/sfnd on a loopback port with its own --db; restartable on the same port."""

    def __init__(self, db, env, log_path):
        self.db = db
        self.env = env
        self.log_path = log_path
        self.port = 0
        self.proc = None
        self.start()

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [SFND, "--listen", "127.0.0.1:%d" % self.port, "--db", self.db] + os.environ.get("SFND_ARGS", "").split(), env=self.env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.PIPE)
        log.close()
        line = self.proc.stderr.readline().decode()
        if "listening on 127.0.0.1:" not in line:
            self.kill()
            raise RuntimeError("sfnd did not start: %r" % line)
        self.port = int(line.split("listening on 127.0.0.1:")[1].split(",")[0])
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()

    def _drain(self, proc):
        with open(self.log_path, "ab") as log:
            for line in proc.stderr:
                log.write(line)

    def kill(self, sig=signal.SIGKILL):
        """Sends `sig` and waits; returns the exit status."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return "hung after %s" % sig

    def client(self):
        return boto3.session.Session().client(
            "stepfunctions", endpoint_url="http://127.0.0.1:%d" % self.port,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30))


def history(sfn, arn):
    events, token = [], None
    while True:
        kw = {"executionArn": arn, "maxResults": 1000}
        if token:
            kw["nextToken"] = token
        page = sfn.get_execution_history(**kw)
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def details(e):
    for k, v in e.items():
        if k.endswith("EventDetails"):
            return v
    return {}


def committed_changes(events):
    """Calls that change something at the service, as the history accounts for them: one per
    .sync submission (TaskSubmitted) and one per ended request-response task whose action is
    not a read."""
    n = 0
    for e in events:
        d = details(e)
        if e["type"] == "TaskSubmitted":
            n += 1
        elif e["type"] in ("TaskSucceeded", "TaskFailed") and ".sync" not in d.get(
                "resource", ".sync") and not d["resource"].lower().startswith(READ_ONLY):
            n += 1
    return n


def fake_changes(log):
    return sum(c for op, c in log.get("by_op", {}).items()
               if not op.split(".", 1)[1].lower().startswith(READ_ONLY))


def fake_reads(log):
    """The polls the fake has answered (Describe*, Get*, List*: EMR steps of one cluster are
    polled together with ListSteps)."""
    return sum(c for op, c in log.get("by_op", {}).items()
               if op.split(".", 1)[1].lower().startswith(READ_ONLY))


def result_of(desc):
    out = {"status": desc["status"]}
    if "output" in desc:
        out["output"] = json.loads(desc["output"])
    for k in ("error", "cause"):
        if k in desc:
            out[k] = desc[k]
    return out


def wait_end(sfn, arn, limit=LIMIT, each=None):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        if each is not None:
            each()
        time.sleep(0.02)
    raise RuntimeError("the execution is still RUNNING after %.0f s" % limit)


def load_script(sc):
    if "script_file" in sc:
        with open(os.path.join(ROOT, sc["script_file"])) as f:
            return json.load(f)
    return sc.get("script")


def run_scenario(case, kind, sc, tmp):
    """Returns a list of errors (empty: passed)."""
    errors = []
    fake = irun.Fake()
    daemon = None
    try:
        script = load_script(sc)
        if script:
            fake.call("POST", "/__fake/script", script)
        if kind in ("crash", "restart", "token"):
            fake.call("POST", "/__fake/script", {"hold": True})
        env = irun.base_env(fake, poll_env(sc.get("poll_ms", 50)))
        env.update(sc.get("env", {}))
        daemon = Sfnd(os.path.join(tmp, "sfnd.db"), env, os.path.join(tmp, "sfnd.log"))
        sfn = daemon.client()
        with open(os.path.join(ROOT, case["definition"])) as f:
            definition = f.read()
        if "input_file" in case:
            with open(os.path.join(ROOT, case["input_file"])) as f:
                inp = f.read()
        else:
            inp = json.dumps(case.get("input", {}))
        sm = sfn.create_state_machine(name=case["name"], definition=definition,
                                      roleArn=ROLE)["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=sm, input=inp)["executionArn"]
        if kind in ("crash", "restart"):
            sig = signal.SIGKILL if kind == "crash" else signal.SIGTERM
            desc, sfn = crash_run(daemon, sfn, arn, fake, sc, sig, errors)
        elif kind == "stop":
            desc = stop_run(sfn, arn, fake, sc, errors)
        elif kind == "token":
            desc = token_run(sfn, arn, fake, sc, errors)
        else:
            desc = wait_end(sfn, arn)
        got = result_of(desc)
        want = dict(sc.get("result", {}))
        if isinstance(want.get("cause"), dict) and isinstance(got.get("cause"), str):
            try:
                got["cause"] = json.loads(got["cause"])
            except ValueError:
                pass
        match(want, {k: got.get(k) for k in want}, "result", errors)
        if "events" in sc:
            match(sc["events"], [e["type"] for e in history(sfn, arn)], "events", errors)
        log = fake.log()
        log["faults_total"] = sum(log.get("faults", {}).values())
        want_log = {"signatures_bad": 0, "validation_errors": 0}
        want_log.update(sc.get("log", {}))
        irun.log_matches(want_log, log, "log", errors)
        if log.get("unknown_members"):
            errors.append("log.unknown_members: %r" % log["unknown_members"])
    except Exception as e:  # a broken scenario fails, the others still run
        errors.append("%s: %s" % (type(e).__name__, e))
    finally:
        if daemon is not None:
            daemon.kill()
        fake.stop()
    if errors and os.path.exists(os.path.join(tmp, "sfnd.log")):
        with open(os.path.join(tmp, "sfnd.log"), errors="replace") as f:
            tail = f.read()[-1500:].strip()
        if tail:
            errors.append("sfnd's log ends: " + tail.replace("\n", "\n        "))
    return errors


def crash_run(daemon, sfn, arn, fake, sc, sig, errors):
    """`sig` (SIGKILL, or SIGTERM: exit 0 expected) during every .sync wait, restart on the
    same file; returns the final DescribeExecution answer and the client of the last sfnd.

    The fake holds every job where it is (its script's "hold", fakeaws_sim.py) until the
    watcher has killed sfnd in that wait and started it again, then releases them: each wait
    is surely caught, however slow the machine."""
    kills = []  # TaskSubmitted count at each kill
    trace = []  # (TaskSubmitted, the fake's changes, the history's) as they were seen
    submitted_at_kill = 0
    first_seen = None  # when the current unkilled TaskSubmitted was first seen
    end = time.monotonic() + LIMIT
    while time.monotonic() < end:
        events = history(sfn, arn)
        if events[-1]["type"] in ENDED:
            break
        n_sub = sum(1 for e in events if e["type"] == "TaskSubmitted")
        if n_sub > submitted_at_kill:
            log = fake.log()
            changes = fake_changes(log)
            seen = (n_sub, changes, committed_changes(events))
            if not trace or trace[-1] != seen:
                trace.append(seen)
            first_seen = first_seen or time.monotonic()
            if changes == seen[2]:
                # two more polls: sfnd has passed the end of the turn that recorded the
                # submission, so it is committed
                polls = fake_reads(log)
                settle = time.monotonic() + 5
                while fake_reads(fake.log()) < polls + 2 and time.monotonic() < settle:
                    time.sleep(0.01)
                if fake_changes(fake.log()) == changes:
                    rc = daemon.kill(sig)
                    if sig == signal.SIGTERM and rc != 0:
                        errors.append("sfnd exited %r after SIGTERM" % rc)
                    kills.append(n_sub)
                    submitted_at_kill = n_sub
                    first_seen = None
                    daemon.start()
                    sfn = daemon.client()
                    fake.call("POST", "/__fake/script", {"release": True})
                    continue
            elif time.monotonic() - first_seen > 10:
                errors.append("crash: the calls at the fake never matched the history in "
                              "wait #%d; released without a kill" % n_sub)
                submitted_at_kill = n_sub
                first_seen = None
                fake.call("POST", "/__fake/script", {"release": True})
        time.sleep(0.01)
    else:
        raise RuntimeError("the execution is still RUNNING after %.0f s" % LIMIT)
    d = sfn.describe_execution(executionArn=arn)
    want = sc.get("kills", ">=1")
    if not irun.count_ok(want, len(kills)):
        errors.append("crash: %d kills (at TaskSubmitted counts %r), expected %s" % (
            len(kills), kills, want))
    if errors:
        errors.append("crash: seen (TaskSubmitted, changes at the fake, in the history): %r"
                      % trace)
    return d, sfn


def stop_run(sfn, arn, fake, sc, errors):
    """StopExecution once sc["submit_count"] (default 1) calls sc["submit"] are answered and
    the fake has answered two more polls; then waits for sc["cancel_count"] (default 1) cancel
    calls sc["cancel"] at the fake."""
    submit, cancel = sc["submit"], sc["cancel"]
    n_submit, n_cancel = sc.get("submit_count", 1), sc.get("cancel_count", 1)
    end = time.monotonic() + LIMIT
    while True:
        log = fake.log()
        if log["by_op"].get(submit, 0) >= n_submit:
            break
        if time.monotonic() > end:
            raise RuntimeError("no %s within %.0f s" % (submit, LIMIT))
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            errors.append("stop: the execution ended %s before %d %s" % (
                d["status"], n_submit, submit))
            return d
        time.sleep(0.01)
    polls = fake_reads(log)
    settle = time.monotonic() + 5
    while fake_reads(fake.log()) < polls + 2 and time.monotonic() < settle:
        time.sleep(0.01)
    sfn.stop_execution(executionArn=arn, error="Operator.Stopped", cause="stopped by the test")
    d = wait_end(sfn, arn)
    end = time.monotonic() + 10
    while fake.log()["by_op"].get(cancel, 0) < n_cancel and time.monotonic() < end:
        time.sleep(0.02)
    return d


def token_run(sfn, arn, fake, sc, errors):
    """The job reports with the task token found in its TaskScheduled parameters (see
    "tokens" above); returns the final DescribeExecution answer."""
    end = time.monotonic() + LIMIT
    token = None
    while token is None:
        events = history(sfn, arn)
        if any(e["type"] == "TaskSubmitted" for e in events):
            params = [e["taskScheduledEventDetails"]["parameters"] for e in events
                      if e["type"] == "TaskScheduled"][0]
            token = re.search(r"[0-9a-f]{64}", params).group(0)
        elif events[-1]["type"] in ENDED or time.monotonic() > end:
            raise RuntimeError("token: no TaskSubmitted (last event %s)" % events[-1]["type"])
        else:
            time.sleep(0.02)
    if "every_s" in sc:
        stop = time.monotonic() + sc["for_s"]
        while time.monotonic() < stop:
            sfn.send_task_heartbeat(taskToken=token)
            time.sleep(sc["every_s"])
        status = sfn.describe_execution(executionArn=arn)["status"]
        if status != "RUNNING":
            errors.append("token: the execution is %s after %s s of heartbeats"
                          % (status, sc["for_s"]))
    finish = sc.get("finish", {})
    if "success" in finish:
        sfn.send_task_success(taskToken=token, output=json.dumps(finish["success"]))
    elif "failure" in finish:
        sfn.send_task_failure(taskToken=token, **finish["failure"])
    elif "every_s" in sc:
        fake.call("POST", "/__fake/script", {"release": True})
    d = wait_end(sfn, arn)
    try:
        sfn.send_task_heartbeat(taskToken=token)
        errors.append("token: a heartbeat after the end was accepted")
    except sfn.exceptions.TaskTimedOut:
        pass
    return d


def scenarios(only):
    out = []
    for name in sorted(os.listdir(CASES)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(CASES, name)) as f:
            case = json.load(f)
        case["name"] = name[:-len(".json")]
        todo = []
        for kind in ("happy", "faults", "crash", "restart", "stop"):
            if kind in case:
                todo.append((kind, kind, case[kind]))
        for i, sc in enumerate(case.get("failures", [])):
            todo.append(("failure", "failure-%s" % sc.get("name", i), sc))
        for i, sc in enumerate(case.get("tokens", [])):
            todo.append(("token", "token-%s" % sc.get("name", i), sc))
        for kind, label, sc in todo:
            full = "%s/%s" % (case["name"], label)
            if not only or any(o in full for o in only):
                out.append((case, kind, label, sc, full))
    return out


def main():
    todo = scenarios(sys.argv[1:])
    jobs = int(os.environ.get("WORKFLOW_JOBS", "6"))
    passed = failed = 0
    t0 = time.monotonic()

    def one(item):
        case, kind, label, sc, full = item
        with tempfile.TemporaryDirectory() as tmp:
            t = time.monotonic()
            errs = run_scenario(case, kind, sc, tmp)
            return full, errs, time.monotonic() - t

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for full, errs, secs in pool.map(one, todo):
            if errs:
                failed += 1
                print("FAIL %s" % full)
                for e in errs[:20]:
                    print("    %s" % e)
            else:
                passed += 1
                if os.environ.get("VERBOSE"):
                    print("ok   %s (%.2f s)" % (full, secs))
            sys.stdout.flush()
    if os.environ.get("VERBOSE"):
        print("%.1f s in all" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
