"""Benchmarks: how the tool's costs grow with the database, next to what the database itself can
do and next to the naive implementation. Run with ``python -m benchmarks`` (see ``--help``); not
part of the test run."""
