#!/usr/bin/python3
"""tests/integrations/run.py - the service integrations end to end: each case directory
tests/integrations/<service>/<case>/ runs `sfn run` (or `sfn run --db`, SIGKILL, `sfn resume`)
against the fake AWS of tests/fakeaws/ and checks the execution's result and what the fake saw.

A case holds:
  definition.json   the state machine (unless expect.json names one)
  input.json        its input (optional, default {})
  script.json       posted to the fake's /__fake/script after a reset (optional): life cycles,
                    faults, "seed"
  expect.json       {"comment": the rule it guards,
                     "definition": a definition elsewhere, from the repository's root, used
                                   unchanged ("../shared/workflows/...") (optional),
                     "env": extra environment (optional),
                     "crash": {"when": {"<service>.<Op>": N}, "script": {...}} (optional: run
                              with --db, SIGKILL once the fake has processed N such calls (or,
                              for a key "faults.<kind>", injected N such faults), post
                              "script", then `sfn resume`),
                     "result": the --result object (status, output | error, cause),
                     "rejected": instead of "result": `sfn run` refuses the definition (exit
                                 2) with this diagnostic in its message,
                     "events": the history's event types (optional),
                     "log": what the fake's /__fake/log must show (optional)}

Expected values match exactly, except: "<*>" matches anything, "<string>" any string, "<int>"
any integer, "<re>REGEX" a string the regular expression matches in full; an expected "cause"
that is an object is compared with the cause parsed as JSON; in "log", a string ">=N", "<=N"
or ">N" compares a count, a missing count is 0, objects are compared key by key (other keys
are ignored), and "faults_total" is the sum of "faults". Every case also requires that the
fake counted no bad signature, no unknown member and no validation error unless "log" says
otherwise.

    /usr/bin/python3 tests/integrations/run.py [CASE_DIR_SUBSTRING ...]

The fake runs on loopback on a port of the OS's choosing and is killed by its PID at exit.
The last line is "N passed, N failed".
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = os.path.join(ROOT, "tests", "integrations")
BUILD = os.environ.get("BUILD", "build")
SFN = os.path.join(ROOT, BUILD, "sfn")
TIMEOUT = 120  # seconds for one sfn process (sanitizer builds are slow)


class Fake:
    def __init__(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(ROOT, "tests", "fakeaws", "fakeaws.py")],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError("the fake AWS did not start")
        self.port = int(line.split()[0])
        self.url = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, doc=None):
        data = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def log(self):
        return self.call("GET", "/__fake/log")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def matches(want, got, where, errors):
    if isinstance(want, str) and want.startswith("<re>"):
        if not isinstance(got, str) or re.fullmatch(want[4:], got) is None:
            errors.append("%s: %r does not match /%s/" % (where, got, want[4:]))
        return
    if isinstance(want, str) and want.startswith("<") and want.endswith(">"):
        ok = {"<*>": True, "<string>": isinstance(got, str),
              "<int>": isinstance(got, int) and not isinstance(got, bool)}.get(want)
        if ok is None:
            ok = want == got
        if not ok:
            errors.append("%s: %r does not match %s" % (where, got, want))
        return
    if isinstance(want, dict):
        if not isinstance(got, dict):
            errors.append("%s: expected an object, got %r" % (where, got))
            return
        for k in want:
            if k not in got:
                errors.append("%s: missing %r" % (where, k))
        for k in got:
            if k not in want:
                errors.append("%s: unexpected %r: %r" % (where, k, got[k]))
        for k in want:
            if k in got:
                matches(want[k], got[k], "%s.%s" % (where, k), errors)
        return
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            errors.append("%s: expected %r, got %r" % (where, want, got))
            return
        for i, (w, g) in enumerate(zip(want, got)):
            matches(w, g, "%s[%d]" % (where, i), errors)
        return
    if want != got or type(want) is not type(got):
        errors.append("%s: expected %r, got %r" % (where, want, got))


def count_ok(want, got):
    got = got or 0
    if isinstance(want, str):
        for op in (">=", "<=", ">"):
            if want.startswith(op):
                n = int(want[len(op):])
                return {">=": got >= n, "<=": got <= n, ">": got > n}[op]
    return want == got


def log_matches(want, got, where, errors):
    for k, w in want.items():
        g = got.get(k) if isinstance(got, dict) else None
        if isinstance(w, dict):
            log_matches(w, g or {}, "%s.%s" % (where, k), errors)
        elif isinstance(w, (int, str)) and not isinstance(w, bool):
            if not count_ok(w, g):
                errors.append("%s.%s: expected %s, got %r" % (where, k, w, g))
        elif w != g:
            errors.append("%s.%s: expected %r, got %r" % (where, k, w, g))


def base_env(fake, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")
           and not k.startswith("SFN_POLL_") and not k.startswith("SFN_RATE_")}
    env.update({
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_ENDPOINT_URL": fake.url,
        "SFN_POLL_ATHENA": "50", "SFN_POLL_EMR_SERVERLESS": "50", "SFN_POLL_EMR": "50",
        "SFN_POLL_EMR_CONTAINERS": "50",
        # EMR's default quota (0.5 calls/s, man/sfn-aws.7) would make each case take minutes
        "SFN_RATE_EMR": "unlimited",
    })
    env.update(extra or {})
    return env


def wait_for(fake, when, proc, limit=60.0):
    """Waits until the fake has processed the calls in `when`; False if sfn ended first."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        log = fake.log()
        by_op = log.get("by_op", {})
        faults = log.get("faults", {})
        if all((faults.get(op[7:], 0) if op.startswith("faults.") else by_op.get(op, 0)) >= n
               for op, n in when.items()):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def run_case(fake, case):
    errors = []
    with open(os.path.join(case, "expect.json")) as f:
        exp = json.load(f)
    definition = os.path.join(ROOT, exp["definition"]) if "definition" in exp else \
        os.path.join(case, "definition.json")
    inp = os.path.join(case, "input.json")
    args = [definition, "--input-file", inp] if os.path.exists(inp) else [definition]
    fake.call("POST", "/__fake/reset")
    script = os.path.join(case, "script.json")
    if os.path.exists(script):
        with open(script) as f:
            fake.call("POST", "/__fake/script", json.load(f))
    env = base_env(fake, exp.get("env"))
    crash = exp.get("crash")
    events = None
    if crash is None:
        p = subprocess.run([SFN, "run"] + args + ["--result", "--events"], env=env,
                           capture_output=True, timeout=TIMEOUT)
        if "rejected" in exp:
            said = p.stderr.decode()
            if p.returncode != 2:
                errors.append("sfn run exited %d, not 2" % p.returncode)
            if exp["rejected"] not in said:
                errors.append("sfn run said %r, without %r" % (said, exp["rejected"]))
            log = fake.log()
            if log.get("requests"):
                errors.append("the fake got %d requests" % log["requests"])
            return errors
        if p.returncode != 0:
            errors.append("sfn run exited %d: %s" % (p.returncode, p.stderr.decode()[-2000:]))
            return errors
        got = json.loads(p.stdout)
        events = got.pop("events", None)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "sfn.db")
            proc = subprocess.Popen([SFN, "run"] + args + ["--db", db, "--result"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                reached = wait_for(fake, crash["when"], proc)
            finally:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                proc.stderr.close()
            if not reached:
                errors.append("sfn run ended before the fake saw %s" % crash["when"])
                return errors
            if crash.get("script"):
                fake.call("POST", "/__fake/script", crash["script"])
            p = subprocess.run([SFN, "resume", "--db", db, "--result"], env=env,
                               capture_output=True, timeout=TIMEOUT)
            lines = p.stdout.decode().splitlines()
            if p.returncode not in (0, 1) or len(lines) != 1:
                errors.append("sfn resume exited %d: %s%s" % (
                    p.returncode, p.stdout.decode(), p.stderr.decode()[-2000:]))
                return errors
            got = json.loads(lines[0])
            arn = got.pop("executionArn")
            h = subprocess.run([SFN, "history", "--db", db, arn, "--json"],
                               capture_output=True, timeout=TIMEOUT)
            events = [e["type"] for e in json.loads(h.stdout)["events"]]
    matches_result(exp["result"], got, errors)
    if "events" in exp:
        matches(exp["events"], events, "events", errors)
    log = fake.log()
    log["faults_total"] = sum(log.get("faults", {}).values())
    want = {"signatures_bad": 0, "validation_errors": 0}
    want.update(exp.get("log", {}))
    log_matches(want, log, "log", errors)
    if "unknown_members" not in exp.get("log", {}) and log.get("unknown_members"):
        errors.append("log.unknown_members: %r" % log["unknown_members"])
    return errors


def matches_result(want, got, errors):
    want = dict(want)
    got = dict(got)
    if isinstance(want.get("cause"), dict) and isinstance(got.get("cause"), str):
        try:
            got["cause"] = json.loads(got["cause"])
        except ValueError:
            pass
    matches(want, got, "result", errors)


def main():
    only = sys.argv[1:]
    cases = []
    for service in sorted(os.listdir(CASES)):
        sdir = os.path.join(CASES, service)
        if not os.path.isdir(sdir):
            continue
        for name in sorted(os.listdir(sdir)):
            case = os.path.join(sdir, name)
            if os.path.exists(os.path.join(case, "expect.json")):
                if not only or any(o in case for o in only):
                    cases.append(case)
    passed = failed = 0
    fake = Fake()
    try:
        for case in cases:
            rel = os.path.relpath(case, ROOT)
            t0 = time.monotonic()
            try:
                errors = run_case(fake, case)
            except Exception as e:  # a broken case fails, the others still run
                errors = ["%s: %s" % (type(e).__name__, e)]
            if errors:
                failed += 1
                print("FAIL %s" % rel)
                for e in errors[:20]:
                    print("    %s" % e)
            else:
                passed += 1
                if os.environ.get("VERBOSE"):
                    print("ok   %s (%.2f s)" % (rel, time.monotonic() - t0))
    finally:
        fake.stop()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
