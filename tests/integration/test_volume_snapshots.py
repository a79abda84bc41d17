"""Volume snapshots (EBS through moto, GCP persistent disks through a local Compute server) and the S3 off-host store.

The brain lives on a real ext4 filesystem on a loop device, mounted on this host and bind-mounted into a real
reference Engine as /data; freeze, unmount and mount are real. The cloud control planes are moto and
cloud_fakes.FakeCompute; cloud_fakes moves the bytes the way attach, detach and snapshots would.
"""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid

import boto3
import docker
import pytest
import requests

from ansible_run import COLLECTIONS, failures, run_module, run_playbook, write_inventory
from cloud_fakes import BlockStore, Ec2DataPlane, FakeCompute
from conftest import ENGINE_API_KEY, Brain, free_port, wait_for

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
# The collection's module_utils, imported in-process by two tests, come from the bootstrap's collections tree.
if COLLECTIONS and COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
REGION, ZONE = "us-east-1", "us-east-1a"
ENGINE_UID = 10001
KEYS = {"aws_access_key": "testing", "aws_secret_key": "testing"}


class PathBrain(Brain):
    """An SQLite brain in a host directory (the mounted cloud volume) instead of a Docker volume."""

    def sqlite_path(self, docker_client):
        return os.path.join(self.volume, "brain.sqlite")


def rows(path, table="episodes"):
    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return conn.execute('SELECT count(*) FROM "%s"' % table).fetchone()[0]
    finally:
        conn.close()


def turns(engine, tag, count):
    for n in range(count):
        assert engine.execute("turn %s-%d" % (tag, n), request_id="%s-%d" % (tag, n))[0] == 200


def writable(directory, timeout=5.0):
    """A write on the filesystem finishes (it would block while the filesystem is frozen)."""
    proc = subprocess.run(["timeout", str(timeout), "sh", "-c", "echo x > '%s/.probe' && sync -f '%s/.probe'"
                           % (directory, directory)], check=False)
    return proc.returncode == 0


@pytest.fixture(scope="module")
def moto_server():
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_for(lambda: requests.get("http://127.0.0.1:%d/moto-api/" % port, timeout=2).ok, 30, "moto to answer")
    yield "http://127.0.0.1:%d" % port
    server.stop()


class Site:
    """One Engine whose /data is a cloud volume mounted at `mount_point`."""

    def __init__(self, root, blocks):
        self.root, self.blocks = root, blocks
        self.mount_point = os.path.join(root, "mnt")
        self.store = os.path.join(root, "snapshots")
        os.makedirs(self.mount_point)
        self.engine = None

    def mount(self, device):
        subprocess.run(["mount", "-o", "noatime", device, self.mount_point], check=True)
        os.chown(self.mount_point, ENGINE_UID, ENGINE_UID)  # the reference Engine runs as uid 10001

    def start_engine(self, engines, version="2.3.1"):
        self.engine = engines.start(version, PathBrain("sqlite", self.mount_point, None, None))
        self.engine.wait_healthy()
        self.brain = os.path.join(self.mount_point, "brain.sqlite")
        return self.engine

    def source(self):
        out = subprocess.run(["findmnt", "-n", "-o", "SOURCE", self.mount_point], capture_output=True, text=True,
                             check=True)
        return out.stdout.strip()

    def close(self):
        if self.engine is not None:  # by name: a playbook may have replaced the container
            for suffix in ("", "-engine_ops-next", "-engine_ops-previous"):
                try:
                    self.engine.client.containers.get(self.engine.container.name + suffix).remove(force=True)
                except docker.errors.NotFound:
                    pass
        subprocess.run(["umount", self.mount_point], check=False, capture_output=True)
        self.blocks.close()


@pytest.fixture
def ebs(moto_server, engines):
    requests.post(moto_server + "/moto-api/reset", timeout=10)
    root = tempfile.mkdtemp(prefix="eo-ebs-")
    blocks = BlockStore(os.path.join(root, "blocks"))
    plane = Ec2DataPlane(moto_server, blocks, snapshot_seconds=1.0)
    site = Site(root, blocks)
    ec2 = boto3.client("ec2", endpoint_url=plane.url, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                                 Placement={"AvailabilityZone": ZONE})["Instances"][0]["InstanceId"]
    volume = ec2.create_volume(AvailabilityZone=ZONE, Size=1, VolumeType="gp3")["VolumeId"]
    blocks.create(volume)
    ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/sdf")
    site.mount(os.path.join(blocks.dev_dir, volume))
    site.start_engine(engines)
    site.ec2, site.plane, site.instance, site.volume, site.moto = ec2, plane, instance, volume, moto_server
    site.args = dict(KEYS, container=site.engine.container.name, store=site.store, backend="ebs", instance_id=instance,
                     device="/dev/sdf", device_path=os.path.join(blocks.dev_dir, "{volume_id}"), aws_region=REGION,
                     aws_endpoint_url=plane.url, snapshot_timeout=60, volume_timeout=60)
    yield site
    site.close()
    plane.close()


