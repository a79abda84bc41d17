# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The append-only ledger: one JSON object per line, appended under an exclusive lock, fsynced."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._files import ensure_dir


def append(path, entry):
    ensure_dir(os.path.dirname(os.path.abspath(path)))
    line = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # parallel forks append whole lines, never interleaved
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(line)


def read(path):
    """Every entry; a torn last line (a controller killed mid-write) is skipped, not fatal."""
    entries = []
    if not os.path.exists(path):
        return entries
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                entries.append(json.loads(raw.decode("utf-8")))
            except ValueError:
                continue
    return entries
