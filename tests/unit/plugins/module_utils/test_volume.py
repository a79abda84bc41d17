"""Volume snapshot logic that needs no cloud and no root: mountinfo, tags, names, deadlines, verification."""

import os
import subprocess
import sys

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain import volume_host as host
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state import mounts
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.cloud import (
    DeadlineExceeded, manifest_from_labels, manifest_tags, snapshot_deadline, wait_until)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.gcp_disk import (
    label_value, resource_name, snapshot_name)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.volume import VolumeBrain, VolumeError

MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
90 22 7:3 / /srv/engine\\040data rw,noatime shared:40 - ext4 /dev/loop3 rw
91 90 7:4 / /srv/engine\\040data/brain rw,noatime shared:41 - xfs /dev/nvme1n1 rw,attr2
"""


@pytest.fixture
def mountinfo(tmp_path):
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO)
    return str(path)


def test_the_deepest_mount_holds_a_path_and_escapes_are_decoded(mountinfo):
    entry = mounts.mount_of("/srv/engine data/brain/brain.sqlite", mountinfo)
    assert (entry["mount_point"], entry["source"], entry["fstype"], entry["options"]) == (
        "/srv/engine data/brain", "/dev/nvme1n1", "xfs", "rw,noatime")
    assert mounts.mount_of("/srv/engine data/x", mountinfo)["source"] == "/dev/loop3"
    assert mounts.mount_of("/etc/hosts", mountinfo)["mount_point"] == "/"
    assert mounts.mounted_at("/srv/engine data", mountinfo)["source"] == "/dev/loop3"
    assert mounts.mounted_at("/srv", mountinfo) is None


def test_manifest_fields_survive_the_trip_through_tags():
    manifest = {"format": 1, "id": "20261128T100000.000000Z", "engine": "support", "created_at": "2026-11-28T10:00:00Z",
                "pinned": True, "schema_fingerprint": "sha256:" + "a" * 64, "size_bytes": 4096, "reason": "x" * 300,
                "row_counts": {"episodes": 3, "knowledge_store": 0}}
    tags = manifest_tags(manifest, 256)
    assert len(tags["reason"]) == 256 and all(len(v) <= 256 for v in tags.values())
    back = manifest_from_labels(tags, {"id": "snap-1", "volume_id": "vol-1", "size_gb": 8}, "ebs")
    for field in ("format", "id", "engine", "created_at", "pinned", "schema_fingerprint", "size_bytes", "row_counts"):
        assert back[field] == manifest[field], field
    assert back["volume_snapshot"] == {"provider": "ebs", "snapshot_id": "snap-1", "volume_id": "vol-1", "size_gb": 8}


def test_many_tables_become_one_tag_each():
    counts = dict(("table_with_a_long_name_%02d" % n, n) for n in range(20))
    tags = manifest_tags({"id": "x", "row_counts": counts}, 256)
    assert "row_counts" not in tags and tags["rows.table_with_a_long_name_07"] == "7"
    assert manifest_from_labels(tags, {"id": "s"}, "ebs")["row_counts"] == counts


def test_gcp_names_and_labels_are_valid_and_distinct():
    name = snapshot_name("Support.Agent_EU", "20261128T100000.000000Z")
    assert len(name) <= 63 and name[0].isalpha() and name == name.lower() and "." not in name
    assert snapshot_name("support.agent", "1") != snapshot_name("support-agent", "1")  # label folding differs
    assert label_value("Support.Agent") == "support-agent"
    assert resource_name("9disk", "r") == "d9disk-r"


def test_the_snapshot_deadline_scales_with_the_volume():
    assert snapshot_deadline(100) > snapshot_deadline(10) > snapshot_deadline(None) - 1
    assert snapshot_deadline(500, timeout=42) == 42.0


def test_wait_until_reports_every_state_and_stops_at_its_deadline():
    now = [0.0]
    seen = []
    states = iter([(False, "pending 10%"), (False, "pending 60%"), (True, "completed")])
    assert wait_until("snap", lambda: next(states), 100, seen.append, now=lambda: now[0],
                      sleep=lambda s: now.__setitem__(0, now[0] + s)) == "completed"
    assert seen == ["pending 10%", "pending 60%", "completed"]
    now[0] = 0.0
    with pytest.raises(DeadlineExceeded, match="last state: pending"):
        wait_until("snap", lambda: (False, "pending"), 3, now=lambda: now[0],
                   sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert now[0] == pytest.approx(3.0)  # never slept past the deadline


class FakeSqlite:
    path = "/nonexistent/brain.sqlite"

    def __init__(self, rows, fingerprint="sha256:f", problems=()):
        self.rows, self.fp, self.problems = rows, fingerprint, list(problems)

    def integrity(self, path):
        return self.problems

    def describe(self):
        return {"fingerprint": self.fp, "tables": dict((t, {"rows": n}) for t, n in self.rows.items())}


def brain(sqlite):
    return VolumeBrain(provider=None, sqlite=sqlite, params={"backend": "ebs", "device": "/dev/sdf"})


def test_a_restored_brain_must_hold_at_least_the_snapshot_rows_or_exactly_them_when_drained():
    manifest = {"schema_fingerprint": "sha256:f", "row_counts": {"episodes": 3}, "rows_exact": False}
    assert brain(FakeSqlite({"episodes": 4})).verify(manifest) == []  # written between describe and freeze
    assert brain(FakeSqlite({"episodes": 2})).verify(manifest) == ["episodes: 2 rows, snapshot has 3"]
    assert brain(FakeSqlite({"episodes": 4})).verify(dict(manifest, rows_exact=True)) == [
        "episodes: 4 rows, snapshot has 3"]
    assert "schema fingerprint" in brain(FakeSqlite({"episodes": 3}, "sha256:g")).verify(manifest)[0]
    assert brain(FakeSqlite({}, problems=["page 3 is bad"])).verify(manifest) == ["integrity check: page 3 is bad"]


def test_a_volume_backend_needs_its_device():
    with pytest.raises(VolumeError, match="device is required"):
        VolumeBrain(provider=None, sqlite=FakeSqlite({}), params={"backend": "ebs"})


def test_the_sqlite_path_imports_no_cloud_library():
    """google.cloud.compute_v1 costs ~1.8 s and boto3 ~0.2 s per module call: only their backends import them."""
    code = ("import sys\n"
            "from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.select import make_backend\n"
            "from ansible_collections.engine_ops.lifecycle.plugins.module_utils import _module\n"
            "from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain import volume, offsite\n"
            "make_backend({'backend': 'sqlite', 'sqlite_path': '/tmp/x.sqlite'})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'google')))\n")
    collections = [p for p in sys.path if os.path.isdir(os.path.join(p, "ansible_collections"))]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(collections)))
    assert out.stdout.strip() == "[]", out.stdout


def test_a_gcp_key_handed_over_as_contents_is_used_and_a_bad_one_refused(monkeypatch):
    service_account = pytest.importorskip("google.oauth2.service_account")
    from google.auth.credentials import AnonymousCredentials
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.cloud import CloudError
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.gcp_disk import GcpDiskProvider

    seen = []

    def from_info(info, scopes=None):
        seen.append((info, scopes))
        return AnonymousCredentials()

    monkeypatch.setattr(service_account.Credentials, "from_service_account_info", staticmethod(from_info))
    params = {"gcp_project": "p", "gcp_zone": "europe-west1-b", "instance_id": "vm-1", "gcp_auth_kind": "serviceaccount",
              "gcp_endpoint": "http://127.0.0.1:1", "gcp_service_account_contents": '{"type": "service_account"}'}
    GcpDiskProvider(params)
    assert seen and seen[0][0] == {"type": "service_account"} and seen[0][1]
    with pytest.raises(CloudError, match="not a service account key"):
        GcpDiskProvider(dict(params, gcp_service_account_contents="{not json"))
    with pytest.raises(CloudError, match="needs gcp_credentials_file or gcp_service_account_contents"):
        GcpDiskProvider(dict(params, gcp_service_account_contents=None))


class FakeProvider:
    """Just enough of a cloud for VolumeBrain.take: a snapshot that fails while it completes, a delete that may fail."""
    name = "ebs"

    def __init__(self, delete_fails=False):
        self.delete_fails, self.deleted = delete_fails, []

    def create_snapshot(self, volume, manifest):
        return "snap-1"

    def wait_cut(self, cloud_id, deadline):
        return None

    def wait_snapshot(self, cloud_id, deadline, progress=None):
        from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.cloud import CloudError
        raise CloudError("snapshot %s: state error" % cloud_id)

    def delete_snapshot(self, cloud_id):
        from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.cloud import CloudError
        if self.delete_fails:
            raise CloudError("DeleteSnapshot %s: UnauthorizedOperation" % cloud_id)
        self.deleted.append(cloud_id)


class NoEngine:
    def stop(self):
        return None

    def start_if_stopped(self):
        return None


def taking(monkeypatch, provider, freeze_error=None):
    class Store:
        engine = "engine-1"

    class Freeze:
        expired, seconds = False, 0.01

        def __init__(self, mount_point, budget):
            pass

        def __enter__(self):
            if freeze_error:
                raise host.HostError(freeze_error)
            return self

        def __exit__(self, *exc):
            return False

    sqlite = FakeSqlite({"episodes": 3})
    sqlite.size_bytes = lambda: 4096
    sqlite.describe = lambda: {"fingerprint": "sha256:f", "schema": {}, "tables": {"episodes": {"rows": 3}}}
    volume = VolumeBrain(provider=provider, sqlite=sqlite, params={
        "backend": "ebs", "device": "/dev/sdf", "consistency": "freeze", "freeze_timeout": 30, "snapshot_timeout": None})
    loc = {"instance": {"id": "i-1", "zone": "z"}, "volume": {"id": "vol-1", "size_gb": 1},
           "mount": {"mount_point": "/srv/brain"}, "brain_path": "brain.sqlite"}
    monkeypatch.setattr(volume, "locate", lambda: loc)
    monkeypatch.setattr(volume, "refuse_without_permissions", lambda kind, found: None)
    monkeypatch.setattr(host, "checkpoint_wal", lambda path: (0, 0, 0))
    monkeypatch.setattr(host, "Freeze", Freeze)
    return lambda: volume.take(Store(), "s1", {}, NoEngine())


@pytest.mark.parametrize("delete_fails, says", [
    (False, "the snapshot snap-1 was deleted"),
    (True, "the snapshot snap-1 could NOT be deleted (DeleteSnapshot snap-1: UnauthorizedOperation): delete it by hand"),
])
def test_a_failed_snapshot_says_whether_its_delete_worked(monkeypatch, delete_fails, says):
    provider = FakeProvider(delete_fails)
    with pytest.raises(VolumeError) as info:
        taking(monkeypatch, provider)()
    assert says in str(info.value)
    assert provider.deleted == ([] if delete_fails else ["snap-1"])
    assert "was deleted" not in str(info.value) or not delete_fails


def test_a_failing_fsfreeze_is_an_error_naming_it_not_a_traceback(monkeypatch):
    with pytest.raises(VolumeError, match="freezing /srv/brain failed: fsfreeze: Operation not supported; no snapshot "
                                          "was taken and /srv/brain is not frozen"):
        taking(monkeypatch, FakeProvider(), freeze_error="freezing /srv/brain failed: fsfreeze: Operation not supported")()


class _PermissionClient:
    """A Compute client's testIamPermissions that, like GCP, answers only for its own resource type."""

    def __init__(self, resource_type, asked, lacking=()):
        self.resource_type, self.asked, self.lacking = resource_type, asked, set(lacking)

    def test_iam_permissions(self, timeout, project, resource, test_permissions_request_resource, **where):
        wanted = list(test_permissions_request_resource.permissions)
        assert all(p.split(".")[1] == self.resource_type for p in wanted), (self.resource_type, wanted)
        self.asked.append((self.resource_type, resource, sorted(where), wanted))

        class Held:
            permissions = [p for p in wanted if p not in self.lacking]
        return Held()


