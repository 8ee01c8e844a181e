"""tests/fakeaws/fakeaws_model.py - the fake AWS's view of botocore's service models: which
operation a request is (X-Amz-Target or the REST URI templates), the request turned back into
the operation's input members, and validation of those members (required, types, enums,
lengths, ranges) with AWS's wording ("1 validation error detected: Value null at 'name' failed
to satisfy constraint: Member must not be null")."""
import json
import re
import urllib.parse

import botocore.session

SERVICES = {  # fake name -> botocore model name
    "emr": "emr",
    "emr-containers": "emr-containers",
    "emr-serverless": "emr-serverless",
    "athena": "athena",
}
REST_PREFIX = {"/virtualclusters": "emr-containers", "/applications": "emr-serverless"}


class Models:
    def __init__(self):
        session = botocore.session.get_session()
        self.models = {name: session.get_service_model(m) for name, m in SERVICES.items()}
        self.targets = {}  # "ElasticMapReduce" -> "emr"
        self.rest = {}     # service -> [(method, regex, op name, label names)]
        for name, m in self.models.items():
            if m.protocol == "json":
                self.targets[m.metadata["targetPrefix"]] = name
                continue
            routes = []
            for op in m.operation_names:
                http = m.operation_model(op).http
                uri = http["requestUri"].split("?")[0]
                labels = []

                def label(mo, labels=labels):
                    labels.append(mo.group(1).rstrip("+"))
                    return "(.+)" if mo.group(1).endswith("+") else "([^/]+)"
                rx = re.escape(uri).replace(r"\{", "{").replace(r"\}", "}")
                rx = re.sub(r"\{([^}]+)\}", label, rx)
                routes.append((http["method"], re.compile("^" + rx + "$"), op, labels))
            self.rest[name] = routes

    def protocol(self, service):
        return self.models[service].protocol

    def signing_name(self, service):
        return self.models[service].signing_name

    def route(self, method, path, hmap):
        """(service, operation name) or None."""
        target = (hmap.get("x-amz-target") or [None])[0]
        if target is not None and method == "POST" and path == "/":
            prefix, _, op = target.partition(".")
            service = self.targets.get(prefix)
            if service is None or op not in self.models[service].operation_names:
                return None
            return service, op
        for prefix, service in REST_PREFIX.items():
            if path == prefix or path.startswith(prefix + "/"):
                for m, rx, op, _ in self.rest[service]:
                    if m == method and rx.match(path):
                        return service, op
        return None

    def parse(self, service, opname, method, path, query, hmap, body):
        """The input members as the SDK gave them, or (None, (code, message))."""
        model = self.models[service]
        op = model.operation_model(opname)
        shape = op.input_shape
        if model.protocol == "json":
            ctype = (hmap.get("content-type") or [""])[0]
            if not ctype.startswith("application/x-amz-json-1.1"):
                return None, ("SerializationException",
                              "Content-Type must be application/x-amz-json-1.1")
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                return None, ("SerializationException", "Request body is not valid JSON")
            if not isinstance(params, dict):
                return None, ("SerializationException",
                              "Start of list found where not expected")
            return params, None
        params = {}
        if body:
            try:
                doc = json.loads(body)
            except ValueError:
                return None, ("SerializationException", "Request body is not valid JSON")
            if not isinstance(doc, dict):
                return None, ("SerializationException", "Request body must be an object")
        else:
            doc = {}
        if shape is None:
            return params, None
        for _, rx, o, labels in self.rest[service]:
            if o == opname:
                mo = rx.match(path)
                values = {lab: urllib.parse.unquote(v) for lab, v in zip(labels, mo.groups())}
                break
        qs = urllib.parse.parse_qs(query, keep_blank_values=True)
        by_wire = {}
        for name, member in shape.members.items():
            loc = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if loc == "uri":
                if wire in values:
                    params[name] = values[wire]
            elif loc == "querystring":
                if wire in qs:
                    v = qs[wire]
                    params[name] = v if member.type_name == "list" else v[0]
            elif loc == "header":
                if wire.lower() in hmap:
                    params[name] = hmap[wire.lower()][0]
            else:
                by_wire[wire] = name
        for k, v in doc.items():
            params[by_wire.get(k, k)] = v
        for name, member in shape.members.items():  # strings from the URI into numbers
            loc = member.serialization.get("location")
            if loc in ("uri", "querystring", "header") and name in params:
                if member.type_name in ("integer", "long"):
                    try:
                        params[name] = int(params[name])
                    except ValueError:
                        return None, ("SerializationException",
                                      "'%s' is not an integer" % name)
                elif member.type_name == "boolean":
                    params[name] = params[name] == "true"
        return params, None

    def validate(self, service, opname, params):
        """(errors, unknown): errors None or (code, message); unknown member paths."""
        shape = self.models[service].operation_model(opname).input_shape
        errs, unknown, types = [], [], []
        if shape is not None:
            check(shape, params, "", errs, unknown, types)
        if types:
            return ("SerializationException", types[0]), unknown
        if errs:
            n = len(errs)
            msg = "%d validation error%s detected: %s" % (n, "" if n == 1 else "s",
                                                         "; ".join(errs[:10]))
            return ("ValidationException", msg), unknown
        return None, unknown


