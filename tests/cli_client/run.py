#!/usr/bin/python3
"""tests/cli_client/run.py - data-driven tests of the sfn client commands (cases.json) against
a running sfnd at $SFN_ENDPOINT (tests/suites/cli_client.sh starts it). The cases run in
order, each one sfn command:

  args              the arguments; {FIX} is this directory, {ENDPOINT} the daemon's URL,
                    {DEAD} an endpoint nothing listens on, {DB} the daemon's store, {SM}/{EX} the state machine /
                    execution ARN prefixes
  env               extra environment ({DEAD} etc. expanded)
  exit              expected exit status
  stdout, stderr    exact text; *_file: a file of expected/ (ISO times read TIME, elapsed
                    seconds N.XXXs); stdout_file_sorted: the same, lines in any order
  stdout_contains, stderr_contains
  boto3             {"op", "params", "merge"?}: stdout is one JSON document which, read by
                    botocore's parser, equals what boto3 answers for the same call (all
                    pages merged under `merge`), and equals the daemon's answer to boto3
  boto3_lines       the same, stdout being one JSON value per line: the `merge` list
  stdout_json_keys  {"key": value} members stdout's JSON must have
  same_stdout_as    other arguments whose stdout must be the same
  live              the first stderr line arrives while the command still runs (--wait)
  until_ok          retry for up to 10 s until the exit status is `exit` (the previous
                    background case may not have started its execution yet)
  background NAME   start the command and go on; a later case {"join": NAME, ...} checks it
CLI_CLIENT_RECORD=1 writes the outputs to expected/ instead of comparing them (review them
before committing). Ends with "N passed, N failed"."""
import datetime
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("BUILD", "build")
SFN = os.path.join(ROOT, BUILD, "sfn")
ENDPOINT = os.environ["SFN_ENDPOINT"]
SUBST = {
    "{FIX}": HERE,
    "{ENDPOINT}": ENDPOINT,
    "{DEAD}": os.environ["SFN_DEAD_ENDPOINT"],
    "{DB}": os.environ.get("SFN_TEST_DB", ""),
    "{SM}": "arn:aws:states:us-east-1:123456789012:stateMachine:",
    "{EX}": "arn:aws:states:us-east-1:123456789012:execution:",
}

for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]
os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
                   "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
import boto3  # noqa: E402  (after the environment: no profile, no credentials file)
import botocore.parsers  # noqa: E402

CLIENT = boto3.client("stepfunctions", endpoint_url=ENDPOINT)
RAW = []  # the bodies of the daemon's answers to boto3, as sent


def on_after_call(http_response=None, **kwargs):
    RAW.append(json.loads(http_response.content))


CLIENT.meta.events.register("after-call.states", on_after_call)


def expand(v):
    if isinstance(v, str):
        for k, s in SUBST.items():
            v = v.replace(k, s)
        if v.startswith("@file:"):
            with open(v[6:]) as f:
                return f.read()
        return v
    if isinstance(v, list):
        return [expand(x) for x in v]
    if isinstance(v, dict):
        return {k: expand(x) for k, x in v.items()}
    return v


def normalise_text(s):
    s = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "TIME", s)
    return re.sub(r"(\d+)\.\d{3}s\b", r"\1.XXXs", s)


def normalise_json(v):
    """Timestamps compare as seconds rounded to the millisecond (boto3 gives datetimes)."""
    if isinstance(v, datetime.datetime):
        return round(v.timestamp(), 3)
    if isinstance(v, float):
        return round(v, 3)
    if isinstance(v, list):
        return [normalise_json(x) for x in v]
    if isinstance(v, dict):
        return {k: normalise_json(x) for k, x in v.items() if k != "ResponseMetadata"}
    return v


def as_boto3_reads(op, doc):
    """`doc` (sfn's --json output) read by botocore's own parser for the output of `op`, as
    if it were the daemon's answer: what a boto3 user gets from the same document."""
    model = CLIENT.meta.service_model.operation_model(CLIENT.meta.method_to_api_mapping[op])
    parsed = botocore.parsers.create_parser("json").parse(
        {"body": json.dumps(doc).encode(), "headers": {}, "status_code": 200},
        model.output_shape)
    return normalise_json(parsed)


def boto3_answer(spec):
    """What boto3 answers for the call, and the daemon's raw answer to it (pages merged)."""
    params = expand(spec.get("params", {}))
    merge = spec.get("merge")
    del RAW[:]
    if merge is None:
        return normalise_json(getattr(CLIENT, spec["op"])(**params)), RAW[0]
    items = []
    for page in CLIENT.get_paginator(spec["op"]).paginate(**params):
        items.extend(page[merge])
    raw = {merge: [x for body in RAW for x in body[merge]]}
    return normalise_json({merge: items}), raw


