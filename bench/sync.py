#!/usr/bin/python3
"""`make bench`, the `.sync` part (issue 6): many concurrent `.sync` jobs polled by one sfnd.

Starts the fake AWS (tests/fakeaws/fakeaws.py, instant answers) and build/sfnd on a fresh
database in a scratch directory, with the AWS transport pointed at the fake (as
tests/integrations/run.py does), Athena polled every --poll-ms and rate-limited by
SFN_RATE_ATHENA=--rate,--burst,--inflight. Creates a machine with one
athena:startQueryExecution.sync Task, starts --jobs executions (default 10,000) with the
fake holding every query in QUEUED, waits until the fake has seen every submission, then
measures over --window seconds:

  * sfnd's CPU (utime+stime from /proc/PID/stat) per poll the fake answered;
  * sfnd's VmRSS while all jobs wait, minus VmRSS before the first StartExecution, per job;
  * the fake's request rate (mean over the window, and the busiest 1-second bin from its
    arrival times, the first second left out) against the configured limit: the mean must
    not exceed the rate, nor any later 3 s (sliding) 3 x rate + burst;
  * the fake's own CPU: the Python fake, not sfnd, may be what caps the rate.

Then releases the queries (each succeeds after two more polls) and checks that every
execution SUCCEEDED (ListExecutions, paged). Everything is bounded by timeouts; both
processes are stopped by their PIDs. Prints a table; --json prints the raw figures.
Exit status 1 when the rate exceeded the limit or not every execution succeeded.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = os.path.join(ROOT, "tests", "fakeaws", "fakeaws.py")
DEFINITION = json.dumps({"StartAt": "Q", "States": {"Q": {
    "Type": "Task", "Resource": "arn:aws:states:::athena:startQueryExecution.sync",
    "Parameters": {"QueryString": "SELECT 1"}, "End": True}}})


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_field(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Http:
    """One keep-alive connection to 127.0.0.1:port."""

    def __init__(self, port, timeout=60):
        self.port, self.timeout = port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            try:
                data = json.dumps(body).encode() if body is not None else None
                self.conn.request(method, path, body=data, headers=headers or {})
                r = self.conn.getresponse()
                out = r.read()
                return r.status, json.loads(out) if out else {}
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def sfn(self, op, body):
        status, doc = self.request("POST", "/", body, {
            "X-Amz-Target": "AWSStepFunctions." + op,
            "Content-Type": "application/x-amz-json-1.0"})
        if status != 200:
            raise RuntimeError("%s: %d %s" % (op, status, doc))
        return doc


def wait_port(port, proc, what, limit=15):
    end = time.time() + limit
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > end or proc.poll() is not None:
                raise SystemExit("%s did not start" % what)
            time.sleep(0.05)


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def run(args, scratch):
    res = {"jobs": args.jobs, "poll_ms": args.poll_ms,
           "rate_limit": "%g,%d,%d" % (args.rate, args.burst, args.inflight),
           "window_s": args.window, "cpus": os.cpu_count()}
    fake = sfnd = None
    t_start = time.monotonic()
    try:
        fake = subprocess.Popen(["/usr/bin/python3", FAKE, "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        fport = int(fake.stdout.readline().split()[0])
        fc = Http(fport, timeout=120)
        fc.request("POST", "/__fake/script", {"hold": True,
                                              "lifecycles": {"athena_query": {"polls": 1}}})

        def flog():
            return fc.request("GET", "/__fake/log")[1]

        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")
               and not k.startswith("SFN_POLL_") and not k.startswith("SFN_RATE_")}
        env.update({
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:%d" % fport,
            "SFN_POLL_ATHENA": str(args.poll_ms),
            "SFN_RATE_ATHENA": res["rate_limit"],
        })
        port = free_port()
        slog = open(os.path.join(scratch, "sfnd.log"), "wb")
        sfnd = subprocess.Popen([os.path.join(args.build, "sfnd"), "--listen",
                                 "127.0.0.1:%d" % port, "--db",
                                 os.path.join(scratch, "sfnd.db"), "--durability", "normal"],
                                stdout=slog, stderr=slog, env=env)
        wait_port(port, sfnd, "sfnd")
        c = Http(port)
        arn = c.sfn("CreateStateMachine", {
            "name": "syncbench", "definition": DEFINITION,
            "roleArn": "arn:aws:iam::123456789012:role/bench"})["stateMachineArn"]
        time.sleep(0.5)
        res["rss_before_kb"] = proc_field(sfnd.pid, "VmRSS")

        # StartExecution x N over a few keep-alive connections
        errors = []
        counter = iter(range(args.jobs))
        lock = threading.Lock()

        def starter():
            h = Http(port)
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    h.sfn("StartExecution", {"stateMachineArn": arn, "name": "j%06d" % i,
                                             "input": "{}"})
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(str(e))
                    return
        t0 = time.monotonic()
        threads = [threading.Thread(target=starter) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        res["start_s"] = time.monotonic() - t0
        if errors:
            raise SystemExit("StartExecution failed: %s" % errors[0])

        # all waiting: the fake has seen every submission
        end = time.monotonic() + args.timeout
        while True:
            log = flog()
            if log["submissions"] >= args.jobs:
                break
            if time.monotonic() > end or sfnd.poll() is not None:
                raise SystemExit("only %d of %d submissions after %ds" % (
                    log["submissions"], args.jobs, args.timeout))
            time.sleep(2)
        res["all_waiting_s"] = time.monotonic() - t0
        time.sleep(min(3.0, args.window))  # past the first polls' burst

        # the window
        log0 = flog()
        c0, f0, w0 = cpu_s(sfnd.pid), cpu_s(fake.pid), time.monotonic()
        time.sleep(args.window)
        c1, f1, w1 = cpu_s(sfnd.pid), cpu_s(fake.pid), time.monotonic()
        log1 = flog()
        res["rss_waiting_kb"] = proc_field(sfnd.pid, "VmRSS")
        res["bytes_per_task"] = (res["rss_waiting_kb"] - res["rss_before_kb"]) * 1024.0 / \
            args.jobs
        polls = log1["polls"] - log0["polls"]
        reqs = log1["requests"] - log0["requests"]
        span = log1["elapsed"] - log0["elapsed"]
        res["polls"] = polls
        res["sfnd_cpu_s"] = c1 - c0
        res["cpu_us_per_poll"] = (c1 - c0) * 1e6 / max(polls, 1)
        res["fake_cpu_pct"] = (f1 - f0) * 100 / (w1 - w0)
        res["sfnd_cpu_pct"] = (c1 - c0) * 100 / (w1 - w0)
        res["rate_mean"] = reqs / span
        res["max_inflight"] = log1["max_inflight"]
        arr = [a for a in log1["arrivals"] if log0["elapsed"] <= a < log1["elapsed"]]
        bins = {}
        for a in arr:
            bins[int(a - log0["elapsed"])] = bins.get(int(a - log0["elapsed"]), 0) + 1
        # bin 0 is left out: the fake timestamps a request when it reads it, and the /__fake/log
        # call that opens the window stalls it (it serialises the whole log), so requests sent
        # during that stall land together in the first second
        full = [n for k, n in bins.items() if 1 <= k < int(span)]
        res["rate_peak_1s"] = max(full) if full and len(arr) == reqs else None
        res["rate_bin0"] = bins.get(0, 0)
        # demand: what the cadence asks for if nothing limited it
        res["demand_rate"] = args.jobs * 1000.0 / args.poll_ms
        # the busiest 3 s (sliding): a token bucket lets through at most rate*3+burst; 3 s
        # rather than 1 s because the fake, single-threaded and sharing the CPUs, timestamps
        # on reading, which bunches requests up after each of its stalls
        arr = [a for a in arr if a >= log0["elapsed"] + 1] if len(arr) == reqs else []
        j, best = 0, 0
        for i in range(len(arr)):
            while arr[i] - arr[j] >= 3.0:
                j += 1
            best = max(best, i - j + 1)
        res["rate_peak_3s"] = best / 3.0 if arr else None
        if arr:  # the mean over the window less its stalled first second
            t = log1["elapsed"] - log0["elapsed"] - 1
            res["rate_mean"] = len(arr) / t
        else:
            t = span
        # a token bucket lets through at most rate*T + burst in T seconds; 1% more for the
        # fake's timestamps, taken on reading
        lim_ok = res["rate_mean"] * t <= (args.rate * t + args.burst) * 1.01 and (
            res["rate_peak_3s"] is None or best <= (args.rate * 3 + args.burst) * 1.01)
        res["rate_ok"] = lim_ok
        res["errors_in_window"] = {k: v for k, v in log1.get("faults", {}).items() if v}

        # let them finish
        fc.request("POST", "/__fake/script", {"hold": False, "release": True})
        t1 = time.monotonic()
        end = t1 + args.timeout
        done = 0
        while time.monotonic() < end and sfnd.poll() is None:
            done = 0
            token = None
            while True:
                body = {"stateMachineArn": arn, "statusFilter": "SUCCEEDED",
                        "maxResults": 1000}
                if token:
                    body["nextToken"] = token
                page = c.sfn("ListExecutions", body)
                done += len(page.get("executions", []))
                token = page.get("nextToken")
                if not token:
                    break
            if done >= args.jobs:
                break
            time.sleep(2)
        res["succeeded"] = done
        res["finish_s"] = time.monotonic() - t1
        failed = 0
        for st in ("FAILED", "TIMED_OUT", "ABORTED"):
            failed += len(c.sfn("ListExecutions", {"stateMachineArn": arn, "statusFilter": st,
                                                   "maxResults": 1000}).get("executions", []))
        res["failed"] = failed
        res["wall_s"] = time.monotonic() - t_start
        return res
    finally:
        stop(sfnd)
        stop(fake)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--poll-ms", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=500,
                    help="SFN_RATE_ATHENA requests/s (below what the Python fake can answer)")
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--window", type=float, default=15)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--timeout", type=int, default=300,
                    help="seconds allowed for the submissions, and again for the finish")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.build = os.path.join(ROOT, args.build) if not os.path.isabs(args.build) else args.build
    scratch = tempfile.mkdtemp(prefix=".syncbench-", dir=ROOT)
    try:
        r = run(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print("sfnd .sync: %d athena:startQueryExecution.sync jobs held QUEUED by the fake, "
              "SFN_POLL_ATHENA=%d SFN_RATE_ATHENA=%s, %g s window, %d CPUs shared with the "
              "Python fake" % (r["jobs"], r["poll_ms"], r["rate_limit"], r["window_s"],
                               r["cpus"]))
        peak = "-" if r["rate_peak_3s"] is None else "%.0f (busiest 3 s), %d (busiest 1 s)" % (
            r["rate_peak_3s"], r["rate_peak_1s"])
        rows = [
            ("StartExecution x N", "%.1f s" % r["start_s"]),
            ("all N submitted (waiting)", "%.1f s after the first start" % r["all_waiting_s"]),
            ("polls in window", "%d" % r["polls"]),
            ("sfnd CPU per poll", "%.1f us (sfnd %.0f%% of a CPU)" % (r["cpu_us_per_poll"],
                                                                    r["sfnd_cpu_pct"])),
            ("sfnd RSS before / waiting", "%d / %d KiB" % (r["rss_before_kb"],
                                                          r["rss_waiting_kb"])),
            ("memory per waiting task", "%.0f bytes" % r["bytes_per_task"]),
            ("request rate mean / peak", "%.0f / %s per s (limit %g, burst %d; "
             "cadence asks %.0f/s)" % (r["rate_mean"], peak, float(r["rate_limit"].split(",")[0]),
                                       int(r["rate_limit"].split(",")[1]), r["demand_rate"])),
            ("fake max in flight", "%d" % r["max_inflight"]),
            ("fake CPU", "%.0f%% of a CPU" % r["fake_cpu_pct"]),
            ("all SUCCEEDED", "%d of %d (%d failed) in %.1f s after release" % (
                r["succeeded"], r["jobs"], r["failed"], r["finish_s"])),
            ("wall time", "%.1f s" % r["wall_s"]),
        ]
        for k, v in rows:
            print("  %-30s %s" % (k, v))
        print("request rate within the limit: %s" % ("yes" if r["rate_ok"] else "NO"))
    return 0 if r["rate_ok"] and r["succeeded"] >= r["jobs"] else 1


if __name__ == "__main__":
    sys.exit(main())
