"""engine_drain, engine_image and health_probe against real reference Engines in Docker."""

import json
import uuid

import docker
import pytest

from ansible_run import run_module
from conftest import ENGINE_REPOSITORY, free_port, wait_for


def image_id(client, ref):
    return client.images.get(ref).id


def identity(container):
    container.reload()
    return container.id, container.attrs["State"]["Status"], container.attrs["State"]["StartedAt"]


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / "state")


def start_named(engines, named, version, brain, prefix, **kwargs):
    engine = engines.start(version, brain, **kwargs)
    name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
    engine.container.rename(name)
    named(name)
    engine.name = name
    engine.wait_healthy()
    return engine


def test_drain_lets_an_in_flight_turn_finish_and_serving_starts_it_again(engines, named, prefix):
    brain = engines.brain("sqlite")
    engine = start_named(engines, named, "2.3.1", brain, prefix)
    # long enough to be still running when the second module run starts on a loaded CI machine (5 s was not, twice)
    engine.execute_in_background(message="fifteen second task", duration=15.0, request_id="in-flight-1")
    engine.wait_log("turn started")
    args = {"container": engine.name, "state": "drained", "drain_timeout": 30}

    predicted = run_module("engine_drain", args, check=True)
    assert predicted["changed"] and predicted["drain"]["in_flight_at_start"] == 1
    assert identity(engine.container)[1] == "running"

    result = run_module("engine_drain", args)
    drain = result["drain"]
    assert result["changed"] and drain["clean"] and not drain["killed"] and drain["exit_code"] == 0
    assert (drain["in_flight_at_start"], drain["cut_turns"]) == (1, 0)
    assert len(engine.rows("episodes", "in-flight-1")) == 1

    assert run_module("engine_drain", args, check=True)["changed"] is False
    assert run_module("engine_drain", args)["changed"] is False

    serve = {"container": engine.name, "state": "serving", "health_url": engine.url + "/health"}
    started = run_module("engine_drain", serve)
    assert started["changed"] and started["health"]["healthy"]
    assert run_module("engine_drain", serve)["changed"] is False


def test_drain_window_shorter_than_the_turn_kills_and_counts_the_cut_turn(engines, named, prefix):
    engine = start_named(engines, named, "2.3.1", engines.brain("sqlite"), prefix)
    engine.execute_in_background(message="long task", duration=30.0, request_id="will-be-cut")
    engine.wait_log("turn started")
    result = run_module("engine_drain", {"container": engine.name, "drain_timeout": 2})
    drain = result["drain"]
    assert drain["killed"] and not drain["clean"] and drain["exit_code"] == 137
    assert drain["cut_turns"] == 1 and drain["cut_request_ids"] == ["will-be-cut"]
    assert engine.rows("episodes", "will-be-cut") == []


def test_previous_lands_on_the_exact_build_after_its_tag_moved(engines, named, prefix, docker_client, state_dir):
    private = "%s/engine" % prefix  # a repository of this test's own, so moving its tag affects no other test
    original_id = image_id(docker_client, "engine:2.3.1")
    docker_client.images.get("engine:2.3.1").tag(private, "2.3.1")
    try:
        engine = start_named(engines, named, "2.3.1", engines.brain("sqlite"), prefix)
        container = engine.container
        container.reload()
        base = {"container": engine.name, "health_url": engine.url + "/health", "state_dir": state_dir}

        up = run_module("engine_image", dict(base, image="engine:2.3.2"))
        assert up["changed"] and not up["reverted"] and up["previous_image"]["id"] == original_id
        assert docker_client.containers.get(engine.name).image.id == image_id(docker_client, "engine:2.3.2")

        docker_client.images.get("engine:2.4.0-broken-health").tag(private, "2.3.1")  # the tag moves
        docker_client.images.get("engine:2.3.1").tag("engine", "2.3.1")
        back = run_module("engine_image", dict(base, previous=True))
        assert back["changed"] and back["image"]["id"] == original_id, back.get("msg")
        now = docker_client.containers.get(engine.name)
        assert now.image.id == original_id
        wait_for(lambda: engine.health()[1]["version"] == "2.3.1", 30, "2.3.1 serving")
        assert run_module("engine_image", dict(base, previous=True))["image"]["id"] != original_id  # toggles
    finally:
        docker_client.images.remove("%s:2.3.1" % private, noprune=True)