def attached(site):
    vols = site.ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [site.instance]}])["Volumes"]
    return [(v["VolumeId"], v["Attachments"][0]["Device"]) for v in vols
            if v["Attachments"][0]["Device"] != "/dev/sda1"]  # moto gives every instance a root volume


def tags(site, volume):
    vol = site.ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]
    return dict((t["Key"], t["Value"]) for t in vol.get("Tags") or [])


def test_ebs_snapshot_and_restore_end_to_end(ebs):
    engine = ebs.engine
    turns(engine, "before", 3)
    planned = run_module("brain_snapshot", dict(ebs.args, reason="pre-upgrade"), check=True)
    assert planned["changed"] and planned["snapshot"]["plan"]["volume_id"] == ebs.volume, planned.get("msg")
    assert not ebs.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]  # check mode took nothing

    taken = run_module("brain_snapshot", dict(ebs.args, reason="pre-upgrade", pinned=True, rollback_target=True))
    assert taken["changed"] and not taken.get("failed"), taken.get("msg")
    manifest = taken["snapshot"]
    cloud = manifest["volume_snapshot"]["snapshot_id"]
    assert manifest["backend"] == "ebs" and manifest["row_counts"]["episodes"] == 3 and manifest["files"] == []
    # Structure, not speed (the benchmarks time it): frozen, then waited, both inside the snapshot's duration; the
    # progress samples are in order and went through the pending state to completed.
    timings, progress = manifest["timings"], manifest["progress"]
    assert sorted(timings) == ["frozen", "wait"] and min(timings.values()) >= 0, manifest
    assert timings["frozen"] + timings["wait"] <= manifest["duration_seconds"], manifest
    assert [p["seconds"] for p in progress] == sorted(p["seconds"] for p in progress), progress
    assert progress[0]["state"] == "pending" and progress[-1]["state"] == "completed", progress
    snap = ebs.ec2.describe_snapshots(SnapshotIds=[cloud])["Snapshots"][0]
    snap_tags = dict((t["Key"], t["Value"]) for t in snap["Tags"])
    assert snap_tags["engine_ops:engine"] == engine.container.name and snap_tags["engine_ops:id"] == manifest["id"]
    assert snap_tags["engine_ops:schema_fingerprint"] == manifest["schema_fingerprint"]
    assert snap_tags["engine_ops:rows.episodes"] == "3"
    assert writable(ebs.mount_point) and engine.health()[0] == 200

    turns(engine, "bad", 4)  # the bad window
    assert rows(ebs.brain) == 7
    plan = run_module("brain_restore", dict(ebs.args, health_url=engine.url + "/health"), check=True)
    assert plan["changed"] and plan["plan"]["rows_to_export"]["episodes"] == 4, plan.get("msg")
    assert attached(ebs) == [(ebs.volume, "/dev/sdf")]

    restored = run_module("brain_restore", dict(ebs.args, health_url=engine.url + "/health"))
    assert restored["changed"] and not restored.get("failed"), restored.get("msg")
    new_volume = restored["staged"]
    assert restored["aside"] == ebs.volume and attached(ebs) == [(new_volume, "/dev/sdf")]
    assert ebs.source() == os.path.realpath(os.path.join(ebs.blocks.dev_dir, new_volume))
    assert rows(ebs.brain) == 3 and restored["exported"]["episodes"] == 4
    with open(os.path.join(restored["export_dir"], "episodes.jsonl")) as handle:
        assert sorted(json.loads(line)["request_id"] for line in handle) == ["bad-%d" % n for n in range(4)]
    old = tags(ebs, ebs.volume)
    assert old["engine_ops:replaced_by"] == new_volume and old["engine_ops:engine"] == engine.container.name
    assert tags(ebs, new_volume)["engine_ops:restored_from"] == cloud
    assert restored["health"]["healthy"] and engine.health()[0] == 200
    turns(engine, "after", 1)

    again = run_module("brain_restore", dict(ebs.args))
    assert not again["changed"] and again["already_restored"]["aside"] == ebs.volume, again
    assert attached(ebs) == [(new_volume, "/dev/sdf")] and rows(ebs.brain) == 4

    info = run_module("brain_snapshot_info", dict(ebs.args))
    assert [(s["id"], s["location"], s["cloud_state"]) for s in info["snapshots"]] == [
        (manifest["id"], ["host", "ebs"], "completed")]

    undo = run_module("brain_restore", dict(ebs.args, undo=ebs.volume, health_url=engine.url + "/health"))
    assert undo["changed"] and not undo.get("failed"), undo.get("msg")
    assert attached(ebs) == [(ebs.volume, "/dev/sdf")] and rows(ebs.brain) == 7
    assert engine.health()[0] == 200


