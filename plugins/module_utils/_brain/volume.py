# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Brain snapshots and restores as cloud volume snapshots (backends `ebs` and `gcp_disk`).

The brain is an SQLite file on a filesystem that fills a cloud volume attached to the Engine's host.

Snapshot: find the volume (attached to the instance at `device`, and the very block device the brain's
filesystem is mounted from), check permissions, [drain the Engine], checkpoint the WAL, describe the brain,
freeze the filesystem (watchdog-guarded), start the cloud snapshot, thaw as soon as its point in time is
fixed, [start the Engine], wait for it to complete within a deadline that scales with the volume size, and
record its manifest both as tags on the cloud snapshot and in the local store.

Restore, in two phases like file restores: *stage* (Engine serving) creates a new volume from the snapshot
in the instance's zone and exports the bad window from the live brain; *swap* (Engine stopped) exports
what came since, unmounts, detaches the old volume (kept, tagged as replaced), attaches the new one at the
same device, mounts it with the old options, verifies the brain and starts the Engine. A failure after the
unmount puts the old volume back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time
from datetime import datetime

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError, JsonlExport
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.cloud import (
    CloudError, DeadlineExceeded, PermissionDenied, manifest_from_labels, snapshot_deadline)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state.files import write_atomic
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.restore import (
    RestoreError, STAGE_RECORD, export_since_stage, marks_of, timed, write_swap_record)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import FORMAT
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain import volume_host as host
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state import mounts

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume_options import VOLUME_BACKENDS, VOLUME_OPTIONS  # noqa: F401


class VolumeError(BrainError):
    """A volume step failed or was refused; the message names it."""


def make_provider(params):
    if params["backend"] == "ebs":
        from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.ebs import EbsProvider
        return EbsProvider(params)
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.gcp_disk import GcpDiskProvider
    return GcpDiskProvider(params)