def test_crash_at_start_build_is_reverted_and_the_engine_serves_again(engines, named, prefix, docker_client,
                                                                      state_dir):
    engine = start_named(engines, named, "2.3.1", engines.brain("sqlite"), prefix)
    engine.execute("remember this", request_id="kept")
    old_id = engine.container.id
    result = run_module("engine_image", {"container": engine.name, "image": "engine:2.4.0-broken-crash",
                                         "health_url": engine.url + "/health", "health_timeout": 8,
                                         "state_dir": state_dir})
    assert result.get("failed") and result["changed"] and result["reverted"]
    assert "reverted to the old container" in result["msg"] and "healthy again" in result["msg"]
    restored = docker_client.containers.get(engine.name)
    assert restored.id == old_id and restored.image.id == image_id(docker_client, "engine:2.3.1")
    engine.wait_healthy()
    assert len(engine.rows("episodes", "kept")) == 1
    assert [c.name for c in docker_client.containers.list(all=True) if c.name.startswith(engine.name)] == [engine.name]


@pytest.mark.parametrize("target, message", [
    ({"image": "engine:9.9.9"}, "engine:9.9.9 is not present on this host and could not be pulled"),
    ({"version": "latest"}, "'latest' is never a valid rollback target"),
    ({"image": "engine:latest"}, "'latest' is never a valid rollback target"),
    ({"version": "2.3"}, "is not a semantic version"),
    ({"previous": True}, "no previous image is recorded"),
])
def test_bad_targets_fail_before_anything_is_stopped(engines, named, prefix, target, message, state_dir):
    engine = start_named(engines, named, "2.3.1", engines.brain("sqlite"), prefix)
    before = identity(engine.container)
    result = run_module("engine_image", dict(target, container=engine.name, health_url=engine.url + "/health",
                                             state_dir=state_dir))
    assert result.get("failed") and not result["changed"]
    assert message in result["msg"] and result["msg"].endswith("nothing was changed")
    assert identity(engine.container) == before


@pytest.mark.parametrize("files, message", [
    ({}, "No such file or directory"),  # the compose file named does not exist
    ({"compose.yml": "services:\n  worker:\n    image: engine:2.3.1\n"}, "service 'engine' is not in the compose file"),
    ({"compose.yml": "services:\n  engine:\n    image: engine:${TAG}\n"}, "there is no env file %(dir)s/.env to set TAG in"),
    ({"compose.yml": "services:\n  engine:\n    image: engine:${TAG}\n", ".env": "OTHER=1\n"},
     "which the env file %(dir)s/.env does not set"),
    ({"compose.yml": "x: &e\n  image: engine:2.3.1\nservices:\n  engine:\n    <<: *e\n"},
     "takes its image from a merge key"),
    ({"compose.yml": "services:\n  engine:\n    image: engine:${TAG}\n", ".env": None},  # None: unreadable
     "Is a directory"),
])
def test_a_compose_file_that_cannot_follow_is_refused_before_anything_changes(
        engines, named, prefix, tmp_path, state_dir, files, message):
    engine = start_named(engines, named, "2.3.1", engines.brain("sqlite"), prefix)
    before = identity(engine.container)
    for name, text in files.items():
        if text is None:  # a file that can't be read (root reads any mode, but not a directory)
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text(text)
    files = dict((name, text) for name, text in files.items() if text is not None)
    kept = dict((name, (tmp_path / name).read_text()) for name in files)
    result = run_module("engine_image", {"container": engine.name, "version": "2.4.0", "state_dir": state_dir,
                                         "health_url": engine.url + "/health",
                                         "compose_file": str(tmp_path / "compose.yml")})
    assert result.get("failed") and not result["changed"], result
    assert message % {"dir": tmp_path} in result["msg"] and result["msg"].endswith("nothing was changed"), result["msg"]
    assert identity(engine.container) == before
    assert dict((name, (tmp_path / name).read_text()) for name in files) == kept


def test_unknown_container_fails_clearly():
    result = run_module("engine_image", {"container": "no-such-engine-%s" % uuid.uuid4().hex[:6], "version": "2.3.1"})
    assert result.get("failed") and "does not exist; nothing was changed" in result["msg"]


