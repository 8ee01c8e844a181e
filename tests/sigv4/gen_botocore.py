#!/usr/bin/python3
"""tests/sigv4/gen_botocore.py - writes SigV4 cases signed by botocore's own signer.

Run with Debian's /usr/bin/python3 (python3-botocore) from the repository root:

    /usr/bin/python3 tests/sigv4/gen_botocore.py

For each case below it builds the request exactly as botocore's client does for the
operation (serializer, endpoint, headers), signs it with SigV4Auth under fixed credentials
and a fixed clock, and writes tests/sigv4/botocore/<case>/:

    context.json       credentials, region, service, timestamp, options (the shape of the AWS
                       test suite's context.json) plus "botocore": the botocore version and
                       "build": how our own request builders should reproduce the request
    request.txt        the request as it was handed to the signer (Host line first)
    creq.txt           canonical request
    sts.txt            string to sign
    signature.txt      hex signature
    authorization.txt  the Authorization header value

Nothing touches the network: a before-send hook answers every request locally.
"""

import datetime
import json
import os
import shutil
import sys
from urllib.parse import urlsplit

import botocore
import botocore.auth
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.config import Config

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEBYaDExampleSessionTokenValue+/=="
TIMESTAMP = datetime.datetime(2024, 5, 17, 9, 30, 15)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "botocore")


class FixedDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return TIMESTAMP


botocore.auth.datetime.datetime = FixedDatetime

CAPTURE = {}
_orig_add_auth = botocore.auth.SigV4Auth.add_auth
_orig_creq = botocore.auth.SigV4Auth.canonical_request
_orig_sts = botocore.auth.SigV4Auth.string_to_sign
_orig_sig = botocore.auth.SigV4Auth.signature


def add_auth(self, request):
    CAPTURE["before"] = list(request.headers.items())
    _orig_add_auth(self, request)
    CAPTURE["after"] = list(request.headers.items())
    CAPTURE["url"] = request.url
    CAPTURE["method"] = request.method
    body = request.body
    if body is None:
        body = b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    CAPTURE["body"] = body


def canonical_request(self, request):
    r = _orig_creq(self, request)
    CAPTURE["creq"] = r
    return r


def string_to_sign(self, request, creq):
    r = _orig_sts(self, request, creq)
    CAPTURE["sts"] = r
    return r


def signature(self, sts, request):
    r = _orig_sig(self, sts, request)
    CAPTURE["signature"] = r
    return r


botocore.auth.SigV4Auth.add_auth = add_auth
botocore.auth.SigV4Auth.canonical_request = canonical_request
botocore.auth.SigV4Auth.string_to_sign = string_to_sign
botocore.auth.SigV4Auth.signature = signature


def on_before_send(request, **kwargs):
    # A local answer: every operation here accepts an empty JSON object as its reply.
    return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, None)


class _Raw:
    def __init__(self, data):
        self._data = data

    def stream(self, **kwargs):
        yield self._data


def make_client(service, region, endpoint_url=None, token=None):
    session = botocore.session.get_session()
    session.set_credentials(ACCESS_KEY, SECRET_KEY, token)
    config = Config(user_agent="sfnd-test/1.0", retries={"max_attempts": 1})
    client = session.create_client(service, region_name=region, endpoint_url=endpoint_url,
                                   config=config)

    def reply(request, **kwargs):
        resp = AWSResponse(request.url, 200, {"Content-Type": "application/json"}, _Raw(b"{}"))
        return resp

    client.meta.events.register("before-send", reply)
    return client


