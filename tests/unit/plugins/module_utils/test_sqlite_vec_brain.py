"""A brain like the real Engine's (sqlite-vec vec0 + FTS5), read by the collection in this Python.

This file runs twice (scripts/run_tests.py): in the main venv, whose Python cannot load SQLite
extensions (vec0 tables are read from their shadow tables), and in the venv on Debian's Python,
which loads sqlite-vec. The brains are made by the reference Engine's own code in the
extension-capable Python (ENGINE_OPS_EXT_PYTHON), and every result is compared with what that
Python reads through the extension.
"""

import base64
import json
import os
import sqlite3
import subprocess

import pytest

import ansible_collections.engine_ops.lifecycle as collection
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.base import BrainError, JsonlExport, merge_changes
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.sqlite import SqliteBackend, connect
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.sqlite_tables import (
    Catalog, Vec0Columns, load_extensions)
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.restore import mismatch, plan
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.snapshot import take_snapshot
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.store import SnapshotStore

ENGINE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "engine")
TREE = os.path.dirname(os.path.dirname(os.path.dirname(list(collection.__path__)[0])))
EXT_PYTHON = os.environ.get("ENGINE_OPS_EXT_PYTHON")
VEC_TABLES = ("episodes_vec", "knowledge_store_vec", "social_graph_edges_vec")


