"""A real ansible-playbook run starts the production Engine on a fresh brain and runs a turn."""

import uuid

import docker
import pytest

from ansible_run import changed_tasks, failures, run_playbook, write_inventory
from conftest import BOTH_BACKENDS, ENGINE_API_KEY, admin_params, free_port


@pytest.fixture
def engine_host(tmp_path, prefix, docker_client, pg_params):
    names = {"container": prefix + "-engine", "volume": prefix + "-data", "database": prefix.replace("-", "_") + "_brain"}
    yield names
    # Finalizer independent of the playbook under test: nothing a test made survives it.
    try:
        docker_client.containers.get(names["container"]).remove(force=True)
    except docker.errors.NotFound:
        pass
    try:
        docker_client.volumes.get(names["volume"]).remove(force=True)
    except docker.errors.NotFound:
        pass
    import psycopg  # pylint: disable=import-outside-toplevel
    from psycopg import sql  # pylint: disable=import-outside-toplevel
    with psycopg.connect(dbname="postgres", autocommit=True, **admin_params(pg_params)) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(names["database"])))


@BOTH_BACKENDS
def test_playbook_runs_an_engine_and_a_turn_whose_rows_exist(tmp_path, engine_host, backend, docker_client, engines):
    host = "engine-" + uuid.uuid4().hex[:6]
    port = free_port()
    inventory = write_inventory(tmp_path, "engines", {host: {
        "engine_container": engine_host["container"], "engine_port": port, "engine_version": "2.3.1",
        "engine_api_key": ENGINE_API_KEY,
        "brain_backend": backend, "brain_database": engine_host["database"], "engine_volume": engine_host["volume"],
    }})

    rc, report = run_playbook("tests/integration/playbooks/engine_turn.yml", inventory,
                              "-e", "engine_turn_request_id=%s-turn-1" % host)
    assert rc == 0 and not failures(report), report["stats"]
    first_changes = changed_tasks(report, host)
    assert "Run the Engine container" in first_changes and "Run one turn" in first_changes

    container = docker_client.containers.get(engine_host["container"])
    assert container.image.tags == ["engine:2.3.1"]
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    brain = engines.brain_at(backend, engine_host["volume"], engine_host["database"])
    request_id = host + "-turn-1"
    assert len(brain.query(docker_client, "SELECT * FROM episodes WHERE request_id = ?", (request_id,))) == 1
    assert len(brain.query(docker_client, "SELECT * FROM conversations WHERE request_id = ?", (request_id,))) == 2

    # Second run: the Engine is left alone (same container), only the new turn is a change.
    rc, report = run_playbook("tests/integration/playbooks/engine_turn.yml", inventory,
                              "-e", "engine_turn_request_id=%s-turn-2" % host)
    assert rc == 0 and not failures(report)
    assert changed_tasks(report, host) == ["Run one turn"]
    assert docker_client.containers.get(engine_host["container"]).id == container.id
    assert len(brain.query(docker_client, "SELECT * FROM episodes WHERE request_id = ?", (host + "-turn-2",))) == 1
    assert len(brain.query(docker_client, "SELECT * FROM episodes")) == 2

    rc, report = run_playbook("tests/integration/playbooks/engine_remove.yml", inventory)
    assert rc == 0 and not failures(report)
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(engine_host["container"])
    with pytest.raises(docker.errors.NotFound):
        docker_client.volumes.get(engine_host["volume"])
