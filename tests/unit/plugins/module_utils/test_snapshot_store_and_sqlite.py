import json
import os
import sqlite3

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import JsonlExport
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.sqlite import SqliteBackend
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.restore import brain_matches, mismatch, plan
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.snapshot import take_snapshot
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import (
    SnapshotStore, StoreError, check_name, retention_victims, schema_diff)


@pytest.mark.parametrize("value", ["..", "../x", "a/b", "", ".hidden", "x" * 200, "a b", None])
def test_names_that_could_leave_the_store_are_refused(value):
    with pytest.raises(StoreError):
        check_name("snapshot id", value)


@pytest.mark.parametrize("manifests, keep, target, expected", [
    ([{"id": "1"}, {"id": "2"}, {"id": "3"}], 2, None, ["1"]),
    ([{"id": "1", "pinned": True}, {"id": "2"}, {"id": "3"}], 1, None, ["2"]),
    ([{"id": "1"}, {"id": "2"}, {"id": "3"}], 1, "1", ["2"]),
    ([{"id": "1", "valid": False}, {"id": "2"}], 1, None, []),
    ([{"id": "1"}], 5, None, []),
])
def test_retention_keeps_the_newest_unpinned_and_never_pinned_or_target(manifests, keep, target, expected):
    assert retention_victims(manifests, keep, target) == expected


def test_schema_diff_names_tables_and_columns():
    live = {"episodes": {"id": "INTEGER", "importance": "REAL"}, "memory_consolidations": {"id": "INTEGER"}}
    snap = {"episodes": {"id": "INTEGER"}, "old": {"id": "INTEGER"}}
    assert schema_diff(live, snap) == {"tables_only_live": ["memory_consolidations"], "tables_only_snapshot": ["old"],
                                       "columns": {"episodes": {"only_live": ["importance"]}}}


def make_brain(path, rows=3):
    conn = sqlite3.connect(str(path))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE episodes (id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT, created_at TEXT)")
    conn.execute("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID")
    for n in range(rows):
        conn.execute("INSERT INTO episodes (request_id, created_at) VALUES (?, ?)",
                     ("r%d" % n, "2026-01-01T00:00:0%d.000000Z" % n))
    conn.execute("INSERT INTO settings VALUES ('a', '1')")
    conn.commit()
    return conn


@pytest.fixture
def brain(tmp_path):
    path = tmp_path / "data" / "brain.sqlite"
    path.parent.mkdir()
    conn = make_brain(path)
    yield SqliteBackend(str(path)), conn
    conn.close()


def test_snapshot_manifest_is_checksummed_and_files_verified(brain, tmp_path):
    backend, dummy = brain
    store = SnapshotStore(str(tmp_path / "store"), "engine-a")
    manifest = take_snapshot(backend, store, "s1", {"engine_version": "2.3.1"}, reason="test")
    assert manifest["row_counts"] == {"episodes": 3, "settings": 1}
    assert manifest["tables"]["episodes"]["max_key"] == 3
    assert store.load("s1", verify_files=True)["id"] == "s1"
    with open(os.path.join(store.path("s1"), "manifest.json"), "r+b") as handle:
        handle.seek(10)
        handle.write(b"#")
    with pytest.raises(StoreError, match="does not match its checksum"):
        store.load("s1")
    assert [m["valid"] for m in store.list()] == [False]


def test_a_failed_snapshot_leaves_nothing_behind(brain, tmp_path):
    backend, dummy = brain
    store = SnapshotStore(str(tmp_path / "store"), "engine-a")
    backend.verify_snapshot = lambda directory: ["quick_check: page 2 is corrupt"]
    with pytest.raises(Exception, match="failed verification"):
        take_snapshot(backend, store, "s1", {})
    assert os.listdir(store.base) == []