def ext_python(code, *args):
    """Run `code` in the Python that loads sqlite-vec, with the Engine and the collection importable; its JSON."""
    if not EXT_PYTHON or not os.path.exists(EXT_PYTHON):
        pytest.fail("ENGINE_OPS_EXT_PYTHON is not set: run scripts/bootstrap.sh and source .work/env.sh")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ENGINE_DIR, TREE]))
    proc = subprocess.run([EXT_PYTHON, "-c", code] + list(args), env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


SEED = """
import json, sys
from engine.config import Config
from engine.seed import seed
print(json.dumps(seed(Config.from_env({"SQLITE_DB_PATH": sys.argv[1]}), int(sys.argv[2]), 3, chunk_bytes=64)))
"""

READ_WITH_EXTENSION = """
import base64, json, sqlite3, sys, sqlite_vec
conn = sqlite3.connect(sys.argv[1])
conn.enable_load_extension(True); sqlite_vec.load(conn)
out = {}
for table, key in (("episodes_vec", "episode_id"), ("knowledge_store_vec", "knowledge_id"),
                   ("social_graph_edges_vec", "edge_id")):
    out[table] = [[k, base64.b64encode(e).decode(), c] for k, e, c in
                  conn.execute("SELECT %s, embedding, created_at FROM %s ORDER BY 1" % (key, table))]
out["fts"] = conn.execute("SELECT rowid, summary FROM episodes_fts ORDER BY rowid").fetchall()
print(json.dumps(out))
"""

DESCRIBE = """
import json, sys
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain.sqlite import SqliteBackend
print(json.dumps(SqliteBackend(sys.argv[1]).describe()))
"""


@pytest.fixture(scope="module")
def vec_brain(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("vec") / "data" / "brain.sqlite")
    os.makedirs(os.path.dirname(path))
    counts = ext_python(SEED, path, "40")
    assert counts["episodes"] == 40
    return path


def live_copy(brain, tmp_path):
    """A copy of the module's brain in its own data folder, to snapshot, change and restore."""
    live = str(tmp_path / "data" / "brain.sqlite")
    os.makedirs(os.path.dirname(live))
    with connect(brain, extensions=False) as (conn, dummy):
        target = sqlite3.connect(live)
        conn.backup(target)
        target.close()
    return live


def can_load_extensions():
    return hasattr(sqlite3.connect(":memory:"), "enable_load_extension")


def test_the_brain_is_built_like_the_real_one(vec_brain):
    with connect(vec_brain, extensions=False) as (conn, dummy):
        sql = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
    for table in VEC_TABLES:
        assert "USING vec0(" in sql[table] and "float[1536]" in sql[table]
        assert {table + "_rowids", table + "_chunks", table + "_vector_chunks00", table + "_auxiliary"} <= set(sql)
    assert "USING fts5(" in sql["episodes_fts"] and "episodes_fts_content" in sql


def test_this_python_reads_vec0_the_way_it_can(vec_brain):
    with connect(vec_brain) as (conn, access):
        reads = Catalog(conn, access).reads()
    assert access["vec0"] == ("extension" if can_load_extensions() else "shadow tables"), access
    expected = "shadow tables, checked with the extension" if can_load_extensions() else "shadow tables"
    assert dict((t, r["read_via"]) for t, r in reads.items() if r["module"] == "vec0") == dict.fromkeys(
        VEC_TABLES, expected)
    if not can_load_extensions():
        assert access["reason"] == "this Python's sqlite3 cannot load extensions"


def test_description_is_the_same_in_every_python_and_counts_logical_rows(vec_brain):
    local = SqliteBackend(vec_brain).describe()
    other = ext_python(DESCRIBE, vec_brain)
    assert other["extensions"]["vec0"] == "extension"
    assert local["fingerprint"] == other["fingerprint"] and local["tables"] == other["tables"]
    assert local["tables"]["episodes_vec"] == {"rows": 40, "max_key": 40,
                                               "max_created_at": local["tables"]["episodes"]["max_created_at"]}
    assert local["tables"]["episodes_fts"]["rows"] == 40
    shadow = [t + s for t in VEC_TABLES for s in ("_rowids", "_chunks", "_vector_chunks00", "_info", "_auxiliary")]
    assert not set(shadow + ["episodes_fts_content", "episodes_fts_data"]) & set(local["tables"])
    assert "ingestion_chunks" in local["tables"]
    assert "episodes_vec_rowids" in local["schema"]  # shadow tables count in the fingerprint


def test_the_shadow_tables_give_the_rows_sqlite_vec_gives(vec_brain):
    truth = ext_python(READ_WITH_EXTENSION, vec_brain)
    with connect(vec_brain) as (conn, dummy):
        catalog = Catalog(conn, {"vec0": "shadow tables"})
        for table in VEC_TABLES:
            rows = [[k, base64.b64encode(e).decode(), c] for dummy_key, k, e, c in catalog.relation(table).rows(
                conn, ordered=True)]
            assert rows == truth[table] and len(rows) > 0


def test_export_keeps_vector_and_fts_rows_exactly(vec_brain, tmp_path):
    truth = ext_python(READ_WITH_EXTENSION, vec_brain)
    export = JsonlExport(str(tmp_path / "export"))
    SqliteBackend(vec_brain).export(export, {})  # no marks: every row is exported
    for table in VEC_TABLES:
        key = {"episodes_vec": "episode_id", "knowledge_store_vec": "knowledge_id",
               "social_graph_edges_vec": "edge_id"}[table]
        with open(str(tmp_path / "export" / (table + ".jsonl"))) as handle:
            rows = [json.loads(line) for line in handle]
        assert [[r[key], r["embedding"]["base64"], r["created_at"]] for r in rows] == truth[table]
        assert len(base64.b64decode(rows[0]["embedding"]["base64"])) == 1536 * 4
    with open(str(tmp_path / "export" / "episodes_fts.jsonl")) as handle:
        assert [[r["rowid"], r["summary"]] for r in map(json.loads, handle)] == truth["fts"]
    assert not [n for n in os.listdir(str(tmp_path / "export")) if "_rowids" in n or "_content" in n]


def test_export_of_the_bad_window_takes_only_new_vector_rows(vec_brain, tmp_path):
    live = live_copy(vec_brain, tmp_path)
    backend = SqliteBackend(live)
    marks = backend.describe()["tables"]
    added = ext_python("""
import sqlite3, sys, sqlite_vec, json
sys.path.insert(0, sys.argv[2])
from engine.brain import embedding_of
c = sqlite3.connect(sys.argv[1]); c.enable_load_extension(True); sqlite_vec.load(c)
c.execute("INSERT INTO episodes_vec (episode_id, embedding, created_at) VALUES (1000, ?, '2099-01-01T00:00:00.000000Z')",
          (embedding_of("late"),))
c.commit(); print(json.dumps(1))
""", live, ENGINE_DIR)
    assert added == 1
    export = JsonlExport(str(tmp_path / "export"))
    backend.export(export, marks)
    assert export.counts["episodes_vec"] == 1 and export.counts["knowledge_store_vec"] == 0


def test_snapshot_and_restore_keep_the_fingerprint(vec_brain, tmp_path):
    live = live_copy(vec_brain, tmp_path)
    backend = SqliteBackend(live)
    store = SnapshotStore(str(tmp_path / "store"), "engine-a")
    manifest = take_snapshot(backend, store, "s1", {})
    assert manifest["row_counts"]["episodes_vec"] == 40
    assert backend.verify_snapshot(store.path("s1")) == []
    staged = backend.stage(store.path("s1"), "s1")
    assert mismatch(backend.describe_staged(staged), manifest) == []
    backend.swap(staged, "T1")
    assert backend.describe()["fingerprint"] == manifest["schema_fingerprint"]
    assert ext_python(DESCRIBE, live)["fingerprint"] == manifest["schema_fingerprint"]


def test_a_damaged_vector_page_fails_the_integrity_check(vec_brain, tmp_path):
    copy = str(tmp_path / "brain.sqlite")
    with open(vec_brain, "rb") as src, open(copy, "wb") as dst:
        dst.write(src.read())
    with connect(copy, extensions=False) as (conn, dummy):
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'episodes_vec_vector_chunks00'").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    with open(copy, "r+b") as handle:
        handle.seek((page - 1) * size)
        handle.write(b"\xff" * 64)
    assert SqliteBackend(copy).integrity(copy) != []


@pytest.mark.parametrize("args, columns, unsupported", [
    ("episode_id INTEGER PRIMARY KEY, embedding float[1536], +created_at TEXT",
     ["episode_id", "embedding", "created_at"], []),
    ("embedding float[4], chunk_size=8", ["rowid", "embedding"], []),
    ("doc TEXT PRIMARY KEY, a int8[8], b bit[64] distance_metric=hamming, +note text",
     ["doc", "a", "b", "note"], []),
    ("embedding float[4], genre text, user_id integer partition key", ["rowid", "embedding", "genre", "user_id"],
     ["genre", "user_id"]),
])
def test_vec0_definitions_are_parsed(args, columns, unsupported):
    spec = Vec0Columns("t", args)
    assert spec.columns() == columns and spec.unsupported == unsupported


def test_metadata_columns_without_the_extension_are_refused_by_name():
    with pytest.raises(BrainError, match="vec0 table t has metadata or partition-key columns \\(genre\\)"):
        Vec0Columns("t", "embedding float[4], genre text").shadow_select()


def test_load_extensions_reports_why_it_could_not(monkeypatch):
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain import sqlite_tables

    monkeypatch.setattr(sqlite_tables, "sqlite_vec", None)
    access = load_extensions(sqlite3.connect(":memory:"))
    assert access == {"vec0": "shadow tables", "sqlite_vec": None,
                      "reason": "the sqlite-vec package is not installed beside the module"}


CHANGE_IN_PLACE = """
import sqlite3, sys, sqlite_vec
sys.path.insert(0, sys.argv[2])
from engine.brain import embedding_of
c = sqlite3.connect(sys.argv[1]); c.enable_load_extension(True); sqlite_vec.load(c)
c.execute("UPDATE episodes SET summary = 'rewritten in the bad window' WHERE id = 3")
c.execute("UPDATE episodes_vec SET embedding = ? WHERE episode_id = 5", (embedding_of("re-embedded"),))
c.execute("DELETE FROM episodes WHERE id = 7")
c.execute("DELETE FROM episodes_vec WHERE episode_id = 7")
c.execute("INSERT INTO episodes (id, request_id, conversation_id, summary, outcome, created_at) "
          "VALUES (41, 'new', 'c', 'new', 'completed', '2099-01-01T00:00:00.000000Z')")
c.commit()
print("1")
"""


def test_rows_changed_in_place_or_deleted_are_exported_with_before_and_after(vec_brain, tmp_path):
    live = live_copy(vec_brain, tmp_path)
    backend = SqliteBackend(live)
    store = SnapshotStore(str(tmp_path / "store"), "engine-a")
    manifest = take_snapshot(backend, store, "s1", {})
    with connect(live, extensions=False) as (conn, dummy):
        before3 = conn.execute("SELECT summary FROM episodes WHERE id = 3").fetchone()[0]
    ext_python(CHANGE_IN_PLACE, live, ENGINE_DIR)
    truth = ext_python(READ_WITH_EXTENSION, live)

    counting = plan(backend, manifest, snapshot_dir=store.path("s1"))
    assert counting["rows_updated_to_export"]["episodes"] == 1 and counting["rows_deleted_to_export"]["episodes"] == 1
    export = JsonlExport(str(tmp_path / "export"))
    backend.export(export, manifest["tables"], basis=backend.snapshot_brain(store.path("s1")))
    summary = export.summary()
    assert summary["rows"]["episodes"] == 1 and summary["updated"] == {"episodes": 1, "episodes_vec": 1}
    assert summary["deleted"] == {"episodes": 1, "episodes_vec": 1} and "files" in summary

    def lines(name):
        with open(str(tmp_path / "export" / name)) as handle:
            return [json.loads(line) for line in handle]

    [updated] = lines("episodes.updated.jsonl")
    assert updated["key"] == {"id": 3} and updated["before"]["summary"] == before3
    assert updated["after"]["summary"] == "rewritten in the bad window"
    [vector] = lines("episodes_vec.updated.jsonl")
    assert vector["key"] == {"episode_id": 5}
    now = [e for k, e, c in truth["episodes_vec"] if k == 5][0]
    assert vector["after"]["embedding"]["base64"] == now != vector["before"]["embedding"]["base64"]
    assert [d["key"] for d in lines("episodes.deleted.jsonl")] == [{"id": 7}]
    assert [d["before"]["episode_id"] for d in lines("episodes_vec.deleted.jsonl")] == [7]
    assert [r["request_id"] for r in lines("episodes.jsonl")] == ["new"]


@pytest.mark.parametrize("new, old, expected", [
    ([(1, "a"), (2, "b")], [(1, "a"), (2, "b")], []),
    ([(1, "a"), (2, "B")], [(1, "a"), (2, "b")], [("update", 2, ("b",), ("B",))]),
    ([(1, "a"), (3, "c")], [(1, "a"), (2, "b")], [("delete", 2, ("b",), None), ("insert", 3, None, ("c",))]),
    ([], [(1, "a")], [("delete", 1, ("a",), None)]),
    ([(1, "a")], [], [("insert", 1, None, ("a",))]),
])
def test_merge_changes_walks_both_sides_in_key_order(new, old, expected):
    assert list(merge_changes(new, old, [0], [0])) == expected


def test_columns_only_one_side_has_are_not_compared():
    new = [(1, "same", 0.9)]  # a migration added a column; its value alone is no change
    assert list(merge_changes(new, [(1, "same")], [0], [0])) == []


def test_a_shadow_layout_read_wrongly_is_caught_by_the_extension(vec_brain, monkeypatch):
    """A future sqlite-vec may lay vectors out otherwise: the shadow reader would then slice the wrong bytes."""
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._brain import sqlite_tables

    right = sqlite_tables.Vec0Columns.vector_filler

    def misread(spec):
        fill = right(spec)
        return lambda conn, rows: (row[:2] + (row[2][::-1],) + row[3:] for row in fill(conn, rows))

    monkeypatch.setattr(sqlite_tables.Vec0Columns, "vector_filler", misread)
    if can_load_extensions():  # the extension checks the shadow reading and refuses a layout it does not match
        with pytest.raises(BrainError, match="episodes_vec reads differently from its shadow tables"):
            SqliteBackend(vec_brain).describe()
    else:  # nothing to check against here (the other run of this file checks it)
        assert SqliteBackend(vec_brain).describe()["tables"]["episodes_vec"]["rows"] == 40


class WithoutBlobIO:
    """A connection as Pythons before 3.11 have it: no incremental blob I/O."""

    def __init__(self, conn):
        self.execute = conn.execute


def test_pythons_without_incremental_blob_io_read_the_same_vectors(vec_brain):
    truth = ext_python(READ_WITH_EXTENSION, vec_brain)
    with connect(vec_brain) as (conn, dummy):
        relation = Catalog(conn, {"vec0": "shadow tables"}).relation("episodes_vec")
        read = relation.rows(WithoutBlobIO(conn), ordered=True)
        rows = [[k, base64.b64encode(e).decode(), c] for dummy_key, k, e, c in read]
    assert rows == truth["episodes_vec"]
