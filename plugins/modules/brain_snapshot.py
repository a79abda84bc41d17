#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: brain_snapshot
short_description: Take or delete a verified snapshot of the Engine's brain
version_added: 0.1.0
description:
  - O(state=present) snapshots the brain into the snapshot store while the Engine keeps serving
    (SQLite through the online backup API; PostgreSQL with C(pg_dump) in directory format with parallel jobs),
    verifies it (integrity check or archive listing, checksums) and writes its manifest. A snapshot that fails
    verification is removed and never reported as present.
  - The manifest records id, creation time, Engine image and version, backend, size, sha256 of every file,
    schema fingerprint and schema, rows per table, reason, pinned flag, the fingerprint of the encryption
    key's identity (never the key) and the time the snapshot took.
  - O(keep) applies retention after a new snapshot; pinned snapshots and the rollback target are never removed.
  - O(state=absent) deletes a snapshot; a pinned one or the rollback target only with O(force=true). A volume
    snapshot's cloud snapshot and an off-host copy are deleted with it, by retention too.
  - With O(backend=ebs) or O(backend=gcp_disk) the snapshot is a cloud snapshot of the volume that holds the brain,
    made consistent by O(consistency), tagged with the manifest's fields, and waited on until it completes (the
    result's C(progress) has the samples). Permissions are checked first (EC2 C(DryRun), GCP C(testIamPermissions)).
  - With O(s3_bucket) a file or dump snapshot is copied off the host after it is verified (server-side encrypted,
    multipart for large files); an upload that fails fails the task and keeps the valid local snapshot.
author:
  - engine_ops maintainers (@engine-ops)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - engine_ops.lifecycle._engine.attributes
  - engine_ops.lifecycle._engine.docker
  - engine_ops.lifecycle._engine.engine
  - engine_ops.lifecycle._engine.brain
