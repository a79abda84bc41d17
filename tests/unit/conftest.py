"""Unit tests import the reference Engine and the collection's plugins without Ansible running."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_DIR = os.path.join(ROOT, "tests", "engine")  # `engine` package and build.py

if ENGINE_DIR not in sys.path:
    sys.path.insert(0, ENGINE_DIR)
