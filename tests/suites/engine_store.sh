#!/bin/sh
# tests/suites/engine_store.sh - every tests/engine case again on a store (SFN_TEST_STORE):
# starts wait for the commit of their turn, and the store holds the in-memory history.
BUILD=${BUILD:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
SFN_TEST_STORE=$dir "$BUILD/tests/test_engine"