def test_export_finds_exactly_the_rows_the_snapshot_lacks_then_swap_and_swap_back(brain, tmp_path):
    backend, conn = brain
    store = SnapshotStore(str(tmp_path / "store"), "engine-a")
    manifest = take_snapshot(backend, store, "s1", {})
    conn.execute("INSERT INTO episodes (request_id, created_at) VALUES ('late', '2026-01-02T00:00:00.000000Z')")
    conn.commit()
    assert plan(backend, manifest)["rows_to_export"] == {"episodes": 1, "settings": 1}  # settings: no way to tell
    export = JsonlExport(str(tmp_path / "export"))
    high = backend.export(export, manifest["tables"])
    conn.execute("INSERT INTO episodes (request_id, created_at) VALUES ('later', '2026-01-03T00:00:00.000000Z')")
    conn.commit()
    backend.export(export, manifest["tables"], after_keys=high)
    summary = export.summary()
    assert summary["rows"] == {"episodes": 2, "settings": 1} and summary["whole_tables"] == ["settings"]
    with open(str(tmp_path / "export" / "episodes.jsonl")) as handle:
        assert [json.loads(line)["request_id"] for line in handle] == ["late", "later"]
    conn.close()
    staged = backend.stage(store.path("s1"), "s1")
    assert not brain_matches(backend.describe(), manifest)
    aside = backend.swap(staged, "T1")
    assert brain_matches(backend.describe(), manifest) and mismatch(backend.describe(), manifest) == []
    assert backend.set_aside() == [aside]
    backend.swap_back(aside, "T2")
    assert backend.describe()["tables"]["episodes"]["rows"] == 5


def test_the_store_tolerates_another_engine_creating_it_at_the_same_moment(tmp_path, monkeypatch):
    """Engines of one host snapshot in parallel into one store: whoever creates the root second must not fail."""
    import errno
    import os as real_os

    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._state import files as _files
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import SnapshotStore

    makedirs = real_os.makedirs

    def loses_the_race(path, mode=0o777, exist_ok=False):
        makedirs(path, mode)  # the other Engine's module got there first
        raise OSError(errno.EEXIST, "File exists", path)

    monkeypatch.setattr(_files.os, "makedirs", loses_the_race)
    store = SnapshotStore(str(tmp_path / "store"), "engine-a")
    store.ensure()
    assert real_os.path.isdir(store.base)


def _manifest(store, sid, directory, name="data.bin"):
    with open(os.path.join(directory, name), "wb") as handle:
        handle.write(b"brain")
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import file_entries
    return {"format": 1, "id": sid, "engine": store.engine, "created_at": "2026-12-07T00:00:00.000000Z",
            "backend": "sqlite", "files": file_entries(directory, [name])}


def test_the_one_way_into_the_store_commits_whole_or_leaves_nothing(tmp_path):
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import SnapshotStore, StoreError

    store = SnapshotStore(str(tmp_path / "store"), "engine-1")
    with store.entering("s1") as entry:
        entry.manifest = _manifest(store, "s1", entry.path)
    assert store.ids() == ["s1"] and store.load("s1", verify_files=True)["id"] == "s1"
    assert entry.final == store.path("s1")

    with pytest.raises(RuntimeError):  # any failure while filling: no partial directory, no snapshot
        with store.entering("s2") as entry:
            _manifest(store, "s2", entry.path)
            raise RuntimeError("copy interrupted")
    assert store.ids() == ["s1"] and sorted(os.listdir(store.base)) == ["s1"]

    with pytest.raises(StoreError, match="already exists"):  # never over an existing snapshot
        with store.entering("s1", name="again") as entry:
            entry.manifest = _manifest(store, "s1", entry.path)
    assert sorted(os.listdir(store.base)) == ["s1"]

    # a manifest written into the directory (a fetched snapshot) is checked and committed as it is
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import write_manifest
    with store.entering("s3", name="fetch-s3") as entry:
        write_manifest(entry.path, _manifest(store, "s3", entry.path))
    assert store.ids() == ["s1", "s3"]
    with pytest.raises(StoreError):  # one that does not hold together is refused, and nothing stays
        with store.entering("s4", name="fetch-s4") as entry:
            write_manifest(entry.path, _manifest(store, "s4", entry.path))
            with open(os.path.join(entry.path, "data.bin"), "ab") as handle:
                handle.write(b"tampered")
            from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import read_manifest
            read_manifest(entry.path, "engine-1", verify_files=True)
    assert store.ids() == ["s1", "s3"] and sorted(os.listdir(store.base)) == ["s1", "s3"]
