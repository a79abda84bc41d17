# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bringing a bad window back: the rows a restore exported, re-imported into the restored brain by the Engine.

The plan reads the export and the live brain (read-only) and sorts every exported row of the chosen tables:
importable (its key is free), already present (same key, same values: an earlier import), or a conflict (same
key, other values). Rows the bad window changed in place or deleted are never applied: the Engine's import
inserts only, and re-applying a change or a deletion is the operator's decision; the plan counts them.
The import itself goes through the Engine's `POST /memory/import`, so the Engine stays the brain's only writer
and keeps its vector and full-text indexes in step.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import CHANGE_FILES, jsonable
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError

CONFLICTS_SHOWN = 20


class ReimportError(EngineOpsError):
    """The re-import cannot be done as asked; the message names the problem."""


def _lines(export_dir, table, kind):
    path = os.path.join(export_dir, CHANGE_FILES[kind] % table)
    if not os.path.exists(path):
        return
    with open(path) as handle:
        for line in handle:
            if line.strip():
                yield line


def read_rows(export_dir, table):
    """The exported rows a table gained in the bad window."""
    return [json.loads(line) for line in _lines(export_dir, table, "insert")]


def count_rows(export_dir, table, kind):
    """How many rows the bad window changed in place ("update") or deleted ("delete"); not read into memory."""
    return sum(1 for dummy in _lines(export_dir, table, kind))


def exported_tables(export_dir):
    return sorted(set(n.split(".")[0] for n in os.listdir(export_dir) if n.endswith(".jsonl")))


def plan(backend, export_dir, tables, ignore_columns=()):
    """{table: {rows, importable, already_present, conflicts, changed_in_place, deleted, columns_not_in_brain}} and
    the rows to send per table. Raises ReimportError for a table the export or the brain does not have, or columns
    the brain lacks that `ignore_columns` ("table.column") does not name."""
    if not os.path.isfile(os.path.join(export_dir, "summary.json")):
        raise ReimportError("%s is not a restore's export (it has no summary.json)" % export_dir)
    unknown = [t for t in tables if t not in exported_tables(export_dir)]
    if unknown:
        raise ReimportError("the export %s has no rows of %s (it has: %s)" % (
            export_dir, ", ".join(unknown), ", ".join(exported_tables(export_dir)) or "none"))
    report, send = {}, {}
    for table in tables:
        rows = read_rows(export_dir, table)
        live = backend.rows_by_key(table, rows)
        if live is None:
            raise ReimportError("the restored brain has no table %s" % table)
        missing = sorted(set(c for row in rows for c in row) - set(live["columns"]))
        unasked = [c for c in missing if "%s.%s" % (table, c) not in ignore_columns]
        if unasked:
            raise ReimportError("the restored brain's %s has no column %s; name each in ignore_columns (as %s) to import "
                                "without it, or re-import on a release that has it" % (
                                    table, ", ".join(unasked), ", ".join("%s.%s" % (table, c) for c in unasked)))
        entry = {"rows": len(rows), "importable": 0, "already_present": 0, "conflicts": 0, "conflicting_keys": [],
                 "changed_in_place": count_rows(export_dir, table, "update"),
                 "deleted": count_rows(export_dir, table, "delete"), "columns_not_in_brain": missing}
        chosen = []
        for row in rows:
            key = row.get(live["key"])
            present = live["present"].get(key)
            if present is None:
                entry["importable"] += 1
                chosen.append(dict((c, v) for c, v in row.items() if c not in missing))
            elif all(jsonable(present.get(c)) == v for c, v in row.items() if c in present):
                entry["already_present"] += 1
            else:
                entry["conflicts"] += 1
                if len(entry["conflicting_keys"]) < CONFLICTS_SHOWN:
                    entry["conflicting_keys"].append({live["key"]: key})
        report[table] = entry
        send[table] = chosen
    return report, send


def import_rows(post, send):
    """POST the chosen rows to the Engine's /memory/import in one transaction; return its per-table counts.

    `post(body)` returns (status, parsed body). A conflict the plan did not see (a turn wrote the key since) makes
    the Engine import nothing (on_conflict=fail): raised as ReimportError.
    """
    body = {"tables": dict((t, rows) for t, rows in send.items() if rows), "on_conflict": "fail"}
    if not body["tables"]:
        return {}
    status, answer = post(body)
    if status == 409:
        raise ReimportError("the Engine refused the import: %d rows already present (%s); nothing was imported" % (
            len(answer.get("conflicts") or []), json.dumps((answer.get("conflicts") or [])[:5])))
    if status == 401:
        raise ReimportError("the Engine refused engine_api_key (HTTP 401): set it to the Engine's key")
    if status != 200:
        raise ReimportError("the Engine answered HTTP %s to the import: %s" % (status, json.dumps(answer)[:300]))
    return answer.get("imported") or {}