def show(v):
    if isinstance(v, str):
        return "'%s'" % v
    return json.dumps(v)


def check(shape, v, path, errs, unknown, types):
    t = shape.type_name
    where = path or "input"
    meta = shape.metadata
    if t == "structure":
        if not isinstance(v, dict):
            types.append("Expected a structure at '%s'" % where)
            return
        for req in shape.required_members:
            if v.get(req) is None:
                errs.append("Value null at '%s' failed to satisfy constraint: "
                            "Member must not be null" % (path + "." + req if path else req))
        for k, mv in v.items():
            member = shape.members.get(k)
            sub = path + "." + k if path else k
            if member is None:
                unknown.append(sub)
            elif mv is not None:
                check(member, mv, sub, errs, unknown, types)
        if shape.metadata.get("union") and len([x for x in v.values() if x is not None]) > 1:
            errs.append("Value at '%s' failed to satisfy constraint: "
                        "Union must have exactly one member set" % where)
        return
    if t == "list":
        if not isinstance(v, list):
            types.append("Expected a list at '%s'" % where)
            return
        length(meta, len(v), v, where, errs)
        for i, x in enumerate(v):
            if x is not None:
                check(shape.member, x, "%s.%d.member" % (where, i + 1), errs, unknown, types)
        return
    if t == "map":
        if not isinstance(v, dict):
            types.append("Expected a map at '%s'" % where)
            return
        length(meta, len(v), v, where, errs)
        for k, x in v.items():
            check(shape.key, k, where + ".key", errs, unknown, types)
            if x is not None:
                check(shape.value, x, "%s.%s" % (where, k), errs, unknown, types)
        return
    if t == "string":
        if not isinstance(v, str):
            types.append("Expected a string at '%s'" % where)
            return
        if shape.enum and v not in shape.enum:
            errs.append("Value %s at '%s' failed to satisfy constraint: Member must satisfy "
                        "enum value set: [%s]" % (show(v), where, ", ".join(shape.enum)))
        length(meta, len(v), v, where, errs)
        return
    if t in ("integer", "long"):
        if isinstance(v, bool) or not isinstance(v, int):
            types.append("Expected an integer at '%s'" % where)
            return
        rng(meta, v, where, errs)
        return
    if t in ("float", "double"):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            types.append("Expected a number at '%s'" % where)
            return
        rng(meta, v, where, errs)
        return
    if t == "boolean":
        if not isinstance(v, bool):
            types.append("Expected a boolean at '%s'" % where)
        return
    if t == "timestamp":
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            types.append("Expected a timestamp at '%s'" % where)
        return
    if t == "blob":
        if not isinstance(v, str):
            types.append("Expected base64 text at '%s'" % where)
        return


def length(meta, n, v, where, errs):
    if "min" in meta and n < meta["min"]:
        errs.append("Value %s at '%s' failed to satisfy constraint: Member must have length "
                    "greater than or equal to %d" % (show(v), where, meta["min"]))
    if "max" in meta and n > meta["max"]:
        errs.append("Value at '%s' failed to satisfy constraint: Member must have length "
                    "less than or equal to %d" % (where, meta["max"]))


def rng(meta, v, where, errs):
    if "min" in meta and v < meta["min"]:
        errs.append("Value '%s' at '%s' failed to satisfy constraint: Member must have value "
                    "greater than or equal to %s" % (v, where, meta["min"]))
    if "max" in meta and v > meta["max"]:
        errs.append("Value '%s' at '%s' failed to satisfy constraint: Member must have value "
                    "less than or equal to %s" % (v, where, meta["max"]))