# (case, botocore service, signing name, region, endpoint_url, token, operation, params, build)
# "build" says how our request builders reproduce the request (checked by test_sigv4.c).
CASES = [
    ("emr-run-job-flow", "emr", "elasticmapreduce", "us-east-1", None, None,
     "run_job_flow",
     {"Name": "etl", "ReleaseLabel": "emr-6.15.0",
      "Instances": {"InstanceCount": 1, "MasterInstanceType": "m5.xlarge",
                    "KeepJobFlowAliveWhenNoSteps": False},
      "JobFlowRole": "EMR_EC2_DefaultRole", "ServiceRole": "EMR_DefaultRole"},
     {"protocol": "json", "target": "ElasticMapReduce.RunJobFlow"}),
    ("emr-describe-cluster-session-token", "emr", "elasticmapreduce", "eu-west-1", None, TOKEN,
     "describe_cluster", {"ClusterId": "j-2AXXXXXXGAPLF"},
     {"protocol": "json", "target": "ElasticMapReduce.DescribeCluster"}),
    ("emr-terminate-endpoint-override", "emr", "elasticmapreduce", "us-west-2",
     "http://127.0.0.1:4566", None,
     "terminate_job_flows", {"JobFlowIds": ["j-2AXXXXXXGAPLF"]},
     {"protocol": "json", "target": "ElasticMapReduce.TerminateJobFlows"}),
    ("athena-start-query-execution", "athena", "athena", "us-east-1", None, None,
     "start_query_execution",
     {"QueryString": "SELECT * FROM \"db\".\"t\" WHERE x = 'caf\u00e9' LIMIT 10",
      "ClientRequestToken": "6f1c0c4e-7b0e-4a55-9a39-2f1a1f5b9a01",
      "WorkGroup": "primary",
      "ResultConfiguration": {"OutputLocation": "s3://bucket/results/"}},
     {"protocol": "json", "target": "AmazonAthena.StartQueryExecution"}),
    ("athena-get-query-execution-session-token", "athena", "athena", "ap-southeast-2", None,
     TOKEN, "get_query_execution",
     {"QueryExecutionId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"},
     {"protocol": "json", "target": "AmazonAthena.GetQueryExecution"}),
    ("emr-containers-start-job-run", "emr-containers", "emr-containers", "us-east-1", None, None,
     "start_job_run",
     {"virtualClusterId": "abcdefghijklmnop0123456789", "name": "pi",
      "clientToken": "token-0001", "executionRoleArn": "arn:aws:iam::123456789012:role/job",
      "releaseLabel": "emr-6.15.0-latest",
      "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "local:///usr/lib/spark/pi.py"}}},
     {"protocol": "rest-json", "method": "POST",
      "path": "/virtualclusters/abcdefghijklmnop0123456789/jobruns"}),
    ("emr-containers-describe-job-run", "emr-containers", "emr-containers", "us-west-2", None,
     None, "describe_job_run",
     {"virtualClusterId": "abcdefghijklmnop0123456789", "id": "000000033p1ebv1j5sm"},
     {"protocol": "rest-json", "method": "GET",
      "path": "/virtualclusters/abcdefghijklmnop0123456789/jobruns/000000033p1ebv1j5sm"}),
    ("emr-containers-cancel-job-run-session-token", "emr-containers", "emr-containers",
     "us-east-1", None, TOKEN, "cancel_job_run",
     {"virtualClusterId": "abcdefghijklmnop0123456789", "id": "000000033p1ebv1j5sm"},
     {"protocol": "rest-json", "method": "DELETE",
      "path": "/virtualclusters/abcdefghijklmnop0123456789/jobruns/000000033p1ebv1j5sm"}),
    ("emr-containers-list-job-runs-query", "emr-containers", "emr-containers", "us-east-1",
     None, None, "list_job_runs",
     {"virtualClusterId": "abcdefghijklmnop0123456789", "states": ["RUNNING", "PENDING"],
      "maxResults": 5, "name": "my job"},
     {"protocol": "rest-json", "method": "GET",
      "path": "/virtualclusters/abcdefghijklmnop0123456789/jobruns",
      "query": [["states", "RUNNING"], ["states", "PENDING"], ["maxResults", "5"],
                ["name", "my job"]]}),
    ("emr-serverless-start-job-run", "emr-serverless", "emr-serverless", "us-east-1", None,
     None, "start_job_run",
     {"applicationId": "00f1abcdexample", "clientToken": "token-0002",
      "executionRoleArn": "arn:aws:iam::123456789012:role/job",
      "jobDriver": {"sparkSubmit": {"entryPoint": "s3://bucket/pi.py",
                                    "entryPointArguments": ["1000"]}}},
     {"protocol": "rest-json", "method": "POST", "path": "/applications/00f1abcdexample/jobruns"}),
    ("emr-serverless-get-job-run", "emr-serverless", "emr-serverless", "us-east-1", None, None,
     "get_job_run", {"applicationId": "00f1abcdexample", "jobRunId": "00f1jobrun0001"},
     {"protocol": "rest-json", "method": "GET",
      "path": "/applications/00f1abcdexample/jobruns/00f1jobrun0001"}),
    ("emr-serverless-get-job-run-endpoint-override", "emr-serverless", "emr-serverless",
     "eu-central-1", "http://localhost:8080", TOKEN,
     "get_job_run", {"applicationId": "00f1abcdexample", "jobRunId": "00f1jobrun0001"},
     {"protocol": "rest-json", "method": "GET",
      "path": "/applications/00f1abcdexample/jobruns/00f1jobrun0001"}),
    ("emr-serverless-get-job-run-encoded-label", "emr-serverless", "emr-serverless",
     "us-east-1", None, None, "get_job_run",
     {"applicationId": "app id/1", "jobRunId": "run:1~%"},
     {"protocol": "rest-json", "method": "GET",
      "path": "/applications/app%20id%2F1/jobruns/run%3A1~%25"}),
    ("emr-serverless-cancel-job-run", "emr-serverless", "emr-serverless", "us-east-1", None,
     None, "cancel_job_run", {"applicationId": "00f1abcdexample", "jobRunId": "00f1jobrun0001"},
     {"protocol": "rest-json", "method": "DELETE",
      "path": "/applications/00f1abcdexample/jobruns/00f1jobrun0001"}),
    ("emr-serverless-list-job-runs-repeated-query", "emr-serverless", "emr-serverless",
     "us-east-1", None, None, "list_job_runs",
     {"applicationId": "00f1abcdexample", "states": ["SUCCESS", "FAILED", "CANCELLED"],
      "maxResults": 50},
     {"protocol": "rest-json", "method": "GET", "path": "/applications/00f1abcdexample/jobruns",
      "query": [["states", "SUCCESS"], ["states", "FAILED"], ["states", "CANCELLED"],
                ["maxResults", "50"]]}),
]


def write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for (case, service, signing, region, endpoint, token, op, params, build) in CASES:
        CAPTURE.clear()
        client = make_client(service, region, endpoint, token)
        getattr(client, op)(**params)
        url = urlsplit(CAPTURE["url"])
        target = url.path or "/"
        if url.query:
            target += "?" + url.query
        lines = ["%s %s HTTP/1.1" % (CAPTURE["method"], target), "Host:%s" % url.netloc]
        for name, value in CAPTURE["before"]:
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            lines.append("%s:%s" % (name, value))
        req = ("\n".join(lines) + "\n\n").encode("utf-8") + CAPTURE["body"]
        auth = dict(CAPTURE["after"])["Authorization"]
        if isinstance(auth, bytes):
            auth = auth.decode("ascii")
        creds = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}
        if token is not None:
            creds["token"] = token
        context = {
            "credentials": creds,
            "normalize": True,
            "region": region,
            "service": signing,
            "sign_body": False,
            "timestamp": TIMESTAMP.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "botocore": botocore.__version__,
            "build": build,
        }
        if endpoint is not None:
            build["endpoint"] = endpoint
        d = os.path.join(OUT, case)
        os.makedirs(d)
        write(os.path.join(d, "context.json"), json.dumps(context, indent=4) + "\n")
        write(os.path.join(d, "request.txt"), req)
        write(os.path.join(d, "creq.txt"), CAPTURE["creq"])
        write(os.path.join(d, "sts.txt"), CAPTURE["sts"])
        write(os.path.join(d, "signature.txt"), CAPTURE["signature"])
        write(os.path.join(d, "authorization.txt"), auth)
        print(case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
