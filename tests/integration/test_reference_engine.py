"""The reference Engine behaves as ENGINE_CONTRACT.md says, in both brain modes, in real containers."""

import hashlib
import uuid

import pytest
import requests

from conftest import AUTH, BOTH_BACKENDS, wait_for

TURN_TABLES = ("episodes", "learning_signals", "working_memory_log", "trajectories",
               "observability_events")


@BOTH_BACKENDS
def test_health_turn_rows_and_json_logs(engines, backend):
    engine = engines.start("2.3.1", engines.brain(backend))
    engine.wait_healthy()
    status, body = engine.health()
    assert status == 200
    assert body["version"] == "2.3.1"
    assert body["subsystems"] == {"database": "ok", "llm_provider": "ok", "asset_directory": "ok"}
    assert body["uptime_seconds"] > 0

    request_id = "turn-" + uuid.uuid4().hex[:8]
    status, events = engine.execute("remember the launch date", duration=0.3, request_id=request_id)
    assert status == 200
    assert events[0]["event"] == "turn.started" and events[-1]["event"] == "turn.completed"
    for table in TURN_TABLES:
        assert len(engine.rows(table, request_id)) == 1, table
    assert [r[3] for r in engine.rows("conversations", request_id)] == ["user", "assistant"]
    episode_id = engine.rows("episodes", request_id)[0][0]
    exported = requests.get(engine.url + "/memory/export", params={"tables": "episodes_vec"}, headers=AUTH,
                            timeout=10).json()
    assert [v["episode_id"] for v in exported["tables"]["episodes_vec"]] == [episode_id]

    records = engine.logs()
    assert all(set(r) == {"timestamp", "level", "logger", "request_id", "message", "extra"} for r in records)
    done = [r for r in records if r["message"] == "request completed" and r["request_id"] == request_id]
    assert done and done[0]["extra"]["duration_ms"] >= 300 and done[0]["extra"]["status"] == 200

    exported = requests.get(engine.url + "/memory/export", params={"tables": "episodes"}, headers=AUTH,
                            timeout=10).json()
    assert [e["request_id"] for e in exported["tables"]["episodes"]] == [request_id]


@BOTH_BACKENDS
def test_sigterm_drains_an_in_flight_turn_and_its_rows_persist(engines, backend):
    engine = engines.start("2.3.1", engines.brain(backend))
    engine.wait_healthy()
    request_id = "drain-" + uuid.uuid4().hex[:8]
    thread, result = engine.execute_in_background(message="long task", duration=3.0, request_id=request_id)
    engine.wait_log("turn started")
    engine.container.kill(signal="SIGTERM")
    status, body = wait_for(lambda: engine.health()[1]["status"] == "draining" and engine.health(), 10, "draining")
    assert status == 503 and body["status"] == "draining"
    refused_status, refused = engine.execute("too late")
    assert refused_status == 503 and refused["error"]["code"] == "DRAINING"

    assert engine.wait_exit(timeout=30) == 0
    thread.join(10)
    status, events = result["response"]
    assert status == 200 and events[-1]["event"] == "turn.completed"
    assert len(engine.rows("episodes", request_id)) == 1
    drain = [r for r in engine.logs() if r["message"] == "drain started"][0]
    assert drain["extra"]["in_flight_turns"] == 1 and drain["extra"]["request_ids"] == [request_id]
    assert [r for r in engine.logs() if r["message"] == "drain complete"]


def test_sigkill_after_the_drain_window_loses_the_turn(engines):
    engine = engines.start("2.3.1", engines.brain("sqlite"))
    engine.wait_healthy()
    request_id = "cut-" + uuid.uuid4().hex[:8]
    engine.execute_in_background(message="very long task", duration=20.0, request_id=request_id)
    engine.wait_log("turn started")
    engine.container.stop(timeout=1)  # SIGTERM, then SIGKILL one second later
    assert engine.wait_exit() == 137
    assert engine.rows("episodes", request_id) == []
    messages = [r["message"] for r in engine.logs()]
    assert "drain started" in messages and "drain complete" not in messages