def _stamp(clock=datetime.utcnow):
    return clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class VolumeBrain:
    """One Engine's brain on one cloud volume: `provider` (ebs/gcp_disk), `sqlite` (SqliteBackend), options."""

    def __init__(self, provider, sqlite, params, now=time.monotonic):
        self.provider, self.sqlite, self.params, self.now = provider, sqlite, params, now
        self.name = params["backend"]
        if not params.get("device"):
            raise VolumeError("device is required for the %s backend (the device name the volume is attached as)"
                              % self.name)
        self.device = params["device"]
        self.path = sqlite.path

    def location(self):
        return {"path": self.path, "device": self.device, "backend": self.name}

    def exists(self):
        return os.path.isfile(self.path)

    def candidates(self, volume):
        template = self.params.get("device_path")
        if template:
            return [template.format(volume_id=volume["id"], device=self.device.rsplit("/", 1)[-1])]
        return self.provider.host_paths(volume, self.device)

    def locate(self):
        """Instance, volume, the mount holding the brain; refuse when they do not belong together."""
        instance = self.provider.instance()
        wanted_zone = self.params.get("zone")
        if wanted_zone and wanted_zone != instance["zone"]:
            raise VolumeError("instance %s is in zone %s, not %s: a volume there could not be attached to it"
                              % (instance["id"], instance["zone"], wanted_zone))
        volume = self.provider.attached_at(self.device)
        given = self.params.get("volume_id")
        if given and (volume is None or volume["id"] != given):
            other = self.provider.volume(given)
            if other["zone"] != instance["zone"]:
                raise VolumeError("volume %s is in zone %s but instance %s is in zone %s" % (
                    given, other["zone"], instance["id"], instance["zone"]))
            raise VolumeError("volume %s is not the one attached to instance %s at %s (%s is)" % (
                given, instance["id"], self.device, volume["id"] if volume else "none"))
        if volume is None:
            raise VolumeError("no volume is attached to instance %s at %s" % (instance["id"], self.device))
        if volume["zone"] != instance["zone"]:
            raise VolumeError("volume %s is in zone %s but instance %s is in zone %s"
                              % (volume["id"], volume["zone"], instance["id"], instance["zone"]))
        if not os.path.isfile(self.path):
            raise VolumeError("the brain %s does not exist" % self.path)
        mount = mounts.mount_of(self.path)
        if mount["mount_point"] == "/":
            raise VolumeError("the brain %s is on the root filesystem; freezing or unmounting it would stop the host "
                              "(give the Engine's /data a volume of its own)" % self.path)
        paths = [p for p in self.candidates(volume) if os.path.exists(p)]
        if not paths or not host.same_device(mount["source"], paths[0]):
            raise VolumeError("the brain %s lives on %s (mounted at %s), which is not volume %s (seen on this host as %s)"
                              % (self.path, mount["source"], mount["mount_point"], volume["id"],
                                 paths[0] if paths else "nothing of " + ", ".join(self.candidates(volume))))
        relpath = os.path.relpath(os.path.realpath(self.path), mount["mount_point"])
        return {"instance": instance, "volume": volume, "mount": mount, "host_device": paths[0], "brain_path": relpath}

    def refuse_without_permissions(self, kind, loc, snapshot_id=None):
        actions = self.provider.snapshot_permissions if kind == "snapshot" else self.provider.restore_permissions
        problems = self.provider.check_permissions(actions, loc["volume"], snapshot_id=snapshot_id,
                                                   zone=loc["instance"]["zone"], device=self.device)
        if problems:
            raise PermissionDenied("; ".join(problems))

    # --- snapshot --------------------------------------------------------------------------------------
    def snapshot_plan(self, loc, snapshot_id):
        size = loc["volume"]["size_gb"]
        return {"id": snapshot_id, "backend": self.name, "volume_id": loc["volume"]["id"], "size_gb": size,
                "mount_point": loc["mount"]["mount_point"], "consistency": self.params["consistency"],
                "freeze_timeout": self.params["freeze_timeout"],
                "deadline_seconds": snapshot_deadline(size, self.params.get("snapshot_timeout")),
                "steps": (["drain the Engine"] if self.params["consistency"] == "drain" else []) + [
                    "checkpoint the SQLite WAL", "describe the brain",
                    "freeze %s (watchdog thaws after %d s)" % (loc["mount"]["mount_point"], self.params["freeze_timeout"]),
                    "start the %s snapshot of %s" % (self.name, loc["volume"]["id"]), "thaw"] + (
                    ["start the Engine"] if self.params["consistency"] == "drain" else []) + [
                    "wait until the snapshot completes (deadline %d s)" % snapshot_deadline(
                        size, self.params.get("snapshot_timeout"))]}

    def take(self, store, snapshot_id, metadata, engine, reason=None, pinned=False, key_fingerprint=None):
        """Take the snapshot and record its manifest; returns it. Raises VolumeError/CloudError naming the step."""
        began = self.now()
        loc = self.locate()
        self.refuse_without_permissions("snapshot", loc)
        consistency = self.params["consistency"]
        manifest = {"format": FORMAT, "id": snapshot_id, "engine": store.engine, "created_at": _stamp(),
                    "backend": self.name, "source": {"volume_id": loc["volume"]["id"], "device": self.device,
                                                     "mount_point": loc["mount"]["mount_point"]},
                    "brain_path": loc["brain_path"], "consistency": consistency, "rows_exact": consistency == "drain",
                    "reason": reason, "pinned": bool(pinned), "encryption_key_fingerprint": key_fingerprint, "files": []}
        manifest.update(metadata)
        timings = {}
        drained = None
        try:
            if consistency == "drain":
                drained = engine.stop()
                timings["drain"] = round(self.now() - began, 3)
            checkpoint = host.checkpoint_wal(self.path)
            description = self.sqlite.describe()
            manifest.update(size_bytes=self.sqlite.size_bytes(), schema_fingerprint=description["fingerprint"],
                            schema=description["schema"], tables=description["tables"],
                            row_counts=dict((t, i["rows"]) for t, i in description["tables"].items()),
                            wal_checkpoint={"busy": checkpoint[0], "frames": checkpoint[1]})
            freeze = host.Freeze(loc["mount"]["mount_point"], self.params["freeze_timeout"])
            cloud_id = None
            try:
                with freeze:
                    cloud_id = self.provider.create_snapshot(loc["volume"], manifest)
                    self.provider.wait_cut(cloud_id, self.now() + self.params["freeze_timeout"])
            except CloudError as exc:
                if cloud_id is None:
                    raise
                raise VolumeError("%s; %s (its point in time is unknown)" % (exc, self._discard(cloud_id)))
            timings["frozen"] = freeze.seconds
            if freeze.expired:
                raise VolumeError("the freeze outlived freeze_timeout (%d s) before the snapshot's point in time was "
                                  "fixed; the watchdog thawed %s and %s"
                                  % (self.params["freeze_timeout"], loc["mount"]["mount_point"],
                                     self._discard(cloud_id)))
        except host.HostError as exc:  # sync, the WAL checkpoint or fsfreeze on this host: before any cloud call
            raise VolumeError("%s; no snapshot was taken and %s is not frozen" % (exc, loc["mount"]["mount_point"]))
        finally:
            health = engine.start_if_stopped() if consistency == "drain" else None
        samples = []
        deadline_s = snapshot_deadline(loc["volume"]["size_gb"], self.params.get("snapshot_timeout"))
        waited = self.now()
        try:
            done = self.provider.wait_snapshot(cloud_id, self.now() + deadline_s, progress=lambda s: samples.append(
                {"seconds": round(self.now() - waited, 2), "state": s.get("state"), "progress": s.get("progress")}))
        except DeadlineExceeded as exc:
            raise VolumeError("%s; snapshot %s is still being taken by %s and was NOT recorded as a brain snapshot "
                              "(look again with brain_snapshot_info, or delete it)" % (exc, cloud_id, self.name))
        except CloudError as exc:
            raise VolumeError("%s; %s" % (exc, self._discard(cloud_id)))
        timings["wait"] = round(self.now() - waited, 3)
        manifest["volume_snapshot"] = {"provider": self.name, "snapshot_id": cloud_id, "volume_id": loc["volume"]["id"],
                                       "zone": loc["instance"]["zone"], "size_gb": loc["volume"]["size_gb"],
                                       "device": self.device, "state": done["state"]}
        manifest.update(progress=samples[-20:], timings=timings, drain=drained,
                        duration_seconds=round(self.now() - began, 3))
        if health is not None:
            manifest["health_after_drain"] = health
        with store.entering(snapshot_id) as entry:  # the manifest is all a volume snapshot keeps on the host
            entry.manifest = manifest
        return manifest

    def _discard(self, cloud_id):
        """Delete a cloud snapshot that must not be used; says, as the end of a sentence, whether it went."""
        try:
            self.provider.delete_snapshot(cloud_id)
        except CloudError as exc:
            return ("the snapshot %s could NOT be deleted (%s): delete it by hand, it must not be used to restore"
                    % (cloud_id, exc))
        return "the snapshot %s was deleted" % cloud_id

    # --- restore -------------------------------------------------------------------------------------------
    def cloud_snapshot(self, manifest):
        """The cloud snapshot behind a manifest, checked to be complete and to belong to this Engine."""
        ref = (manifest.get("volume_snapshot") or {}).get("snapshot_id")
        if not ref:
            raise VolumeError("snapshot %s is a %s snapshot without a cloud snapshot id"
                              % (manifest["id"], manifest.get("backend")))
        snap = self.provider.snapshot(ref)
        if snap is None:
            raise VolumeError("cloud snapshot %s of snapshot %s does not exist" % (ref, manifest["id"]))
        if snap["state"] != "completed":
            raise VolumeError("cloud snapshot %s is %s, not completed" % (ref, snap["state"]))
        owner = snap["labels"].get("engine")
        if owner != manifest["engine"]:
            raise VolumeError("cloud snapshot %s belongs to engine %r, not %r" % (ref, owner, manifest["engine"]))
        return snap

    def already_restored(self, loc, cloud_id):
        tags = self.provider.volume_tags(loc["volume"])
        return tags.get("restored_from") == self.provider_value(cloud_id)

    def provider_value(self, text):
        if self.name == "gcp_disk":
            from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.gcp_disk import label_value
            return label_value(text)
        return text

    def restore_plan(self, loc, manifest, counting):
        self.sqlite.export(counting, marks_of(manifest))
        vs = manifest["volume_snapshot"]
        return {"snapshot": manifest["id"], "snapshot_created_at": manifest["created_at"], "cloud_snapshot": vs["snapshot_id"],
                "replaced_volume": loc["volume"]["id"], "zone": loc["instance"]["zone"], "device": self.device,
                "mount_point": loc["mount"]["mount_point"], "rows_to_export": counting.counts,
                "rows_to_export_total": sum(counting.counts.values()),
                "steps": ["create a volume from %s in %s (Engine serving)" % (vs["snapshot_id"], loc["instance"]["zone"]),
                          "export rows written after the snapshot (%d now)" % sum(counting.counts.values()),
                          "stop the Engine", "export rows written since", "unmount %s" % loc["mount"]["mount_point"],
                          "detach %s (kept, tagged as replaced)" % loc["volume"]["id"],
                          "attach the new volume at %s" % self.device, "mount it and verify the brain",
                          "start the Engine"]}

    def stage(self, loc, manifest, snapshot_dir, export_dir):
        timings = {}
        snap = manifest["volume_snapshot"]["snapshot_id"]
        tags = {"engine": manifest["engine"], "restored_from": snap, "snapshot": manifest["id"]}
        new_volume = timed(timings, self.now, "create_volume", self.provider.create_volume, snap, loc["instance"]["zone"],
                           loc["volume"], tags, self.now() + self.params["volume_timeout"])
        export = JsonlExport(export_dir)
        high = timed(timings, self.now, "export_serving", self.sqlite.export, export, marks_of(manifest))
        record = {"snapshot": manifest["id"], "staged": new_volume, "identity": new_volume, "backend": self.name,
                  "replaces": loc["volume"]["id"], "mcp_servers": self.sqlite.column_values("server_registry", "name"),
                  "high_water": high, "export_dir": export_dir, "exported_serving": dict(export.counts),
                  "whole_tables": list(export.whole_tables), "timings": timings}
        write_atomic(os.path.join(snapshot_dir, STAGE_RECORD), json.dumps(record, indent=2, sort_keys=True))
        return record

    def existing_stage(self, manifest, snapshot_dir):
        """An earlier run's staged volume of this snapshot, when it is still there and unattached."""
        try:
            with open(os.path.join(snapshot_dir, STAGE_RECORD)) as handle:
                record = json.load(handle)
            if record.get("snapshot") != manifest["id"] or record.get("backend") != self.name:
                return None
            return record if self.provider.volume_state(record["staged"]) == "available" else None
        except (IOError, OSError, ValueError, KeyError, CloudError):
            return None

    def swap(self, loc, manifest, snapshot_dir, record, engine, stamp):
        timings = dict(record.get("timings") or {})
        result = {"timings": timings, "staged": record["staged"]}
        result["drain"] = timed(timings, self.now, "stop_engine", engine.stop)
        users = engine.in_use()
        if users:
            restarted = engine.start_if_stopped()
            raise RestoreError("the brain is in use by %s; drain the Engine first; nothing was swapped, the old volume "
                               "is still attached" % ", ".join(users), changed=bool(result["drain"]),
                               result=dict(result, health=restarted))
        result.update(export_since_stage(self.sqlite, manifest, record, stamp, timings, self.now))
        timed(timings, self.now, "swap", self.switch_volume, loc, record["staged"], stamp, engine, manifest)
        os.unlink(os.path.join(snapshot_dir, STAGE_RECORD))
        result["aside"] = loc["volume"]["id"]
        result["verified"] = True
        write_swap_record(snapshot_dir, result, record["staged"], manifest["id"], stamp)
        result["health"] = timed(timings, self.now, "start_engine", engine.start)
        return result

    def switch_volume(self, loc, new_volume, stamp, engine, manifest=None):
        """Engine stopped: unmount, detach the old volume (kept, tagged), attach and mount the new one, verify.

        Any failure after the unmount puts the old volume back, mounted, and starts the Engine.
        """
        old, point, entry = loc["volume"], loc["mount"]["mount_point"], loc["mount"]
        deadline = self.now() + self.params["volume_timeout"]
        try:
            host.sync_filesystem(point)
            host.unmount(point)
        except host.HostError as exc:
            engine.start_if_stopped()
            raise RestoreError("%s; nothing was swapped, the old volume %s is still attached and mounted"
                               % (exc, old["id"]), changed=True)
        try:
            self.provider.detach(old, self.device, deadline)
        except CloudError as exc:
            self._put_back(loc, None, deadline)
            engine.start_if_stopped()
            raise RestoreError("detaching %s: %s; the old volume was mounted again and the Engine started"
                               % (old["id"], exc), changed=True)
        try:
            self.provider.tag(old["id"], {"engine": manifest["engine"] if manifest else "", "replaced_by": new_volume,
                                          "replaced_at": stamp})
        except CloudError:
            pass  # the tags help an undo; their absence must not cost the restore
        try:
            self.provider.attach(new_volume, self.device, deadline)
            device = host.wait_for_device(self.candidates({"id": new_volume}), deadline)
            host.mount(device, point, entry["fstype"], entry["options"])
            problems = self.verify(manifest) if manifest else []
            if problems:
                raise VolumeError("the restored brain does not match snapshot %s: %s"
                                  % (manifest["id"], "; ".join(problems[:3])))
        except (CloudError, host.HostError, VolumeError, BrainError) as exc:
            self._put_back(loc, new_volume, deadline + self.params["volume_timeout"])
            engine.start_if_stopped()
            raise RestoreError("%s; the old volume %s was attached and mounted again, the Engine started, and the new "
                               "volume %s kept for inspection" % (exc, old["id"], new_volume), changed=True)

    def _put_back(self, loc, new_volume, deadline):
        point, entry, old = loc["mount"]["mount_point"], loc["mount"], loc["volume"]
        if mounts.mounted_at(point) is not None and new_volume is not None:
            host.unmount(point)
        if new_volume is not None and self.provider.volume_state(new_volume) in ("attaching", "attached"):
            self.provider.detach({"id": new_volume}, self.device, deadline)
        if self.provider.volume_state(old["id"]) not in ("attaching", "attached"):
            self.provider.attach(old["id"], self.device, deadline)
        device = host.wait_for_device(self.candidates(old), deadline)
        if mounts.mounted_at(point) is None:
            host.mount(device, point, entry["fstype"], entry["options"])

    def verify(self, manifest):
        """Integrity, schema fingerprint, and rows: equal for a drained snapshot, at least the manifest's otherwise."""
        problems = self.sqlite.integrity(self.path)
        if problems:
            return ["integrity check: %s" % "; ".join(problems[:3])]
        description = self.sqlite.describe()
        if manifest.get("schema_fingerprint") and description["fingerprint"] != manifest["schema_fingerprint"]:
            problems.append("schema fingerprint %s != %s" % (description["fingerprint"], manifest["schema_fingerprint"]))
        exact = manifest.get("rows_exact")
        for table, want in sorted((manifest.get("row_counts") or {}).items()):
            got = (description["tables"].get(table) or {}).get("rows")
            if got is None or (got != want if exact else got < want):
                problems.append("%s: %s rows, snapshot has %s" % (table, got, want))
        return problems


def cloud_manifest(provider, backend, engine, snapshot_id):
    """The manifest of a snapshot known only to the cloud (its host's store is gone), or None."""
    found = [s for s in provider.find_snapshots(engine, snapshot_id) if s["state"] == "completed"]
    if not found:
        return None
    return manifest_from_labels(found[0]["labels"], found[0], backend)


__all__ = ["VolumeBrain", "VolumeError", "VOLUME_BACKENDS", "VOLUME_OPTIONS", "cloud_manifest", "make_provider"]
