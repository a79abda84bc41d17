"""brain_snapshot, brain_snapshot_info and brain_restore on real reference Engines, SQLite and PostgreSQL.

SQLite brains are the real Engine's kind (sqlite-vec vec0 and FTS5 tables); their tests run the modules twice:
under the controller's Python, which cannot load SQLite extensions (vec0 read from shadow tables), and under
Debian's Python with sqlite-vec installed (vec0 read through the extension).
"""

import base64
import json
import os
import stat
import uuid

import psycopg
import pytest

from ansible_run import run_module
from conftest import admin_params
EXT_PYTHON = os.environ.get("ENGINE_OPS_EXT_PYTHON")
# (backend, the Python that runs the modules: None is the controller's)
BRAINS = pytest.mark.parametrize("backend, python", [("sqlite", None), ("sqlite", EXT_PYTHON), ("postgres", None)],
                                 ids=["sqlite-shadow-tables", "sqlite-vec-extension", "postgres"])

CONTRACT_TABLES = (
    "episodes", "episodes_vec", "knowledge_store", "knowledge_store_vec", "social_graph_nodes", "social_graph_edges",
    "social_graph_edges_vec", "conversations", "learning_signals", "working_memory_log", "trajectories",
    "channel_state_snapshots", "connections", "server_registry", "action_registry", "observability_events",
    "ingestion_chunks")


@pytest.fixture
def store(tmp_path):
    return str(tmp_path / "snapshots")


def start(engines, named, prefix, version, brain, env=None):
    engine = engines.start(version, brain, env=env)
    engine.name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
    engine.container.rename(engine.name)
    named(engine.name)
    engine.wait_healthy()
    return engine


def brain_args(engine, store, **extra):
    args = {"container": engine.name, "store": store, "backend": engine.brain.backend}
    args.update(extra)
    return args


def turns(engine, tag, count):
    ids = ["%s-%d" % (tag, n) for n in range(count)]
    for rid in ids:
        assert engine.execute("turn " + rid, request_id=rid)[0] == 200
    return ids


@BRAINS
def test_online_snapshot_while_turns_run_is_verified_and_private(engines, named, prefix, backend, python, store):
    key = "ad-key-" + uuid.uuid4().hex
    engine = start(engines, named, prefix, "2.3.1", engines.brain(backend), env={"AD_ENCRYPTION_KEY": key})
    turns(engine, "before", 3)
    # a turn far longer than a snapshot takes even on a loaded machine (3 s was not, in a CI run)
    thread, dummy = engine.execute_in_background(message="running during the snapshot", duration=15.0)
    engine.wait_log("turn started")
    result = run_module("brain_snapshot", interpreter=python, args=brain_args(engine, store, reason="pre-upgrade", pinned=True))
    assert thread.is_alive(), "the turn ended before the snapshot did: the test proves nothing"
    thread.join(30)
    assert result["changed"] and not result.get("failed"), result.get("msg")
    manifest = result["snapshot"]
    assert manifest["row_counts"]["episodes"] == 3  # the in-flight turn was not persisted yet
    if backend == "sqlite":  # the real Engine's brain: vec0 and FTS5 tables, counted as rows of their own
        assert manifest["brain_reads"]["vec0"] == ("extension" if python else "shadow tables")
        assert manifest["brain_reads"]["tables"]["episodes_vec"]["module"] == "vec0"
        assert manifest["row_counts"]["episodes_vec"] == 3 and manifest["row_counts"]["episodes_fts"] == 3
    else:
        assert "brain_reads" not in manifest
    for field in ("id", "created_at", "engine_image", "engine_version", "backend", "size_bytes", "files",
                  "schema_fingerprint", "row_counts", "reason", "pinned", "encryption_key_fingerprint",
                  "duration_seconds"):
        assert manifest.get(field) not in (None, ""), field
    assert manifest["engine_version"] == "2.3.1" and manifest["backend"] == backend and manifest["pinned"]
    assert key not in json.dumps(result) and manifest["encryption_key_fingerprint"].startswith("sha256:")
    directory = os.path.join(store, engine.name, manifest["id"])
    assert stat.S_IMODE(os.stat(os.path.join(store, engine.name)).st_mode) == 0o700
    for entry in manifest["files"]:
        assert stat.S_IMODE(os.stat(os.path.join(directory, entry["name"])).st_mode) == 0o600
    info = run_module("brain_snapshot_info", interpreter=python, args=brain_args(engine, store, verify=True, compare_live=True))
    assert [(s["id"], s["valid"], s["data_rollback_required"]) for s in info["snapshots"]] == [
        (manifest["id"], True, False)]


