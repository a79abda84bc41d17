import base64
import hashlib
import sqlite3

import pytest

from engine.brain import (BRAIN_TABLES, PREVIOUS_ID, Migration, MigrationRequired, SqliteBrain, embedding_of,
                          floats, load_migrations, plan_migrations)

ALL = load_migrations()


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_migrations_are_ordered_and_cover_every_brain_table(tmp_path):
    assert [m.id for m in ALL] == ["0001_core", "0002_graph_and_registry", "0003_episode_importance"]
    brain = SqliteBrain(str(tmp_path / "brain.sqlite"))
    brain.open(ALL, "2026-01-01T00:00:00.000000Z")
    tables = {row[0] for row in brain.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert set(BRAIN_TABLES) <= tables
    for table in BRAIN_TABLES:
        columns = {row[1] for row in brain.execute('PRAGMA table_info("%s")' % table)}
        assert "created_at" in columns, table
    brain.close()


@pytest.mark.parametrize("dialect, pk, blob", [
    ("sqlite", "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"), ("postgres", "BIGSERIAL PRIMARY KEY", "BYTEA"),
])
def test_statements_are_rendered_per_dialect_without_comments(dialect, pk, blob):
    migration = Migration("9999_x", "-- comment; with a semicolon\nCREATE TABLE t (id {pk}, b {blob});\nSELECT 1;")
    assert migration.statements(dialect) == ["CREATE TABLE t (id %s, b %s)" % (pk, blob), "SELECT 1"]


@pytest.mark.parametrize("applied, expected", [
    ([], ["0001_core", "0002_graph_and_registry", "0003_episode_importance"]),
    (["0001_core"], ["0002_graph_and_registry", "0003_episode_importance"]),
    (["0001_core", "0002_graph_and_registry", "0003_episode_importance"], []),
])
def test_plan_applies_only_what_is_missing(applied, expected):
    assert [m.id for m in plan_migrations(ALL, applied)] == expected


def test_plan_refuses_a_brain_with_unknown_migrations():
    with pytest.raises(MigrationRequired) as info:
        plan_migrations(ALL[:2], ["0001_core", "0002_graph_and_registry", "0003_episode_importance"])
    assert info.value.unknown == ["0003_episode_importance"]


def test_older_engine_leaves_a_newer_brain_byte_for_byte_unchanged(tmp_path):
    path = str(tmp_path / "brain.sqlite")
    newer = SqliteBrain(path)
    newer.open(ALL, "2026-01-01T00:00:00.000000Z")
    newer.close()
    before = sha256(path)
    with pytest.raises(MigrationRequired):
        SqliteBrain(path).open(ALL[:2], "2026-01-02T00:00:00.000000Z")
    assert sha256(path) == before


def test_clean_close_checkpoints_the_wal(tmp_path):
    path = tmp_path / "brain.sqlite"
    brain = SqliteBrain(str(path))
    brain.open(ALL, "2026-01-01T00:00:00.000000Z")
    assert brain.execute("PRAGMA journal_mode")[0][0] == "wal"
    brain.close()
    wal = tmp_path / "brain.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_insert_many_links_rows_and_export_filters_by_time(tmp_path):
    brain = SqliteBrain(str(tmp_path / "brain.sqlite"))
    brain.open(ALL, "2026-01-01T00:00:00.000000Z")
    for stamp, rid in (("2026-01-01T10:00:00.000000Z", "old"), ("2026-01-02T10:00:00.000000Z", "new")):
        brain.insert_many([
            ("INSERT INTO episodes (request_id, conversation_id, summary, outcome, created_at) VALUES (?, ?, ?, ?, ?)",
             (rid, "c1", "s", "completed", stamp)),
            ("INSERT INTO episodes_vec (episode_id, embedding, created_at) VALUES (?, ?, ?)",
             (PREVIOUS_ID, embedding_of(rid), stamp)),
        ])
    since = brain.export(since="2026-01-02T00:00:00.000000Z", tables=("episodes", "episodes_vec"))
    assert [row["request_id"] for row in since["episodes"]] == ["new"]
    assert since["episodes_vec"][0]["episode_id"] == since["episodes"][0]["id"]
    assert since["episodes_vec"][0]["embedding"] == {"base64": base64.b64encode(embedding_of("new")).decode()}
    brain.close()


def test_sqlite_brain_holds_vec0_and_fts5_tables_and_answers_knn(tmp_path):
    brain = SqliteBrain(str(tmp_path / "brain.sqlite"))
    brain.open(ALL, "2026-01-01T00:00:00.000000Z")
    virtual = dict(brain.execute("SELECT name, sql FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%'"))
    for table in ("episodes_vec", "knowledge_store_vec", "social_graph_edges_vec"):
        assert "USING vec0(" in virtual[table] and "float[1536]" in virtual[table], table
    assert "USING fts5(" in virtual["episodes_fts"]
    for n, text in enumerate(("tea with lemon", "rollback drills", "garden tools")):
        brain.insert_many([
            ("INSERT INTO episodes (request_id, conversation_id, summary, outcome, created_at) VALUES (?, ?, ?, ?, ?)",
             ("r%d" % n, "c", text, "completed", "2026-01-01T00:00:00.000000Z")),
            ("INSERT INTO episodes_vec (episode_id, embedding, created_at) VALUES (?, ?, ?)",
             (PREVIOUS_ID, embedding_of(text), "2026-01-01T00:00:00.000000Z")),
            ("INSERT INTO episodes_fts (rowid, summary, outcome, created_at) VALUES (?, ?, ?, ?)",
             (PREVIOUS_ID, text, "completed", "2026-01-01T00:00:00.000000Z")),
        ])
    found = brain.search("rollback drills", k=2)
    assert found["nearest"][0] == {"episode_id": 2, "distance": 0.0}
    assert len(found["nearest"]) == 2 and found["full_text"] == [2]
    assert len(floats(embedding_of("x"))) == 1536 and all(1.0 <= v < 2.0 for v in floats(embedding_of("x")))
    brain.close()


def test_import_refuses_present_keys_unless_told_to_skip(tmp_path):
    brain = SqliteBrain(str(tmp_path / "brain.sqlite"))
    brain.open(ALL, "2026-01-01T00:00:00.000000Z")
    row = {"id": 7, "request_id": "r7", "conversation_id": "c", "summary": "s", "outcome": "completed",
           "created_at": "2026-01-01T00:00:00.000000Z"}
    vec = {"episode_id": 7, "embedding": {"base64": base64.b64encode(embedding_of("s")).decode()},
           "created_at": row["created_at"]}
    assert brain.import_rows({"episodes": [row], "episodes_vec": [vec]}) == ({"episodes": 1, "episodes_vec": 1}, [])
    other = dict(row, id=8, request_id="r8")
    imported, conflicts = brain.import_rows({"episodes": [row, other]})
    assert imported == {} and conflicts == [{"table": "episodes", "key": {"id": 7}}]
    assert brain.execute("SELECT count(*) FROM episodes")[0][0] == 1
    assert brain.import_rows({"episodes": [row, other]}, on_conflict="skip")[0] == {"episodes": 1}
    assert brain.execute("SELECT rowid FROM episodes_fts ORDER BY rowid") == [(7,), (8,)]
    assert brain.execute("SELECT embedding FROM episodes_vec WHERE episode_id = 7")[0][0] == embedding_of("s")
    brain.close()


def test_failed_insert_many_writes_nothing(tmp_path):
    brain = SqliteBrain(str(tmp_path / "brain.sqlite"))
    brain.open(ALL, "2026-01-01T00:00:00.000000Z")
    with pytest.raises(sqlite3.Error):
        brain.insert_many([
            ("INSERT INTO episodes (request_id, conversation_id, summary, outcome, created_at) VALUES (?, ?, ?, ?, ?)",
             ("r", "c", "s", "completed", "2026-01-01T00:00:00.000000Z")),
            ("INSERT INTO no_such_table (x) VALUES (?)", (1,)),
        ])
    assert brain.execute("SELECT count(*) FROM episodes")[0][0] == 0
    brain.close()
