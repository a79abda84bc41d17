import json
import os
from datetime import datetime, timedelta, timezone

import build
from engine.brain import BRAIN_TABLES, SqliteBrain, load_migrations
from engine.config import Config
from engine.seed import seed, seed_rows

NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)


def test_seed_fills_every_table_within_the_window():
    rows = {table: (columns, data) for table, columns, data in seed_rows(40, 7, chunk_bytes=64, now=NOW)}
    assert set(rows) == set(BRAIN_TABLES) - {"connections"}
    start = (NOW - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S")
    for table, (columns, data) in rows.items():
        assert data, table
        stamps = [row[columns.index("created_at")] for row in data]
        assert all(start <= s <= "2026-11-28T00:00:00.000000Z" for s in stamps), table
    assert len(rows["episodes"][1]) == 40
    assert len(rows["conversations"][1]) == 80


def test_seed_is_deterministic():
    first = [(t, d) for t, dummy, d in seed_rows(10, 3, chunk_bytes=16, seed=7, now=NOW)]
    second = [(t, d) for t, dummy, d in seed_rows(10, 3, chunk_bytes=16, seed=7, now=NOW)]
    assert first == second


def test_seed_never_touches_an_initialised_brain(tmp_path):
    config = Config.from_env({"SQLITE_DB_PATH": str(tmp_path / "brain.sqlite")})
    assert seed(config, 5, 1, chunk_bytes=16)["episodes"] == 5
    assert seed(config, 5, 1, chunk_bytes=16) == {}
    brain = SqliteBrain(config.sqlite_path)
    brain.open(load_migrations(), "2026-01-01T00:00:00.000000Z")
    assert brain.execute("SELECT count(*) FROM episodes")[0][0] == 5
    brain.close()


def test_build_spec_is_consistent():
    spec = build.load_spec()
    tags = [b["tag"] for b in spec["builds"]]
    assert len(tags) == len(set(tags))
    schemas = {m.id[:4] for m in load_migrations()}
    faults = {b["fault"] for b in spec["builds"]}
    assert {b["schema"] for b in spec["builds"]} <= schemas
    assert faults == {"none", "health", "errors", "latency", "crash", "llm"}
    assert {"2.3.1", "2.4.0"} <= set(tags)
    noschema = [b for b in spec["builds"] if b["fault"] != "none" and b["schema"] == "0002"]
    assert noschema, "a broken build without a schema change is required"


def test_context_carries_only_the_builds_migrations_and_hash_follows_content(tmp_path):
    spec = build.load_spec()
    by_tag = {b["tag"]: b for b in spec["builds"]}
    old_ctx, new_ctx, again, other_base = (tmp_path / name for name in "abcd")
    for path in (old_ctx, new_ctx, again, other_base):
        path.mkdir()
    old_hash = build.render_context(by_tag["2.3.1"], spec, "sha256:base", str(old_ctx))
    new_hash = build.render_context(by_tag["2.4.0"], spec, "sha256:base", str(new_ctx))
    same_hash = build.render_context(by_tag["2.3.1"], spec, "sha256:base", str(again))
    assert sorted(os.listdir(old_ctx / "engine" / "migrations")) == ["0001_core.sql", "0002_graph_and_registry.sql"]
    assert "0003_episode_importance.sql" in os.listdir(new_ctx / "engine" / "migrations")
    assert old_hash == same_hash != new_hash
    assert build.render_context(by_tag["2.3.1"], spec, "sha256:other", str(other_base)) != old_hash
    dockerfile = (old_ctx / "Dockerfile").read_text()
    assert "ENGINE_VERSION=2.3.1" in dockerfile and "{" not in dockerfile.split("HEALTHCHECK")[0]
    assert json.dumps(by_tag["2.3.1"])  # spec entries are plain JSON
