#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: brain_restore
short_description: Restore the Engine's brain from a snapshot, staged, with the bad window exported and undo kept
version_added: 0.1.0
description:
  - I(Preflight), with the Engine serving; the snapshot exists, its manifest and files match their checksums,
    it passes its integrity check, it belongs to this Engine and backend, and there is room to stage it.
    Any failure stops here with nothing changed.
  - I(Stage), with the Engine serving; the snapshot is rebuilt beside the live brain (a staged SQLite file;
    a PostgreSQL database C(<name>__restore_<id>)) and its rows and schema are checked against the manifest.
  - I(Export the bad window); every live row the snapshot does not have is written to JSONL files, one per
    table, with a summary, under C(<snapshot>/exports/<time>/); rows arriving until the Engine stops are
    appended after it stops. The result lists the rows per table the restore removes; all are in the export.
  - I(Swap), Engine stopped; with O(container) the module drains the Engine itself just before the swap and
    starts it after; without it, it refuses while any container is using the brain. SQLite swaps by renaming
    (live brain and its WAL set aside as C(<brain>.pre-restore-<time>)); PostgreSQL by renaming databases.
  - I(Verify); the live brain matches the manifest, with the owner, group and mode of the brain it replaced.
  - The replaced brain is kept; O(undo) puts a set-aside brain back.
  - With O(backend=ebs) or O(backend=gcp_disk) the stage phase creates a new volume from the snapshot in the instance's
    zone (Engine serving) and the swap phase unmounts, detaches the old volume (kept, tagged C(replaced_by)), attaches
    the new one at the same device, mounts it with the old options and verifies the brain; a failure puts the old
    volume back. O(undo) takes the kept volume's id. Permissions are checked before anything changes.
  - A snapshot missing from the local store is fetched from O(s3_bucket) (every file checked against the manifest's
    sha256 before it enters the store), or, for a volume backend, rebuilt from the cloud snapshot's tags.
  - A brain that already equals the snapshot is left alone (C(changed=false)), and so is a live brain that is the very
    copy of this snapshot an earlier run swapped in, even after the Engine wrote to it (RV(already_restored)); a re-run
    after an interrupted rollback never restores twice. Check mode returns the plan.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.docker
  - engine_ops.lifecycle._engine.engine
  - engine_ops.lifecycle._engine.brain
options:
  id:
    description: Snapshot to restore. Defaults to the store's rollback target.
    type: str
  undo:
    description: Put this set-aside brain back instead (a path returned as C(aside) by an earlier restore).
    type: str
  drain_timeout:
    description: With O(container), seconds the Engine gets to finish in-flight turns before the swap.
    type: int
    default: 30
  health_url:
    description: With O(container), the Engine's health URL to wait on after the swap.
    type: str
  health_timeout:
    description: Seconds to wait for health after the swap.
    type: float
    default: 60
  phase:
    description:
      - C(all) runs every phase. C(stage) runs preflight, stage and the first export while the Engine serves and
        leaves the staged copy with a record; a later C(swap) run (Engine drained, or O(container) given) finishes
        it, so the Engine is down only for the swap even when another step (an image switch) comes between.
      - An intact staged copy of the same snapshot left by an earlier, interrupted run is re-used (RV(reused_stage)),
        with the rows it already exported; the swap phase then exports only what came after them.
      - C(settle) only finishes the export of a restore of this snapshot that is already swapped in and was left
        unsettled (a swap with O(start_engine=false), or an interrupted run); the Engine serving. It changes nothing
        else and nothing at all when the live brain is not that restore.
    type: str
    choices: [all, stage, swap, settle]
    default: all
  start_engine:
    description: With O(container), start the Engine again after the swap (set false when an image switch follows).
    type: bool
    default: true
attributes:
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Restore the pre-upgrade snapshot, stopping the Engine only for the swap
  engine_ops.lifecycle.brain_restore:
    container: engine
    health_url: http://127.0.0.1:8000/health
  register: restore

- name: Undo that restore
  engine_ops.lifecycle.brain_restore:
    container: engine
    undo: "{{ restore.aside }}"
"""

RETURN = r"""
plan:
  description: Snapshot, its age (the recovery point), rows that would be exported per table, estimated stage and
    swap seconds, and the steps.
  returned: always
  type: dict
exported:
  description: Rows exported per table that the snapshot does not have (written in the bad window).
  returned: when a restore ran
  type: dict
exported_updated:
  description: Rows per table changed in place in the bad window, exported with their before and after images.
  returned: when a restore ran
  type: dict
exported_deleted:
  description: Rows per table deleted in the bad window, exported with their before images.
  returned: when a restore ran
  type: dict
