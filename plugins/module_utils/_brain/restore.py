# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore a brain from a snapshot in phases, so the Engine is down only for the swap.

preflight (serving) -> stage beside the live brain and verify (serving) -> export the bad window
(serving) -> stop the Engine -> export what came in since -> swap -> verify -> start the Engine.
Nothing is changed until the stage is verified; the replaced brain is kept for undo.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import time
from datetime import datetime

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError, JsonlExport
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import fsync_path, write_atomic
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineOpsError

STAGE_BYTES_PER_SECOND = 300 * 1024 * 1024  # conservative copy rate used for the estimate only


class RestoreError(EngineOpsError):
    """A restore step failed or was refused; `changed` and `result` say how far it got."""


class CountingExport:
    """Counts what an export would write (check mode)."""

    def __init__(self):
        self.counts, self.updated, self.deleted, self.dropped = {}, {}, {}, {}
        self.whole_tables = []

    def write(self, table, columns, rows):
        count = sum(1 for dummy in rows)
        self.counts[table] = self.counts.get(table, 0) + count
        return count

    def write_changes(self, table, key_name, new_columns, old_columns, changes):
        counters = {"insert": self.counts, "update": self.updated, "delete": self.deleted}
        self.counts.setdefault(table, 0)
        for kind, dummy, dummy_before, dummy_after in changes:
            counters[kind][table] = counters[kind].get(table, 0) + 1


def marks_of(manifest):
    return manifest.get("tables") or {}


def mismatch(description, manifest):
    """How a brain differs from a snapshot: schema, and per table rows, highest key, newest created_at."""
    problems = []
    if description["fingerprint"] != manifest["schema_fingerprint"]:
        problems.append("schema fingerprint %s != %s" % (description["fingerprint"], manifest["schema_fingerprint"]))
    expected = marks_of(manifest)
    for table in sorted(set(expected) | set(description["tables"])):
        got, want = description["tables"].get(table), expected.get(table)
        if got != want:
            problems.append("%s: %s != %s" % (table, got, want))
    return problems


def brain_matches(description, manifest):
    return not mismatch(description, manifest)


def age_seconds(manifest, now=None):
    created = datetime.strptime(manifest["created_at"][:19], "%Y-%m-%dT%H:%M:%S")
    return round(((now or datetime.utcnow()) - created).total_seconds(), 1)


def plan(backend, manifest, now=None, snapshot_dir=None):
    """What a restore would do and set aside. Where the snapshot can be read in place (SQLite), the live brain is
    compared with it row by row, so updated and deleted rows are counted too; else new rows are counted by the
    snapshot's high-water marks and the rest once the snapshot is staged."""
    counting = CountingExport()
    basis = backend.snapshot_brain(snapshot_dir) if snapshot_dir else None
    backend.export(counting, marks_of(manifest), basis=basis)
    return {
        "snapshot": manifest["id"],
        "snapshot_created_at": manifest["created_at"],
        "recovery_point_age_seconds": age_seconds(manifest, now),
        "rows_to_export": counting.counts,
        "rows_to_export_total": sum(counting.counts.values()),
        "rows_updated_to_export": counting.updated if basis else None,
        "rows_deleted_to_export": counting.deleted if basis else None,
        "tables_only_in_snapshot": counting.dropped if basis else None,
        "estimated_stage_seconds": round(manifest["size_bytes"] / float(STAGE_BYTES_PER_SECOND), 2),
        "estimated_swap_seconds": 0.1,
        "steps": ["verify snapshot %s (checksums, integrity)" % manifest["id"],
                  "stage it beside the live brain and verify rows and schema",
                  "export rows written after the snapshot (%d now)%s" % (
                      sum(counting.counts.values()), ", rows changed in place (%d) and deleted (%d)" % (
                          sum(counting.updated.values()), sum(counting.deleted.values())) if basis else ""),
                  "stop the Engine", "export rows written since", "swap staged and live; keep the live brain aside",
                  "verify the live brain against the manifest", "start the Engine",
                  "export again from the replaced brain against the snapshot (rows changed in place meanwhile)"
                  if basis else "keep the replaced brain for undo"],
    }


