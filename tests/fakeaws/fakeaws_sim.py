"""tests/fakeaws/fakeaws_sim.py - the fake AWS's simulated resources (integrations.md §2-5):
EMR clusters and steps, EMR on EKS virtual clusters and job runs, EMR Serverless applications
and job runs, Athena query executions. A resource moves along its life cycle one state every
`polls` describe/get calls of that resource; where it ends is scripted per kind:

    "lifecycles": {"emr_step": {"polls": 2, "outcome": ["FAILED", "COMPLETED"]}}

`outcome` is a terminal state, or a list consumed one per new resource (the last one sticks).
Kinds and outcomes: emr_cluster (WAITING | TERMINATED_WITH_ERRORS), emr_step (COMPLETED |
FAILED), eks_job_run (COMPLETED | FAILED), serverless_application (CREATED | TERMINATED),
serverless_job_run (SUCCESS | FAILED), athena_query (SUCCEEDED | FAILED). Idempotency tokens:
the same token with the same parameters returns the first resource; with other parameters it
is an error, as AWS answers.

With "hold": true in the script, a resource created or sent along a new path (a cluster
being terminated, an application started) stays where it is, however often it is polled,
until a script with "release": true lets every held resource go on: a test can act while a
job is surely still waiting (tests/workflows/run.py kills sfnd in every .sync wait)."""
import json
import time
import uuid

ACCOUNT = "123456789012"
REGION = "us-east-1"

# The throttling answer of each service (integrations.md §6.3).
THROTTLE = {
    "emr": (400, "ThrottlingException"),
    "athena": (400, "TooManyRequestsException"),
    "emr-containers": (400, "RequestThrottledException"),
    "emr-serverless": (429, "ThrottlingException"),
}

SUBMIT = {"RunJobFlow", "AddJobFlowSteps", "CreateVirtualCluster", "StartJobRun",
          "CreateApplication", "StartApplication", "StartQueryExecution"}
POLL = {"DescribeCluster", "DescribeStep", "DescribeVirtualCluster", "DescribeJobRun",
        "GetApplication", "GetJobRun", "GetQueryExecution"}
CANCEL = {"TerminateJobFlows", "CancelSteps", "DeleteVirtualCluster", "CancelJobRun",
          "StopApplication", "DeleteApplication", "StopQueryExecution"}


def op_kind(op):
    if op in SUBMIT:
        return "submit"
    if op in POLL:
        return "poll"
    if op in CANCEL:
        return "cancel"
    return "other"


class ApiError(Exception):
    def __init__(self, status, code, message):
        Exception.__init__(self, message)
        self.status = status
        self.code = code
        self.message = message


def not_found(service, what):
    if service == "emr":
        return ApiError(400, "InvalidRequestException", "%s is not valid." % what)
    if service == "athena":
        return ApiError(400, "InvalidRequestException", "%s was not found" % what)
    if service == "emr-containers":
        return ApiError(400, "ResourceNotFoundException", "%s does not exist." % what)
    return ApiError(404, "ResourceNotFoundException", "%s does not exist." % what)


