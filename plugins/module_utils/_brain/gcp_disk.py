# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GCP persistent disks and snapshots through google-cloud-compute, in the provider shape `_volume_snapshot` uses.

Imported only by the `gcp_disk` backend: `google.cloud.compute_v1` costs ~1.8 s per module call.
Mutations use the `*_unary` calls and wait on their operation with the zone (or global) operations `wait`
call in a loop bounded by a deadline: the client's own `.result()` polling ignores a custom endpoint and
has no deadline.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import re
import time

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.cloud import (
    CloudError, DeadlineExceeded, PermissionDenied, manifest_tags)

try:
    from google.api_core import exceptions as gexc
    from google.api_core.client_options import ClientOptions
    from google.cloud import compute_v1
    HAS_GCP = True
    GCP_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_GCP = False
    GCP_IMPORT_ERROR = exc

SCOPES = ["https://www.googleapis.com/auth/compute"]
LABEL = "engine_ops-"
SNAPSHOT_STATES = {"CREATING": "pending", "UPLOADING": "pending", "READY": "completed", "FAILED": "error",
                   "DELETING": "error"}


def label_value(text, limit=63):
    """GCP label values: lowercase letters, digits, '_' and '-', at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", str(text).lower())[:limit]


def resource_name(*parts):
    """A valid resource name ([a-z]([-a-z0-9]*[a-z0-9])?, at most 63) from the given parts."""
    name = "-".join(re.sub(r"[^a-z0-9-]", "-", str(p).lower()).strip("-") for p in parts if p)
    name = re.sub(r"-+", "-", name)[:63].rstrip("-")
    return name if name[:1].isalpha() else ("d" + name)[:63]


def snapshot_name(engine, snapshot_id):
    digest = hashlib.sha256(engine.encode("utf-8")).hexdigest()[:6]
    return resource_name("eo", engine[:28], digest, snapshot_id)


def _short(url):
    return (url or "").rstrip("/").rsplit("/", 1)[-1]


def permission_checks(kind):
    """What testIamPermissions can be asked before `kind` (snapshot or restore): (resource type, permissions) pairs.

    GCP answers testIamPermissions for the permissions of the resource it is asked on, so each permission is asked
    of its own resource: the brain's disk, the instance, the snapshot. compute.snapshots.create and setLabels
    belong to a snapshot that does not exist yet: createSnapshot itself is refused (403) before anything is written.
    """
    if kind == "snapshot":
        return [("disks", ["compute.disks.createSnapshot"])]
    return [("disks", ["compute.disks.create", "compute.disks.use", "compute.disks.setLabels"]),
            ("instances", ["compute.instances.attachDisk", "compute.instances.detachDisk"]),
            ("snapshots", ["compute.snapshots.useReadOnly"])]


class GcpDiskProvider:
    name = "gcp_disk"
    snapshot_permissions = ("snapshot",)
    restore_permissions = ("restore",)

    def __init__(self, params, clients=None):
        if clients is None and not HAS_GCP:
            raise CloudError("the gcp_disk backend needs google-cloud-compute (pip install google-cloud-compute)")
        for option in ("gcp_project", "gcp_zone", "instance_id"):
            if not params.get(option):
                raise CloudError("%s is required for the gcp_disk backend" % option)
        self.project, self.zone, self.instance_name = params["gcp_project"], params["gcp_zone"], params["instance_id"]
        self.timeout = float(params.get("gcp_request_timeout") or 60)  # each request; operations have deadlines
        self.clients = clients or self._clients(params)
        self._pending = {}  # snapshot name -> its createSnapshot operation, while this module runs

    @staticmethod
    def _clients(params):
        kw = {"transport": "rest"}
        if params.get("gcp_endpoint"):
            kw["client_options"] = ClientOptions(api_endpoint=params["gcp_endpoint"])
        kind = params.get("gcp_auth_kind") or "application"
        if kind == "serviceaccount":
            from google.oauth2 import service_account
            if params.get("gcp_service_account_contents"):  # the key itself, handed over by the controller (AWX)
                try:
                    info = json.loads(params["gcp_service_account_contents"])
                except ValueError:
                    raise CloudError("gcp_service_account_contents is not a service account key (not JSON)")
                kw["credentials"] = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
            elif params.get("gcp_credentials_file"):
                kw["credentials"] = service_account.Credentials.from_service_account_file(
                    params["gcp_credentials_file"], scopes=SCOPES)
            else:
                raise CloudError("gcp_auth_kind=serviceaccount needs gcp_credentials_file or gcp_service_account_contents")
        elif kind == "none":
            if not params.get("gcp_endpoint"):
                raise CloudError("gcp_auth_kind=none is only for a local gcp_endpoint")
            from google.auth.credentials import AnonymousCredentials
            kw["credentials"] = AnonymousCredentials()
        return {"disks": compute_v1.DisksClient(**kw), "instances": compute_v1.InstancesClient(**kw),
                "snapshots": compute_v1.SnapshotsClient(**kw), "zone_ops": compute_v1.ZoneOperationsClient(**kw),
                "global_ops": compute_v1.GlobalOperationsClient(**kw)}

    def call(self, client, method, what, **kwargs):
        try:
            return getattr(self.clients[client], method)(timeout=self.timeout, **kwargs)
        except gexc.Forbidden as exc:
            raise PermissionDenied("%s is not allowed for these credentials (403: %s)" % (what, exc.message))
        except gexc.NotFound as exc:
            raise CloudError("%s: not found (%s)" % (what, exc.message))
        except gexc.GoogleAPICallError as exc:
            raise CloudError("%s failed: %s" % (what, exc))
        except Exception as exc:  # pylint: disable=broad-except
            raise CloudError("%s failed: %s" % (what, exc))

    def wait_operation(self, op, what, deadline, progress=None):
        """Wait on a zone or global operation until DONE; raise on its errors or when the deadline passes."""
        scope = "zone_ops" if getattr(op, "zone", "") else "global_ops"
        while op.status != compute_v1.Operation.Status.DONE:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded("%s did not finish before its deadline (operation %s %s, %s%%)"
                                       % (what, op.name, op.status.name, op.progress))
            kwargs = {"project": self.project, "operation": op.name}
            if scope == "zone_ops":
                kwargs["zone"] = self.zone
            op = self.call(scope, "wait", "waiting on %s" % what, **kwargs)
            if progress is not None:
                progress({"state": op.status.name, "progress": op.progress})
        errors = list(op.error.errors) if op.error else []
        if errors:
            raise CloudError("%s failed: %s" % (what, "; ".join("%s: %s" % (e.code, e.message) for e in errors)))
        return op

    # --- what is there -------------------------------------------------------------------------
    def instance(self):
        inst = self.call("instances", "get", "compute.instances.get %s" % self.instance_name,
                         project=self.project, zone=self.zone, instance=self.instance_name)
        return {"id": inst.name, "zone": _short(inst.zone) or self.zone, "state": inst.status,
                "disks": dict((d.device_name, _short(d.source)) for d in inst.disks)}

    def _disk(self, raw, device=None):
        users = [_short(u) for u in raw.users]
        return {"id": raw.name, "zone": _short(raw.zone) or self.zone, "size_gb": raw.size_gb, "state": raw.status,
                "type": raw.type_, "attached_to": users[0] if users else None, "device": device,
                "tags": dict(raw.labels), "label_fingerprint": raw.label_fingerprint}

    def volume(self, volume_id):
        return self._disk(self.call("disks", "get", "compute.disks.get %s" % volume_id,
                                    project=self.project, zone=self.zone, disk=volume_id))

    def volume_state(self, volume_id):
        """creating, available, attached or error (disk attach and detach are operations, waited on)."""
        disk = self.volume(volume_id)
        if disk["state"] in ("CREATING", "RESTORING"):
            return "creating"
        if disk["state"] != "READY":
            return "error"
        return "attached" if disk["attached_to"] else "available"

    def attached_at(self, device):
        disk = self.instance()["disks"].get(device)
        if not disk:
            return None
        return self._disk(self.call("disks", "get", "compute.disks.get %s" % disk, project=self.project,
                                    zone=self.zone, disk=disk), device)

    def host_paths(self, volume, device):
        return ["/dev/disk/by-id/google-%s" % device]

    def check_permissions(self, actions, volume, snapshot_id=None, zone=None, device=None):
        """Problems testIamPermissions reports, each permission asked of its own resource; [] when all are held."""
        resources = {"disks": ({"zone": self.zone}, volume["id"]), "instances": ({"zone": self.zone}, self.instance_name),
                     "snapshots": ({}, snapshot_id)}
        missing = []
        for kind in actions:
            for client, wanted in permission_checks(kind):
                where, resource = resources[client]
                if not resource:  # no snapshot named (nothing to restore from yet): nothing of it to ask
                    continue
                request = compute_v1.TestPermissionsRequest(permissions=wanted)
                held = self.call(client, "test_iam_permissions", "compute.%s.testIamPermissions %s" % (client, resource),
                                 project=self.project, resource=resource, test_permissions_request_resource=request,
                                 **where)
                missing.extend(p for p in wanted if p not in set(held.permissions))
        return ["the credentials lack %s" % p for p in missing]

    # --- snapshots -----------------------------------------------------------------------------
    def create_snapshot(self, volume, manifest):
        name = snapshot_name(manifest["engine"], manifest["id"])
        labels = {LABEL + "engine": label_value(manifest["engine"]), LABEL + "id": label_value(manifest["id"])}
        described = manifest_tags(manifest, 1024)
        resource = compute_v1.Snapshot(name=name, labels=labels, description=json.dumps(described, sort_keys=True))
        op = self.call("disks", "create_snapshot_unary", "compute.disks.createSnapshot %s" % volume["id"],
                       project=self.project, zone=self.zone, disk=volume["id"], snapshot_resource=resource)
        self._pending[name] = op
        return name

    def wait_cut(self, snapshot_id, deadline):
        """GCP fixes the point in time when the snapshot leaves CREATING (UPLOADING): writes may resume then."""
        while True:
            snap = self.snapshot(snapshot_id)
            if snap is not None and snap["raw_status"] != "CREATING":
                if snap["state"] == "error":
                    raise CloudError("snapshot %s ended in state FAILED" % snapshot_id)
                return snap
            op = self._pending.get(snapshot_id)
            if op is not None:
                op = self._refresh(op)
                self._pending[snapshot_id] = op
                errors = list(op.error.errors) if op.error else []
                if errors:
                    raise CloudError("snapshot %s failed: %s" % (snapshot_id, "; ".join(e.message for e in errors)))
            if time.monotonic() >= deadline:
                raise DeadlineExceeded("snapshot %s did not leave CREATING before its deadline" % snapshot_id)
            time.sleep(0.1)

    def _refresh(self, op):
        return self.call("zone_ops", "get", "compute.zoneOperations.get", project=self.project, zone=self.zone,
                         operation=op.name)

    def wait_snapshot(self, snapshot_id, deadline, progress=None):
        op = self._pending.get(snapshot_id)
        if op is not None:
            self.wait_operation(op, "snapshot %s" % snapshot_id, deadline, progress)
        snap = self.snapshot(snapshot_id)
        if snap is None or snap["state"] == "error":
            raise CloudError("snapshot %s ended in state %s" % (snapshot_id, snap["raw_status"] if snap else "missing"))
        if snap["state"] != "completed":
            raise CloudError("snapshot %s is %s after its operation finished" % (snapshot_id, snap["raw_status"]))
        return snap

    def _snapshot(self, raw):
        try:
            labels = json.loads(raw.description or "{}")
        except ValueError:
            labels = {}
        return {"id": raw.name, "state": SNAPSHOT_STATES.get(raw.status, "pending"), "raw_status": raw.status,
                "progress": 100 if raw.status == "READY" else 0, "volume_id": _short(raw.source_disk),
                "size_gb": raw.disk_size_gb, "message": None, "labels": labels}

    def snapshot(self, snapshot_id):
        try:
            raw = self.clients["snapshots"].get(project=self.project, snapshot=snapshot_id, timeout=self.timeout)
        except gexc.NotFound:
            return None
        except gexc.Forbidden as exc:
            raise PermissionDenied("compute.snapshots.get is not allowed for these credentials (403: %s)" % exc.message)
        except gexc.GoogleAPICallError as exc:
            raise CloudError("compute.snapshots.get %s failed: %s" % (snapshot_id, exc))
        return self._snapshot(raw)

    def find_snapshots(self, engine, snapshot_id=None):
        query = 'labels.%sengine = "%s"' % (LABEL, label_value(engine))
        if snapshot_id:
            query += ' AND labels.%sid = "%s"' % (LABEL, label_value(snapshot_id))
        request = compute_v1.ListSnapshotsRequest(project=self.project, filter=query)
        pager = self.call("snapshots", "list", "compute.snapshots.list", request=request)
        try:
            found = [self._snapshot(s) for s in pager]
        except gexc.GoogleAPICallError as exc:
            raise CloudError("compute.snapshots.list failed: %s" % exc)
        # Labels are lowercased; the description carries the exact engine name and id.
        return [s for s in found if s["labels"].get("engine") == engine
                and (not snapshot_id or s["labels"].get("id") == snapshot_id)]

    def delete_snapshot(self, snapshot_id):
        op = self.call("snapshots", "delete_unary", "compute.snapshots.delete %s" % snapshot_id,
                       project=self.project, snapshot=snapshot_id)
        self.wait_operation(op, "deleting snapshot %s" % snapshot_id, time.monotonic() + 300)

    # --- volumes -------------------------------------------------------------------------------
    def create_volume(self, snapshot_id, zone, like, tags, deadline):
        name = resource_name(like["id"][:40], "r", time.strftime("%Y%m%dt%H%M%S", time.gmtime()))
        disk = compute_v1.Disk(name=name, source_snapshot="projects/%s/global/snapshots/%s" % (self.project, snapshot_id),
                               labels=dict((LABEL + k, label_value(v)) for k, v in tags.items()))
        if like.get("type"):
            disk.type_ = like["type"]
        op = self.call("disks", "insert_unary", "compute.disks.insert %s" % name, project=self.project, zone=zone,
                       disk_resource=disk)
        try:
            self.wait_operation(op, "creating disk %s" % name, deadline)
        except CloudError as exc:
            raise CloudError("%s (the new disk %s, if it exists, is left for inspection)" % (exc, name))
        return name

    def detach(self, volume, device, deadline):
        op = self.call("instances", "detach_disk_unary", "compute.instances.detachDisk %s" % device,
                       project=self.project, zone=self.zone, instance=self.instance_name, device_name=device)
        self.wait_operation(op, "detaching disk %s" % volume["id"], deadline)

    def attach(self, volume_id, device, deadline):
        attached = compute_v1.AttachedDisk(source="projects/%s/zones/%s/disks/%s" % (self.project, self.zone, volume_id),
                                           device_name=device)
        op = self.call("instances", "attach_disk_unary", "compute.instances.attachDisk %s" % volume_id,
                       project=self.project, zone=self.zone, instance=self.instance_name,
                       attached_disk_resource=attached)
        self.wait_operation(op, "attaching disk %s" % volume_id, deadline)

    def tag(self, volume_id, tags):
        disk = self.volume(volume_id)
        labels = dict(disk["tags"])
        labels.update((LABEL + k, label_value(v)) for k, v in tags.items())
        request = compute_v1.ZoneSetLabelsRequest(labels=labels, label_fingerprint=disk["label_fingerprint"])
        op = self.call("disks", "set_labels_unary", "compute.disks.setLabels %s" % volume_id, project=self.project,
                       zone=self.zone, resource=volume_id, zone_set_labels_request_resource=request)
        self.wait_operation(op, "labelling disk %s" % volume_id, time.monotonic() + 120)

    def volume_tags(self, volume):
        return dict((k[len(LABEL):], v) for k, v in volume["tags"].items() if k.startswith(LABEL))

    def delete_volume(self, volume_id):
        op = self.call("disks", "delete_unary", "compute.disks.delete %s" % volume_id, project=self.project,
                       zone=self.zone, disk=volume_id)
        self.wait_operation(op, "deleting disk %s" % volume_id, time.monotonic() + 300)