@pytest.mark.parametrize("backend, python, strategy", [
    ("sqlite", None, None), ("sqlite", EXT_PYTHON, None), ("postgres", None, None), ("postgres", None, "database")],
    ids=["sqlite-shadow-tables", "sqlite-vec-extension", "postgres-engine-role", "postgres-admin-database-strategy"])
def test_data_rollback_after_a_forward_only_migration(engines, named, prefix, backend, python, strategy, store,
                                                      docker_client):
    """PostgreSQL: as the Engine's own role (it owns its database, no CREATEDB: staged in a schema, schemas swapped),
    and as a DBA role with pg_restore_strategy=database (staged in a database, databases renamed)."""
    engine = start(engines, named, prefix, "2.3.1", engines.brain(backend))
    role = dict(_pg(engine), pg_user=admin_params(engine.brain.pg_params)["user"],
                pg_restore_strategy=strategy) if strategy else {}
    kept = turns(engine, "kept", 4)
    snap = run_module("brain_snapshot", interpreter=python, args=brain_args(engine, store, **role, pinned=True, rollback_target=True))["snapshot"]

    upgrade = run_module("engine_image", interpreter=python, args={
        "container": engine.name, "version": "2.4.0", "health_url": engine.url + "/health", "state_dir": store + "-state"})
    assert upgrade["changed"] and not upgrade.get("failed"), upgrade.get("msg")
    bad = turns(engine, "bad-window", 3)
    info = run_module("brain_snapshot_info", interpreter=python, args=brain_args(engine, store, **role, compare_live=True))
    target = [s for s in info["snapshots"] if s["id"] == info["rollback_target"]][0]
    assert target["data_rollback_required"]
    assert "importance" in target["schema_diff"]["columns"]["episodes"]["only_live"]
    assert "memory_consolidations" in target["schema_diff"]["tables_only_live"]
    live_counts = info["live"]["row_counts"]

    staged = run_module("brain_restore", interpreter=python, args=brain_args(engine, store, **role, phase="stage"))  # Engine still serving
    assert staged["changed"] and not staged.get("failed"), staged.get("msg")
    assert engine.health()[0] == 200
    refused = run_module("brain_restore", interpreter=python, args={
        "store": store, "engine": engine.name, "backend": backend, "phase": "swap",
        **({"sqlite_path": engine.brain.sqlite_path(docker_client)} if backend == "sqlite" else dict(_pg(engine), **role))})
    assert refused.get("failed") and "in use by" in refused["msg"]
    assert engine.health()[0] == 200

    assert run_module("engine_drain", interpreter=python, args={"container": engine.name})["drain"]["clean"]
    swapped = run_module("brain_restore", interpreter=python, args=brain_args(engine, store, **role, phase="swap"))
    assert swapped["changed"] and swapped["verified"], swapped.get("msg")
    assert "swap" in swapped["timings"] and min(swapped["timings"].values()) >= 0  # timed by the benchmark, not here
    if backend == "postgres":
        aside = swapped["aside"]
        assert aside.endswith("__pre_restore_" + aside[-14:]) if strategy else aside.startswith("engine_ops_pre_restore_")
        schemas = [r[0] for r in engine.brain.query(docker_client, "SELECT nspname FROM pg_namespace WHERE nspname "
                                                    "LIKE 'engine_ops%%' OR nspname = 'public' ORDER BY 1")]
        assert schemas == ["public"] if strategy else [aside, "public"], schemas  # the staged schema is now public

    exported = swapped["exported"]
    for table, count in live_counts.items():
        if table in CONTRACT_TABLES or table == "memory_consolidations":
            assert exported.get(table, 0) == count - snap["row_counts"].get(table, 0), table
    with open(os.path.join(swapped["export_dir"], "episodes.jsonl")) as handle:
        bad_rows = [json.loads(line) for line in handle]
    assert sorted(r["request_id"] for r in bad_rows) == sorted(bad)
    with open(os.path.join(swapped["export_dir"], "episodes_vec.jsonl")) as handle:  # embeddings kept exactly
        vectors = [json.loads(line) for line in handle]
    assert sorted(v["episode_id"] for v in vectors) == sorted(r["id"] for r in bad_rows)
    if backend == "sqlite":
        assert swapped["brain_reads"]["vec0"] == ("extension" if python else "shadow tables")
        assert all(len(base64.b64decode(v["embedding"]["base64"])) == 6144 for v in vectors)
    else:
        assert all(len(v["embedding"]) == 1536 for v in vectors)

    back = run_module("engine_image", interpreter=python, args={
        "container": engine.name, "version": "2.3.1", "health_url": engine.url + "/health", "state_dir": store + "-state"})
    assert back["changed"] and not back.get("failed"), back.get("msg")
    engine.wait_healthy()
    assert engine.health()[1]["version"] == "2.3.1"
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(kept)

    undo = run_module("brain_restore", interpreter=python,
                      args=brain_args(engine, store, **role, undo=swapped["aside"], health_url=engine.url + "/health"))
    assert undo["changed"] and not undo.get("failed"), undo.get("msg")
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(kept + bad)
    if backend == "postgres" and not strategy:
        owner = engine.brain.query(docker_client, "SELECT pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace "
                                   "WHERE nspname = 'public'")
        assert owner == [("pg_database_owner", "{pg_database_owner=UC/pg_database_owner,=U/pg_database_owner}")]