export_settled:
  description:
    - The export was made again from the replaced brain against the snapshot once the Engine was back (SQLite), so
      rows changed up to the stop are in it. False when O(start_engine=false) left the Engine stopped (the settle
      never lengthens the downtime); any later run on the same snapshot settles it.
  returned: when a SQLite restore ran
  type: bool
export_dir:
  description: Directory of the JSONL export and its C(summary.json).
  returned: when a restore ran
  type: str
aside:
  description: Where the replaced brain was kept (a path, or a database name for PostgreSQL).
  returned: when changed
  type: str
timings:
  description: Seconds per phase (stage, verify_stage, export_serving, stop_engine, export_stopped, swap, verify_live,
    start_engine).
  returned: when a restore ran
  type: dict
external_calls:
  description:
    - Bad-window rows that name a server of the brain's C(server_registry) (calls to external MCP systems), which a
      rollback does not undo - C(total), C(by_server) and up to 20 C(rows).
  returned: when a swap ran
  type: dict
already_restored:
  description:
    - The live brain already is the copy of this snapshot that an earlier run swapped in (the Engine may have written
      to it since); nothing is restored again. Holds the earlier swap's record (when, aside, exports).
  returned: when that is the case
  type: dict
fetched:
  description: Where a snapshot missing from the local store was brought from (C(location), and C(bytes), C(seconds)).
  returned: always
  type: dict