def failed_messages(report):
    return [(t["task"]["name"], r.get("msg")) for p in report["plays"] for t in p["tasks"] for r in t["hosts"].values()
            if r.get("failed") and not r.get("ignore_errors")]


def test_upgrade_and_rollback_playbooks_on_an_ebs_volume(ebs, tmp_path, docker_client):
    """The fleet playbooks with brain_backend=ebs: the pre-upgrade snapshot is an EBS snapshot, the rollback swaps volumes."""
    engine, name = ebs.engine, ebs.engine.container.name
    turns(engine, "kept", 3)
    options = dict((k, v) for k, v in ebs.args.items() if k not in ("container", "store", "backend"))
    work = tmp_path / "work"
    inventory = write_inventory(tmp_path, "engines", {name: {
        "engine_container": name, "engine_url": engine.url, "engine_api_key": ENGINE_API_KEY, "brain_backend": "ebs", "brain_options": options}},
        group_vars={"engine_snapshot_store": ebs.store, "engine_state_dir": str(work / "state"),
                    "engine_ledger_path": str(work / "ledger.jsonl"), "engine_report_dir": str(work / "reports"),
                    "upgrade_watch_seconds": 2, "upgrade_window_seconds": 1})
    rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=2.4.0")
    assert rc == 0 and not failures(report), failed_messages(report)
    snapshots = ebs.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert len(snapshots) == 1 and docker_client.containers.get(name).image.id == docker_client.images.get(
        "engine:2.4.0").id
    turns(engine, "bad", 2)

    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1", "-e", "reason=bad writes")
    assert rc == 0 and not failures(report), failed_messages(report)
    assert docker_client.containers.get(name).image.id == docker_client.images.get("engine:2.3.1").id
    (new_volume, device), = attached(ebs)
    assert device == "/dev/sdf" and new_volume != ebs.volume
    assert tags(ebs, new_volume)["engine_ops:restored_from"] == snapshots[0]["SnapshotId"]
    assert tags(ebs, ebs.volume)["engine_ops:replaced_by"] == new_volume
    assert rows(ebs.brain) == 3 and engine.health()[0] == 200


def test_ebs_restore_when_the_host_lost_its_store(ebs):
    """The cloud snapshot's tags are enough: a new host's empty store restores it by id."""
    turns(ebs.engine, "before", 2)
    manifest = run_module("brain_snapshot", dict(ebs.args))["snapshot"]
    turns(ebs.engine, "bad", 2)
    subprocess.run(["rm", "-rf", ebs.store], check=True)
    restored = run_module("brain_restore", dict(ebs.args, id=manifest["id"], health_url=ebs.engine.url + "/health"))
    assert restored["changed"] and not restored.get("failed"), restored.get("msg")
    assert restored["fetched"]["location"].startswith("ebs snapshot snap-")
    assert rows(ebs.brain) == 2 and ebs.engine.health()[0] == 200


@pytest.mark.parametrize("fate, timeout, expected", [
    ("error", 60, "ended in state error"),
    ("stuck", 2, "did not finish before its deadline"),
])
def test_ebs_snapshot_that_fails_or_outlasts_its_deadline(ebs, fate, timeout, expected):
    turns(ebs.engine, "before", 1)
    ebs.plane.fates["next"] = fate
    result = run_module("brain_snapshot", dict(ebs.args, snapshot_timeout=timeout))
    assert result.get("failed") and expected in result["msg"], result
    assert not os.path.isdir(os.path.join(ebs.store, ebs.engine.container.name)) or not [
        n for n in os.listdir(os.path.join(ebs.store, ebs.engine.container.name)) if not n.startswith(".")]
    left = ebs.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    if fate == "error":
        assert not left and "deleted" in result["msg"]
    else:
        assert "NOT recorded" in result["msg"] and len(left) == 1
    assert attached(ebs) == [(ebs.volume, "/dev/sdf")]
    assert writable(ebs.mount_point) and ebs.engine.health()[0] == 200


