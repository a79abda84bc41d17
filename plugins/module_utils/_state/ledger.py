# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The append-only ledger: one JSON object per line, appended under an exclusive lock, fsynced."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import ensure_dir
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError


LEDGER_SPEC = dict(
    path=dict(type="path", required=True),
    entry=dict(type="dict", required=True),
    redact=dict(type="list", elements="str", default=["password", "token", "secret", "webhook_url", "api_key",
                                                      "encryption_key"]),
)


class LedgerError(EngineOpsError):
    pass


def redacted(value, keys):
    if isinstance(value, dict):
        return dict((k, "(redacted)" if k.lower() in keys else redacted(v, keys)) for k, v in value.items())
    if isinstance(value, list):
        return [redacted(v, keys) for v in value]
    return value


def record(params, check_mode, diff=False):  # pylint: disable=unused-argument
    """What engine_ledger does, module or in-process action: the result, or LedgerError naming the cause.

    (`diff` is accepted like every in-process action's work; the ledger has no diff.)"""
    entry = redacted(params["entry"], set(k.lower() for k in params["redact"]))
    entry.setdefault("recorded_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if check_mode:
        return {"changed": True, "entry": entry, "bytes": 0}
    try:
        written = append(params["path"], entry)
    except (IOError, OSError) as exc:
        raise LedgerError("append to the ledger %s: %s" % (params["path"], exc))
    return {"changed": True, "entry": entry, "bytes": written}


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