def test_every_setting_of_the_container_survives_the_switch(docker_client, engines, prefix, named, state_dir):
    brain = engines.brain("sqlite")
    port = free_port()
    name = "%s-configured" % prefix
    named(name)
    docker_client.containers.run(
        "engine:2.3.1", name=name, detach=True, network_mode="host",
        environment={"ENGINE_PORT": str(port), "ENGINE_BIND": "127.0.0.1", "ENGINE_STARTUP_SECONDS": "0.2",
                     "LLM_API_KEY": "sk-test", "PYTHONPATH": "/app"},
        volumes={brain.volume: {"bind": "/data", "mode": "rw"}}, working_dir="/app",
        labels={"team": "agents", "com.docker.compose.project": prefix, "com.docker.compose.service": "engine"},
        restart_policy={"Name": "unless-stopped"}, command=["python3", "-m", "engine", "serve"],
        entrypoint=["/usr/bin/env"], user="10001", mem_limit="512m", nano_cpus=1_000_000_000,
        log_config={"Type": "json-file", "Config": {"max-size": "5m", "max-file": "2"}},
        healthcheck={"Test": ["CMD", "curl", "-fsS", "http://127.0.0.1:%d/health" % port], "Interval": 2_000_000_000},
        stop_signal="SIGINT", tmpfs={"/tmp": "size=16m"}, extra_hosts={"llm.internal": "127.0.0.1"},
        cap_drop=["NET_RAW"], ulimits=[docker.types.Ulimit(name="nofile", soft=4096, hard=8192)])
    wait_for(lambda: docker_client.containers.get(name).status == "running", 20, "running")
    before = docker_client.containers.get(name).attrs
    result = run_module("engine_image", {"container": name, "version": "2.3.2", "state_dir": state_dir,
                                         "health_url": "http://127.0.0.1:%d/health" % port}, diff=True)
    assert result["changed"] and not result.get("failed"), result.get("msg")
    changed_keys = [k for k in result["diff"]["before"] if result["diff"]["before"][k] != result["diff"]["after"][k]]
    assert changed_keys == ["image"]
    after = docker_client.containers.get(name).attrs
    assert after["Id"] != before["Id"] and after["Config"]["Image"] == "engine:2.3.2"
    for key in ("RestartPolicy", "Memory", "NanoCpus", "LogConfig", "Tmpfs", "ExtraHosts", "CapDrop", "Ulimits",
                "NetworkMode", "Binds"):
        assert after["HostConfig"][key] == before["HostConfig"][key], key
    for key in ("Entrypoint", "Cmd", "User", "WorkingDir", "Healthcheck", "StopSignal"):
        assert after["Config"][key] == before["Config"][key], key
    for env in ("LLM_API_KEY=sk-test", "ENGINE_PORT=%d" % port, "PYTHONPATH=/app"):
        assert env in after["Config"]["Env"]
    assert "ENGINE_VERSION=2.3.2" in after["Config"]["Env"]  # the new image's own ENV, not the old one's
    assert "ENGINE_VERSION=2.3.1" not in after["Config"]["Env"]
    assert after["Config"]["Labels"]["org.opencontainers.image.version"] == "2.3.2"
    for label in ("team", "com.docker.compose.project", "com.docker.compose.service"):
        assert after["Config"]["Labels"][label] == before["Config"]["Labels"][label]
    assert after["Config"]["Labels"]["engine_ops.lifecycle.previous_image_id"] == before["Image"]
    assert "sk-test" not in json.dumps(result)  # the diff shows the secret's name, never its value
    assert "LLM_API_KEY=<redacted>" in result["diff"]["after"]["config"]["Env"]

    again = run_module("engine_image", {"container": name, "version": "2.3.2", "state_dir": state_dir,
                                        "health_url": "http://127.0.0.1:%d/health" % port})
    assert again["changed"] is False
    assert docker_client.containers.get(name).id == after["Id"]