def limited_keys(site, actions):
    iam = boto3.client("iam", endpoint_url=site.moto, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    user = "eo-" + uuid.uuid4().hex[:8]
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="limited", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"aws_access_key": key["AccessKeyId"], "aws_secret_key": key["SecretAccessKey"]}


def test_ebs_permission_errors_are_refused_before_anything_changes(ebs):
    turns(ebs.engine, "before", 1)
    manifest = run_module("brain_snapshot", dict(ebs.args))["snapshot"]
    turns(ebs.engine, "bad", 1)
    no_snapshot = limited_keys(ebs, ["ec2:Describe*", "ec2:CreateTags"])
    no_attach = limited_keys(ebs, ["ec2:Describe*", "ec2:CreateTags", "ec2:CreateSnapshot", "ec2:CreateVolume",
                                   "ec2:DetachVolume"])
    requests.post(ebs.moto + "/moto-api/reset-auth", data="0", timeout=10)  # moto enforces IAM from here on
    try:
        refused = run_module("brain_snapshot", dict(ebs.args, **no_snapshot))
        refused_restore = run_module("brain_restore", dict(ebs.args, id=manifest["id"], **no_attach))
    finally:
        requests.post(ebs.moto + "/moto-api/reset-auth", data="inf", timeout=10)
    assert refused.get("failed") and "ec2:CreateSnapshot is not allowed" in refused["msg"], refused
    assert "nothing was changed" in refused["msg"]
    assert refused_restore.get("failed") and "ec2:AttachVolume is not allowed" in refused_restore["msg"], refused_restore
    assert "nothing was changed" in refused_restore["msg"]
    assert len(ebs.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 1
    assert len(ebs.ec2.describe_volumes()["Volumes"]) == 2 and attached(ebs) == [(ebs.volume, "/dev/sdf")]
    assert rows(ebs.brain) == 2 and ebs.engine.health()[0] == 200


def test_ebs_volume_in_another_zone_is_refused(ebs):
    turns(ebs.engine, "before", 1)
    other = ebs.ec2.create_volume(AvailabilityZone="us-east-1b", Size=1)["VolumeId"]
    result = run_module("brain_snapshot", dict(ebs.args, volume_id=other))
    assert result.get("failed") and "is in zone us-east-1b but instance" in result["msg"], result
    manifest = run_module("brain_snapshot", dict(ebs.args))["snapshot"]
    result = run_module("brain_restore", dict(ebs.args, id=manifest["id"], zone="us-east-1b"))
    assert result.get("failed") and "not us-east-1b" in result["msg"] and "nothing was changed" in result["msg"], result
    assert len(ebs.ec2.describe_volumes()["Volumes"]) == 3  # root, brain, the other zone's: none was created
    assert attached(ebs) == [(ebs.volume, "/dev/sdf")] and ebs.engine.health()[0] == 200


def test_freeze_watchdog_thaws_when_the_freezer_is_killed(tmp_path):
    """The module can be SIGKILLed while the filesystem is frozen: its watchdog still thaws it."""
    blocks = BlockStore(str(tmp_path / "blocks"))
    point = str(tmp_path / "mnt")
    os.makedirs(point)
    try:
        blocks.create("vol")
        subprocess.run(["mount", blocks.attach("vol", "vol"), point], check=True)
        code = ("import sys, time; from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain import "
                "volume_host as h\nf = h.Freeze(sys.argv[1], 2); f.__enter__(); print('frozen', flush=True); "
                "time.sleep(600)")
        proc = subprocess.Popen([sys.executable, "-c", code, point], stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONPATH=COLLECTIONS))
        assert proc.stdout.readline().strip() == "frozen"
        assert not writable(point, timeout=0.5)  # frozen: the write blocks
        proc.kill()
        proc.wait()
        wait_for(lambda: writable(point, timeout=1), 10, "the watchdog to thaw %s" % point)
    finally:
        subprocess.run(["umount", point], check=False)
        blocks.close()


