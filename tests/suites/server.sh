#!/bin/sh
# tests/suites/server.sh - sfnd through boto3, the AWS CLI and raw sockets (tests/server).
exec /usr/bin/python3 tests/server/server_test.py