def test_compose_managed_engine_and_its_compose_file(docker_client, engines, prefix, named, tmp_path, state_dir):
    engine = engines.start("2.3.1", engines.brain("sqlite"))
    engine.container.remove(force=True)  # recreate it with compose labels under a compose-style name
    name = "%s-engine-1" % prefix
    named(name)
    docker_client.containers.run(
        "engine:2.3.1", name=name, detach=True, network_mode="host",
        environment={"ENGINE_PORT": str(engine.port), "ENGINE_BIND": "127.0.0.1", "ENGINE_STARTUP_SECONDS": "0.2"},
        labels={"com.docker.compose.project": prefix, "com.docker.compose.service": "engine"},
        volumes={engine.brain.volume: {"bind": "/data", "mode": "rw"}})
    engine.wait_healthy()
    compose = tmp_path / "compose.yml"
    compose.write_text("services:\n  engine:\n    # pinned by the on-call\n    image: engine:2.3.1  # prod\n"
                       "    network_mode: host\n")
    args = {"compose_project": prefix, "version": "v2.3.2", "compose_file": str(compose),
            "health_url": engine.url + "/health", "state_dir": state_dir}

    check = run_module("engine_image", args, check=True)
    assert check["changed"] and check["compose_file_updated"]
    assert "engine:2.3.1  # prod" in compose.read_text()
    assert docker_client.containers.get(name).image.id == image_id(docker_client, "engine:2.3.1")

    result = run_module("engine_image", args)
    assert result["changed"] and result["compose_file_updated"]
    assert compose.read_text() == ("services:\n  engine:\n    # pinned by the on-call\n    image: engine:2.3.2  # prod\n"
                                   "    network_mode: host\n")
    switched = docker_client.containers.get(name)
    assert switched.labels["com.docker.compose.service"] == "engine"
    assert switched.image.id == image_id(docker_client, "engine:2.3.2")
    assert run_module("engine_image", args)["changed"] is False


@pytest.mark.parametrize("version, expected, failing", [
    ("2.3.1", "ok", []),
    ("2.4.0-broken-health", "subsystem_failure", ["asset_directory"]),
    ("2.4.0-broken-errors", "ok", []),
    ("2.4.0-broken-latency", "ok", []),
    ("2.4.0-broken-crash", "unreachable", []),
    ("2.3.2-broken-noschema", "subsystem_failure", ["asset_directory"]),
    ("2.4.0-broken-llm", "external_only", ["llm_provider"]),
])
def test_health_probe_classifies_every_build(engines, version, expected, failing):
    engine = engines.start(version, engines.brain("sqlite"), env={"ENGINE_STARTUP_SECONDS": "0"})
    if expected != "unreachable":
        engine.wait_log("engine ready")
    else:
        assert engine.wait_exit() == 3
    result = run_module("health_probe", {"url": engine.url + "/health", "deadline": 3, "fail_on_unhealthy": False})
    assert result["classification"] == expected and result["failing"] == failing
    assert result["changed"] is False and result["healthy"] is (expected == "ok")


def test_health_probe_reports_migration_required_at_once_and_fails_the_gate(engines):
    brain = engines.brain("sqlite")
    newer = engines.start("2.4.0", brain)
    newer.wait_healthy()
    newer.container.stop(timeout=30)
    older = engines.start("2.3.1", brain)
    older.wait_status("error")
    result = run_module("health_probe", {"url": older.url + "/health", "deadline": 30})
    assert result["failed"] and result["classification"] == "migration_required" and result["attempts"] == 1
    assert "MIGRATION_REQUIRED" not in result["msg"] or "migration_required" in result["msg"]


def test_health_probe_sampling_gives_rates_and_percentiles(engines):
    engine = engines.start("2.3.1", engines.brain("sqlite"))
    engine.wait_healthy()
    result = run_module("health_probe", {"url": engine.url + "/health", "samples": 5, "interval": 0.05})
    sampling = result["sampling"]
    assert sampling["count"] == 5 and sampling["error_rate"] == 0 and sampling["classifications"] == {"ok": 5}
    assert 0 < sampling["latency_ms"]["p50"] <= sampling["latency_ms"]["p99"]


def test_health_probe_starting_and_draining(engines):
    slow = engines.start("2.3.1", engines.brain("sqlite"), env={"ENGINE_STARTUP_SECONDS": "30"})
    wait_for(lambda: slow.health()[0] == 503, 10, "answering")
    assert run_module("health_probe", {"url": slow.url + "/health", "deadline": 1,
                                       "fail_on_unhealthy": False})["classification"] == "starting"
    engine = engines.start("2.3.1", engines.brain("sqlite"))
    engine.wait_healthy()
    engine.execute_in_background(message="keep it draining", duration=10.0)
    engine.wait_log("turn started")
    engine.container.kill(signal="SIGTERM")
    engine.wait_status("draining")
    assert run_module("health_probe", {"url": engine.url + "/health", "deadline": 1,
                                       "fail_on_unhealthy": False})["classification"] == "draining"
    assert ENGINE_REPOSITORY == "engine"
