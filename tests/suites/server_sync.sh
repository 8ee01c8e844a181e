#!/bin/sh
# tests/suites/server_sync.sh - sfnd's StartSyncExecution and RedriveExecution through boto3
# and the AWS CLI (tests/server/redrive_test.py).
exec /usr/bin/python3 tests/server/redrive_test.py
