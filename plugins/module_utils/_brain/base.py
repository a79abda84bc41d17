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

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import ensure_dir
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError


# A file is an Engine brain when it has these tables; it is this Engine's when its oldest episodes are in the live one.
ENGINE_TABLES = ("episodes", "conversations", "learning_signals", "working_memory_log")
LINEAGE_ROWS = 20


class BrainError(EngineOpsError):
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


FILES_README = {
    "<table>.jsonl": "rows the snapshot does not have (written in the bad window), as {column: value}",
    "<table>.updated.jsonl": "rows changed in place: {key, before (the snapshot's row), after (the replaced brain's)}",
    "<table>.deleted.jsonl": "rows deleted in the bad window: {key, before (the snapshot's row)}",
    "summary.json": "counts per table: rows (inserted), updated, deleted; dropped_tables (tables only the snapshot "
                    "has, whose rows come back with it); whole_tables (exported entirely: no key to compare by)",
    "values": "JSON; bytes such as embeddings as {\"base64\": ...} of the exact bytes",
}


def merge_changes(new_rows, old_rows, new_index, old_index):
    """Compare two streams of (key, *values), both ordered by key: the brain (new) and the snapshot (old).

    Yields (kind, key, before, after): "insert" for a key only in the brain, "delete" for a key only in the
    snapshot, "update" for a key in both whose values differ at the compared positions (`new_index` and `old_index`
    name the same columns in each; columns only one side has are not compared). One row of each in memory.
    """
    new_it, old_it = iter(new_rows), iter(old_rows)
    new, old = next(new_it, None), next(old_it, None)
    while new is not None or old is not None:
        if old is None or (new is not None and new[0] < old[0]):
            yield "insert", new[0], None, new[1:]
            new = next(new_it, None)
        elif new is None or old[0] < new[0]:
            yield "delete", old[0], old[1:], None
            old = next(old_it, None)
        else:
            if any(new[1 + i] != old[1 + j] for i, j in zip(new_index, old_index)):
                yield "update", new[0], old[1:], new[1:]
            new, old = next(new_it, None), next(old_it, None)


def export_diff(export, table, key_name, new_columns, new_rows, old_columns=None, old_rows=None):
    """Write a table's rows against the snapshot's (both (key, *values), in key order) into `export`: every row as
    new when the snapshot has no such table (`old_columns` None), else merge_changes() compared on the columns both
    have."""
    if old_columns is None:
        export.write(table, new_columns, (row[1:] for row in new_rows))
        return
    common = [c for c in new_columns if c in old_columns]
    changes = merge_changes(new_rows, old_rows, [new_columns.index(c) for c in common],
                            [old_columns.index(c) for c in common])
    export.write_changes(table, key_name, new_columns, old_columns, changes)


CHANGE_FILES = {"insert": "%s.jsonl", "update": "%s.updated.jsonl", "delete": "%s.deleted.jsonl"}


class JsonlExport:
    """Writes the rows a restore would remove (0600 files) and counts them; appending is allowed (two phases).

    `<table>.jsonl`: rows the snapshot does not have, one JSON object per line (column -> value).
    `<table>.updated.jsonl`: rows the snapshot has with other values, `{"key", "before", "after"}`.
    `<table>.deleted.jsonl`: rows the snapshot has and the brain no longer has, `{"key", "before"}`.
    Values are JSON; bytes (embeddings) are `{"base64": ...}` of the exact bytes.
    """

    def __init__(self, directory):
        self.directory = directory
        self.counts = {}
        self.updated = {}
        self.deleted = {}
        self.dropped = {}  # tables only the snapshot has: their rows come back with it, they are not copied
        self.whole_tables = []  # tables exported entirely because new rows could not be told apart
        ensure_dir(directory)

    def _open(self, name):
        fd = os.open(os.path.join(self.directory, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "a")

    @staticmethod
    def _close(handle):
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()

    def write(self, table, columns, rows):
        count = 0
        handle = self._open(CHANGE_FILES["insert"] % table)
        try:
            for row in rows:
                handle.write(json.dumps(dict((c, jsonable(v)) for c, v in zip(columns, row)), sort_keys=True) + "\n")
                count += 1
        finally:
            self._close(handle)
        self.counts[table] = self.counts.get(table, 0) + count
        return count

    def write_changes(self, table, key_name, new_columns, old_columns, changes):
        """Write merge_changes() output: inserted rows as write() does, updated and deleted rows keyed by primary key."""
        handles = {}
        counters = {"insert": self.counts, "update": self.updated, "delete": self.deleted}
        try:
            for kind, key, before, after in changes:
                if kind == "insert":
                    line = dict((c, jsonable(v)) for c, v in zip(new_columns, after))
                else:
                    line = {"key": {key_name: jsonable(key)},
                            "before": dict((c, jsonable(v)) for c, v in zip(old_columns, before))}
                    if kind == "update":
                        line["after"] = dict((c, jsonable(v)) for c, v in zip(new_columns, after))
                if kind not in handles:
                    handles[kind] = self._open(CHANGE_FILES[kind] % table)
                handles[kind].write(json.dumps(line, sort_keys=True) + "\n")
                counters[kind][table] = counters[kind].get(table, 0) + 1
        finally:
            for handle in handles.values():
                self._close(handle)
        self.counts.setdefault(table, 0)

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
                "updated": dict(self.updated), "deleted": dict(self.deleted), "dropped_tables": dict(self.dropped),
                "whole_tables": sorted(set(self.whole_tables)), "files": FILES_README}
        body.update(extra or {})
        path = os.path.join(self.directory, "summary.json")
        with open(path, "w") as handle:
            json.dump(body, handle, indent=2, sort_keys=True)
        os.chmod(path, 0o600)
        return body
