"""The pieces the reliability suite relies on, each failure made to happen at the exact point that matters."""

import errno
import json
import os
from collections import namedtuple
from datetime import datetime, timedelta

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.sqlite import SqliteBackend
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.engine_stop import EngineStop, engine_after
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._errors import EngineDockerError
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.image_switch import health_url_problem
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.restore import (
    RestoreError, already_restored, export_dir_for, load_stage, settle_pending, stage, swap)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.snapshot import room_for_snapshot, take_snapshot
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import SnapshotStore, StoreError

from test_snapshot_store_and_sqlite import make_brain


class StoppedEngine:
    """An Engine that is already stopped (as after a controller was killed mid-drain)."""

    def stop(self):
        return None

    def in_use(self):
        return []

    def start(self):
        return None

    def start_if_stopped(self):
        return None

    def after_failure(self):
        return None, ""


@pytest.fixture
def staged(tmp_path):
    path = tmp_path / "data" / "brain.sqlite"
    path.parent.mkdir()
    conn = make_brain(path)
    backend = SqliteBackend(str(path))
    store = SnapshotStore(str(tmp_path / "store"), "engine-a")
    manifest = take_snapshot(backend, store, "s1", {})
    conn.execute("INSERT INTO episodes (request_id, created_at) VALUES ('bad-1', '2026-01-02T00:00:00.000000Z')")
    conn.commit()
    snapshot_dir = store.path("s1")
    record = stage(backend, manifest, snapshot_dir, export_dir_for(snapshot_dir, "T1"))
    conn.execute("INSERT INTO episodes (request_id, created_at) VALUES ('bad-2', '2026-01-03T00:00:00.000000Z')")
    conn.commit()
    conn.close()
    return backend, manifest, snapshot_dir, record


def exported(record):
    with open(os.path.join(record["export_dir"], "episodes.jsonl")) as handle:
        return [json.loads(line)["request_id"] for line in handle]


def test_a_swap_interrupted_after_its_export_exports_each_row_once_when_run_again(staged, monkeypatch):
    backend, manifest, snapshot_dir, record = staged
    real_swap = backend.swap

    def killed(*args):
        raise KeyboardInterrupt("killed between the export and the swap")
    monkeypatch.setattr(backend, "swap", killed)
    with pytest.raises(KeyboardInterrupt):
        swap(backend, manifest, snapshot_dir, load_stage(backend, manifest, snapshot_dir), StoppedEngine(), "T2")
    assert exported(record) == ["bad-1", "bad-2"]  # the first run had appended bad-2 already
    assert already_restored(backend, snapshot_dir) is None  # its swap record matches no live brain
    monkeypatch.setattr(backend, "swap", real_swap)
    outcome = swap(backend, manifest, snapshot_dir, load_stage(backend, manifest, snapshot_dir), StoppedEngine(), "T3")
    assert exported(record) == ["bad-1", "bad-2"] and outcome["exported"]["episodes"] == 2
    assert already_restored(backend, snapshot_dir)["aside"] == outcome["aside"]


def test_a_swap_killed_right_after_the_rename_is_recognised_and_not_repeated(staged, monkeypatch):
    backend, manifest, snapshot_dir, record = staged
    real_swap = backend.swap

    def swapped_then_killed(*args):
        real_swap(*args)
        raise KeyboardInterrupt("killed before the swap record could have been written")
    monkeypatch.setattr(backend, "swap", swapped_then_killed)
    with pytest.raises(KeyboardInterrupt):
        swap(backend, manifest, snapshot_dir, record, StoppedEngine(), "T2")
    restored = already_restored(backend, snapshot_dir)
    assert restored and restored["aside"] == backend.aside_path("T2") and os.path.exists(restored["aside"])
    assert restored["export_dir"] == record["export_dir"] and restored["exported"]["episodes"] == 2


