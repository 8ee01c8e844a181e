#!/bin/sh
# tests/suites/crash.sh - executions on a store survive SIGKILL at random moments
# (tests/crash/crash_test.py: at least 20 kills, seeded; CRASH_SEED picks another seed).
exec python3 tests/crash/crash_test.py
