#!/bin/sh
# tests/suites/cli.sh - the sfn command's behaviour (tests/cli/cases.json).
exec python3 tests/cli/run_cli_tests.py
