# -*- coding: utf-8 -*-
# Copyright: (c) 2026, engine_ops maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""EBS volumes and snapshots through boto3, in the provider shape `_volume_snapshot` uses.

Imported only by the `ebs` backend: boto3 costs ~0.2 s per module call, which a SQLite brain never pays.
Every call that waits takes a deadline; permissions are checked with DryRun before anything changes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.cloud import (
    CloudError, PermissionDenied, manifest_tags, wait_until)

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc

TAG = "engine_ops:"
DENIED = ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure",
          "InvalidClientTokenId", "SignatureDoesNotMatch")
STATES = {"pending": "pending", "completed": "completed", "error": "error", "recoverable": "pending",
          "recovering": "pending"}


def aws_session(params):
    kw = {}
    for option, name in (("aws_access_key", "aws_access_key_id"), ("aws_secret_key", "aws_secret_access_key"),
                         ("aws_session_token", "aws_session_token"), ("aws_profile", "profile_name"),
                         ("aws_region", "region_name")):
        if params.get(option):
            kw[name] = params[option]
    return boto3.session.Session(**kw)


def aws_client(params, service):
    config = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    session = aws_session(params)
    if not session.region_name:
        raise CloudError("no AWS region: set aws_region (or AWS_REGION)")
    return session.client(service, endpoint_url=params.get("aws_endpoint_url") or None, config=config)


def _tags(items):
    return dict((t["Key"], t["Value"]) for t in items or [])


def _volume(raw):
    attachments = [a for a in raw.get("Attachments") or [] if a.get("State") in ("attaching", "attached", "detaching")]
    return {"id": raw["VolumeId"], "zone": raw.get("AvailabilityZone"), "size_gb": raw.get("Size"),
            "state": raw.get("State"), "type": raw.get("VolumeType"), "encrypted": raw.get("Encrypted"),
            "attached_to": attachments[0]["InstanceId"] if attachments else None,
            "device": attachments[0]["Device"] if attachments else None,
            "attachment_state": attachments[0]["State"] if attachments else "detached", "tags": _tags(raw.get("Tags"))}


