"""The fixtures of tests/integration live in services.py (tests/reliability uses them too)."""

from services import *  # noqa: F401,F403 pylint: disable=wildcard-import,unused-wildcard-import