def test_gcp_asks_each_permission_of_its_own_resource():
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.gcp_disk import GcpDiskProvider
    asked = []
    clients = dict((name, _PermissionClient(name, asked, lacking=["compute.instances.attachDisk"]))
                   for name in ("disks", "instances", "snapshots"))
    provider = GcpDiskProvider({"gcp_project": "p", "gcp_zone": "z", "instance_id": "vm-1"}, clients=clients)
    problems = provider.check_permissions(("restore",), {"id": "brain-disk"}, snapshot_id="eo-snap")
    assert problems == ["the credentials lack compute.instances.attachDisk"]
    assert [(kind, resource, where) for kind, resource, where, dummy in asked] == [
        ("disks", "brain-disk", ["zone"]), ("instances", "vm-1", ["zone"]), ("snapshots", "eo-snap", [])]
    del asked[:]
    assert provider.check_permissions(("snapshot",), {"id": "brain-disk"}) == []
    assert asked == [("disks", "brain-disk", ["zone"], ["compute.disks.createSnapshot"])]
    del asked[:]  # a restore plan without a snapshot name asks nothing of a snapshot
    provider.check_permissions(("restore",), {"id": "brain-disk"})
    assert [kind for kind, dummy, dummy2, dummy3 in asked] == ["disks", "instances"]
