# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every brain backend provides, and helpers they share.

A backend snapshots a live brain into a directory, describes a brain (schema, fingerprint, per
table: rows, highest key, newest created_at), stages a snapshot beside the live brain, exports the
rows a restore would remove, swaps staged and live, and can swap a set-aside brain back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import os

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._files import ensure_dir


class BrainError(Exception):
    """A brain operation failed; the message names the operation and the cause."""


def fingerprint(schema):
    """Hash of a {table: {column: type}} schema (plus index definitions when given as '__indexes__')."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def brain_reads(description):
    """How a description read the brain's virtual tables (vec0 through sqlite-vec or its shadow tables, FTS5), or
    None for a brain without any: what a module's result reports as `brain_reads`."""
    if not description.get("virtual_tables"):
        return None
    extensions = description.get("extensions") or {}
    return {"vec0": extensions.get("vec0"), "sqlite_vec": extensions.get("sqlite_vec"),
            "reason": extensions.get("reason"), "fts5": extensions.get("fts5"),
            "tables": description["virtual_tables"]}


def jsonable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class JsonlExport:
    """Writes one JSONL file per table (0600) and counts rows; appending is allowed (two phases)."""

    def __init__(self, directory):
        self.directory = directory
        self.counts = {}
        self.whole_tables = []  # tables exported entirely because new rows could not be told apart
        ensure_dir(directory)

    def write(self, table, columns, rows):
        path = os.path.join(self.directory, "%s.jsonl" % table)
        count = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as handle:
            for row in rows:
                handle.write(json.dumps(dict((c, jsonable(v)) for c, v in zip(columns, row)), sort_keys=True) + "\n")
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        self.counts[table] = self.counts.get(table, 0) + count
        return count

    def sizes(self):
        """Bytes of each table's file now: where a later phase starts appending."""
        names = [n for n in os.listdir(self.directory) if n.endswith(".jsonl")]
        return dict((n[:-len(".jsonl")], os.path.getsize(os.path.join(self.directory, n))) for n in names)

    def rewind(self, sizes):
        """Cut each table's file back to `sizes` (files not in it go): a phase interrupted mid-append is redone
        from where it started, so no row is exported twice."""
        for name in os.listdir(self.directory):
            table = name[:-len(".jsonl")] if name.endswith(".jsonl") else None
            if table is None:
                continue
            path = os.path.join(self.directory, name)
            if table not in sizes:
                os.unlink(path)
            elif os.path.getsize(path) > sizes[table]:
                with open(path, "r+b") as handle:
                    handle.truncate(sizes[table])
                    handle.flush()
                    os.fsync(handle.fileno())

    def summary(self, extra=None):
        body = {"rows": dict(self.counts), "total_rows": sum(self.counts.values()),
                "whole_tables": sorted(set(self.whole_tables))}
        body.update(extra or {})
        path = os.path.join(self.directory, "summary.json")
        with open(path, "w") as handle:
            json.dump(body, handle, indent=2, sort_keys=True)
        os.chmod(path, 0o600)
        return body