def _pg(engine):
    p = engine.brain.pg_params
    return {"pg_host": p["host"], "pg_port": p["port"], "pg_user": p["user"], "pg_password": p["password"],
            "pg_database": engine.brain.database}


def _as_admin(engine, statement):
    with psycopg.connect(autocommit=True, dbname=engine.brain.database, **admin_params(engine.brain.pg_params)) as conn:
        conn.execute(statement)


def _brain_state(engine, docker_client):
    """Everything a refused restore must leave as it was: schemas, tables and the rows of the live brain."""
    return (engine.brain.query(docker_client, "SELECT nspname FROM pg_namespace ORDER BY 1"),
            sorted(r[1] for r in engine.rows("episodes")), engine.brain.columns(docker_client, "episodes"))


@pytest.mark.parametrize("lacking", ["create-on-database", "owner-of-public", "read-a-table"])
def test_a_missing_postgresql_privilege_is_named_before_anything_changes(
        engines, named, prefix, store, docker_client, lacking):
    """The Engine's own role, with one privilege taken away by a DBA: the snapshot or the restore says which."""
    engine = start(engines, named, prefix, "2.3.1", engines.brain("postgres"))
    turns(engine, "kept", 2)
    snap = run_module("brain_snapshot", args=brain_args(engine, store, rollback_target=True))
    assert snap["changed"] and not snap.get("failed"), snap.get("msg")
    turns(engine, "bad", 2)
    role, database = engine.brain.pg_params["user"], engine.brain.database
    if lacking == "read-a-table":
        _as_admin(engine, "CREATE TABLE public.audit_trail (id int); REVOKE ALL ON public.audit_trail FROM PUBLIC")
        listed = sorted(os.listdir(os.path.join(store, engine.name)))
        refused = run_module("brain_snapshot", args=brain_args(engine, store))
        assert refused.get("failed") and not refused["changed"]
        assert "role %s may not read audit_trail" % role in refused["msg"], refused["msg"]
        assert refused["msg"].endswith("nothing was changed"), refused["msg"]
        assert sorted(os.listdir(os.path.join(store, engine.name))) == listed  # no partial snapshot
        return
    if lacking == "create-on-database":
        _as_admin(engine, 'REVOKE CREATE ON DATABASE "%s" FROM "%s", PUBLIC' % (database, role))
        words = "role %s lacks CREATE on database %s" % (role, database)
    else:
        _as_admin(engine, "ALTER SCHEMA public OWNER TO %s" % admin_params(engine.brain.pg_params)["user"])
        words = "role %s does not own schema public" % role
    before = _brain_state(engine, docker_client)
    for phase in ("all", "stage"):
        refused = run_module("brain_restore", args=brain_args(engine, store, phase=phase))
        assert refused.get("failed") and not refused["changed"], refused
        assert words in refused["msg"] and refused["msg"].endswith("nothing was changed"), refused["msg"]
    assert _brain_state(engine, docker_client) == before
    assert engine.health()[0] == 200


