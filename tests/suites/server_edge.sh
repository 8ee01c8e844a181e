#!/bin/sh
# tests/suites/server_edge.sh - sfnd's --config, --auth sigv4, hostile requests, file mode and log
# (tests/server/edge_test.py).
exec /usr/bin/python3 tests/server/edge_test.py
