# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase checkpoints of one operation (rollback, upgrade) on one Engine, kept on the Engine's host.

A run records each phase it finished, with the decision it took (snapshot, data rollback or not). A later
run of the same operation to the same target resumes the unfinished record: it re-uses the decision (the
brain after a swap no longer looks like it needs one) and skips the phases already done.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import write_atomic
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError

FINAL = ("done", "failed")


class CheckpointError(EngineOpsError):
    pass


def checkpoint_path(state_dir, engine, operation):
    return os.path.join(state_dir, "%s.%s.json" % (engine, operation))


def load(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError):
        return None
    except ValueError:
        raise CheckpointError("the checkpoint %s is not JSON; move it away after checking the Engine by hand" % path)


def resumable(record, target):
    return bool(record) and record.get("status") == "in_progress" and record.get("target") == target


def open_run(record, operation, target, run_id, now, initial_data=None):
    """(record to continue, resumed, superseded unfinished record or None). A new record starts with `initial_data`;
    a continued one keeps its own data (a value chosen before a step is found again by the run that resumes it)."""
    if resumable(record, target):
        record = dict(record)
        if run_id not in record["run_ids"]:
            record["run_ids"] = record["run_ids"] + [run_id]
        return record, True, None
    superseded = record if record and record.get("status") == "in_progress" else None
    return ({"operation": operation, "target": target, "status": "in_progress", "started": now,
             "run_ids": [run_id], "phases": [], "data": dict(initial_data or {})}, False, superseded)


def record_phase(record, phase, data, now):
    record = dict(record)
    record["phases"] = record["phases"] + [{"phase": phase, "at": now}]
    merged = dict(record.get("data") or {})
    merged.update(data or {})
    record["data"] = merged
    if phase in FINAL:
        record["status"] = phase
        record["finished"] = now
    return record


def phases_done(record):
    return [entry["phase"] for entry in (record or {}).get("phases", [])]


def timings(record):
    """Seconds from each phase boundary to the next, in order (the first phase counts from the start)."""
    result = {}
    previous = (record or {}).get("started")
    for entry in (record or {}).get("phases", []):
        if previous is not None:
            result[entry["phase"]] = round(result.get(entry["phase"], 0) + entry["at"] - previous, 3)
        previous = entry["at"]
    return result


def save(path, record):
    write_atomic(path, json.dumps(record, indent=2, sort_keys=True))


def now_epoch():
    return round(time.time(), 3)
