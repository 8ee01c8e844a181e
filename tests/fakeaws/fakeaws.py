#!/usr/bin/python3
"""tests/fakeaws/fakeaws.py - a fake of Amazon EMR, EMR on EKS, EMR Serverless and Athena for
the test suite (issue #5). Runs with Debian's /usr/bin/python3 and python3-botocore only.

    /usr/bin/python3 tests/fakeaws/fakeaws.py [--port 0] [--seed N] [--creds AKID:SECRET ...]
                                              [--tls-dir DIR]

Listens on 127.0.0.1 (the port is chosen by the OS unless given) and prints the port alone on
its first stdout line. With --tls-dir it also serves HTTPS on a second port (same fake, same
log) and the first line is "PORT TLS_PORT": the certificate is DIR/cert.pem with its key
DIR/key.pem, made when missing with the openssl command (self-signed, for IP 127.0.0.1 and
localhost, valid one day), so a client trusts it only when given DIR/cert.pem as its CA
bundle. Exits when its parent process goes away, so a crashed test leaves nothing behind.

Every request, as AWS would:
  * is routed to its service by X-Amz-Target (awsJson1_1: EMR, Athena) or by its path
    (restJson1: /virtualclusters... EMR on EKS, /applications... EMR Serverless);
  * has its SigV4 signature recomputed with botocore's own signer over the headers it names
    (MissingAuthenticationTokenException, UnrecognizedClientException,
    InvalidSignatureException, all 403);
  * is checked against botocore's service model: required members, types, enums, lengths and
    ranges (ValidationException, SerializationException, 400);
  * then acts on simulated resources whose life cycles advance one state per poll (see
    fakeaws_sim.py), honouring idempotency tokens.

Control endpoints (unsigned, under /__fake/):
  POST /__fake/script   JSON merged into the script: {"faults": {"rate": 0.2, "kinds":
                        ["throttle", "500", "503", "drop", "slow", "lost"], "slow_ms": 200,
                        "only": ["athena"], "ops": ["GetQueryExecution"]}, "lifecycles": {"<kind>": {"polls": 1,
                        "outcome": "FAILED" | [...]}}, "creds": {"AKID": "SECRET"},
                        "hold": true | false, "release": true} (fakeaws_sim.py)
  POST /__fake/reset    forgets resources, log and script (creds are kept)
  GET  /__fake/log      counters: requests, submissions, polls, signatures_ok/bad, faults,
                        connections, max_inflight, per-operation counts, arrival times,
                        per-invocation attempts (amz-sdk-invocation-id / amz-sdk-request),
                        resources (how many of each kind exist), resource_outcomes (how
                        many of each kind end in each state: "CANCELLED" once cancelled)

Fault kinds: "slow" answers right, after slow_ms; "lost" never reaches the service (nothing is
done) and its connection is closed after slow_ms, as a request lost on its way; "drop" is the
same at once.
"""
import argparse
import asyncio
import json
import os
import random
import re
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid

try:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:  # the C test must fail, not skip: say why and exit non-zero
    sys.stderr.write("fakeaws: python3-botocore is not installed\n")
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fakeaws_model  # noqa: E402
import fakeaws_sim  # noqa: E402

MAX_HEADER = 64 * 1024
MAX_BODY = 8 * 1024 * 1024
SKEW_LIMIT = 15 * 60  # AWS rejects signatures more than 15 minutes off

REASONS = {200: "OK", 400: "Bad Request", 402: "Payment Required", 403: "Forbidden",
           404: "Not Found", 409: "Conflict", 413: "Payload Too Large", 429: "Too Many Requests",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}

# Retryable by the AWS SDKs' standard mode (integrations.md §6.3), used only to count
# retries after a non-retryable answer.
THROTTLE_CODES = {"Throttling", "ThrottlingException", "ThrottledException",
                  "RequestThrottledException", "TooManyRequestsException",
                  "ProvisionedThroughputExceededException", "TransactionInProgressException",
                  "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException",
                  "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
                  "EC2ThrottledException"}