# --- GCP persistent disks -----------------------------------------------------------------------------------
@pytest.fixture
def gcp(engines, request):
    """One Engine on a GCP disk of the local Compute API; `op_seconds` (an indirect parameter) is how long each
    operation runs (0.6 s by default; longer than the 1 s a wait call lasts makes every wait return unfinished)."""
    root = tempfile.mkdtemp(prefix="eo-gcp-")
    blocks = BlockStore(os.path.join(root, "blocks"))
    fake = FakeCompute(blocks, op_seconds=getattr(request, "param", 0.6))
    site = Site(root, blocks)
    fake.add_instance("engine-vm")
    fake.add_disk("brain-disk")
    fake.attach_now("engine-vm", "brain-disk", "brain")
    site.mount(os.path.join(blocks.dev_dir, "google-brain"))
    site.start_engine(engines)
    site.fake = fake
    site.args = dict(container=site.engine.container.name, store=site.store, backend="gcp_disk", instance_id="engine-vm",
                     device="brain", device_path=os.path.join(blocks.dev_dir, "google-{device}"), gcp_project="proj",
                     gcp_zone="zone-a", gcp_endpoint=fake.url, gcp_auth_kind="none", snapshot_timeout=30,
                     volume_timeout=30)
    yield site
    site.close()
    fake.close()


@pytest.mark.parametrize("gcp", [0.6, 2.5], indirect=True, ids=["operations-within-one-wait", "operations-outlast-waits"])
def test_gcp_snapshot_and_restore_end_to_end(gcp):
    engine = gcp.engine
    turns(engine, "before", 3)
    taken = run_module("brain_snapshot", dict(gcp.args, consistency="drain", rollback_target=True))
    assert taken["changed"] and not taken.get("failed"), taken.get("msg")
    manifest = taken["snapshot"]
    name = manifest["volume_snapshot"]["snapshot_id"]
    snap = gcp.fake.snapshots[name]
    assert snap["labels"]["engine_ops-id"] == manifest["id"].lower().replace(".", "-")
    assert json.loads(snap["description"])["schema_fingerprint"] == manifest["schema_fingerprint"]
    assert manifest["rows_exact"] and manifest["drain"]["clean"] and engine.health()[0] == 200
    turns(engine, "bad", 2)

    restored = run_module("brain_restore", dict(gcp.args, health_url=engine.url + "/health"))
    assert restored["changed"] and not restored.get("failed"), restored.get("msg")
    new_disk = restored["staged"]
    inst = gcp.fake.instances["engine-vm"]
    assert [(d["deviceName"], d["source"].rsplit("/", 1)[-1]) for d in inst["disks"]] == [("brain", new_disk)]
    assert gcp.fake.disks["brain-disk"]["labels"]["engine_ops-replaced_by"] == new_disk
    assert gcp.fake.disks["brain-disk"]["users"] == []
    assert rows(gcp.brain) == 3 and restored["exported"]["episodes"] == 2 and engine.health()[0] == 200
    again = run_module("brain_restore", dict(gcp.args))
    assert not again["changed"] and again.get("already_restored"), again


@pytest.mark.parametrize("fault, expected", [
    ("error", "INTERNAL_ERROR"),
    ("stuck", "did not finish before its deadline"),
    ("deny", "compute.disks.createSnapshot"),
    ("zone", "is in zone zone-a, not zone-b"),
])
def test_gcp_snapshot_faults_leave_the_disk_attached_and_the_engine_serving(gcp, fault, expected):
    turns(gcp.engine, "before", 1)
    if fault == "deny":
        gcp.fake.deny.add("compute.disks.createSnapshot")
    elif fault != "zone":
        gcp.fake.fates["next"] = fault
    result = run_module("brain_snapshot", dict(gcp.args, snapshot_timeout=3, **({"zone": "zone-b"} if fault == "zone" else {})))
    assert result.get("failed") and expected in result["msg"], result
    if fault in ("deny", "zone"):
        assert "nothing was changed" in result["msg"] and not gcp.fake.snapshots
    assert [d["deviceName"] for d in gcp.fake.instances["engine-vm"]["disks"]] == ["brain"]
    assert writable(gcp.mount_point) and gcp.engine.health()[0] == 200