def run(args, env, live=False):
    full_env = dict(os.environ)
    full_env.update(env)
    if not live:
        p = subprocess.run([SFN] + args, capture_output=True, text=True, env=full_env,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr, None
    p = subprocess.Popen([SFN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=full_env)
    first = p.stderr.readline()
    running = p.poll() is None
    out, err = p.communicate(timeout=60)
    return p.returncode, out, first + err, running


def check_case(c, rc, out, err, running):
    problems = []
    if rc != c["exit"]:
        problems.append("exit %d, expected %d" % (rc, c["exit"]))
    for key, got in (("stdout", out), ("stderr", err)):
        if key in c and got != expand(c[key]):
            problems.append("%s %r" % (key, got))
        if key + "_contains" in c and expand(c[key + "_contains"]) not in got:
            problems.append("%s lacks %r: %r" % (key, expand(c[key + "_contains"]), got[:400]))
        if key + "_file" in c and os.environ.get("CLI_CLIENT_RECORD"):
            with open(os.path.join(HERE, "expected", c[key + "_file"]), "w") as f:
                f.write(normalise_text(got))
        elif key + "_file" in c:
            with open(os.path.join(HERE, "expected", c[key + "_file"])) as f:
                want = f.read()
            if normalise_text(got) != want:
                problems.append("%s (normalised) %r" % (key, normalise_text(got)))
    if "stdout_file_sorted" in c and os.environ.get("CLI_CLIENT_RECORD"):
        with open(os.path.join(HERE, "expected", c["stdout_file_sorted"]), "w") as f:
            f.write(normalise_text(out))
    elif "stdout_file_sorted" in c:
        with open(os.path.join(HERE, "expected", c["stdout_file_sorted"])) as f:
            want = sorted(f.read().splitlines())
        if sorted(normalise_text(out).splitlines()) != want:
            problems.append("stdout lines (normalised) %r" % normalise_text(out))
    if "boto3" in c or "stdout_json_keys" in c:
        try:
            doc = json.loads(out)
        except ValueError:
            doc = None
            problems.append("stdout is not one JSON document: %r" % out[:300])
        if doc is not None and "boto3" in c:
            want, raw = boto3_answer(c["boto3"])
            got = as_boto3_reads(c["boto3"]["op"], doc)
            if got != want:
                problems.append("JSON %r, boto3 %r" % (got, want))
            if normalise_json(doc) != normalise_json(raw):
                problems.append("JSON %r, the daemon's answer %r" % (doc, raw))
        for k, v in c.get("stdout_json_keys", {}).items():
            if doc is not None and (k not in doc or (v is not None and doc[k] != expand(v))):
                problems.append("JSON lacks %s=%r: %r" % (k, v, doc))
    if "boto3_lines" in c:
        try:
            lines = [json.loads(x) for x in out.splitlines()]
        except ValueError:
            lines = None
            problems.append("stdout is not one JSON value a line: %r" % out[:300])
        spec = c["boto3_lines"]
        if lines is not None:
            want, raw = boto3_answer(spec)
            got = as_boto3_reads(spec["op"], {spec["merge"]: lines})
            if got != want:
                problems.append("lines %r, boto3 %r" % (got, want))
            if normalise_json(lines) != normalise_json(raw[spec["merge"]]):
                problems.append("lines %r, the daemon's answer %r" % (lines, raw))
    if "same_stdout_as" in c:
        _, other, _, _ = run(expand(c["same_stdout_as"]), {})
        if other != out:
            problems.append("stdout %r, while %s prints %r" % (out, c["same_stdout_as"], other))
    if c.get("live") and not running:
        problems.append("the first stderr line came only at the end: %r" % err)
    return problems


def main():
    with open(os.path.join(HERE, "cases.json")) as f:
        cases = json.load(f)
    passed = failed = 0
    background = {}
    for c in cases:
        env = expand(c.get("env", {}))
        if "background" in c:
            background[c["background"]] = subprocess.Popen(
                [SFN] + expand(c["args"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=dict(os.environ, **env))
            continue
        if "join" in c:
            p = background.pop(c["join"])
            try:
                out, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            rc, running = p.returncode, None
        else:
            deadline = time.time() + (10 if c.get("until_ok") else 0)
            while True:
                rc, out, err, running = run(expand(c["args"]), env, c.get("live", False))
                if rc == c["exit"] or time.time() >= deadline:
                    break
                time.sleep(0.1)
        problems = check_case(c, rc, out, err, running)
        if problems:
            failed += 1
            print("FAIL cli_client: %s\n  sfn %s\n  %s\n  stderr: %r" % (
                c["why"], " ".join(c.get("args", [c.get("join", "")])), "\n  ".join(problems),
                err[:500]), flush=True)
        else:
            passed += 1
    for p in background.values():
        p.kill()
        p.wait()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