def iso(t):
    """EMR on EKS timestamps: ISO-8601 strings on the wire (timestampFormat iso8601)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def new_id(prefix, n=13):
    return prefix + uuid.uuid4().hex[:n].upper()


class Resource:
    """One simulated thing: its own fields plus a position on a path of states."""

    def __init__(self, kind, path, polls, **fields):
        self.kind = kind
        self.path = list(path)
        self.idx = 0
        self.polls = max(1, int(polls))
        self.count = 0
        self.created = time.time()
        self.ended = None
        self.fields = fields
        self.held = False  # frozen by the script's "hold" until a "release"
        self.fresh = True  # new, or sent along a new path: to be held when holding

    @property
    def state(self):
        return self.path[self.idx]

    def poll(self):
        if self.held:
            return self.state
        if self.idx < len(self.path) - 1:
            self.count += 1
            if self.count >= self.polls:
                self.count = 0
                self.idx += 1
                if self.idx == len(self.path) - 1:
                    self.ended = time.time()
        return self.state

    def redirect(self, path):
        """Continues from the current state along `path` (its first state is the next one)."""
        self.path = self.path[:self.idx + 1] + list(path)
        self.count = 0
        self.fresh = True

    def done(self):
        return self.idx == len(self.path) - 1


class Sim:
    def __init__(self):
        self.lifecycles = {}
        self.hold = False  # hold new and redirected resources (module docstring)
        self.res = {}      # id -> Resource
        self.tokens = {}   # (service, op, token) -> (params json, answer)

    def outcome(self, kind, default):
        lc = self.lifecycles.get(kind) or {}
        out = lc.get("outcome", default)
        if isinstance(out, list):
            if not out:
                return default
            return out.pop(0) if len(out) > 1 else out[0]
        return out

    def polls(self, kind):
        return (self.lifecycles.get(kind) or {}).get("polls", 1)

    def get(self, service, rid, kind, what):
        r = self.res.get(rid)
        if r is None or r.kind != kind:
            raise not_found(service, what)
        return r

    def idempotent(self, service, op, token, params, make):
        """Runs make() once per token; replays its answer for the same parameters."""
        if token is None:
            return make()
        key = (service, op, token)
        canon = json.dumps(params, sort_keys=True)
        if key in self.tokens:
            first, answer = self.tokens[key]
            if first != canon:
                if service == "emr-serverless":
                    raise ApiError(409, "ConflictException",
                                   "The request conflicts with an earlier request that used "
                                   "the same client token")
                if service == "athena":
                    raise ApiError(400, "InvalidRequestException",
                                   "Idempotent parameters do not match")
                raise ApiError(400, "ValidationException",
                               "The client token was used with different parameters")
            return answer
        answer = make()
        self.tokens[key] = (canon, answer)
        return answer

    def call(self, service, op, p):
        fn = getattr(self, "%s_%s" % (service.replace("-", "_"), op), None)
        if fn is None:
            raise ApiError(501, "NotImplemented", "the fake does not implement %s" % op)
        try:
            return fn(p)
        finally:
            for r in self.res.values():
                if r.fresh:
                    r.fresh = False
                    r.held = self.hold

    def release(self):
        for r in self.res.values():
            r.held = False

    # ---- EMR ------------------------------------------------------------------------------

    def cluster_json(self, c):
        f = c.fields
        st = c.state
        status = {"State": st, "StateChangeReason": {},
                  "Timeline": {"CreationDateTime": c.created}}
        if st in ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"):
            status["StateChangeReason"] = {"Code": f.get("reason", "USER_REQUEST"),
                                           "Message": f.get("reason_msg", "Terminated")}
        if st in ("TERMINATED", "TERMINATED_WITH_ERRORS"):
            status["Timeline"]["EndDateTime"] = c.ended or time.time()
        if st == "WAITING":
            status["StateChangeReason"] = {"Message": "Cluster ready to run steps."}
        return {"Id": f["id"], "Name": f["name"], "Status": status,
                "ClusterArn": "arn:aws:elasticmapreduce:%s:%s:cluster/%s" % (
                    REGION, ACCOUNT, f["id"]),
                "ReleaseLabel": f.get("release"), "TerminationProtected": f["protected"],
                "AutoTerminate": not f["keep_alive"], "VisibleToAllUsers": True,
                "InstanceCollectionType": f["collection"], "Tags": f.get("tags", [])}

    def emr_RunJobFlow(self, p):
        cid = new_id("j-")
        inst = p["Instances"]
        fail = self.outcome("emr_cluster", "WAITING") != "WAITING"
        path = ["STARTING", "BOOTSTRAPPING"]
        path += ["TERMINATING", "TERMINATED_WITH_ERRORS"] if fail else ["WAITING"]
        fleets = inst.get("InstanceFleets") or []
        groups = inst.get("InstanceGroups") or []
        c = Resource("emr_cluster", path, self.polls("emr_cluster"), id=cid, name=p["Name"],
                     release=p.get("ReleaseLabel"), keep_alive=inst.get(
                         "KeepJobFlowAliveWhenNoSteps", False),
                     protected=inst.get("TerminationProtected", False),
                     collection="INSTANCE_FLEET" if fleets else "INSTANCE_GROUP",
                     fleets=[dict(f, Id=new_id("if-")) for f in fleets],
                     groups=[dict(g, Id=new_id("ig-")) for g in groups],
                     tags=p.get("Tags", []), steps=[])
        if fail:
            c.fields["reason"] = "BOOTSTRAP_FAILURE"
            c.fields["reason_msg"] = "Master instance failed a bootstrap action"
        self.res[cid] = c
        for s in p.get("Steps") or []:
            self.add_step(c, s)
        return {"JobFlowId": cid, "ClusterArn": self.cluster_json(c)["ClusterArn"]}

    def emr_DescribeCluster(self, p):
        c = self.get("emr", p["ClusterId"], "emr_cluster", "Cluster id '%s'" % p["ClusterId"])
        c.poll()
        return {"Cluster": self.cluster_json(c)}

    def emr_TerminateJobFlows(self, p):
        for cid in p["JobFlowIds"]:
            c = self.res.get(cid)
            if c is None or c.kind != "emr_cluster":
                raise ApiError(400, "ValidationException", "Specified job flow ID not valid")
        for cid in p["JobFlowIds"]:
            c = self.res[cid]
            if c.fields["protected"] or c.state in ("TERMINATING", "TERMINATED",
                                                    "TERMINATED_WITH_ERRORS"):
                continue
            c.fields["reason"] = "USER_REQUEST"
            c.fields["reason_msg"] = "Terminated by user request"
            c.redirect(["TERMINATING", "TERMINATED"])
            for s in c.fields["steps"]:
                step = self.res[s]
                if not step.done():
                    step.redirect(["CANCELLED"])
        return {}

    def emr_SetTerminationProtection(self, p):
        for cid in p["JobFlowIds"]:
            c = self.get("emr", cid, "emr_cluster", "Cluster id '%s'" % cid)
            c.fields["protected"] = p["TerminationProtected"]
        return {}

    def add_step(self, c, s):
        sid = new_id("s-")
        fail = self.outcome("emr_step", "COMPLETED") == "FAILED"
        step = Resource("emr_step", ["PENDING", "RUNNING", "FAILED" if fail else "COMPLETED"],
                        self.polls("emr_step"), id=sid, config=s, cluster=c.fields["id"])
        self.res[sid] = step
        c.fields["steps"].append(sid)
        return sid

    def emr_AddJobFlowSteps(self, p):
        c = self.get("emr", p["JobFlowId"], "emr_cluster", "Cluster id '%s'" % p["JobFlowId"])
        if c.state in ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"):
            raise ApiError(400, "ValidationException",
                           "A job flow that is shutting down, terminated, or finished may not "
                           "be modified.")
        return {"StepIds": [self.add_step(c, s) for s in p["Steps"]]}

    def emr_DescribeStep(self, p):
        self.get("emr", p["ClusterId"], "emr_cluster", "Cluster id '%s'" % p["ClusterId"])
        s = self.get("emr", p["StepId"], "emr_step", "Step id '%s'" % p["StepId"])
        st = s.poll()
        cfg = s.fields["config"]
        status = {"State": st, "StateChangeReason": {},
                  "Timeline": {"CreationDateTime": s.created}}
        if st == "FAILED":
            status["FailureDetails"] = {"Reason": "Unknown Error.",
                                        "Message": "Step failed with exitCode 1",
                                        "LogFile": "s3://logs/steps/%s/" % s.fields["id"]}
            if cfg.get("ActionOnFailure") in ("TERMINATE_CLUSTER", "TERMINATE_JOB_FLOW"):
                c = self.res[p["ClusterId"]]
                if not c.done() and c.state != "TERMINATING":
                    c.fields["reason"] = "STEP_FAILURE"
                    c.fields["reason_msg"] = "Shut down as step failed"
                    c.redirect(["TERMINATING", "TERMINATED_WITH_ERRORS"])
        if s.done():
            status["Timeline"]["EndDateTime"] = s.ended or time.time()
        return {"Step": self.step_json(s, status)}

    def step_json(self, s, status=None):
        cfg = s.fields["config"]
        jar = cfg["HadoopJarStep"]
        if status is None:
            status = {"State": s.state, "StateChangeReason": {},
                      "Timeline": {"CreationDateTime": s.created}}
        # HadoopStepConfig answers the properties as a map (StepConfig sends a list)
        return {"Id": s.fields["id"], "Name": cfg["Name"],
                "Config": {"Jar": jar["Jar"], "Args": jar.get("Args", []),
                           "Properties": {p["Key"]: p.get("Value", "")
                                          for p in jar.get("Properties") or []}},
                "ActionOnFailure": cfg.get("ActionOnFailure", "CONTINUE"),
                "Status": status}

    def emr_ListSteps(self, p):
        """Newest first, 2 a page (small pages, so that tests cross pages; 50 with StepIds, as
        EMR pages); each step listed
        moves along its life cycle as with DescribeStep."""
        c = self.get("emr", p["ClusterId"], "emr_cluster", "Cluster id '%s'" % p["ClusterId"])
        steps = [self.res[sid] for sid in reversed(c.fields["steps"])]
        if p.get("StepStates"):
            steps = [s for s in steps if s.state in p["StepStates"]]
        if p.get("StepIds"):
            steps = [s for s in steps if s.fields["id"] in p["StepIds"]]
        start = int(p.get("Marker") or 0)
        size = 50 if p.get("StepIds") else 2  # EMR's page is 50
        for s in steps[start:start + size]:
            s.poll()  # a listing is a poll of the steps it shows
        out = {"Steps": [self.step_json(s) for s in steps[start:start + size]]}
        if start + size < len(steps):
            out["Marker"] = str(start + size)
        return out

    def emr_ListClusters(self, p):
        """Newest first, 2 a page; ClusterSummary has no tags."""
        cs = [r for r in self.res.values() if r.kind == "emr_cluster"]
        cs.sort(key=lambda r: r.created, reverse=True)
        if p.get("CreatedAfter") is not None:
            cs = [c for c in cs if c.created >= float(p["CreatedAfter"])]
        if p.get("ClusterStates"):
            cs = [c for c in cs if c.state in p["ClusterStates"]]
        start = int(p.get("Marker") or 0)
        page = cs[start:start + 2]
        out = {"Clusters": [{"Id": c.fields["id"], "Name": c.fields["name"],
                             "Status": self.cluster_json(c)["Status"],
                             "ClusterArn": self.cluster_json(c)["ClusterArn"]}
                            for c in page]}
        if start + 2 < len(cs):
            out["Marker"] = str(start + 2)
        return out

    def emr_CancelSteps(self, p):
        self.get("emr", p["ClusterId"], "emr_cluster", "Cluster id '%s'" % p["ClusterId"])
        out = []
        for sid in p["StepIds"]:
            s = self.res.get(sid)
            if s is None or s.kind != "emr_step" or s.done():
                out.append({"StepId": sid, "Status": "FAILED",
                            "Reason": "Step is not in a cancellable state"})
                continue
            s.redirect(["CANCEL_PENDING", "CANCELLED"])
            out.append({"StepId": sid, "Status": "SUBMITTED"})
        return {"CancelStepsInfoList": out}

    def emr_ListInstanceFleets(self, p):
        c = self.get("emr", p["ClusterId"], "emr_cluster", "Cluster id '%s'" % p["ClusterId"])
        return {"InstanceFleets": [{"Id": f["Id"], "Name": f.get("Name"),
                                    "InstanceFleetType": f.get("InstanceFleetType"),
                                    "TargetOnDemandCapacity": f.get("TargetOnDemandCapacity", 0),
                                    "TargetSpotCapacity": f.get("TargetSpotCapacity", 0),
                                    "Status": {"State": "RUNNING"}}
                                   for f in c.fields["fleets"]]}

    def emr_ModifyInstanceFleet(self, p):
        c = self.get("emr", p["ClusterId"], "emr_cluster", "Cluster id '%s'" % p["ClusterId"])
        want = p["InstanceFleet"]
        for f in c.fields["fleets"]:
            if f["Id"] == want["InstanceFleetId"]:
                f.update({k: v for k, v in want.items() if k != "InstanceFleetId"})
                return {}
        raise ApiError(400, "InvalidRequestException", "Instance fleet id '%s' is not valid." %
                       want["InstanceFleetId"])

    def emr_ListInstanceGroups(self, p):
        c = self.get("emr", p["ClusterId"], "emr_cluster", "Cluster id '%s'" % p["ClusterId"])
        return {"InstanceGroups": [{"Id": g["Id"], "Name": g.get("Name"),
                                    "InstanceGroupType": g.get("InstanceRole"),
                                    "InstanceType": g.get("InstanceType"),
                                    "RequestedInstanceCount": g.get("InstanceCount", 0),
                                    "RunningInstanceCount": g.get("InstanceCount", 0),
                                    "Status": {"State": "RUNNING"}}
                                   for g in c.fields["groups"]]}

    def emr_ModifyInstanceGroups(self, p):
        c = self.get("emr", p.get("ClusterId"), "emr_cluster",
                     "Cluster id '%s'" % p.get("ClusterId"))
        for want in p.get("InstanceGroups") or []:
            for g in c.fields["groups"]:
                if g["Id"] == want["InstanceGroupId"]:
                    if "InstanceCount" in want:
                        g["InstanceCount"] = want["InstanceCount"]
                    break
            else:
                raise ApiError(400, "InvalidRequestException",
                               "Instance group id '%s' is not valid." % want["InstanceGroupId"])
        return {}

    # ---- EMR on EKS -----------------------------------------------------------------------

    def emr_containers_CreateVirtualCluster(self, p):
        def make():
            vid = uuid.uuid4().hex[:25]
            self.res[vid] = Resource("eks_virtual_cluster", ["RUNNING"], 1, id=vid,
                                     name=p["name"], provider=p["containerProvider"],
                                     tags=p.get("tags", {}))
            return {"id": vid, "name": p["name"],
                    "arn": "arn:aws:emr-containers:%s:%s:/virtualclusters/%s" % (
                        REGION, ACCOUNT, vid)}
        return self.idempotent("emr-containers", "CreateVirtualCluster", p.get("clientToken"),
                               p, make)

    def emr_containers_DescribeVirtualCluster(self, p):
        v = self.get("emr-containers", p["id"], "eks_virtual_cluster",
                     "Virtual cluster %s" % p["id"])
        v.poll()
        return {"virtualCluster": {
            "id": v.fields["id"], "name": v.fields["name"], "state": v.state,
            "arn": "arn:aws:emr-containers:%s:%s:/virtualclusters/%s" % (
                REGION, ACCOUNT, v.fields["id"]),
            "containerProvider": v.fields["provider"], "createdAt": iso(v.created),
            "tags": v.fields["tags"]}}

    def emr_containers_DeleteVirtualCluster(self, p):
        v = self.get("emr-containers", p["id"], "eks_virtual_cluster",
                     "Virtual cluster %s" % p["id"])
        if v.state == "RUNNING":
            v.polls = self.polls("eks_virtual_cluster")
            v.redirect(["TERMINATING", "TERMINATED"])
        return {"id": p["id"]}

    def emr_containers_StartJobRun(self, p):
        v = self.get("emr-containers", p["virtualClusterId"], "eks_virtual_cluster",
                     "Virtual cluster %s" % p["virtualClusterId"])
        if v.state != "RUNNING":
            raise ApiError(400, "ValidationException",
                           "Virtual cluster %s is not in RUNNING state" % v.fields["id"])

        def make():
            jid = uuid.uuid4().hex[:19]
            fail = self.outcome("eks_job_run", "COMPLETED") == "FAILED"
            end = "FAILED" if fail else "COMPLETED"
            self.res[jid] = Resource("eks_job_run", ["PENDING", "SUBMITTED", "RUNNING", end],
                                     self.polls("eks_job_run"), id=jid, params=p,
                                     vc=v.fields["id"], name=p.get("name"))
            return {"id": jid, "name": p.get("name"), "virtualClusterId": v.fields["id"],
                    "arn": "arn:aws:emr-containers:%s:%s:/virtualclusters/%s/jobruns/%s" % (
                        REGION, ACCOUNT, v.fields["id"], jid)}
        return self.idempotent("emr-containers", "StartJobRun", p.get("clientToken"), p, make)

    def emr_containers_DescribeJobRun(self, p):
        j = self.get("emr-containers", p["id"], "eks_job_run", "Job run %s" % p["id"])
        if j.fields["vc"] != p["virtualClusterId"]:
            raise not_found("emr-containers", "Job run %s" % p["id"])
        st = j.poll()
        q = j.fields["params"]
        run = {"id": j.fields["id"], "name": j.fields["name"], "virtualClusterId": j.fields["vc"],
               "arn": "arn:aws:emr-containers:%s:%s:/virtualclusters/%s/jobruns/%s" % (
                   REGION, ACCOUNT, j.fields["vc"], j.fields["id"]),
               "state": st, "clientToken": q.get("clientToken"),
               "executionRoleArn": q.get("executionRoleArn"),
               "releaseLabel": q.get("releaseLabel"), "jobDriver": q.get("jobDriver"),
               "createdAt": iso(j.created), "createdBy": "arn:aws:iam::%s:root" % ACCOUNT}
        if st == "FAILED":
            run["failureReason"] = "USER_ERROR"
            run["stateDetails"] = "Job failed with exit code 1"
        if j.done():
            run["finishedAt"] = iso(j.ended or time.time())
        return {"jobRun": run}

    def emr_containers_CancelJobRun(self, p):
        j = self.get("emr-containers", p["id"], "eks_job_run", "Job run %s" % p["id"])
        if j.done():
            raise ApiError(400, "ValidationException",
                           "Job run %s is not in a cancellable state" % p["id"])
        j.redirect(["CANCEL_PENDING", "CANCELLED"])
        return {"id": p["id"], "virtualClusterId": p["virtualClusterId"]}

    # ---- EMR Serverless -------------------------------------------------------------------

    def app_json(self, a):
        f = a.fields
        return {"applicationId": f["id"], "name": f.get("name"),
                "arn": "arn:aws:emr-serverless:%s:%s:/applications/%s" % (REGION, ACCOUNT,
                                                                         f["id"]),
                "releaseLabel": f["release"], "type": f["type"], "state": a.state,
                "createdAt": a.created, "updatedAt": time.time()}

    def emr_serverless_CreateApplication(self, p):
        def make():
            aid = uuid.uuid4().hex[:16]
            ok = self.outcome("serverless_application", "CREATED") == "CREATED"
            a = Resource("serverless_application",
                         ["CREATING", "CREATED" if ok else "TERMINATED"],
                         self.polls("serverless_application"), id=aid, name=p.get("name"),
                         release=p["releaseLabel"], type=p["type"])
            self.res[aid] = a
            return {"applicationId": aid, "name": p.get("name"),
                    "arn": self.app_json(a)["arn"]}
        return self.idempotent("emr-serverless", "CreateApplication", p.get("clientToken"), p,
                               make)

    def app(self, aid):
        return self.get("emr-serverless", aid, "serverless_application", "Application %s" % aid)

    def emr_serverless_GetApplication(self, p):
        a = self.app(p["applicationId"])
        a.poll()
        return {"application": self.app_json(a)}

    def emr_serverless_StartApplication(self, p):
        a = self.app(p["applicationId"])
        if a.state in ("STARTING", "STARTED"):
            return {}
        if a.state not in ("CREATED", "STOPPED"):
            raise ApiError(400, "ValidationException",
                           "Application %s is in %s state" % (p["applicationId"], a.state))
        a.redirect(["STARTING", "STARTED"])
        return {}

    def emr_serverless_StopApplication(self, p):
        a = self.app(p["applicationId"])
        running = [r for r in self.res.values() if r.kind == "serverless_job_run" and
                   r.fields["app"] == a.fields["id"] and not r.done()]
        if running:
            raise ApiError(400, "ValidationException",
                           "Application %s has running jobs" % p["applicationId"])
        if a.state in ("STOPPING", "STOPPED", "CREATED"):
            if a.state == "CREATED":
                a.redirect(["STOPPED"])
            return {}
        a.redirect(["STOPPING", "STOPPED"])
        return {}

    def emr_serverless_DeleteApplication(self, p):
        a = self.app(p["applicationId"])
        if a.state not in ("CREATED", "STOPPED"):
            raise ApiError(400, "ValidationException",
                           "Application %s must be in CREATED or STOPPED state" %
                           p["applicationId"])
        a.redirect(["TERMINATED"])
        a.idx = len(a.path) - 1
        return {}

    def emr_serverless_StartJobRun(self, p):
        a = self.app(p["applicationId"])
        if a.state in ("TERMINATED", "CREATING", "STOPPING"):
            raise ApiError(400, "ValidationException",
                           "Application %s is in %s state" % (p["applicationId"], a.state))

        def make():
            jid = uuid.uuid4().hex[:16]
            fail = self.outcome("serverless_job_run", "SUCCESS") == "FAILED"
            path = ["SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "FAILED" if fail else "SUCCESS"]
            self.res[jid] = Resource("serverless_job_run", path,
                                     self.polls("serverless_job_run"), id=jid,
                                     app=a.fields["id"], params=p)
            return {"applicationId": a.fields["id"], "jobRunId": jid,
                    "arn": "arn:aws:emr-serverless:%s:%s:/applications/%s/jobruns/%s" % (
                        REGION, ACCOUNT, a.fields["id"], jid)}
        return self.idempotent("emr-serverless", "StartJobRun", p.get("clientToken"), p, make)

    def emr_serverless_GetJobRun(self, p):
        j = self.get("emr-serverless", p["jobRunId"], "serverless_job_run",
                     "Job run %s" % p["jobRunId"])
        if j.fields["app"] != p["applicationId"]:
            raise not_found("emr-serverless", "Job run %s" % p["jobRunId"])
        st = j.poll()
        q = j.fields["params"]
        run = {"applicationId": j.fields["app"], "jobRunId": j.fields["id"],
               "name": q.get("name"),
               "arn": "arn:aws:emr-serverless:%s:%s:/applications/%s/jobruns/%s" % (
                   REGION, ACCOUNT, j.fields["app"], j.fields["id"]),
               "createdBy": "arn:aws:iam::%s:root" % ACCOUNT, "createdAt": j.created,
               "updatedAt": time.time(), "executionRole": q["executionRoleArn"],
               "state": st, "stateDetails": "", "releaseLabel": "emr-6.9.0",
               "jobDriver": q.get("jobDriver", {})}
        for member in ("configurationOverrides", "tags", "executionTimeoutMinutes"):
            if member in q:  # echoed as AWS does, map keys as given
                run[member] = q[member]
        if st == "FAILED":
            run["stateDetails"] = "Job failed, please check complete logs in configured " \
                                  "logging destination. ExitCode: 1."
        return {"jobRun": run}

    def emr_serverless_CancelJobRun(self, p):
        j = self.get("emr-serverless", p["jobRunId"], "serverless_job_run",
                     "Job run %s" % p["jobRunId"])
        if not j.done():
            j.redirect(["CANCELLING", "CANCELLED"])
        return {"applicationId": p["applicationId"], "jobRunId": p["jobRunId"]}

    # ---- Athena ---------------------------------------------------------------------------

    def athena_StartQueryExecution(self, p):
        def make():
            qid = str(uuid.uuid4())
            fail = self.outcome("athena_query", "SUCCEEDED") == "FAILED"
            self.res[qid] = Resource("athena_query",
                                     ["QUEUED", "RUNNING", "FAILED" if fail else "SUCCEEDED"],
                                     self.polls("athena_query"), id=qid, params=p)
            return {"QueryExecutionId": qid}
        return self.idempotent("athena", "StartQueryExecution", p.get("ClientRequestToken"), p,
                               make)

    def query(self, qid):
        return self.get("athena", qid, "athena_query", "QueryExecution %s" % qid)

    def athena_GetQueryExecution(self, p):
        q = self.query(p["QueryExecutionId"])
        st = q.poll()
        params = q.fields["params"]
        status = {"State": st, "SubmissionDateTime": q.created}
        if q.done():
            status["CompletionDateTime"] = q.ended or time.time()
        if st == "FAILED":
            status["StateChangeReason"] = "SYNTAX_ERROR: line 1:8: Column 'x' cannot be resolved"
            status["AthenaError"] = {"ErrorCategory": 2, "ErrorType": 1006, "Retryable": False,
                                     "ErrorMessage": status["StateChangeReason"]}
        if st == "CANCELLED":
            status["StateChangeReason"] = "Query cancelled by user"
        return {"QueryExecution": {
            "QueryExecutionId": q.fields["id"], "Query": params["QueryString"],
            "StatementType": "DML",
            "ResultConfiguration": params.get("ResultConfiguration", {
                "OutputLocation": "s3://results/%s.csv" % q.fields["id"]}),
            "QueryExecutionContext": params.get("QueryExecutionContext", {}),
            "Status": status,
            "Statistics": {"EngineExecutionTimeInMillis": 100, "DataScannedInBytes": 0},
            "WorkGroup": params.get("WorkGroup", "primary"),
            "EngineVersion": {"SelectedEngineVersion": "AUTO",
                              "EffectiveEngineVersion": "Athena engine version 3"}}}

    def athena_StopQueryExecution(self, p):
        q = self.query(p["QueryExecutionId"])
        if not q.done():
            q.redirect(["CANCELLED"])
            q.idx = len(q.path) - 1
        return {}

    def athena_GetQueryResults(self, p):
        q = self.query(p["QueryExecutionId"])
        if q.state != "SUCCEEDED":
            raise ApiError(400, "InvalidRequestException",
                           "Query has not yet finished. Current state: %s" % q.state)
        rows = (self.lifecycles.get("athena_query") or {}).get(
            "rows", [["id", "name"], ["1", "a"], ["2", "b"]])
        return {"UpdateCount": 0, "ResultSet": {
            "Rows": [{"Data": [{"VarCharValue": c} for c in r]} for r in rows],
            "ResultSetMetadata": {"ColumnInfo": [
                {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": c,
                 "Label": c, "Type": "varchar", "Precision": 2147483647, "Scale": 0,
                 "Nullable": "UNKNOWN", "CaseSensitive": True} for c in rows[0]]}}}