def test_gcp_attach_that_fails_mid_swap_puts_the_old_disk_back(gcp):
    engine = gcp.engine
    turns(engine, "before", 2)
    manifest = run_module("brain_snapshot", dict(gcp.args))["snapshot"]
    turns(engine, "bad", 1)
    gcp.fake.fates["attach"] = "error"
    result = run_module("brain_restore", dict(gcp.args, id=manifest["id"], health_url=engine.url + "/health"))
    assert result.get("failed") and result["changed"], result
    assert "injected fault" in result["msg"] and "the old volume brain-disk was attached and mounted again" in result["msg"]
    assert [(d["deviceName"], d["source"].rsplit("/", 1)[-1]) for d in gcp.fake.instances["engine-vm"]["disks"]] == [
        ("brain", "brain-disk")]
    assert gcp.source() == os.path.realpath(os.path.join(gcp.blocks.dev_dir, "google-brain"))
    assert rows(gcp.brain) == 3  # the live brain, bad window included, is back and untouched
    wait_for(lambda: engine.health()[0] == 200, 30, "the Engine serving on its old disk")
    assert len(gcp.fake.disks) == 2  # the new disk is kept for inspection


def test_gcp_restore_refused_without_attach_permission(gcp):
    turns(gcp.engine, "before", 1)
    manifest = run_module("brain_snapshot", dict(gcp.args))["snapshot"]
    gcp.fake.deny.add("compute.instances.attachDisk")
    result = run_module("brain_restore", dict(gcp.args, id=manifest["id"]))
    assert result.get("failed") and "compute.instances.attachDisk" in result["msg"], result
    assert "nothing was changed" in result["msg"] and sorted(gcp.fake.disks) == ["brain-disk"]
    assert gcp.engine.health()[0] == 200


def test_gcp_snapshot_keeps_the_filesystem_frozen_until_its_point_in_time(gcp):
    """GCP reads the disk's bytes after createSnapshot returns, when the snapshot leaves CREATING: the stand-in
    copies them only then, and asks at that moment whether the brain's filesystem is still frozen (a second freeze
    is refused with EBUSY while it is). Thawing when the call returns would let writes into the snapshot."""
    seen = []

    def frozen_at_cut(disk):
        probe = subprocess.run(["fsfreeze", "--freeze", gcp.mount_point], capture_output=True, text=True, check=False)
        if probe.returncode == 0:  # it was not frozen: this probe froze it, and thaws it at once
            subprocess.run(["fsfreeze", "--unfreeze", gcp.mount_point], check=False)
        seen.append((disk, probe.returncode != 0 and "busy" in probe.stderr.lower()))
    gcp.fake.on_cut = frozen_at_cut
    turns(gcp.engine, "before", 2)
    taken = run_module("brain_snapshot", dict(gcp.args))
    assert taken["changed"] and not taken.get("failed"), taken.get("msg")
    assert seen == [("brain-disk", True)], "the filesystem was thawed before the snapshot's point in time: %s" % seen
    assert writable(gcp.mount_point) and gcp.engine.health()[0] == 200


def test_the_gcp_stand_in_refuses_what_gcp_refuses(gcp):
    """So that a test passing against it means the code never asks these things of GCP."""
    base = gcp.fake.base()
    attached = requests.post(base + "/instances/engine-vm/attachDisk", timeout=10,
                             json={"source": base + "/disks/brain-disk", "deviceName": "again"})
    assert attached.status_code == 400 and "resourceInUseByAnotherResource" in attached.text
    deleted = requests.delete(base + "/disks/brain-disk", timeout=10)
    assert deleted.status_code == 400 and "resourceInUseByAnotherResource" in deleted.text
    asked = requests.post(base + "/disks/brain-disk/testIamPermissions", timeout=10,
                          json={"permissions": ["compute.disks.use", "compute.instances.attachDisk"]})
    assert asked.status_code == 400 and "compute.instances.attachDisk" in asked.text
    held = requests.post(base + "/instances/engine-vm/testIamPermissions", timeout=10,
                         json={"permissions": ["compute.instances.attachDisk"]})
    assert held.status_code == 200 and held.json()["permissions"] == ["compute.instances.attachDisk"]
    assert sorted(gcp.fake.disks) == ["brain-disk"] and gcp.fake.disks["brain-disk"]["users"]


# --- the S3 off-host store ----------------------------------------------------------------------------------
@pytest.fixture
def bucket(moto_server):
    name = "eo-" + uuid.uuid4().hex[:10]
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION, aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket=name)
    return s3, name