staged:
  description: The staged copy (a path, a database name, or the new volume's id).
  returned: when a restore ran
  type: str
reused_stage:
  description: The staged copy of an earlier run was re-used instead of staging again.
  returned: when O(phase) is V(stage) or V(all) and a restore ran
  type: bool
swap_seconds:
  description: Seconds the swap itself took.
  returned: when changed
  type: float
health:
  description: Health of the Engine after it was started again.
  returned: when O(container) and O(health_url) are set
  type: dict
brain_reads:
  description:
    - How the SQLite brain's virtual tables were read; null for a brain without any. C(vec0) is V(extension) when
      this Python loaded sqlite-vec (the C(sqlite-vec) package beside the module), V(shadow tables) when it could
      not (C(reason) says why); C(fts5) says whether SQLite has FTS5; C(tables) names each virtual table's module
      and how it was read. Both ways give the same rows, counts and fingerprints.
  returned: when a SQLite or PostgreSQL snapshot was chosen
  type: dict
"""

import json
import os
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError, brain_reads
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import BrainModule, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.offsite import OffsiteError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.restore import (
    SWAP_RECORD, CountingExport, RestoreError, already_restored, brain_matches, existing_stage, export_dir_for, load_stage, plan, preflight,
    settle_pending, stage, swap)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import (
    StoreError, check_name)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume_options import VOLUME_BACKENDS
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume import cloud_manifest


def settle_only(module, backend, store, snapshot_id, stamp, volume):
    """phase=settle: finish the export of this snapshot's restore when it is the live brain; exits the module."""
    try:
        check_name("snapshot id", snapshot_id)
        manifest = store.load(snapshot_id)
        restored = None if volume else already_restored(backend, store.path(snapshot_id))
        if not restored:
            module.exit_json(changed=False, snapshot=snapshot_id, export_settled=None,
                             msg="the live brain is not a restore of snapshot %s: nothing to settle" % snapshot_id)
        result = {"snapshot": snapshot_id, "aside": restored["aside"], "export_dir": restored["export_dir"]}
        if module.check_mode:
            module.exit_json(changed=True, **result)
        settled = settle_pending(backend, manifest, store.path(snapshot_id), restored, stamp)
    except (StoreError, BrainError, OSError) as exc:
        module.fail_action("settle the export of the restore of snapshot %s" % snapshot_id, exc)
    result.update(settled or {"export_settled": None})
    module.exit_json(changed=bool(settled), **result)


def main():
    spec = dict(id=dict(type="str"), undo=dict(type="str"), drain_timeout=dict(type="int", default=30),
                health_url=dict(type="str"), health_timeout=dict(type="float", default=60),
                phase=dict(type="str", choices=["all", "stage", "swap", "settle"], default="all"),
                start_engine=dict(type="bool", default=True))
    module = BrainModule(argument_spec=spec, mutually_exclusive=[("id", "undo")])
    p = module.params
    container, engine_name = module.container, module.engine_name
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    store, backend = module.store(), module.backend()
    engine = module.engine_stop(backend)
    volume = backend.name in VOLUME_BACKENDS

    if p["undo"] and volume:
        volume_undo(module, backend, engine, stamp)
    if p["undo"]:
        if module.check_mode:
            module.exit_json(changed=True, plan={"undo": p["undo"]})
        users = [] if container else engine.in_use()
        if users:
            module.fail_action("undo", "the brain is in use by %s; drain the Engine first" % ", ".join(users))
        try:
            engine.stop()
            replaced = backend.swap_back(p["undo"], stamp)
        except (BrainError, OSError, EngineDockerError) as exc:
            dummy, said = engine.after_failure()
            module.fail_action("undo", "%s%s" % (exc, said))
        module.exit_json(changed=True, aside=replaced, health=engine.start())

    snapshot_id = p["id"] or store.rollback_target()
    if not snapshot_id:
        module.fail_action("choose the snapshot", "no id given and the store has no rollback target")
    if p["phase"] == "settle":
        settle_only(module, backend, store, snapshot_id, stamp, volume)
    fetched = None
    try:
        check_name("snapshot id", snapshot_id)
        if snapshot_id not in store.ids():
            fetched = bring_home(module, backend, store, snapshot_id)
        manifest = store.load(snapshot_id, verify_files=True)
        if volume:
            volume_restore(module, backend, store, manifest, engine, stamp, fetched)
        preflight(backend, manifest, store.path(snapshot_id), engine_name)
        the_plan = plan(backend, manifest, snapshot_dir=store.path(snapshot_id))
        live = backend.describe()
    except (StoreError, RestoreError, BrainError, OffsiteError) as exc:
        module.fail_action("preflight of snapshot %s" % snapshot_id, exc)
    result = {"plan": the_plan, "snapshot": snapshot_id, "fetched": fetched, "brain_reads": brain_reads(live)}
    # A brain swapped in by an earlier (perhaps interrupted) run is reported with that run's export and aside,
    # even when it still equals the snapshot row for row.
    restored = already_restored(backend, store.path(snapshot_id))
    if restored:
        result.update(already_restored=restored, aside=restored["aside"], export_dir=restored["export_dir"],
                      exported=restored["exported"], exported_total=restored["exported_total"])
        if not module.check_mode:
            try:  # an interrupted run may have swapped and not yet settled its export
                settled = settle_pending(backend, manifest, store.path(snapshot_id), restored, stamp)
            except (BrainError, OSError) as exc:
                module.fail_action("settle the export of the restore of snapshot %s" % snapshot_id, exc, **result)
            if settled:
                result.update(settled)
                module.exit_json(changed=True, **result)
        module.exit_json(changed=False, **result)
    if brain_matches(live, manifest):
        module.exit_json(changed=False, **result)
    if module.check_mode:
        module.exit_json(changed=True, **result)
    snapshot_dir = store.path(snapshot_id)
    try:
        if p["phase"] == "swap":
            record = load_stage(backend, manifest, snapshot_dir)
        else:
            reused = existing_stage(backend, manifest, snapshot_dir)
            record = reused or stage(backend, manifest, snapshot_dir, export_dir_for(snapshot_dir, stamp))
            result["reused_stage"] = bool(reused)
        if p["phase"] == "stage":
            module.exit_json(changed=not result["reused_stage"], staged=record["staged"], export_dir=record["export_dir"],
                             exported_so_far=record["exported_serving"], timings=record["timings"], **result)
        outcome = swap(backend, manifest, snapshot_dir, record, engine, stamp)
    except RestoreError as exc:
        details = dict(result, **exc.result)
        module.fail_action("restore snapshot %s" % snapshot_id, exc, changed=exc.changed, **details)
    except (BrainError, OSError, EngineDockerError) as exc:
        dummy, said = engine.after_failure()
        module.fail_action("restore snapshot %s" % snapshot_id, "%s%s" % (exc, said), changed=True, **result)
    finish(module, result, outcome, "brain")


def bring_home(module, backend, store, snapshot_id):
    """A snapshot missing from the local store: fetched from the off-host store, or rebuilt from cloud tags."""
    if backend.name in VOLUME_BACKENDS:
        manifest = cloud_manifest(backend.provider, backend.name, store.engine, snapshot_id)
        if manifest is None:
            raise StoreError("snapshot %s of engine %s is neither in %s nor a completed %s snapshot"
                             % (snapshot_id, store.engine, store.base, backend.name))
        if not module.check_mode:
            with store.entering(snapshot_id) as entry:  # rebuilt from the cloud snapshot's tags
                entry.manifest = manifest
        else:
            plan = {"rebuild_manifest_from": "cloud tags", "cloud_snapshot": manifest["volume_snapshot"]}
            module.exit_json(changed=True, snapshot=snapshot_id, plan=plan)
        return {"location": "%s snapshot %s" % (backend.name, manifest["volume_snapshot"]["snapshot_id"])}
    offsite = module.offsite()
    if offsite is None:
        return None  # store.load names the missing snapshot
    if module.check_mode:
        if not offsite.has(snapshot_id):
            raise OffsiteError("snapshot %s of engine %s is neither in the local store nor in %s"
                               % (snapshot_id, store.engine, offsite.location()))
        plan = {"fetch": offsite.location(snapshot_id), "then": "preflight, stage, export, swap"}
        module.exit_json(changed=True, snapshot=snapshot_id, plan=plan)
    return offsite.fetch(store, snapshot_id)


def volume_restore(module, backend, store, manifest, engine, stamp, fetched):
    """The restore of a cloud volume snapshot (backends ebs, gcp_disk); exits the module."""
    p = module.params
    snapshot_dir = store.path(manifest["id"])
    try:
        if manifest.get("backend") != backend.name:
            raise RestoreError("snapshot %s is a %s snapshot; this brain is %s" % (manifest["id"], manifest.get("backend"),
                                                                                   backend.name))
        loc = backend.locate()
        cloud = backend.cloud_snapshot(manifest)
        result = {"plan": backend.restore_plan(loc, manifest, CountingExport()), "snapshot": manifest["id"],
                  "fetched": fetched}
        if backend.already_restored(loc, cloud["id"]):
            restored = read_json(os.path.join(snapshot_dir, SWAP_RECORD)) or {"volume": loc["volume"]["id"]}
            module.exit_json(changed=False, already_restored=restored, aside=restored.get("aside"), **result)
        backend.refuse_without_permissions("restore", loc, cloud["id"])
    except (BrainError, RestoreError, OSError) as exc:
        module.fail_action("preflight of snapshot %s" % manifest["id"], exc)
    if module.check_mode:
        module.exit_json(changed=True, **result)
    try:
        if p["phase"] == "swap":
            record = backend.existing_stage(manifest, snapshot_dir)
            if record is None:
                raise RestoreError("snapshot %s has no staged volume (run with phase=stage first)" % manifest["id"])
        else:
            reused = backend.existing_stage(manifest, snapshot_dir)
            record = reused or backend.stage(loc, manifest, snapshot_dir, export_dir_for(snapshot_dir, stamp))
            result["reused_stage"] = bool(reused)
        if p["phase"] == "stage":
            module.exit_json(changed=not result["reused_stage"], staged=record["staged"], export_dir=record["export_dir"],
                             exported_so_far=record["exported_serving"], timings=record["timings"], **result)
        outcome = backend.swap(loc, manifest, snapshot_dir, record, engine, stamp)
    except RestoreError as exc:
        module.fail_action("restore snapshot %s" % manifest["id"], exc, changed=exc.changed, **dict(result, **exc.result))
    except (BrainError, OSError, EngineDockerError) as exc:
        engine.start_if_stopped()
        module.fail_action("restore snapshot %s" % manifest["id"], exc, changed=True, **result)
    finish(module, result, outcome, "volume")


def finish(module, result, outcome, what):
    """Exit with the restore's outcome; fail when the Engine did not come back healthy on it (what stays kept)."""
    result.update(outcome)
    result["swap_seconds"] = outcome["timings"]["swap"]
    if outcome.get("health") and not outcome["health"].get("healthy"):
        module.fail_action("start the Engine on the restored %s" % what, "it is %s (%s); the replaced %s is kept as %s"
                           % (outcome["health"]["classification"], outcome["health"]["reason"], what, outcome["aside"]),
                           changed=True, **result)
    module.exit_json(changed=True, **result)


def volume_undo(module, backend, engine, stamp):
    """Put a kept volume back at the device (the one a restore replaced); exits the module."""
    wanted = module.params["undo"]
    try:
        loc = backend.locate()
        if loc["volume"]["id"] == wanted:
            module.exit_json(changed=False, aside=None, plan={"undo": wanted, "already_attached": True})
        state = backend.provider.volume_state(wanted)
        if state != "available":
            raise RestoreError("volume %s is %s, not available to attach" % (wanted, state))
        other = backend.provider.volume(wanted)
        if other["zone"] != loc["instance"]["zone"]:
            raise RestoreError("volume %s is in zone %s but instance %s is in zone %s"
                               % (wanted, other["zone"], loc["instance"]["id"], loc["instance"]["zone"]))
    except (BrainError, RestoreError) as exc:
        module.fail_action("undo", exc)
    plan = {"undo": wanted, "replaces": loc["volume"]["id"], "device": backend.device}
    if module.check_mode:
        module.exit_json(changed=True, plan=plan)
    try:
        engine.stop()
        backend.switch_volume(loc, wanted, stamp, engine)
    except RestoreError as exc:
        module.fail_action("undo", exc, changed=exc.changed, plan=plan)
    except (BrainError, OSError, EngineDockerError) as exc:
        engine.start_if_stopped()
        module.fail_action("undo", exc, changed=True, plan=plan)
    module.exit_json(changed=True, aside=loc["volume"]["id"], plan=plan, health=engine.start())


def read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None


if __name__ == "__main__":
    run(main)