def test_staging_that_fails_midway_leaves_nothing_staged_and_says_the_brain_was_not_touched(tmp_path, monkeypatch):
    path = tmp_path / "brain.sqlite"
    make_brain(path).close()
    backend = SqliteBackend(str(path))
    store = SnapshotStore(str(tmp_path / "store"), "engine-a")
    manifest = take_snapshot(backend, store, "s1", {})
    real_stage = backend.stage

    def disk_full(snapshot_dir, snapshot_id):
        real_stage(snapshot_dir, snapshot_id)  # a staged copy exists ...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... and then the disk fills
    monkeypatch.setattr(backend, "stage", disk_full)
    with pytest.raises(RestoreError, match="staging snapshot s1 failed: .*No space left.*the live brain was not touched"):
        stage(backend, manifest, store.path("s1"), str(tmp_path / "export"))
    assert sorted(n for n in os.listdir(str(tmp_path)) if not n.endswith(("-wal", "-shm"))) == ["brain.sqlite", "store"]


def test_links_in_the_store_make_a_snapshot_invalid_and_are_never_followed(tmp_path):
    path = tmp_path / "brain.sqlite"
    make_brain(path).close()
    backend = SqliteBackend(str(path))
    store = SnapshotStore(str(tmp_path / "store"), "engine-a")
    take_snapshot(backend, store, "s1", {})
    take_snapshot(backend, store, "s2", {})
    elsewhere = tmp_path / "elsewhere"
    os.rename(store.path("s2"), str(elsewhere))
    os.symlink(str(elsewhere), store.path("s2"))  # a snapshot folder that leads out of the store
    os.symlink(str(tmp_path / "outside"), os.path.join(store.path("s1"), "exports"))  # an exports folder that would
    problems = dict((m["id"], m["problem"]) for m in store.list())
    assert set(problems) == {"s1", "s2"}
    assert "exports is a symbolic link" in problems["s1"] and "s2 is a symbolic link" in problems["s2"]
    with pytest.raises(StoreError, match="never follows links"):
        store.load("s1", verify_files=True)
    os.unlink(os.path.join(store.path("s1"), "exports"))
    assert store.load("s1", verify_files=True)["id"] == "s1"
    linked = SnapshotStore(str(tmp_path / "store"), "engine-b")
    os.symlink(str(tmp_path / "outside-b"), linked.base)  # the Engine's own folder leads out
    with pytest.raises(StoreError, match="engine-b is a symbolic link"):
        linked.ensure()
    assert not os.path.exists(str(tmp_path / "outside-b"))


def test_a_snapshot_that_cannot_fit_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    store = SnapshotStore(str(tmp_path / "not-yet" / "store"), "engine-a")
    monkeypatch.setattr("shutil.disk_usage", lambda where: usage(0, 0, 100 << 20))
    room_for_snapshot(store, 60 << 20)  # 60 MiB + 10 % + 16 MiB fits in 100 MiB
    with pytest.raises(BrainError, match="not enough free space in .* for a snapshot of 80 MiB: 100 MiB free, 104 MiB"):
        room_for_snapshot(store, 80 << 20)
    assert not os.path.exists(str(tmp_path / "not-yet"))


def container(running=True, up=120, image="engine:2.4.0"):
    started = (datetime.utcnow() - timedelta(seconds=up)).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    return {"Name": "/engine-a", "State": {"Running": running, "StartedAt": started}, "Config": {"Image": image}}


def answering(version="2.4.0", uptime=120.0):
    return lambda url, timeout: (200, json.dumps({"status": "ok", "version": version, "uptime_seconds": uptime}))


def failing(error):
    def get(url, timeout):
        raise error
    return get


@pytest.mark.parametrize("box, get, words", [
    (container(), answering(), None),
    (container(image="engine:2.4.0-broken-errors"), answering(), None),  # the build's base version is what counts
    (container(), answering(version="2.3.1"), "answers as Engine version 2.3.1, but container engine-a runs 2.4.0"),
    (container(up=4000), answering(uptime=30), "answers for an Engine up 30 s, but container engine-a started 40"),
    (container(), failing(ConnectionRefusedError(111, "Connection refused")), "nothing answers at http://h/health"),
    (container(up=5), failing(ConnectionRefusedError(111, "Connection refused")), None),  # still starting up
    (container(), failing(OSError("timed out")), None),  # a hung Engine is what a rollback is for
    (container(running=False), failing(ConnectionRefusedError(111, "Connection refused")), None),
    (container(), lambda url, timeout: (503, "<html>"), None),  # no version, no uptime: no evidence
])
def test_a_health_url_that_cannot_be_this_engines_is_named(box, get, words):
    problem = health_url_problem(box, "http://h/health", get)
    if words is None:
        assert problem is None
    else:
        assert words in problem