@BOTH_BACKENDS
def test_upgrade_migrates_forward_and_older_engine_refuses_without_touching_the_brain(
        engines, backend, docker_client):
    brain = engines.brain(backend)
    old = engines.start("2.3.1", brain)
    old.wait_healthy()
    old.execute("before upgrade")
    old.container.stop(timeout=30)
    assert "importance" not in brain.columns(docker_client, "episodes")

    new = engines.start("2.4.0", brain)
    new.wait_healthy()
    assert new.health()[1]["version"] == "2.4.0"
    assert "importance" in brain.columns(docker_client, "episodes")
    new.execute("after upgrade")
    new.container.stop(timeout=30)
    before = brain.checksum(docker_client)

    downgraded = engines.start("2.3.1", brain)
    status, body = downgraded.wait_status("error") and downgraded.health()
    assert status == 503
    assert body["error"]["code"] == "MIGRATION_REQUIRED"
    status, refused = downgraded.execute("should be refused")
    assert status == 503 and refused["error"]["code"] == "MIGRATION_REQUIRED"
    logged = [r for r in downgraded.logs() if r["extra"].get("error_code") == "MIGRATION_REQUIRED"]
    assert logged and logged[0]["level"] == "ERROR"
    assert logged[0]["extra"]["unknown_migrations"] == ["0003_episode_importance"]
    downgraded.container.stop(timeout=30)
    assert brain.checksum(docker_client) == before
    assert len(brain.query(docker_client, "SELECT * FROM episodes")) == 2


@BOTH_BACKENDS
def test_broken_health_build_migrates_then_reports_unhealthy(engines, backend, docker_client):
    brain = engines.brain(backend)
    engine = engines.start("2.4.0-broken-health", brain)
    engine.wait_log("engine ready")
    status, body = engine.health()
    assert status == 503 and body["status"] == "degraded" and body["failing"] == ["asset_directory"]
    assert "importance" in brain.columns(docker_client, "episodes")


@BOTH_BACKENDS
def test_broken_errors_build_fails_half_the_turns_while_health_stays_ok(engines, backend):
    engine = engines.start("2.4.0-broken-errors", engines.brain(backend))
    engine.wait_healthy()
    statuses = [engine.execute("turn %d" % n)[0] for n in range(10)]
    assert sorted(statuses) == [200] * 5 + [500] * 5
    assert engine.health()[0] == 200
    # the last answer can arrive before the Engine writes its log line: wait for the lines, do not race them

    def error_lines():
        found = [r for r in engine.logs() if r["level"] == "ERROR"]
        return found if len(found) >= 5 else None

    errors = wait_for(error_lines, 10, "five ERROR log lines")
    assert len(errors) == 5 and {r["extra"]["error_code"] for r in errors} == {"TOOL_EXECUTION_FAILED"}


@BOTH_BACKENDS
def test_broken_latency_build_is_slow_while_health_stays_ok(engines, backend):
    engine = engines.start("2.4.0-broken-latency", engines.brain(backend))
    engine.wait_healthy()
    request_id = "slow-" + uuid.uuid4().hex[:8]
    status, events = engine.execute("quick question", duration=0.2, request_id=request_id)
    assert status == 200 and events[-1]["event"] == "turn.completed"
    # the stream ends before the Engine writes its log line: wait for the line, do not race it
    logged = wait_for(lambda: [r for r in engine.logs() if r["message"] == "turn completed"
                               and r["request_id"] == request_id], 10, "the turn's log line")
    assert logged[0]["extra"]["duration_ms"] >= 1000  # 5 x 0.2 s, as the build's fault says
    assert engine.health()[0] == 200


@BOTH_BACKENDS
def test_broken_crash_build_exits_without_touching_the_brain(engines, backend, docker_client):
    brain = engines.brain(backend)
    good = engines.start("2.3.1", brain)
    good.wait_healthy()
    good.execute("before the bad release")
    good.container.stop(timeout=30)
    before = brain.checksum(docker_client)
    engine = engines.start("2.4.0-broken-crash", brain)
    assert engine.wait_exit() == 3
    crit = [r for r in engine.logs() if r["level"] == "CRITICAL"]
    assert crit and crit[0]["extra"]["error_code"] == "STARTUP_CRASH"
    assert brain.checksum(docker_client) == before