def test_offsite_copy_is_encrypted_and_a_lost_snapshot_is_fetched_and_verified(engines, moto_server, bucket, tmp_path):
    s3, name = bucket
    engine = engines.start("2.3.1", engines.brain("sqlite"))
    engine.wait_healthy()
    turns(engine, "before", 3)
    store = str(tmp_path / "snapshots")
    args = dict(KEYS, container=engine.container.name, store=store, s3_bucket=name, s3_prefix="fleet/eu",
                aws_region=REGION, aws_endpoint_url=moto_server)
    taken = run_module("brain_snapshot", dict(args, rollback_target=True))
    assert taken["changed"] and not taken.get("failed"), taken.get("msg")
    manifest, offsite = taken["snapshot"], taken["offsite"]
    assert offsite["location"] == "s3://%s/fleet/eu/%s/%s" % (name, engine.container.name, manifest["id"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=name)["Contents"]]
    assert len(keys) == len(manifest["files"]) + 2
    for key in keys:
        assert s3.head_object(Bucket=name, Key=key)["ServerSideEncryption"] == "AES256"
    turns(engine, "bad", 2)

    subprocess.run(["rm", "-rf", os.path.join(store, engine.container.name, manifest["id"])], check=True)
    info = run_module("brain_snapshot_info", args)
    assert [(s["id"], s["location"]) for s in info["snapshots"]] == [(manifest["id"], ["s3"])]
    plan = run_module("brain_restore", dict(args, id=manifest["id"]), check=True)
    assert plan["changed"] and plan["plan"]["fetch"] == offsite["location"], plan
    assert not os.path.isdir(os.path.join(store, engine.container.name, manifest["id"]))

    victim = [k for k in keys if k.endswith(manifest["files"][0]["name"])][0]
    original = s3.get_object(Bucket=name, Key=victim)["Body"].read()
    s3.put_object(Bucket=name, Key=victim, Body=original[:-1] + bytes([original[-1] ^ 1]), ServerSideEncryption="AES256")
    refused = run_module("brain_restore", dict(args, id=manifest["id"]))
    assert refused.get("failed") and "does not match the checksum" in refused["msg"], refused
    assert "nothing was changed" in refused["msg"]
    assert not os.path.isdir(os.path.join(store, engine.container.name, manifest["id"]))
    assert engine.health()[0] == 200

    s3.put_object(Bucket=name, Key=victim, Body=original, ServerSideEncryption="AES256")
    restored = run_module("brain_restore", dict(args, id=manifest["id"], health_url=engine.url + "/health"))
    assert restored["changed"] and not restored.get("failed"), restored.get("msg")
    assert restored["fetched"]["location"] == offsite["location"] and restored["exported"]["episodes"] == 2
    assert engine.health()[0] == 200


def test_large_files_go_up_in_parts_and_come_back_verified(moto_server, bucket, tmp_path):
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.offsite import S3Store
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import SnapshotStore, file_entries
    s3, name = bucket
    store = SnapshotStore(str(tmp_path / "store"), "big")
    partial = store.partial("20260101T000000.000000Z")
    with open(os.path.join(partial, "brain.sqlite"), "wb") as handle:
        handle.write(os.urandom(12 * 1024 * 1024))
    manifest = {"format": 1, "id": "20260101T000000.000000Z", "engine": "big",
                "files": file_entries(partial, ["brain.sqlite"])}
    store.commit(partial, manifest)
    params = dict(s3_bucket=name, s3_prefix="p", s3_sse="AES256", s3_multipart_mib=5, aws_region=REGION,
                  aws_endpoint_url=moto_server, aws_access_key="testing", aws_secret_key="testing")
    up = S3Store(params, "big").upload(store.path(manifest["id"]), manifest)
    assert up["multipart"] == ["brain.sqlite"] and up["objects"] == 3 and up["bytes"] > 12 * 1024 * 1024
    head = s3.head_object(Bucket=name, Key="p/big/%s/brain.sqlite" % manifest["id"])
    assert head["ETag"].strip('"').endswith("-3")  # three parts of 5 MiB at most
    other = SnapshotStore(str(tmp_path / "other"), "big")
    got = S3Store(params, "big").fetch(other, manifest["id"])
    assert got["bytes"] == 12 * 1024 * 1024
    assert other.load(manifest["id"], verify_files=True)["id"] == manifest["id"]