def test_starting_the_engine_again_after_a_failure_never_raises():
    class Docker:
        @staticmethod
        def start(container_id):
            raise EngineDockerError("Cannot connect to the Docker daemon")

    engine = EngineStop(Docker, {"Id": "abc", "State": {"Running": True}}, backend=None, get=None, start_engine=False)
    engine.stopped = True
    result = engine.start_if_stopped()
    assert result["healthy"] is False and "Cannot connect to the Docker daemon" in result["reason"]


def test_an_engine_left_stopped_on_purpose_is_started_again_after_a_refusal():
    started = []

    class Docker:
        @staticmethod
        def start(container_id):
            started.append(container_id)

    engine = EngineStop(lambda: Docker, {"Id": "abc", "State": {"Running": True}}, backend=None, get=None,
                        start_engine=False)
    engine.stopped = True
    assert engine.start() is None and started == []  # start_engine=false: the image switch starts it
    restarted = engine.start_if_stopped()
    assert restarted["started"] is True and restarted["healthy"] is None and started == ["abc"] and not engine.stopped
    assert engine.start_engine is False  # the option itself is not changed


@pytest.mark.parametrize("restarted, said", [
    (None, ""),
    ({"started": False, "healthy": False, "reason": "could not start it again: daemon gone"},
     "; the Engine is left stopped (could not start it again: daemon gone)"),
    ({"started": True, "healthy": True}, "; the Engine was started again and is healthy"),
    ({"started": True, "healthy": None, "reason": "no health_url to ask"},
     "; the Engine was started again (its health was not checked: no health_url to ask)"),
    ({"started": True, "healthy": False, "classification": "migration_required", "reason": "MIGRATION_REQUIRED"},
     "; the Engine was started again but is not healthy (migration_required: MIGRATION_REQUIRED)"),
])
def test_a_failure_says_what_became_of_the_engine_it_stopped(restarted, said):
    assert engine_after(restarted) == said


def test_after_a_failure_an_engine_the_daemon_cannot_start_is_said_to_be_left_stopped():
    class Docker:
        @staticmethod
        def start(container_id):
            raise EngineDockerError("Cannot connect to the Docker daemon")

    engine = EngineStop(Docker, {"Id": "abc", "State": {"Running": True}}, backend=None, get=None)
    assert engine.after_failure() == (None, "")  # it never stopped the Engine: nothing to say
    engine.stopped = True
    restarted, said = engine.after_failure()
    assert restarted["started"] is False and said.startswith("; the Engine is left stopped (could not start it again")


class LeftStopped(StoppedEngine):
    """An Engine the swap stopped and leaves stopped (start_engine=false: an image switch starts it)."""

    stopped = True


@pytest.mark.parametrize("engine, settled", [(StoppedEngine(), True), (LeftStopped(), False)])
def test_the_export_is_settled_only_once_the_engine_serves_and_then_by_any_later_run(staged, engine, settled):
    backend, manifest, snapshot_dir, record = staged
    outcome = swap(backend, manifest, snapshot_dir, load_stage(backend, manifest, snapshot_dir), engine, "T2")
    assert outcome["export_settled"] is settled  # never a full read of the brain inside the downtime
    restored = already_restored(backend, snapshot_dir)
    later = settle_pending(backend, manifest, snapshot_dir, restored, "T3")
    assert (later is None) is settled
    with open(os.path.join(record["export_dir"], "summary.json")) as handle:
        assert json.load(handle)["settled"]
    assert exported(record) == ["bad-1", "bad-2"]
