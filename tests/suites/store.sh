#!/bin/sh
# tests/suites/store.sh - the store at its edges through the sfn command (tests/store).
exec python3 tests/store/store_test.py
