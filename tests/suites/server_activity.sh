#!/bin/sh
# tests/suites/server_activity.sh - activities through a boto3 worker (tests/server/activity_test.py):
# Activity* events and details, TimeoutSeconds/HeartbeatSeconds clocks, a restart while a
# worker holds a task, unguessable tokens, deleted activities and machines.
exec /usr/bin/python3 tests/server/activity_test.py