@BRAINS
@pytest.mark.parametrize("damage", ["snapshot", "manifest"])
def test_a_flipped_byte_is_refused_in_preflight(engines, named, prefix, backend, python, store, docker_client, damage):
    engine = start(engines, named, prefix, "2.3.1", engines.brain(backend))
    turns(engine, "a", 2)
    snap = run_module("brain_snapshot", interpreter=python, args=brain_args(engine, store))["snapshot"]
    turns(engine, "b", 2)
    directory = os.path.join(store, engine.name, snap["id"])
    victim = os.path.join(directory, "manifest.json" if damage == "manifest" else
                          max(snap["files"], key=lambda f: f["size"])["name"])
    with open(victim, "r+b") as handle:
        handle.seek(os.path.getsize(victim) // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    engine.container.stop(timeout=30)  # a stopped Engine: the brain's bytes stay still to be compared
    before = engine.brain.checksum(docker_client)
    result = run_module("brain_restore", interpreter=python, args=brain_args(engine, store, id=snap["id"]))
    assert result.get("failed") and not result["changed"]
    assert "does not match" in result["msg"] and result["msg"].endswith("nothing was changed")
    assert engine.brain.checksum(docker_client) == before


@BRAINS
def test_check_mode_plans_and_touches_nothing(engines, named, prefix, backend, python, store, docker_client):
    engine = start(engines, named, prefix, "2.3.1", engines.brain(backend))
    turns(engine, "a", 2)
    snap = run_module("brain_snapshot", interpreter=python, args=brain_args(engine, store))["snapshot"]
    turns(engine, "bad", 3)
    engine.container.stop(timeout=30)
    before = engine.brain.checksum(docker_client)
    listing = sorted(os.listdir(os.path.join(store, engine.name, snap["id"])))
    result = run_module("brain_restore", interpreter=python, args=brain_args(engine, store, id=snap["id"]), check=True)
    assert result["changed"] and result["plan"]["rows_to_export"]["episodes"] == 3
    assert result["plan"]["snapshot"] == snap["id"] and result["plan"]["recovery_point_age_seconds"] >= 0
    assert engine.brain.checksum(docker_client) == before
    assert sorted(os.listdir(os.path.join(store, engine.name, snap["id"]))) == listing


def test_retention_keeps_pinned_and_the_rollback_target(engines, named, prefix, store):
    engine = start(engines, named, prefix, "2.3.1", engines.brain("sqlite"))
    pinned = run_module("brain_snapshot", brain_args(engine, store, pinned=True))["snapshot"]["id"]
    target = run_module("brain_snapshot", brain_args(engine, store, rollback_target=True))["snapshot"]["id"]
    plain = [run_module("brain_snapshot", brain_args(engine, store))["snapshot"]["id"] for dummy in range(3)]
    last = run_module("brain_snapshot", brain_args(engine, store, keep=2))
    ids = [s["id"] for s in run_module("brain_snapshot_info", brain_args(engine, store))["snapshots"]]
    assert pinned in ids and target in ids and last["snapshot"]["id"] in ids
    assert sorted(last["removed"]) == sorted(plain[:2])
    assert plain[2] in ids
    refused = run_module("brain_snapshot", brain_args(engine, store, id=pinned, state="absent"))
    assert refused.get("failed") and "pinned" in refused["msg"] and pinned in os.listdir(os.path.join(store, engine.name))
    forced = run_module("brain_snapshot", brain_args(engine, store, id=pinned, state="absent", force=True))
    assert forced["changed"] and forced["removed"] == [pinned]


@pytest.mark.parametrize("snapshot_id", ["../../etc", "a/b", "..", ""])
def test_snapshot_ids_with_path_parts_are_refused(engines, named, prefix, store, snapshot_id):
    engine = start(engines, named, prefix, "2.3.1", engines.brain("sqlite"))
    result = run_module("brain_restore", brain_args(engine, store, id=snapshot_id))
    assert result.get("failed") and not result["changed"]


def test_restoring_an_equal_brain_is_not_a_change(engines, named, prefix, store):
    engine = start(engines, named, prefix, "2.3.1", engines.brain("sqlite"))
    turns(engine, "a", 2)
    snap = run_module("brain_snapshot", brain_args(engine, store))["snapshot"]
    result = run_module("brain_restore", brain_args(engine, store, id=snap["id"]))
    assert result["changed"] is False and not result.get("failed")


def change_in_place(engine, docker_client, statements):
    """Write to the live brain behind the Engine's back, as a release that updates and deletes rows would."""
    if engine.brain.backend == "postgres":
        import psycopg  # pylint: disable=import-outside-toplevel
        with psycopg.connect(engine.brain.dsn(), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    import sqlite3  # pylint: disable=import-outside-toplevel
    conn = sqlite3.connect(engine.brain.sqlite_path(docker_client), timeout=30)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


@BRAINS
def test_rows_updated_or_deleted_in_the_bad_window_are_set_aside_with_before_and_after(
        engines, named, prefix, backend, python, store, docker_client):
    engine = start(engines, named, prefix, "2.3.1", engines.brain(backend))
    turns(engine, "kept", 4)
    change_in_place(engine, docker_client, [
        "INSERT INTO knowledge_store (key, value, source, created_at) VALUES ('fact', 'old value', 'seed', "
        "'2026-01-01T00:00:00.000000Z')"])
    snap = run_module("brain_snapshot", interpreter=python, args=brain_args(engine, store))["snapshot"]
    change_in_place(engine, docker_client, [
        "UPDATE knowledge_store SET value = 'new value' WHERE key = 'fact'",
        "DELETE FROM learning_signals WHERE request_id = 'kept-0'"])
    planned = run_module("brain_restore", interpreter=python, check=True, args=brain_args(engine, store, id=snap["id"]))
    if backend == "sqlite":  # the snapshot file is compared in place: the plan counts them already
        assert planned["plan"]["rows_updated_to_export"] == {"knowledge_store": 1}
        assert planned["plan"]["rows_deleted_to_export"] == {"learning_signals": 1}

    staged = run_module("brain_restore", interpreter=python, args=brain_args(engine, store, id=snap["id"], phase="stage"))
    assert staged["changed"], staged.get("msg")
    # after the serving-phase export, before the stop: caught by the settled export from the kept brain
    change_in_place(engine, docker_client, ["UPDATE conversations SET content = 'edited late' "
                                            "WHERE request_id = 'kept-1' AND role = 'user'"])
    assert run_module("engine_drain", interpreter=python, args={"container": engine.name})["drain"]["clean"]
    swapped = run_module("brain_restore", interpreter=python, args=brain_args(engine, store, id=snap["id"], phase="swap"))
    assert swapped["changed"] and swapped["verified"], swapped.get("msg")

    def lines(name):
        with open(os.path.join(swapped["export_dir"], name)) as handle:
            return [json.loads(line) for line in handle]

    [fact] = lines("knowledge_store.updated.jsonl")
    assert fact["before"]["value"] == "old value" and fact["after"]["value"] == "new value"
    assert set(fact["key"]) == {"id"} and fact["key"]["id"] == fact["before"]["id"]
    [gone] = lines("learning_signals.deleted.jsonl")
    assert gone["before"]["request_id"] == "kept-0" and "after" not in gone
    with open(os.path.join(swapped["export_dir"], "summary.json")) as handle:
        summary = json.load(handle)
    assert "<table>.updated.jsonl" in summary["files"]
    # SQLite compares the replaced brain with the snapshot file; PostgreSQL (the Engine's role: schema strategy) with
    # the dump loaded once more into a scratch schema, dropped afterwards
    assert swapped["export_settled"] and summary["settled"]
    assert swapped["exported_updated"] == {"knowledge_store": 1, "conversations": 1}
    [late] = lines("conversations.updated.jsonl")
    assert late["after"]["content"] == "edited late"
    if backend == "postgres":
        assert engine.brain.query(docker_client, "SELECT nspname FROM pg_namespace WHERE nspname LIKE "
                                  "'engine_ops%%' ORDER BY 1") == [(swapped["aside"],)]
    assert swapped["exported_deleted"] == {"learning_signals": 1}
    assert engine.brain.query(docker_client, "SELECT value FROM knowledge_store WHERE key = 'fact'") == [("old value",)]
