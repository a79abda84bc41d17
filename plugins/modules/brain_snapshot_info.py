#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: brain_snapshot_info
short_description: List an Engine's brain snapshots and judge whether a data rollback is needed
version_added: 0.1.0
description:
  - Lists the snapshots in the store with their manifests, oldest first. A snapshot whose manifest fails its
    checksum is listed with C(valid=false) and the problem.
  - With O(verify), also checks every file's checksum.
  - With a volume backend, also lists the cloud snapshots tagged for this Engine; with O(s3_bucket), the off-host
    copies. Each snapshot's C(location) says where it is kept (C(host), C(ebs), C(gcp_disk), C(s3)); a snapshot known
    only off the host is listed too.
  - With O(compare_live), compares the live brain's schema fingerprint with each snapshot's and returns
    C(data_rollback_required) with the differing tables and columns.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.docker
  - engine_ops.lifecycle._engine.engine
  - engine_ops.lifecycle._engine.brain
attributes:
  check_mode:
    support: full
    details: A read-only module; it changes nothing in either mode.
  diff_mode:
    support: none
options:
  id:
    description: Only this snapshot.
    type: str
  verify:
    description: Check each file's sha256 against the manifest.
    type: bool
    default: false
  compare_live:
    description: Compare each snapshot's schema with the live brain's.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Is a data rollback needed to go back to the rollback target?
  engine_ops.lifecycle.brain_snapshot_info:
    container: engine
    compare_live: true
  register: snaps

- name: Show it
  ansible.builtin.debug:
    msg: "{{ snaps.snapshots | selectattr('id', 'equalto', snaps.rollback_target) | map(attribute='data_rollback_required') }}"
"""

RETURN = r"""
snapshots:
  description: Manifests, oldest first, each with C(valid), C(problem), C(age_seconds) and, with O(compare_live),
    C(data_rollback_required) and C(schema_diff).
  returned: always
  type: list
  elements: dict
rollback_target:
  description: Id of the snapshot marked as the rollback target, if any.
  returned: always
  type: str
live:
  description: Schema fingerprint, rows per table of the live brain, and C(brain_reads) (how its vec0 and FTS5
    virtual tables were read, as brain_restore returns it).
  returned: when O(compare_live=true)
  type: dict
"""

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError, brain_reads
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.cloud import manifest_from_labels
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import BrainModule, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.offsite import OffsiteError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.restore import age_seconds
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import (
    StoreError, check_name, schema_diff)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume_options import VOLUME_BACKENDS


def main():
    spec = dict(id=dict(type="str"), verify=dict(type="bool", default=False),
                compare_live=dict(type="bool", default=False))
    module = BrainModule(argument_spec=spec, read_only=True)
    p = module.params
    store = module.store()
    try:
        if p["id"]:
            check_name("snapshot id", p["id"])
    except StoreError as exc:
        module.fail_action("check options", exc)
    result = {"changed": False, "rollback_target": store.rollback_target()}
    live = None
    if p["compare_live"]:
        backend = module.backend()
        try:
            live = getattr(backend, "sqlite", backend).describe()
        except BrainError as exc:
            module.fail_action("describe the live brain", exc)
        result["live"] = {"fingerprint": live["fingerprint"],
                          "row_counts": dict((t, i["rows"]) for t, i in live["tables"].items()),
                          "brain_reads": brain_reads(live)}
    snapshots = []
    for manifest in store.list():
        if p["id"] and manifest["id"] != p["id"]:
            continue
        if manifest["valid"] and p["verify"]:
            try:
                store.load(manifest["id"], verify_files=True)
            except StoreError as exc:
                manifest.update(valid=False, problem=str(exc))
        if manifest["valid"]:
            manifest["age_seconds"] = age_seconds(manifest)
            if live is not None:
                manifest["data_rollback_required"] = live["fingerprint"] != manifest["schema_fingerprint"]
                manifest["schema_diff"] = schema_diff(live["schema"], manifest["schema"])
        snapshots.append(manifest)
    try:
        snapshots.extend(elsewhere(module, store, snapshots))
    except (BrainError, OffsiteError) as exc:
        module.fail_action("list snapshots kept off the host", exc)
    result["snapshots"] = snapshots
    module.exit_json(**result)


def elsewhere(module, store, snapshots):
    """Mark where each snapshot is kept besides the host; return those known only off the host."""
    p = module.params
    local = dict((m["id"], m) for m in snapshots)
    for manifest in snapshots:
        manifest["location"] = ["host"]
    found = []
    if p["backend"] in VOLUME_BACKENDS:
        from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume import make_provider
        for snap in make_provider(p).find_snapshots(store.engine):
            snapshot_id = snap["labels"].get("id")
            if p["id"] and snapshot_id != p["id"]:
                continue
            if snapshot_id in local:
                local[snapshot_id]["location"].append(p["backend"])
                local[snapshot_id]["cloud_state"] = snap["state"]
                continue
            manifest = manifest_from_labels(snap["labels"], snap, p["backend"])
            manifest.update(valid=snap["state"] == "completed", problem=None if snap["state"] == "completed" else
                            "the %s snapshot %s is %s" % (p["backend"], snap["id"], snap["state"]),
                            location=[p["backend"]], cloud_state=snap["state"])
            found.append(manifest)
    offsite = module.offsite()
    if offsite is not None:
        for snapshot_id in offsite.ids():
            if p["id"] and snapshot_id != p["id"]:
                continue
            if snapshot_id in local:
                local[snapshot_id]["location"].append("s3")
            else:
                found.append({"id": snapshot_id, "valid": True, "problem": None, "location": ["s3"],
                              "offsite": offsite.location(snapshot_id)})
    return found


if __name__ == "__main__":
    run(main)