def preflight(backend, manifest, snapshot_dir, engine_name):
    """Checks that need nothing changed; raise RestoreError naming the first problem."""
    if manifest.get("engine") != engine_name:
        raise RestoreError("snapshot %s belongs to engine %r, not %r" % (manifest["id"], manifest.get("engine"),
                                                                         engine_name))
    if manifest.get("backend") != backend.name:
        raise RestoreError("snapshot %s is a %s snapshot; this brain is %s" % (manifest["id"], manifest.get("backend"),
                                                                               backend.name))
    if not backend.exists():
        raise RestoreError("the live brain %s does not exist" % backend.location())
    lacking = backend.privilege_problems("restore")
    if lacking:
        raise RestoreError("the restore cannot be finished with these privileges: %s" % "; ".join(lacking))
    problems = backend.verify_snapshot(snapshot_dir)
    if problems:
        raise RestoreError("snapshot %s fails its integrity check: %s" % (manifest["id"], "; ".join(problems[:3])))
    need = int(manifest["size_bytes"] * 1.05) + 64 * 1024 * 1024
    free = backend.free_bytes()
    if free is not None and free < need:
        raise RestoreError("not enough free space beside the brain to stage snapshot %s: %d MiB free, %d MiB needed"
                           % (manifest["id"], free >> 20, need >> 20))


STAGE_RECORD = "staged.json"
SWAP_RECORD = "swapped.json"


def timed(timings, now, name, func, *args):
    began = now()
    value = func(*args)
    timings[name] = round(now() - began, 3)
    return value


