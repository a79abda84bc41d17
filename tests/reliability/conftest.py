"""Fixtures of tests/reliability: the real services of tests/integration (shared in services.py)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))

from services import *  # noqa: E402,F401,F403 pylint: disable=wildcard-import,unused-wildcard-import,wrong-import-position


def pytest_configure(config):
    config.addinivalue_line("markers", "serial: restarts the Docker daemon or mounts a filesystem, so it runs alone "
                                       "(scripts/run_tests.py runs these after the others, one at a time)")
