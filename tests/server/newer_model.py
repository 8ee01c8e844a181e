"""The Step Functions model of Debian's botocore (1.29, Dec 2022) with the members it predates
that the redrive and sync tests drive: RedriveExecution, StartSyncExecution's includedData,
DescribeExecution's and ListExecutions' redrive members, ListExecutions' redriveFilter and the
ExecutionRedriven event's details. The additions are written from the member tables of
../shared/spec/api.md (Appendix A, taken from the current model); botocore's loader takes the
result from AWS_DATA_PATH (clients.md), for boto3 and the AWS CLI alike. No network."""
import json
import os

import botocore.loaders

SERVICE = "stepfunctions"
VERSION = "2016-11-23"


def _add(shapes, name, shape):
    if name not in shapes:
        shapes[name] = shape


def patched():
    model = botocore.loaders.create_loader().load_service_model(SERVICE, "service-2", VERSION)
    ops, shapes = model["operations"], model["shapes"]
    _add(shapes, "ClientToken", {"type": "string", "max": 64, "min": 1, "pattern": "[!-~]+"})
    _add(shapes, "RedriveCount", {"type": "integer", "box": True})
    _add(shapes, "ExecutionRedriveStatus",
         {"type": "string", "enum": ["REDRIVABLE", "NOT_REDRIVABLE", "REDRIVABLE_BY_MAP_RUN"]})
    _add(shapes, "SensitiveData", {"type": "string", "max": 262144, "sensitive": True})
    _add(shapes, "ExecutionRedriveFilter", {"type": "string",
                                            "enum": ["REDRIVEN", "NOT_REDRIVEN"]})
    _add(shapes, "IncludedData", {"type": "string", "enum": ["ALL_DATA", "METADATA_ONLY"]})
    _add(shapes, "ExecutionNotRedrivable", {"type": "structure", "members": {
        "message": {"shape": "ErrorMessage"}}, "exception": True})
    _add(shapes, "RedriveExecutionInput", {"type": "structure", "required": ["executionArn"],
                                           "members": {
        "executionArn": {"shape": "Arn"},
        "clientToken": {"shape": "ClientToken", "idempotencyToken": True}}})
    _add(shapes, "RedriveExecutionOutput", {"type": "structure", "required": ["redriveDate"],
                                            "members": {"redriveDate": {"shape": "Timestamp"}}})
    _add(shapes, "ExecutionRedrivenEventDetails", {"type": "structure", "members": {
        "redriveCount": {"shape": "RedriveCount"}}})
    ops["RedriveExecution"] = {
        "name": "RedriveExecution", "http": {"method": "POST", "requestUri": "/"},
        "input": {"shape": "RedriveExecutionInput"},
        "output": {"shape": "RedriveExecutionOutput"},
        "errors": [{"shape": "ExecutionDoesNotExist"}, {"shape": "ExecutionNotRedrivable"},
                   {"shape": "ExecutionLimitExceeded"}, {"shape": "InvalidArn"}],
        "idempotent": True}
    shapes["StartSyncExecutionInput"]["members"]["includedData"] = {"shape": "IncludedData"}
    shapes["DescribeExecutionInput"]["members"]["includedData"] = {"shape": "IncludedData"}
    out = shapes["DescribeExecutionOutput"]["members"]
    out["redriveCount"] = {"shape": "RedriveCount"}
    out["redriveDate"] = {"shape": "Timestamp"}
    out["redriveStatus"] = {"shape": "ExecutionRedriveStatus"}
    out["redriveStatusReason"] = {"shape": "SensitiveData"}
    item = shapes["ExecutionListItem"]["members"]
    item["redriveCount"] = {"shape": "RedriveCount"}
    item["redriveDate"] = {"shape": "Timestamp"}
    shapes["ListExecutionsInput"]["members"]["redriveFilter"] = {"shape":
                                                                 "ExecutionRedriveFilter"}
    shapes["HistoryEvent"]["members"]["executionRedrivenEventDetails"] = {
        "shape": "ExecutionRedrivenEventDetails"}
    return model


def install(root):
    """Writes the model under `root` (use it as AWS_DATA_PATH) and returns `root`."""
    d = os.path.join(root, SERVICE, VERSION)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "service-2.json"), "w") as f:
        json.dump(patched(), f)
    return root
