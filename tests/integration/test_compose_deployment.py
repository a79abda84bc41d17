"""An Engine deployed the way its own docs do it, with compose, upgraded and rolled back by the playbooks.

A real compose client (Debian's docker-compose 1.29) brings the Engine up from a compose file; the
playbooks find that file from the container's compose labels and keep its image in step with every
switch, so that `docker-compose up -d` afterwards leaves the Engine alone: same container, rolled-back
image, brain not migrated again.
"""

import os
import subprocess

import pytest

from ansible_run import failures, run_playbook, write_inventory
from conftest import ENGINE_API_KEY, ENGINE_KEY_HASH, free_port

COMPOSE = """# The support agent, as the Engine's upgrade page deploys it.
services:
  engine:
    image: {image}   # the release in production
    network_mode: host
    stop_grace_period: 30s
    environment:
      ENGINE_PORT: "{port}"
      ENGINE_BIND: 127.0.0.1
      ENGINE_STARTUP_SECONDS: "0.2"
      ENGINE_KEY_HASH: "{key_hash}"
    volumes:
      - brain:/data
volumes:
  brain:
    name: {volume}
    external: true
"""


def compose(directory, project, *args):
    proc = subprocess.run(["docker-compose", "--project-name", project, "--file", "compose.yml"] + list(args),
                          cwd=directory, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture
def deployment(tmp_path, prefix, docker_client, engines):
    project = prefix.replace("-", "")
    brain = engines.brain("sqlite")  # the volume, removed by the factory
    yield {"dir": tmp_path / "deploy", "project": project, "volume": brain.volume, "brain": brain}
    for container in docker_client.containers.list(all=True, filters={"label": "com.docker.compose.project=" + project}):
        container.remove(force=True)


@pytest.mark.parametrize("written", ["literal", "variable"])
def test_a_compose_deployment_stays_rolled_back_after_compose_up(
        deployment, docker_client, engines, tmp_path, written):
    directory, project = deployment["dir"], deployment["project"]
    directory.mkdir()
    port = free_port()
    image = "engine:2.3.1" if written == "literal" else '"engine:${ENGINE_TAG}"'
    (directory / "compose.yml").write_text(COMPOSE.format(image=image, port=port, key_hash=ENGINE_KEY_HASH,
                                                          volume=deployment["volume"]))
    if written == "variable":
        (directory / ".env").write_text("# release pin, read by compose\nENGINE_TAG=2.3.1\n")
    compose(directory, project, "up", "-d")
    [container] = docker_client.containers.list(filters={"label": "com.docker.compose.project=" + project})
    engine = engines.attach(container, port, deployment["brain"])
    engine.wait_healthy()
    kept = ["kept-%d" % n for n in range(3)]
    for rid in kept:
        assert engine.execute(rid, request_id=rid)[0] == 200

    work = tmp_path / "work"
    inventory = write_inventory(tmp_path, "engines", {container.name: {
        "engine_container": container.name, "engine_url": engine.url, "engine_api_key": ENGINE_API_KEY}},
        group_vars={"engine_snapshot_store": str(work / "store"), "engine_state_dir": str(work / "state"),
                    "engine_ledger_path": str(work / "ledger.jsonl"), "engine_report_dir": str(work / "reports"),
                    "upgrade_watch_seconds": 2, "upgrade_window_seconds": 1})
    original = (directory / "compose.yml").read_text()

    rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=2.4.0")
    assert rc == 0 and not failures(report), report["stats"]
    if written == "literal":
        assert (directory / "compose.yml").read_text() == original.replace("image: engine:2.3.1", "image: engine:2.4.0")
    else:  # the variable is changed where compose reads it; the compose file is not touched
        assert (directory / "compose.yml").read_text() == original
        assert (directory / ".env").read_text() == "# release pin, read by compose\nENGINE_TAG=2.4.0\n"
    for rid in ("bad-0", "bad-1"):
        assert engine.execute(rid, request_id=rid)[0] == 200

    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1", "-e", "reason=compose")
    assert rc == 0 and not failures(report), report["stats"]
    assert (directory / "compose.yml").read_text() == original
    if written == "variable":
        assert (directory / ".env").read_text() == "# release pin, read by compose\nENGINE_TAG=2.3.1\n"
    # the bad release's container, kept for the diagnostics, is released once they hold its logs: compose would take
    # it for a second replica of the service and remove one of the two at the next `up`
    leftovers = docker_client.containers.list(all=True, filters={"label": "com.docker.compose.project=" + project})
    assert [c.name for c in leftovers] == [container.name]
    rolled_back = docker_client.containers.get(container.name)
    assert rolled_back.image.id == docker_client.images.get("engine:2.3.1").id
    engine.wait_healthy()
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(kept)

    # the operator's next `docker-compose up -d`: nothing to do
    said = compose(directory, project, "up", "-d")
    assert "Recreating" not in said, said
    again = docker_client.containers.get(container.name)
    assert again.id == rolled_back.id and again.attrs["State"]["StartedAt"] == rolled_back.attrs["State"]["StartedAt"]
    assert again.image.id == docker_client.images.get("engine:2.3.1").id
    engine.wait_healthy()
    assert engine.health()[1]["version"] == "2.3.1"
    assert "importance" not in deployment["brain"].columns(docker_client, "episodes")  # not migrated again
    assert os.path.exists(str(directory / "compose.yml"))
