#!/usr/bin/env python3
"""`make bench`, the API's part (issue 4): StartExecution throughput and latency of sfnd.

For each durability (full, normal) starts build/sfnd on a fresh database in a scratch
directory on the same disk as the working tree (not a tmpfs), creates a one-state Pass
machine, and runs build/tools/apibench: N keep-alive connections, each with one request in
flight (no pipelining), StartExecution with no name (sfnd makes each one unique). Every
answer leaves after the commit that records the execution (persist before acknowledge).
sfnd is stopped by its PID.

Target: >= 20,000 StartExecution/s at normal with p99 < 5 ms. The load generator and the
daemon share this machine's CPUs (os.cpu_count() is printed with the table): with 2 cores
the client takes roughly one of them. Prints a table (with the hypervisor's CPU steal during
each run); --json prints the raw figures.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASS_DEF = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(port, op, body):
    req = urllib.request.Request("http://127.0.0.1:%d/" % port, data=json.dumps(body).encode(),
                                 headers={"X-Amz-Target": "AWSStepFunctions." + op,
                                          "Content-Type": "application/x-amz-json-1.0"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def rss_kb(pid, field="VmHWM"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """User + system CPU time of a process, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks():
    """(all, stolen) CPU ticks of the machine so far: the hypervisor's steal shows when a
    virtual machine's CPUs were taken away during a run (figures then drop with it)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]), v[7] if len(v) > 7 else 0


def run_one(build, durability, conns, seconds, scratch):
    db = os.path.join(scratch, "api-%s.db" % durability)
    port = free_port()
    log = open(os.path.join(scratch, "sfnd-%s.log" % durability), "wb")
    proc = subprocess.Popen([os.path.join(build, "sfnd"), "--listen", "127.0.0.1:%d" % port,
                             "--db", db, "--durability", durability],
                            stdout=log, stderr=log)
    try:
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("sfnd did not start")
                time.sleep(0.05)
        arn = call(port, "CreateStateMachine", {
            "name": "bench", "definition": PASS_DEF,
            "roleArn": "arn:aws:iam::123456789012:role/bench"})["stateMachineArn"]
        cpu0 = cpu_s(proc.pid)
        all0, steal0 = cpu_ticks()
        p = subprocess.run([os.path.join(build, "tools", "apibench"), "--port", str(port),
                            "--arn", arn, "--conns", str(conns), "--seconds", str(seconds)],
                           capture_output=True, text=True, timeout=seconds + 120)
        if p.returncode != 0:
            raise SystemExit("apibench failed: %s %s" % (p.stdout, p.stderr))
        res = json.loads(p.stdout)
        # sfnd's CPU per answer: a figure the load of other processes barely changes
        res["sfnd_cpu_us"] = (cpu_s(proc.pid) - cpu0) * 1e6 / max(res["answers"], 1)
        all1, steal1 = cpu_ticks()
        res["steal_pct"] = 100.0 * (steal1 - steal0) / max(all1 - all0, 1)
        res["durability"] = durability
        res["sfnd_peak_rss_kb"] = rss_kb(proc.pid)
        listed = call(port, "ListExecutions", {"stateMachineArn": arn, "maxResults": 1})
        res["recorded"] = len(listed.get("executions", [])) == 1
        return res
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    build = os.path.join(ROOT, args.build) if not os.path.isabs(args.build) else args.build
    scratch = tempfile.mkdtemp(prefix=".apibench-", dir=ROOT)
    try:
        rows = [run_one(build, d, args.conns, args.seconds, scratch)
                for d in ("full", "normal")]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("sfnd API: StartExecution of a Pass machine, %d connections x 1 request in flight, "
          "%g s, client and daemon on the same %d CPUs" % (args.conns, args.seconds,
                                                             os.cpu_count()))
    print("%-11s %12s %9s %9s %9s %14s %12s %7s" % ("durability", "requests/s", "p50 ms",
                                                     "p99 ms", "max ms", "sfnd CPU/req",
                                                     "sfnd peak", "steal"))
    for r in rows:
        print("%-11s %12.0f %9.2f %9.2f %9.2f %11.1f us %9d KiB %6.1f%%%s" % (
            r["durability"], r["rps"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["sfnd_cpu_us"],
            r["sfnd_peak_rss_kb"], r["steal_pct"],
            "" if r["recorded"] else "  (executions NOT recorded!)"))
    print("steal: the share of the machine's CPU time its hypervisor took during the run; "
          "above a few percent the figures say more about the host than about sfnd")
    try:
        with open("/proc/loadavg") as f:
            print("load average during the run: %s (other processes share the CPUs)"
                  % f.read().split()[0])
    except OSError:
        pass
    normal = [r for r in rows if r["durability"] == "normal"][0]
    print("target at normal: >= 20000/s and p99 < 5 ms: %s" % (
        "met" if normal["rps"] >= 20000 and normal["p99_ms"] < 5 else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