@BOTH_BACKENDS
def test_broken_build_without_schema_change_leaves_the_schema_as_231(engines, backend, docker_client):
    reference, brain = engines.brain(backend), engines.brain(backend)
    good = engines.start("2.3.1", reference)
    good.wait_healthy()
    broken = engines.start("2.3.2-broken-noschema", brain)
    broken.wait_log("engine ready")
    assert broken.health()[0] == 503
    assert brain.schema(docker_client) == reference.schema(docker_client)


@BOTH_BACKENDS
def test_broken_llm_build_fails_only_the_llm_provider(engines, backend):
    engine = engines.start("2.4.0-broken-llm", engines.brain(backend))
    engine.wait_log("engine ready")
    status, body = engine.health()
    assert status == 503 and body["failing"] == ["llm_provider"]
    assert body["subsystems"]["database"] == "ok" and body["subsystems"]["asset_directory"] == "ok"
    status, error = engine.execute("hello")
    assert status == 502 and error["error"]["code"] == "LLM_PROVIDER_UNAVAILABLE"


@pytest.mark.parametrize("mode", ["production", "development"])
def test_every_call_but_health_needs_the_engine_key(engines, mode):
    key = "engine-key-" + uuid.uuid4().hex
    env = {"ENGINE_KEY_HASH": hashlib.sha256(key.encode()).hexdigest()} if mode == "production" else \
        {"ENGINE_KEY_HASH": "", "ENGINE_API_KEY": key}
    engine = engines.start("2.3.1", engines.brain("sqlite"), env=env)
    engine.wait_healthy()
    config_env = engine.container.attrs["Config"]["Env"]
    assert (("ENGINE_API_KEY=" + key) in config_env) == (mode == "development")
    for method, path in (("POST", "/execute"), ("GET", "/memory/export"), ("POST", "/memory/import"),
                         ("GET", "/memory/search?q=x"), ("GET", "/connections")):
        for headers in ({}, {"X-Engine-Key": key + "-wrong"}, {"Authorization": "Bearer " + key}):
            answer = requests.request(method, engine.url + path, headers=headers, json={}, timeout=10)
            assert answer.status_code == 401 and answer.json()["error"]["code"] == "UNAUTHORIZED", (path, headers)
    assert engine.health()[0] == 200
    assert requests.get(engine.url + "/memory/export", headers={"X-Engine-Key": key}, timeout=10).status_code == 200


@BOTH_BACKENDS
def test_vectors_full_text_search_and_import(engines, backend, docker_client):
    engine = engines.start("2.3.1", engines.brain(backend))
    engine.wait_healthy()
    for text in ("tea with lemon", "rollback drills on staging", "garden tools"):
        assert engine.execute(text)[0] == 200
    found = requests.get(engine.url + "/memory/search", params={"q": "rollback drills", "k": 3}, headers=AUTH,
                         timeout=10).json()
    assert len(found["nearest"]) == 3 and found["full_text"] == [2]
    exported = requests.get(engine.url + "/memory/export", headers=AUTH, timeout=10).json()["tables"]
    assert [v["episode_id"] for v in exported["episodes_vec"]] == [1, 2, 3]
    if backend == "sqlite":
        virtual = dict(engine.brain.query(docker_client, "SELECT name, sql FROM sqlite_master "
                                                         "WHERE sql LIKE 'CREATE VIRTUAL TABLE%'"))
        assert {"episodes_vec", "knowledge_store_vec", "social_graph_edges_vec", "episodes_fts"} <= set(virtual)
        assert all("USING vec0(" in virtual[t] for t in ("episodes_vec", "knowledge_store_vec",
                                                         "social_graph_edges_vec"))
        assert "USING fts5(" in virtual["episodes_fts"]
        assert len(exported["episodes_vec"][0]["embedding"]["base64"]) == 8192  # 1536 float32 = 6144 bytes
    else:
        assert len(exported["episodes_vec"][0]["embedding"]) == 1536  # REAL[] (no pgvector here)
    again = {"episodes": exported["episodes"][:1], "episodes_vec": exported["episodes_vec"][:1]}
    refused = requests.post(engine.url + "/memory/import", json={"tables": again}, headers=AUTH, timeout=10)
    assert refused.status_code == 409 and refused.json()["conflicts"][0] == {"table": "episodes", "key": {"id": 1}}
    moved = {"episodes": [dict(exported["episodes"][0], id=50)],
             "episodes_vec": [dict(exported["episodes_vec"][0], episode_id=50)]}
    imported = requests.post(engine.url + "/memory/import", json={"tables": moved}, headers=AUTH, timeout=10)
    assert imported.status_code == 200 and imported.json()["imported"] == {"episodes": 1, "episodes_vec": 1}
    found = requests.get(engine.url + "/memory/search", params={"q": "tea with lemon", "k": 2}, headers=AUTH,
                         timeout=10).json()
    assert sorted(n["episode_id"] for n in found["nearest"]) == [1, 50]  # the same embedding, found by KNN


