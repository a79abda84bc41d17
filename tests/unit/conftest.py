"""Unit tests import the reference Engine and the collection's plugins without Ansible running."""

import atexit
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_DIR = os.path.join(ROOT, "tests", "engine")  # `engine` package and build.py

if ENGINE_DIR not in sys.path:
    sys.path.insert(0, ENGINE_DIR)

# The collection's own imports name it `ansible_collections.engine_ops.lifecycle`: give this
# checkout that name through a throwaway symlink tree (Python follows symlinks; only ansible-test won't).
_TREE = tempfile.mkdtemp(prefix="engine_ops-units-")
os.makedirs(os.path.join(_TREE, "ansible_collections", "engine_ops"))
os.symlink(ROOT, os.path.join(_TREE, "ansible_collections", "engine_ops", "lifecycle"))
sys.path.insert(0, _TREE)
atexit.register(shutil.rmtree, _TREE, True)