class EbsProvider:
    name = "ebs"
    snapshot_permissions = ("CreateSnapshot", "CreateTags")
    restore_permissions = ("CreateVolume", "DetachVolume", "AttachVolume", "CreateTags")

    def __init__(self, params, client=None):
        if client is None and not HAS_BOTO3:
            raise CloudError("the ebs backend needs boto3 (pip install boto3) on the Engine host")
        self.client = client or aws_client(params, "ec2")
        self.instance_id = params.get("instance_id")
        self.region = params.get("aws_region")

    def call(self, action, **kwargs):
        try:
            return getattr(self.client, action)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error") or {}
            code, message = error.get("Code", "?"), error.get("Message", str(exc))
            if code in DENIED:
                raise PermissionDenied("ec2:%s is not allowed for these credentials (%s: %s)"
                                       % (_camel(action), code, message))
            raise CloudError("ec2:%s failed: %s: %s" % (_camel(action), code, message))
        except BotoCoreError as exc:
            raise CloudError("ec2:%s failed: %s" % (_camel(action), exc))

    # --- what is there -------------------------------------------------------------------------
    def instance(self):
        if not self.instance_id:
            raise CloudError("instance_id is required for the ebs backend (the EC2 instance running the Engine)")
        found = self.call("describe_instances", InstanceIds=[self.instance_id])
        for reservation in found.get("Reservations") or []:
            for inst in reservation.get("Instances") or []:
                return {"id": inst["InstanceId"], "zone": inst["Placement"]["AvailabilityZone"],
                        "state": inst["State"]["Name"]}
        raise CloudError("instance %s does not exist" % self.instance_id)

    def volume(self, volume_id):
        found = self.call("describe_volumes", VolumeIds=[volume_id]).get("Volumes") or []
        if not found:
            raise CloudError("volume %s does not exist" % volume_id)
        return _volume(found[0])

    def attached_at(self, device):
        """The volume attached to our instance at `device`, or None."""
        found = self.call("describe_volumes", Filters=[{"Name": "attachment.instance-id", "Values": [self.instance_id]},
                                                       {"Name": "attachment.device", "Values": [device]}])
        volumes = [_volume(v) for v in found.get("Volumes") or []]
        return volumes[0] if volumes else None

    def host_paths(self, volume, device):
        """Where the volume shows on the host: the NVMe by-id link (Nitro), else the device name (Xen)."""
        return ["/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_%s" % volume["id"].replace("-", ""), device,
                device.replace("/dev/sd", "/dev/xvd")]

    def check_permissions(self, actions, volume, snapshot_id=None, zone=None, device=None):
        """Problems DryRun reports for each action; [] when every one would be allowed."""
        calls = {
            "CreateSnapshot": ("create_snapshot", {"VolumeId": volume["id"]}),
            "CreateVolume": ("create_volume", dict({"AvailabilityZone": zone or volume["zone"]},
                                                   **({"SnapshotId": snapshot_id} if snapshot_id else {"Size": 1}))),
            "DetachVolume": ("detach_volume", {"VolumeId": volume["id"]}),
            "AttachVolume": ("attach_volume", {"VolumeId": volume["id"], "InstanceId": self.instance_id,
                                               "Device": device or volume["device"]}),
            "CreateTags": ("create_tags", {"Resources": [volume["id"]], "Tags": [{"Key": TAG + "probe", "Value": "1"}]}),
        }
        problems = []
        for action in actions:
            method, kwargs = calls[action]
            try:
                self.client_dry_run(method, kwargs)
            except PermissionDenied as exc:
                problems.append(str(exc))
        return problems

    def client_dry_run(self, method, kwargs):
        try:
            getattr(self.client, method)(DryRun=True, **kwargs)
        except ClientError as exc:
            code = (exc.response.get("Error") or {}).get("Code")
            if code == "DryRunOperation":
                return
            if code in DENIED:
                raise PermissionDenied("ec2:%s is not allowed for these credentials (%s)" % (_camel(method), code))
            # Anything else (a parameter the real call will get right) is not a permission problem.

    # --- snapshots -----------------------------------------------------------------------------
    def create_snapshot(self, volume, manifest):
        tags = [{"Key": TAG + k, "Value": v} for k, v in sorted(manifest_tags(manifest, 256).items())]
        tags.append({"Key": "Name", "Value": "engine_ops %s %s" % (manifest["engine"], manifest["id"])})
        out = self.call("create_snapshot", VolumeId=volume["id"],
                        Description=("engine_ops brain of %s, %s" % (manifest["engine"], manifest["id"]))[:255],
                        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
        return out["SnapshotId"]

    def wait_cut(self, snapshot_id, deadline):
        """EBS fixes a snapshot's point in time when CreateSnapshot returns: writes may resume at once."""
        return None

    def wait_snapshot(self, snapshot_id, deadline, progress=None):
        def probe():
            snap = self.snapshot(snapshot_id)
            if snap is None:
                raise CloudError("snapshot %s vanished while it was being taken" % snapshot_id)
            if snap["state"] == "error":
                raise CloudError("snapshot %s ended in state error (%s)" % (snapshot_id, snap.get("message") or "no reason given"))
            return snap["state"] == "completed", snap
        return wait_until("snapshot %s" % snapshot_id, probe, deadline, progress)

    def snapshot(self, snapshot_id):
        try:
            found = self.call("describe_snapshots", SnapshotIds=[snapshot_id]).get("Snapshots") or []
        except CloudError as exc:
            if "NotFound" in str(exc):
                return None
            raise
        return self._snapshot(found[0]) if found else None

    def _snapshot(self, raw):
        tags = _tags(raw.get("Tags"))
        progress = (raw.get("Progress") or "0%").rstrip("%") or "0"
        return {"id": raw["SnapshotId"], "state": STATES.get(raw.get("State"), raw.get("State")),
                "progress": int(float(progress)), "volume_id": raw.get("VolumeId"), "size_gb": raw.get("VolumeSize"),
                "message": raw.get("StateMessage"), "labels": dict((k[len(TAG):], v) for k, v in tags.items()
                                                                   if k.startswith(TAG))}

    def find_snapshots(self, engine, snapshot_id=None):
        filters = [{"Name": "tag:%sengine" % TAG, "Values": [engine]}]
        if snapshot_id:
            filters.append({"Name": "tag:%sid" % TAG, "Values": [snapshot_id]})
        found = []
        try:
            for page in self.client.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters):
                found.extend(self._snapshot(s) for s in page.get("Snapshots") or [])
        except (ClientError, BotoCoreError) as exc:
            raise CloudError("ec2:DescribeSnapshots failed: %s" % exc)
        return found

    def delete_snapshot(self, snapshot_id):
        self.call("delete_snapshot", SnapshotId=snapshot_id)

    # --- volumes -------------------------------------------------------------------------------
    def volume_state(self, volume_id):
        """creating, available, attaching, attached, detaching or error."""
        vol = self.volume(volume_id)
        return vol["attachment_state"] if vol["state"] == "in-use" else vol["state"]

    def _wait_volume(self, volume_id, wanted, deadline):
        def probe():
            state = self.volume_state(volume_id)
            if state == "error":
                raise CloudError("volume %s is in state error" % volume_id)
            return state == wanted, state
        return wait_until("volume %s becoming %s" % (volume_id, wanted), probe, deadline)

    def create_volume(self, snapshot_id, zone, like, tags, deadline):
        kwargs = {"SnapshotId": snapshot_id, "AvailabilityZone": zone,
                  "TagSpecifications": [{"ResourceType": "volume", "Tags": [{"Key": TAG + k, "Value": v}
                                                                            for k, v in sorted(tags.items())]}]}
        if like.get("type"):
            kwargs["VolumeType"] = like["type"]
        volume_id = self.call("create_volume", **kwargs)["VolumeId"]
        try:
            self._wait_volume(volume_id, "available", deadline)
        except CloudError as exc:
            raise CloudError("%s (the new volume %s is left for inspection)" % (exc, volume_id))
        return volume_id

    def detach(self, volume, device, deadline):
        self.call("detach_volume", VolumeId=volume["id"], InstanceId=self.instance_id, Device=device)
        self._wait_volume(volume["id"], "available", deadline)

    def attach(self, volume_id, device, deadline):
        self.call("attach_volume", VolumeId=volume_id, InstanceId=self.instance_id, Device=device)
        self._wait_volume(volume_id, "attached", deadline)

    def tag(self, volume_id, tags):
        self.call("create_tags", Resources=[volume_id], Tags=[{"Key": TAG + k, "Value": v} for k, v in tags.items()])

    def volume_tags(self, volume):
        return dict((k[len(TAG):], v) for k, v in volume["tags"].items() if k.startswith(TAG))

    def delete_volume(self, volume_id):
        self.call("delete_volume", VolumeId=volume_id)


def _camel(method):
    return "".join(part.capitalize() for part in method.split("_"))
