"""Fixtures of tests/reliability: the real services of tests/integration (shared in services.py)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))

from services import *  # noqa: E402,F401,F403 pylint: disable=wildcard-import,unused-wildcard-import,wrong-import-position