def stage(backend, manifest, snapshot_dir, export_dir, now=time.monotonic):
    """Phase 1, Engine serving: stage and verify the snapshot, export the bad window so far.

    Leaves a stage record in the snapshot directory for the swap phase; nothing live is changed.
    """
    timings = {}
    try:
        staged = timed(timings, now, "stage", backend.stage, snapshot_dir, manifest["id"])
    except (BrainError, OSError) as exc:  # a disk that filled up, a dropped connection: nothing half-staged stays
        try:
            backend.discard(backend.staged_path(manifest["id"]))
        except (BrainError, OSError):
            pass
        raise RestoreError("staging snapshot %s failed: %s; the live brain was not touched" % (manifest["id"], exc))
    try:
        description = timed(timings, now, "verify_stage", backend.describe_staged, staged)
        problems = mismatch(description, manifest)
        if problems:
            raise RestoreError("the staged copy of snapshot %s does not match its manifest: %s"
                               % (manifest["id"], "; ".join(problems[:3])))
        export = JsonlExport(export_dir)
        # compared row by row with the staged copy (= the snapshot): inserted, updated and deleted rows
        high = timed(timings, now, "export_serving", lambda: backend.export(export, marks_of(manifest), basis=staged))
    except (RestoreError, BrainError) as exc:
        backend.discard(staged)
        raise RestoreError("%s; the staged copy was removed and the live brain was not touched" % exc)
    record = {"snapshot": manifest["id"], "staged": staged, "identity": backend.staged_identity(staged),
              "mcp_servers": backend.column_values("server_registry", "name"),
              "high_water": high, "export_dir": export_dir, "exported_serving": dict(export.counts),
              "changes_serving": {"updated": export.updated, "deleted": export.deleted, "dropped": export.dropped},
              "whole_tables": list(export.whole_tables), "export_sizes": export.sizes(),
              "timings": timings}
    path = os.path.join(snapshot_dir, STAGE_RECORD)
    with open(path, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.chmod(path, 0o600)
    return record


def load_stage(backend, manifest, snapshot_dir):
    """The stage record of an earlier stage phase, checked to still describe the staged copy."""
    path = os.path.join(snapshot_dir, STAGE_RECORD)
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (IOError, OSError, ValueError):
        raise RestoreError("snapshot %s has not been staged (run with phase=stage first)" % manifest["id"])
    if record.get("snapshot") != manifest["id"] or backend.staged_identity(record["staged"]) != record["identity"]:
        raise RestoreError("the staged copy of snapshot %s changed or vanished since it was staged; stage it again"
                           % manifest["id"])
    return record


def existing_stage(backend, manifest, snapshot_dir):
    """The stage record of an earlier, interrupted run when its staged copy is intact, else None."""
    try:
        return load_stage(backend, manifest, snapshot_dir)
    except (RestoreError, BrainError, OSError, KeyError):
        return None


def swap(backend, manifest, snapshot_dir, record, engine, stamp, now=time.monotonic):
    """Phase 2: stop the Engine (when managed), export what came since, swap, verify, start."""
    timings = dict(record.get("timings") or {})
    result = {"timings": timings, "staged": record["staged"]}
    try:
        result["drain"] = timed(timings, now, "stop_engine", engine.stop)
        users = engine.in_use()
        if users:
            raise RestoreError("the brain is in use by %s; drain the Engine first (engine_drain state=drained)"
                               % ", ".join(users))
    except RestoreError as exc:
        restarted, said = engine.after_failure()
        if restarted:
            result["health"] = restarted
        raise RestoreError("%s; nothing was swapped, the live brain was not touched%s" % (exc, said),
                           changed=bool(result.get("drain")), result=result)
    result.update(export_since_stage(backend, manifest, record, stamp, timings, now))
    # Recorded before the swap: a run killed right after it recognises the live brain as this swap's copy
    # (by its identity) and does not swap again; until the swap happens the record matches nothing.
    result["aside"] = backend.aside_path(stamp)
    write_swap_record(snapshot_dir, result, record["identity"], manifest["id"], stamp)
    aside = timed(timings, now, "swap", backend.swap, record["staged"], stamp)
    os.unlink(os.path.join(snapshot_dir, STAGE_RECORD))
    result["aside"] = aside
    # The staged copy was verified row by row; after an O(1) swap it is enough (and keeps the downtime
    # independent of the brain's size) to prove the live brain *is* that copy, with the right owner.
    identity = timed(timings, now, "verify_live", backend.staged_identity, backend.live_name())
    problems = backend.ownership_problems(aside)
    if identity != record["identity"]:
        problems.insert(0, "the live brain is not the verified staged copy")
    if problems:
        os.unlink(os.path.join(snapshot_dir, SWAP_RECORD))
        failed = backend.swap_back(aside, stamp + "-failed")
        raise RestoreError("the restored brain did not verify (%s); the replaced brain was put back and the failed "
                           "one kept as %s" % ("; ".join(problems[:3]), failed), changed=True, result=result)
    result["verified"] = True
    result["health"] = timed(timings, now, "start_engine", engine.start)
    if getattr(engine, "stopped", False):
        # Left stopped on purpose (start_engine=false: the image switch starts it): settling now would lengthen the
        # downtime by a full read of the brain. A later run on the same snapshot settles it (settle_pending).
        result["export_settled"] = False
        return result
    settled = timed(timings, now, "settle_export", settle_export, backend, manifest, snapshot_dir, record["export_dir"],
                    aside, stamp)
    result.update(settled or {})
    return result


def settle_export(backend, manifest, snapshot_dir, export_dir, aside, stamp):
    """After the swap, the Engine back: the export made again from the replaced brain against the snapshot itself.

    The serving-phase export compared the brain while the Engine still wrote to it, and the stopped phase only
    adds rows with higher keys; a row changed in place in between is caught here. The new files replace the old
    ones one by one, summary.json last with `settled`: an interrupted settle is simply done again. The snapshot is
    read in place (SQLite) or loaded once more into a scratch schema (PostgreSQL, schema strategy). Returns the
    export's totals, or None where the snapshot can't be read as a brain (a dump under the database strategy) or
    the replaced brain is no longer kept.
    """
    if not backend.kept(aside):
        return None
    basis = backend.settle_basis(snapshot_dir)
    if basis is None:
        return None
    scratch = export_dir.rstrip(os.sep) + ".settling"
    shutil.rmtree(scratch, ignore_errors=True)
    export = JsonlExport(scratch)
    try:
        backend.export(export, marks_of(manifest), basis=basis, source=aside)
    finally:
        backend.release_basis(basis)
    summary = export.summary({"snapshot": manifest["id"], "exported_at": stamp, "settled": True})
    fresh = set(os.listdir(scratch))
    for name in os.listdir(export_dir):
        if name.endswith(".jsonl") and name not in fresh:
            os.unlink(os.path.join(export_dir, name))
    for name in sorted(fresh, key=lambda n: n == "summary.json"):
        os.replace(os.path.join(scratch, name), os.path.join(export_dir, name))
    os.rmdir(scratch)
    fsync_path(export_dir)
    return {"exported": summary["rows"], "exported_total": summary["total_rows"],
            "exported_updated": summary["updated"], "exported_deleted": summary["deleted"], "export_settled": True}


def settle_pending(backend, manifest, snapshot_dir, record, stamp):
    """The settle an interrupted run did not finish (its summary.json is not `settled`), else None."""
    try:
        with open(os.path.join(record["export_dir"], "summary.json")) as handle:
            if json.load(handle).get("settled"):
                return None
    except (IOError, OSError, ValueError):
        pass
    return settle_export(backend, manifest, snapshot_dir, record["export_dir"], record["aside"], stamp)


def export_since_stage(backend, manifest, record, stamp, timings, now=time.monotonic):
    """Engine stopped: append what arrived after the stage's export; the export's rows, totals and external calls."""
    export = JsonlExport(record["export_dir"])
    if record.get("export_sizes") is not None:
        export.rewind(record["export_sizes"])  # an earlier, interrupted swap may have appended some already
    export.counts = dict(record.get("exported_serving") or {})
    changes = record.get("changes_serving") or {}
    export.updated, export.deleted, export.dropped = (dict(changes.get(k) or {}) for k in ("updated", "deleted", "dropped"))
    export.whole_tables = list(record.get("whole_tables") or [])
    timed(timings, now, "export_stopped", backend.export, export, marks_of(manifest), record["high_water"])
    summary = export.summary({"snapshot": manifest["id"], "exported_at": stamp})
    return {"exported": summary["rows"], "exported_total": summary["total_rows"], "export_dir": record["export_dir"],
            "exported_updated": summary["updated"], "exported_deleted": summary["deleted"],
            "exported_whole_tables": summary["whole_tables"],
            "external_calls": external_calls(record["export_dir"], record.get("mcp_servers") or [])}


def write_swap_record(snapshot_dir, result, identity, snapshot_id, stamp):
    """What a swap did, kept beside the snapshot: a re-run recognises the live brain by `identity` and stops there."""
    record = dict((k, result.get(k)) for k in ("aside", "export_dir", "exported", "exported_total", "exported_updated",
                                               "exported_deleted", "exported_whole_tables", "external_calls"))
    record.update(identity=identity, snapshot=snapshot_id, swapped_at=stamp)
    write_atomic(os.path.join(snapshot_dir, SWAP_RECORD), json.dumps(record, sort_keys=True))


def already_restored(backend, snapshot_dir):
    """The swap record when the live brain *is* the copy of this snapshot swapped in earlier, else None.

    That holds until the brain is swapped again (undo, or another restore), however much the Engine wrote to it
    since, so a re-run after an interrupted rollback never restores the same snapshot over it a second time.
    """
    try:
        with open(os.path.join(snapshot_dir, SWAP_RECORD)) as handle:
            record = json.load(handle)
        live = backend.staged_identity(backend.live_name())
    except (IOError, OSError, ValueError, BrainError):
        return None
    return record if live is not None and live == record.get("identity") else None


def export_dir_for(snapshot_dir, stamp):
    return os.path.join(snapshot_dir, "exports", stamp)


REGISTRY_TABLES = ("server_registry", "action_registry", "connections")


def external_calls(export_dir, servers, limit=20):
    """Bad-window rows that name a registered MCP server: calls to external systems a rollback does not undo.

    Which rows record tool calls is the Engine's business; any exported row (outside the registries
    themselves) whose content names a registered server counts. Returns {"total", "by_server", "rows"}.
    """
    found = {"total": 0, "by_server": {}, "rows": []}
    if not servers or not os.path.isdir(export_dir):
        return found
    for name in sorted(os.listdir(export_dir)):
        table = name[:-len(".jsonl")] if name.endswith(".jsonl") else None
        if not table or table in REGISTRY_TABLES:
            continue
        with open(os.path.join(export_dir, name)) as handle:
            for line in handle:
                hits = [server for server in servers if server in line]
                if not hits:
                    continue
                found["total"] += 1
                for server in hits:
                    found["by_server"][server] = found["by_server"].get(server, 0) + 1
                if len(found["rows"]) < limit:
                    found["rows"].append({"table": table, "servers": hits, "row": json.loads(line)})
    return found
