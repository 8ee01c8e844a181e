#!/usr/bin/python3
"""tests/fakeaws/selftest.py - checks the fake AWS with botocore's own clients (the reference
our C transport is judged against): signatures accepted and refused, model validation, error
shapes of both protocols, life cycles advancing per poll, idempotency tokens, faults and the
request log. Last line "N passed, N failed"."""
import json
import os
import subprocess
import sys
import urllib.request

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

HERE = os.path.dirname(os.path.abspath(__file__))
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s" % what)


def control(port, method, path, doc=None):
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def error_code(fn, *a, **kw):
    try:
        fn(*a, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def main():
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "fakeaws.py")],
                            stdout=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline())
        run(port)
    finally:
        proc.kill()
        proc.wait()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def run(port):
    url = "http://127.0.0.1:%d" % port
    s = botocore.session.Session()
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"})

    def client(name, key="test", secret="test"):
        return s.create_client(name, region_name="us-east-1", endpoint_url=url,
                               aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)
    emr, eks, sls, ath = (client(n) for n in ("emr", "emr-containers", "emr-serverless",
                                              "athena"))

    # EMR: a cluster's life cycle, one state per poll; a step that fails.
    control(port, "POST", "/__fake/script", {"lifecycles": {"emr_step": {"outcome": "FAILED"}}})
    cid = emr.run_job_flow(Name="c", ReleaseLabel="emr-6.9.0",
                           Instances={"KeepJobFlowAliveWhenNoSteps": True,
                                      "InstanceCount": 1,
                                      "MasterInstanceType": "m5.xlarge"})["JobFlowId"]
    states = [emr.describe_cluster(ClusterId=cid)["Cluster"]["Status"]["State"]
              for _ in range(3)]
    check(states == ["BOOTSTRAPPING", "WAITING", "WAITING"], "emr cluster states %s" % states)
    sid = emr.add_job_flow_steps(JobFlowId=cid, Steps=[{
        "Name": "s", "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]}}])["StepIds"][0]
    st = [emr.describe_step(ClusterId=cid, StepId=sid)["Step"]["Status"]["State"]
          for _ in range(3)]
    check(st == ["RUNNING", "FAILED", "FAILED"], "emr step states %s" % st)
    emr.terminate_job_flows(JobFlowIds=[cid])
    st = [emr.describe_cluster(ClusterId=cid)["Cluster"]["Status"]["State"] for _ in range(2)]
    check(st == ["TERMINATING", "TERMINATED"], "emr terminate %s" % st)
    code, status = error_code(emr.describe_cluster, ClusterId="j-NOPE")
    check((code, status) == ("InvalidRequestException", 400), "emr not found %s" % code)

    # Validation against the model: an enum the client-side validator does not check.
    code, status = error_code(emr.add_job_flow_steps, JobFlowId=cid, Steps=[{
        "Name": "s", "ActionOnFailure": "EXPLODE", "HadoopJarStep": {"Jar": "x"}}])
    check((code, status) == ("ValidationException", 400), "emr enum %s %s" % (code, status))

    # Signatures: a wrong secret and an unknown key.
    code, status = error_code(client("athena", secret="wrong").get_query_execution,
                              QueryExecutionId="x")
    check((code, status) == ("InvalidSignatureException", 403), "bad secret %s" % code)
    code, status = error_code(client("emr-serverless", key="nobody").get_application,
                              applicationId="x")
    check((code, status) == ("UnrecognizedClientException", 403), "unknown key %s" % code)

    # EMR Serverless: application and job run life cycles, idempotency, rest-json errors.
    a = sls.create_application(name="a", releaseLabel="emr-6.9.0", type="SPARK",
                               clientToken="tok-1")
    again = sls.create_application(name="a", releaseLabel="emr-6.9.0", type="SPARK",
                                   clientToken="tok-1")
    check(a["applicationId"] == again["applicationId"], "idempotent create")
    code, status = error_code(sls.create_application, name="b", releaseLabel="emr-6.9.0",
                              type="SPARK", clientToken="tok-1")
    check((code, status) == ("ConflictException", 409), "token conflict %s" % code)
    aid = a["applicationId"]
    check(sls.get_application(applicationId=aid)["application"]["state"] == "CREATED", "created")
    sls.start_application(applicationId=aid)
    st = [sls.get_application(applicationId=aid)["application"]["state"] for _ in range(2)]
    check(st == ["STARTING", "STARTED"], "started %s" % st)
    j = sls.start_job_run(applicationId=aid, executionRoleArn="arn:aws:iam::1:role/r",
                          jobDriver={"sparkSubmit": {"entryPoint": "s3://b/x.py"}})
    st = [sls.get_job_run(applicationId=aid, jobRunId=j["jobRunId"])["jobRun"]["state"]
          for _ in range(4)]
    check(st == ["PENDING", "SCHEDULED", "RUNNING", "SUCCESS"], "job run %s" % st)
    code, status = error_code(sls.get_application, applicationId="nope")
    check((code, status) == ("ResourceNotFoundException", 404), "sls not found %s" % code)

    # EMR on EKS: cancel moves a job run to CANCELLED.
    vc = eks.create_virtual_cluster(name="v", containerProvider={
        "type": "EKS", "id": "eks-1", "info": {"eksInfo": {"namespace": "ns"}}})["id"]
    jr = eks.start_job_run(virtualClusterId=vc, name="j",
                           executionRoleArn="arn:aws:iam::123456789012:role/r",
                           releaseLabel="emr-6.9.0-latest",
                           jobDriver={"sparkSubmitJobDriver": {"entryPoint": "s3://b/x.py"}})
    eks.cancel_job_run(virtualClusterId=vc, id=jr["id"])
    st = [eks.describe_job_run(virtualClusterId=vc, id=jr["id"])["jobRun"]["state"]
          for _ in range(2)]
    check(st == ["CANCEL_PENDING", "CANCELLED"], "eks cancel %s" % st)

    # Athena: a query runs and returns rows.
    q = ath.start_query_execution(QueryString="SELECT 1")["QueryExecutionId"]
    st = [ath.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Status"]["State"]
          for _ in range(2)]
    check(st == ["RUNNING", "SUCCEEDED"], "athena %s" % st)
    rows = ath.get_query_results(QueryExecutionId=q)["ResultSet"]["Rows"]
    check(len(rows) == 3, "athena rows")

    # Faults: every request throttled, then dropped.
    control(port, "POST", "/__fake/script", {"faults": {"rate": 1.0, "kinds": ["throttle"]}})
    code, status = error_code(ath.get_query_execution, QueryExecutionId=q)
    check((code, status) == ("TooManyRequestsException", 400), "throttle %s" % code)
    control(port, "POST", "/__fake/script", {"faults": {"rate": 1.0, "kinds": ["drop"]}})
    try:
        ath.get_query_execution(QueryExecutionId=q)
        check(False, "drop answered")
    except (ConnectionClosedError, EndpointConnectionError):
        check(True, "drop")
    control(port, "POST", "/__fake/script", {"faults": {}})

    log = control(port, "GET", "/__fake/log")
    check(log["signatures_bad"] == 2, "signatures_bad %d" % log["signatures_bad"])
    check(log["signatures_ok"] == log["requests"] - 2, "signatures_ok")
    check(log["submissions"] >= 6 and log["polls"] >= 20, "submissions/polls counted")
    check(log["expect_100"] == 0, "no Expect from botocore")
    check(log["unknown_members"] == [], "unknown members %s" % log["unknown_members"])
    control(port, "POST", "/__fake/reset")
    check(control(port, "GET", "/__fake/log")["requests"] == 0, "reset")


if __name__ == "__main__":
    sys.exit(main())
