#!/bin/sh
# tests/suites/fakeaws.sh - self-test of the fake AWS (tests/fakeaws/) with botocore's own
# clients; the C transport tests rely on it. Last line "N passed, N failed".
exec /usr/bin/python3 tests/fakeaws/selftest.py