def test_engine_key_and_encryption_key_mismatch(engines):
    brain = engines.brain("sqlite")
    key = "engine-key-" + uuid.uuid4().hex
    env = {"ENGINE_KEY_HASH": hashlib.sha256(key.encode()).hexdigest(), "AD_ENCRYPTION_KEY": "first-key"}
    engine = engines.start("2.3.1", brain, env=env)
    engine.wait_healthy()
    auth = {"X-Engine-Key": key}
    assert engine.execute("no key", headers={"X-Engine-Key": ""})[0] == 401
    assert engine.execute("with key", headers=auth)[0] == 200
    added = requests.post(engine.url + "/connections", headers=auth, timeout=10,
                          json={"name": "files", "server_url": "http://127.0.0.1:9/mcp", "credentials": "s3cret"})
    assert added.status_code == 201
    engine.container.stop(timeout=30)
    assert all("s3cret" not in line for line in engine.container.logs().decode().splitlines())

    rekeyed = engines.start("2.3.1", brain, env=dict(env, AD_ENCRYPTION_KEY="second-key"))
    rekeyed.wait_healthy()
    listed = requests.get(rekeyed.url + "/connections", headers=auth, timeout=10).json()
    assert listed["connections"] == [{"name": "files", "server_url": "http://127.0.0.1:9/mcp", "usable": False}]
    warnings = [r for r in rekeyed.logs() if r["extra"].get("error_code") == "CONNECTION_KEY_MISMATCH"]
    assert warnings and warnings[0]["extra"]["connection"] == "files"


def test_image_metadata_user_and_brain_ownership(engines, docker_client):
    image = docker_client.images.get("engine:2.3.1")
    config = image.attrs["Config"]
    assert config["User"] == "engine"
    assert config["Labels"]["org.opencontainers.image.version"] == "2.3.1"
    assert "ENGINE_VERSION=2.3.1" in config["Env"]
    assert "8000/tcp" in config["ExposedPorts"] and config["Healthcheck"]["Test"]
    brain = engines.brain("sqlite")
    engine = engines.start("2.3.1", brain)
    engine.wait_healthy()
    import os  # pylint: disable=import-outside-toplevel
    assert os.stat(brain.sqlite_path(docker_client)).st_uid == 10001


@pytest.mark.parametrize("version", ["2.3.1", "2.4.0"])
def test_export_since_returns_only_rows_written_after_the_time(engines, version):
    engine = engines.start(version, engines.brain("sqlite"))
    engine.wait_healthy()
    engine.execute("first", request_id="first")
    dummy, events = engine.execute("second", request_id="second")
    episodes = requests.get(engine.url + "/memory/export", params={"tables": "episodes"}, headers=AUTH,
                            timeout=10).json()
    first_at = [e["created_at"] for e in episodes["tables"]["episodes"] if e["request_id"] == "first"][0]
    since = requests.get(engine.url + "/memory/export", params={"since": first_at}, headers=AUTH, timeout=10).json()
    assert [e["request_id"] for e in since["tables"]["episodes"]] == ["second"]
    assert events[-1]["event"] == "turn.completed"