TRANSIENT_CODES = {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}


def retryable(status, code):
    if status in (429, 500, 502, 503, 504) or status == 0:
        return True
    return code in THROTTLE_CODES or code in TRANSIENT_CODES


class Reply:
    def __init__(self, status=200, body=None, error=None, message=None, drop=False, delay=0.0):
        self.status = status
        self.body = body if body is not None else {}
        self.error = error      # error code, None on success
        self.message = message
        self.drop = drop        # close the connection without answering
        self.delay = delay      # seconds to wait before answering


class Fake:
    def __init__(self, seed, creds):
        self.models = fakeaws_model.Models()
        self.rng = random.Random(seed)
        self.creds = dict(creds)
        self.reset()

    def reset(self):
        self.sim = fakeaws_sim.Sim()
        self.script = {"faults": {}, "lifecycles": {}}
        self.sim.lifecycles = self.script["lifecycles"]
        self.t0 = time.monotonic()
        self.log = {
            "requests": 0, "control": 0, "connections": 0, "submissions": 0, "polls": 0,
            "cancels": 0, "signatures_ok": 0, "signatures_bad": 0, "unsigned": 0,
            "validation_errors": 0, "errors": 0, "faults": {}, "inflight": 0,
            "max_inflight": 0, "by_service_max_inflight": {}, "by_op": {}, "by_status": {},
            "expect_100": 0, "unknown_members": [], "retried_after_nonretryable": 0,
            "invocations_without_id": 0, "arrivals": [],
        }
        self.inflight_by_service = {}
        self.invocations = {}  # invocation id -> [[attempt, status, code], ...]

    # ---- control --------------------------------------------------------------------------

    def control(self, method, path, body):
        self.log["control"] += 1
        if method == "GET" and path == "/__fake/log":
            out = dict(self.log)
            out["invocations"] = self.invocations
            out["resources"] = {}  # kind -> how many exist: one per idempotency token
            out["resource_outcomes"] = {}  # kind -> {the last state of its path: how many}
            for r in self.sim.res.values():
                out["resources"][r.kind] = out["resources"].get(r.kind, 0) + 1
                ends = out["resource_outcomes"].setdefault(r.kind, {})
                ends[r.path[-1]] = ends.get(r.path[-1], 0) + 1
            out["elapsed"] = time.monotonic() - self.t0
            return 200, out
        if method == "POST" and path == "/__fake/reset":
            self.reset()
            return 200, {}
        if method == "POST" and path == "/__fake/script":
            try:
                doc = json.loads(body or b"{}")
            except ValueError as e:
                return 400, {"message": "script is not JSON: %s" % e}
            if "faults" in doc:
                self.script["faults"] = doc["faults"] or {}
            for kind, lc in (doc.get("lifecycles") or {}).items():
                self.script["lifecycles"][kind] = lc
            for akid, secret in (doc.get("creds") or {}).items():
                self.creds[akid] = secret
            if "seed" in doc:
                self.rng.seed(doc["seed"])
            if "hold" in doc:
                self.sim.hold = bool(doc["hold"])
            if doc.get("release"):
                self.sim.release()
            return 200, {"script": self.script}
        return 404, {"message": "no control endpoint %s %s" % (method, path)}

    # ---- one API request ------------------------------------------------------------------

    def handle(self, method, target, headers, body):
        """Returns (Reply, service name or None)."""
        split = urllib.parse.urlsplit(target)
        path, query = split.path, split.query
        hmap = {}
        for k, v in headers:
            hmap.setdefault(k.lower(), []).append(v)

        route = self.models.route(method, path, hmap)
        if route is None:
            return Reply(404 if not path == "/" else 400, error="UnknownOperationException",
                         message="unknown operation %s %s" % (method, path)), None
        service, op = route

        auth_reply = self.check_signature(service, method, target, headers, hmap, body)
        if auth_reply is not None:
            return auth_reply, service

        fault = self.pick_fault(service, op)
        if fault is not None and fault.drop:
            return fault, service
        if fault is not None and fault.status != 200:
            return fault, service

        params, perr = self.models.parse(service, op, method, path, query, hmap, body)
        if perr is not None:
            self.log["validation_errors"] += 1
            return Reply(400, error=perr[0], message=perr[1]), service
        errors, unknown = self.models.validate(service, op, params)
        for u in unknown:
            if len(self.log["unknown_members"]) < 100:
                self.log["unknown_members"].append("%s.%s: %s" % (service, op, u))
        if errors:
            self.log["validation_errors"] += 1
            kind, msg = errors
            return Reply(400, error=kind, message=msg), service

        key = "%s.%s" % (service, op)
        self.log["by_op"][key] = self.log["by_op"].get(key, 0) + 1
        kind = fakeaws_sim.op_kind(op)
        if kind == "submit":
            self.log["submissions"] += 1
        elif kind == "poll":
            self.log["polls"] += 1
        elif kind == "cancel":
            self.log["cancels"] += 1
        try:
            result = self.sim.call(service, op, params)
        except fakeaws_sim.ApiError as e:
            return Reply(e.status, error=e.code, message=e.message), service
        reply = Reply(200, body=result)
        if fault is not None:  # a slow reply: the right answer, late
            reply.delay = fault.delay
        return reply, service

    def check_signature(self, service, method, target, headers, hmap, body):
        authz = (hmap.get("authorization") or [None])[0]
        if authz is None:
            self.log["unsigned"] += 1
            return Reply(403, error="MissingAuthenticationTokenException",
                         message="Missing Authentication Token")
        m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r"\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$", authz)
        if m is None:
            self.log["signatures_bad"] += 1
            return Reply(400, error="IncompleteSignatureException",
                         message="Authorization header requires 'Credential', "
                                 "'SignedHeaders' and 'Signature' parameters")
        akid, date, region, scope_service, signed, signature = m.groups()
        secret = self.creds.get(akid)
        if secret is None:
            self.log["signatures_bad"] += 1
            return Reply(403, error="UnrecognizedClientException",
                         message="The security token included in the request is invalid.")
        amz_date = (hmap.get("x-amz-date") or [""])[0]
        signed_set = signed.split(";")
        bad = None
        if "host" not in signed_set or "x-amz-date" not in signed_set:
            bad = "'Host' and 'X-Amz-Date' must be signed"
        elif scope_service != self.models.signing_name(service):
            bad = "Credential should be scoped to correct service: '%s'." % (
                self.models.signing_name(service))
        elif not amz_date.startswith(date):
            bad = "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date"
        if bad is None:
            try:
                t = time.mktime(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")) - time.timezone
            except ValueError:
                t = None
            if t is None:
                bad = "X-Amz-Date is not ISO-8601 basic format"
            elif abs(t - time.time()) > SKEW_LIMIT:
                bad = "Signature expired: %s is now earlier than the allowed skew" % amz_date
        if bad is None:
            sh = {}
            for k, v in headers:
                if k.lower() in signed_set:
                    sh[k] = sh[k] + "," + v if k in sh else v
            token = (hmap.get("x-amz-security-token") or [None])[0]
            req = AWSRequest(method=method, url="http://%s%s" % (hmap["host"][0], target),
                             data=body, headers=sh)
            signer = SigV4Auth(Credentials(akid, secret, token), scope_service, region)
            req.context["timestamp"] = amz_date
            creq = signer.canonical_request(req)
            sts = signer.string_to_sign(req, creq)
            if signer.signature(sts, req) != signature:
                bad = ("The request signature we calculated does not match the signature you "
                       "provided. Check your AWS Secret Access Key and signing method.")
            elif "x-amz-content-sha256" in hmap:
                import hashlib
                if hmap["x-amz-content-sha256"][0] != hashlib.sha256(body).hexdigest():
                    bad = "The provided 'x-amz-content-sha256' header does not match"
        if bad is not None:
            self.log["signatures_bad"] += 1
            return Reply(403, error="InvalidSignatureException", message=bad)
        self.log["signatures_ok"] += 1
        return None

    def pick_fault(self, service, op):
        f = self.script.get("faults") or {}
        rate = float(f.get("rate", 0))
        only = f.get("only")
        ops = f.get("ops")
        if rate <= 0 or (only and service not in only) or (ops and op not in ops):
            return None
        if self.rng.random() >= rate:
            return None
        kinds = f.get("kinds") or ["throttle", "500", "503", "drop", "slow"]
        kind = self.rng.choice(kinds)
        self.log["faults"][kind] = self.log["faults"].get(kind, 0) + 1
        if kind == "throttle":
            status, code = fakeaws_sim.THROTTLE[service]
            return Reply(status, error=code, message="Rate exceeded")
        if kind == "500":
            code = "InternalServerError" if service == "emr" else "InternalServerException"
            return Reply(500, error=code, message="Internal service error")
        if kind == "503":
            return Reply(503, error="ServiceUnavailableException",
                         message="Service is unavailable")
        if kind == "drop":
            return Reply(drop=True)
        if kind == "lost":
            return Reply(drop=True, delay=float(f.get("slow_ms", 200)) / 1000.0)
        if kind == "slow":
            return Reply(200, delay=float(f.get("slow_ms", 200)) / 1000.0)
        return None

    # ---- answers --------------------------------------------------------------------------

    def encode(self, service, reply):
        """Returns (status, headers, body bytes) in the service's protocol."""
        rid = str(uuid.uuid4())
        proto = self.models.protocol(service) if service else "json"
        hdrs = [("x-amzn-RequestId", rid)]
        if reply.error is None:
            ctype = "application/x-amz-json-1.1" if proto == "json" else "application/json"
            return reply.status, hdrs + [("Content-Type", ctype)], \
                json.dumps(reply.body).encode()
        if proto == "json":
            # awsJson1_1: the code in __type, as a namespaced shape id when coral's own
            code = reply.error
            if code in ("ValidationException", "SerializationException"):
                code = "com.amazon.coral.validate#" + code
            elif code in ("ThrottlingException",):
                code = "com.amazon.coral.availability#" + code
            body = {"__type": code, "message": reply.message}
            return reply.status, hdrs + [("Content-Type", "application/x-amz-json-1.1")], \
                json.dumps(body).encode()
        # restJson1: the code in x-amzn-ErrorType (with coral's ":namespace" suffix)
        hdrs.append(("x-amzn-ErrorType", "%s:http://internal.amazon.com/coral/%s/" % (
            reply.error, "com.amazon.coral.validate")))
        body = {"message": reply.message}
        return reply.status, hdrs + [("Content-Type", "application/json")], \
            json.dumps(body).encode()

    def record_attempt(self, hmap, status, code):
        inv = (hmap.get("amz-sdk-invocation-id") or [None])[0]
        if inv is None:
            self.log["invocations_without_id"] += 1
            return
        attempt = 0
        m = re.search(r"attempt=(\d+)", (hmap.get("amz-sdk-request") or [""])[0])
        if m:
            attempt = int(m.group(1))
        hist = self.invocations.setdefault(inv, [])
        if hist:
            last_status, last_code = hist[-1][1], hist[-1][2]
            if last_status != 200 and not retryable(last_status, last_code):
                self.log["retried_after_nonretryable"] += 1
        hist.append([attempt, status, code])


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEADER:
        raise ValueError("header too large")
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    length = 0
    chunked = False
    for k, v in headers:
        if k.lower() == "content-length":
            length = int(v)
        elif k.lower() == "transfer-encoding" and "chunked" in v.lower():
            chunked = True
    if length > MAX_BODY:
        raise ValueError("body too large")
    if chunked:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.readexactly(length) if length else b""
    return method, target, version, headers, body


def tls_context(directory):
    """An SSL context serving DIR/cert.pem, made with the openssl command when missing."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    if not (os.path.exists(cert) and os.path.exists(key)):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--creds", action="append", default=[],
                    help="AKID:SECRET accepted (default test:test)")
    ap.add_argument("--tls-dir", help="also serve HTTPS with DIR/cert.pem (made if missing)")
    args = ap.parse_args()
    tls = tls_context(args.tls_dir) if args.tls_dir else None
    creds = dict(c.split(":", 1) for c in args.creds) or {"test": "test"}
    fake = Fake(args.seed, creds)
    parent = os.getppid()

    async def on_connection(reader, writer):
        fake.log["connections"] += 1
        try:
            while True:
                try:
                    method, target, version, headers, body = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                    return
                hmap = {k.lower(): v for k, v in headers}
                if "expect" in hmap:
                    fake.log["expect_100"] += 1
                close = hmap.get("connection", "").lower() == "close" or version == "HTTP/1.0"
                if target.startswith("/__fake/"):
                    status, doc = fake.control(method, target.split("?")[0], body)
                    out = json.dumps(doc).encode()
                    writer.write(("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                                  "Content-Length: %d\r\n\r\n" % (
                                      status, REASONS.get(status, "?"), len(out))).encode() + out)
                    await writer.drain()
                    continue
                fake.log["requests"] += 1
                if len(fake.log["arrivals"]) < 200000:
                    fake.log["arrivals"].append(round(time.monotonic() - fake.t0, 6))
                fake.log["inflight"] += 1
                fake.log["max_inflight"] = max(fake.log["max_inflight"], fake.log["inflight"])
                service = None
                try:
                    reply, service = fake.handle(method, target, headers, body)
                    if service is not None:
                        n = fake.inflight_by_service.get(service, 0) + 1
                        fake.inflight_by_service[service] = n
                        m = fake.log["by_service_max_inflight"]
                        m[service] = max(m.get(service, 0), n)
                    hl = {}
                    for k, v in headers:
                        hl.setdefault(k.lower(), []).append(v)
                    if reply.drop:
                        if reply.delay:
                            await asyncio.sleep(reply.delay)
                        fake.record_attempt(hl, 0, "dropped")
                        return
                    if reply.delay:
                        await asyncio.sleep(reply.delay)
                    status, rh, out = fake.encode(service, reply)
                    fake.record_attempt(hl, status, reply.error)
                    st = str(status)
                    fake.log["by_status"][st] = fake.log["by_status"].get(st, 0) + 1
                    if reply.error is not None:
                        fake.log["errors"] += 1
                    head = "HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "?"))
                    for k, v in rh + [("Content-Length", str(len(out)))]:
                        head += "%s: %s\r\n" % (k, v)
                    writer.write(head.encode() + b"\r\n" + out)
                    await writer.drain()
                finally:
                    fake.log["inflight"] -= 1
                    if service is not None:  # a reset may have come in between
                        fake.inflight_by_service[service] = max(
                            0, fake.inflight_by_service.get(service, 0) - 1)
                if close:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def watch_parent():
        while True:
            await asyncio.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    def on_loop_error(loop, context):
        # a client that refuses our certificate is what the TLS tests are about: not news
        exc = context.get("exception")
        if isinstance(exc, (ssl.SSLError, ConnectionError)):
            return
        loop.default_exception_handler(context)

    async def run():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(on_loop_error)
        server = await asyncio.start_server(on_connection, "127.0.0.1", args.port,
                                            backlog=4096, limit=MAX_HEADER * 2)
        port = server.sockets[0].getsockname()[1]
        line = "%d" % port
        tls_server = None
        if tls is not None:
            tls_server = await asyncio.start_server(on_connection, "127.0.0.1", 0, ssl=tls,
                                                    backlog=4096, limit=MAX_HEADER * 2)
            line += " %d" % tls_server.sockets[0].getsockname()[1]
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        loop.create_task(watch_parent())
        if tls_server is not None:
            loop.create_task(tls_server.serve_forever())
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
