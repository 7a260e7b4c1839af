#!/usr/bin/env python3
"""Runs Tollgate's end-to-end tests: every tests/e2e/test_*.py.

usage: python3 tests/e2e/run.py [FILTER ...]

A FILTER keeps the tests whose id (module.Class.test_name) contains it.
Ends with one line "e2e: N passed, N failed, N skipped" and exits
non-zero when any test failed or raised an error.
"""

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


def load(filters):
    loader = unittest.TestLoader()
    suite = loader.discover(str(HERE), pattern="test_*.py",
                            top_level_dir=str(HERE))
    tests = list(flatten(suite))
    if filters:
        tests = [t for t in tests if any(f in t.id() for f in filters)]
    return unittest.TestSuite(tests), len(tests)


def main(argv):
    sys.path.insert(0, str(HERE))
    suite, count = load(argv[1:])
    if argv[1:] and count == 0:
        print("e2e: no test matches %s" % " ".join(argv[1:]),
              file=sys.stderr)
    result = unittest.TextTestRunner(verbosity=2).run(suite)

    failed = (len(result.failures) + len(result.errors)
              + len(result.unexpectedSuccesses))
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped - len(result.expectedFailures)
    # Errors in setUpClass/tearDownClass are not counted in testsRun.
    passed = max(passed, 0)
    print("e2e: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed or (argv[1:] and count == 0) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