options:
  state:
    description: Whether the snapshot should exist.
    type: str
    choices: [present, absent]
    default: present
  id:
    description:
      - Snapshot id. With O(state=present) and an existing valid snapshot of that id nothing is done.
      - Defaults to the current UTC time for a new snapshot; required with O(state=absent).
    type: str
  reason:
    description: Why the snapshot was taken (for example C(pre-upgrade to 2.4.0)).
    type: str
  pinned:
    description: Protect the snapshot from retention and from deletion without O(force).
    type: bool
    default: false
  rollback_target:
    description: Mark the new snapshot as the one the next rollback restores.
    type: bool
    default: false
  keep:
    description:
      - After taking the snapshot, keep only the newest this many unpinned snapshots.
      - Pinned snapshots and the rollback target are kept in addition and never removed by retention.
    type: int
  force:
    description: Allow deleting a pinned snapshot or the rollback target; with O(import_from) a file, adopt a brain
      whose oldest episodes are not in this Engine's brain.
    type: bool
    default: false
  import_from:
    description:
      - Instead of snapshotting the live brain, import this snapshot directory of another Engine (a production snapshot
        copied to a staging host, for a drill) as a snapshot of this Engine, under O(id). Its manifest and every file are
        verified first; the imported manifest keeps the source's data fields and records C(imported_from).
      - Or adopt a snapshot taken by hand, without a manifest (the Engine's documented manual upgrade leaves one). That is
        a plain C(sqlite3 .backup) file, or for O(backend=postgres) a C(pg_dump) output in custom, directory or plain
        format. It is checked to be whole (SQLite header, size and integrity check; C(pg_restore) reading all of an
        archive; a plain dump ending with pg_dump's closing line), to be an Engine brain (its core tables) and to be this
        Engine's (its oldest episodes are in the live brain; O(force=true) adopts another's). A dump is loaded into a
        scratch schema of the brain's database for that, and dropped again. Then it is copied into the store with a
        manifest built from it (fingerprint, row counts, checksums, C(adopted_from)) and its modification time as the
        snapshot's time. It becomes a normal rollback
        target (O(rollback_target=true)). The id defaults to C(adopted-) and the start of the file's sha256, so
        adopting the same file again changes nothing. A file that fails a check is refused and nothing is changed.
      - File and dump snapshots only (not O(backend=ebs) or O(backend=gcp_disk)).
    type: path
  encryption_key:
    description:
      - The Engine's C(AD_ENCRYPTION_KEY), to record its fingerprint. Defaults to the Engine container's own.
    type: str
attributes:
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Snapshot before the upgrade, pinned, as the rollback target
  engine_ops.lifecycle.brain_snapshot:
    container: engine
    reason: pre-upgrade to 2.4.0
    pinned: true
    rollback_target: true
    keep: 10
  register: snap

- name: Snapshot a PostgreSQL brain
  engine_ops.lifecycle.brain_snapshot:
    engine: support-agent
    backend: postgres
    pg_host: 127.0.0.1
    pg_user: engine_ops
    pg_password: "{{ vault_pg_password }}"
    pg_database: brain

- name: Snapshot the EBS volume that holds the brain, and keep file snapshots of another Engine in S3
  engine_ops.lifecycle.brain_snapshot:
    container: engine
    backend: ebs
    instance_id: i-0123456789abcdef0
    device: /dev/sdf
    aws_region: eu-west-1
    rollback_target: true

- name: Copy each new snapshot off the host
  engine_ops.lifecycle.brain_snapshot:
    container: engine
    s3_bucket: acme-engine-snapshots
    s3_prefix: prod/eu

- name: Delete an old snapshot
  engine_ops.lifecycle.brain_snapshot:
    engine: support-agent
    id: 20261101T020000.000000Z
    state: absent
"""

RETURN = r"""
snapshot:
  description:
    - The snapshot's manifest (check mode returns the planned id, backend and source). For a SQLite brain with vec0 or
      FTS5 virtual tables, C(brain_reads) says how they were read (through sqlite-vec or from their shadow tables).
  returned: when O(state=present)
  type: dict
  sample: {"id": "20261128T100000.000000Z", "backend": "sqlite", "size_bytes": 10485760, "pinned": true}
offsite:
  description: Where the off-host copy went (C(location), C(objects), C(bytes), C(multipart), C(encryption), C(seconds)).
  returned: when O(s3_bucket) is set and a copy was made
  type: dict
removed:
  description: Ids deleted (by O(state=absent) or by retention).
  returned: always
  type: list
  elements: str
"""

import os
import shutil

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.locate import container_env
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import BrainModule, run
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.offsite import OffsiteError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.snapshot import (
    adopt, engine_metadata, file_facts, refuse_adoption, room_for_snapshot, take_snapshot)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import (
    StoreError, check_name, entry_path, file_matches, key_fingerprint, new_id, read_manifest, retention_victims)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume_options import VOLUME_BACKENDS


def main():
    spec = dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        id=dict(type="str"),
        reason=dict(type="str"),
        pinned=dict(type="bool", default=False),
        rollback_target=dict(type="bool", default=False),
        keep=dict(type="int"),
        force=dict(type="bool", default=False),
        encryption_key=dict(type="str", no_log=True),
        import_from=dict(type="path"),
    )
    module = BrainModule(argument_spec=spec, required_if=[("state", "absent", ("id",))])
    p = module.params
    container, engine_name, store = module.container, module.engine_name, module.store()
    try:
        snapshot_id = check_name("snapshot id", p["id"]) if p["id"] else new_id()
    except StoreError as exc:
        module.fail_action("check options", exc)
    if p["keep"] is not None and p["keep"] < 1:
        module.fail_action("check options", "keep must be at least 1")

    if p["state"] == "absent":
        if snapshot_id not in store.ids():
            module.exit_json(changed=False, removed=[])
        try:
            manifest = store.load(snapshot_id)
        except StoreError:
            manifest = {"pinned": False}
        protected = manifest.get("pinned") or store.rollback_target() == snapshot_id
        if protected and not p["force"]:
            module.fail_action("delete snapshot %s" % snapshot_id, "it is pinned or the rollback target; set force=true "
                               "to delete it")
        if not module.check_mode:
            try:
                delete_snapshot(module, store, snapshot_id, module.offsite())
            except (BrainError, OffsiteError, StoreError, OSError) as exc:
                module.fail_action("delete snapshot %s" % snapshot_id, exc)
        module.exit_json(changed=True, removed=[snapshot_id])

    offsite = module.offsite()
    if p["import_from"] and not os.path.exists(os.path.join(p["import_from"], "manifest.json")):
        adopt_file(module, store)  # no manifest: a file or a pg_dump directory taken by hand
    if p["import_from"]:
        import_snapshot(module, store, snapshot_id)
    if p["id"] and snapshot_id in store.ids():
        try:
            manifest = store.load(snapshot_id, verify_files=True)
        except StoreError as exc:
            module.fail_action("check existing snapshot %s" % snapshot_id, exc)
        result = {"changed": False, "snapshot": manifest, "removed": []}
        if p["rollback_target"] and store.rollback_target() != snapshot_id:  # taken by a run killed before marking it
            if not module.check_mode:
                store.set_rollback_target(snapshot_id)
            result["changed"] = True
        if offsite and not module.check_mode and not offsite.has(snapshot_id) and not manifest.get("volume_snapshot"):
            result.update(changed=True, offsite=copy_offsite(module, offsite, store, manifest))
        module.exit_json(**result)
    backend = module.backend()
    try:
        if not backend.exists():
            raise BrainError("the brain %s does not exist" % backend.location())
        plan = backend.locate() if backend.name in VOLUME_BACKENDS else None
        if offsite and plan is None and not module.check_mode:
            offsite.ids()  # the bucket answers and may be listed: before the snapshot, not after
    except (BrainError, OffsiteError) as exc:
        module.fail_action("find the brain", exc)
    if plan is not None:
        try:
            backend.refuse_without_permissions("snapshot", plan)  # in check mode too: the plan must be doable
        except BrainError as exc:
            module.fail_action("check permissions", exc)
    if plan is None:
        try:
            lacking = backend.privilege_problems("snapshot")
            if lacking:
                raise BrainError("; ".join(lacking))
        except BrainError as exc:
            module.fail_action("check privileges", exc)
        try:
            room_for_snapshot(store, backend.size_bytes())
        except (BrainError, OSError) as exc:
            module.fail_action("check free space", exc)
    if module.check_mode:
        planned = {"id": snapshot_id, "engine": engine_name, "backend": backend.name, "source": backend.location(),
                   "estimated_size_bytes": backend.size_bytes() if plan is None else backend.sqlite.size_bytes()}
        if plan is not None:
            planned["plan"] = backend.snapshot_plan(plan, snapshot_id)
        if offsite:
            planned["offsite"] = offsite.location(snapshot_id)
        module.exit_json(changed=True, removed=[], snapshot=planned)
    secret = p["encryption_key"] or (container_env(container).get("AD_ENCRYPTION_KEY") if container else None)
    result = {}
    try:
        image = module.docker.inspect_image(container["Image"]) if container else None
        metadata = engine_metadata(container, image)
        if plan is not None:
            manifest = backend.take(store, snapshot_id, metadata, module.engine_stop(backend), p["reason"],
                                    p["pinned"], key_fingerprint(secret))
        else:
            manifest = take_snapshot(backend, store, snapshot_id, metadata, p["reason"], p["pinned"],
                                     key_fingerprint(secret))
        result["snapshot"] = manifest
        if offsite and plan is None:
            result["offsite"] = copy_offsite(module, offsite, store, manifest)
        if p["rollback_target"]:
            store.set_rollback_target(snapshot_id)
        removed = []
        if p["keep"]:
            for victim in retention_victims(store.list(), p["keep"], store.rollback_target()):
                delete_snapshot(module, store, victim, offsite, getattr(backend, "provider", None))
                removed.append(victim)
        result["removed"] = removed
    except (BrainError, StoreError, EngineDockerError, OSError) as exc:
        module.fail_action("snapshot %s" % backend.location(), exc, changed="snapshot" in result, **result)
    module.exit_json(changed=True, **result)


def adopt_file(module, store):
    """Adopt a snapshot taken by hand (a `sqlite3 .backup` file, a pg_dump) as a snapshot of this Engine; exits."""
    p = module.params
    path = p["import_from"]
    backend = module.backend()
    if backend.name in VOLUME_BACKENDS:
        module.fail_action("adopt %s" % path, "a volume brain is not adopted from a file (this brain is %s)"
                           % backend.name)
    try:
        if not os.path.exists(path):
            raise StoreError("%s does not exist" % path)
        digest = file_facts(path)[0]
        snapshot_id = check_name("snapshot id", p["id"] or "adopted-" + digest[:16])
        if snapshot_id in store.ids():
            existing = store.load(snapshot_id, verify_files=True)
            if (existing.get("adopted_from") or {}).get("sha256") != digest:
                raise StoreError("snapshot %s already exists and is not an adoption of this file" % snapshot_id)
            changed = p["rollback_target"] and store.rollback_target() != snapshot_id
            if changed and not module.check_mode:
                store.set_rollback_target(snapshot_id)
            module.exit_json(changed=changed, snapshot=existing, removed=[])
        if module.check_mode:
            refuse_adoption(backend, path, p["force"])
            module.exit_json(changed=True, removed=[], snapshot={"id": snapshot_id, "engine": store.engine,
                                                                 "backend": backend.name, "adopt": path})
        container = module.container
        secret = p["encryption_key"] or (container_env(container).get("AD_ENCRYPTION_KEY") if container else None)
        manifest = adopt(backend, store, snapshot_id, path, {"engine_version": None, "engine_image": None},
                         p["reason"] or "taken by hand (%s)" % os.path.basename(path), p["pinned"],
                         key_fingerprint(secret), force=p["force"])
        if p["rollback_target"]:
            store.set_rollback_target(snapshot_id)
    except (BrainError, StoreError, OSError) as exc:
        module.fail_action("adopt %s" % path, exc)
    module.exit_json(changed=True, snapshot=manifest, removed=[])


def import_snapshot(module, store, snapshot_id):
    """Copy a verified snapshot directory of another Engine into this Engine's store; exits the module."""
    p = module.params
    source_dir = p["import_from"].rstrip("/")
    try:
        source = read_manifest(source_dir, verify_files=True)
        if p["backend"] in VOLUME_BACKENDS or source.get("backend") in VOLUME_BACKENDS:
            raise StoreError("volume snapshots are not imported: restore them by id with their own backend")
        if source.get("backend") != p["backend"]:
            raise StoreError("snapshot %s is a %s snapshot; this brain is %s" % (source["id"], source.get("backend"),
                                                                                 p["backend"]))
        if snapshot_id in store.ids():
            existing = store.load(snapshot_id, verify_files=True)
            if (existing.get("imported_from") or {}).get("id") == source["id"]:
                module.exit_json(changed=False, snapshot=existing, removed=[])
            raise StoreError("snapshot %s already exists and is not an import of %s" % (snapshot_id, source["id"]))
    except (StoreError, OSError) as exc:
        module.fail_action("import %s" % source_dir, exc)
    manifest = dict(source, id=snapshot_id, engine=store.engine, pinned=p["pinned"],
                    reason=p["reason"] or "imported from %s/%s" % (source.get("engine"), source["id"]),
                    imported_from={"engine": source.get("engine"), "id": source["id"], "created_at": source["created_at"]})
    if module.check_mode:
        module.exit_json(changed=True, snapshot=manifest, removed=[])
    try:
        with store.entering(snapshot_id) as entering:
            for entry in source.get("files") or []:
                target = entry_path(entering.path, entry)
                shutil.copyfile(os.path.join(source_dir, entry["name"]), target)
                os.chmod(target, 0o600)
                if not file_matches(entering.path, entry):
                    raise StoreError("the copy of %s does not match its checksum" % entry["name"])
            entering.manifest = manifest
        if p["rollback_target"]:
            store.set_rollback_target(snapshot_id)
    except (StoreError, OSError) as exc:
        module.fail_action("import %s" % source_dir, exc)
    module.exit_json(changed=True, snapshot=manifest, removed=[])


def copy_offsite(module, offsite, store, manifest):
    try:
        return offsite.upload(store.path(manifest["id"]), manifest)
    except (OffsiteError, OSError) as exc:
        module.fail_action("copy snapshot %s off the host" % manifest["id"], "%s; the local snapshot is kept and valid"
                           % exc, changed=True, snapshot=manifest, removed=[])


def delete_snapshot(module, store, snapshot_id, offsite, provider=None):
    """Delete a snapshot everywhere it is: its cloud volume snapshot, its off-host copy, the local store.

    `provider` is the volume backend's own, when the module has one: retention then needs no client per snapshot.
    """
    try:
        manifest = store.load(snapshot_id)
    except StoreError:
        manifest = {}
    cloud = (manifest.get("volume_snapshot") or {}).get("snapshot_id")
    if cloud:
        if provider is None or provider.name != manifest["backend"]:
            from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume import make_provider
            provider = make_provider(dict(module.params, backend=manifest["backend"]))
        provider.delete_snapshot(cloud)
    if offsite:
        offsite.delete(snapshot_id)
    store.delete(snapshot_id)


if __name__ == "__main__":
    run(main)
