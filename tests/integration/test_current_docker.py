"""The image path against a current Docker daemon (API 1.52, nothing below 1.44), through a faithful stand-in.

Docker 29 answers any request below API 1.44 with HTTP 400; a collection that pinned 1.41 failed every
module there. current_docker.CurrentDocker behaves like Docker 29 in front of this machine's 20.10
daemon; every module here talks to it through `docker_host`, and the proxy's request log proves it.
"""

import re
import sys
import uuid

import pytest

from ansible_run import COLLECTIONS, run_module
from conftest import wait_for
from current_docker import CurrentDocker

if COLLECTIONS and COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)  # the collection's own client, for the stand-in's self-test


@pytest.fixture
def docker29(tmp_path):
    with CurrentDocker(str(tmp_path / "docker29.sock")) as proxy:
        yield proxy


def start_named(engines, named, version, prefix):
    engine = engines.start(version, engines.brain("sqlite"))
    engine.name = "%s-%s" % (prefix, uuid.uuid4().hex[:6])
    engine.container.rename(engine.name)
    named(engine.name)
    engine.wait_healthy()
    return engine


def versions_used(proxy):
    """The API versions in the request paths (the unversioned /version of the negotiation aside)."""
    return sorted(set(r.split(" ")[1].split("/")[1] for r in proxy.requests if re.match(r"^\S+ /v[0-9]", r)))


def test_the_stand_in_refuses_what_docker_29_refuses(docker29):
    """The check below can fail: an old client gets Docker's own error, and the proxy says 1.44..1.52."""
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.api import ApiError, DockerApi

    old = DockerApi(docker29.url, 5)  # speaks 1.41 until negotiated, as the collection did before
    with pytest.raises(ApiError) as refused:
        old.containers()
    assert refused.value.status == 400
    assert "client version 1.41 is too old. Minimum supported API version is 1.44" in str(refused.value)
    api = DockerApi(docker29.url, 5)
    assert api.negotiate() == "1.52" and api.containers() is not None


def test_drain_switch_and_revert_all_go_through_a_current_daemon(engines, named, prefix, docker29, tmp_path):
    engine = start_named(engines, named, "2.3.1", prefix)
    engine.execute("remember this", request_id="kept")
    via = {"container": engine.name, "docker_host": docker29.url}

    # drain with a turn in flight, then serving again (logs read through the proxy: the framing of a non-TTY)
    engine.execute_in_background(message="fifteen second task", duration=15.0, request_id="in-flight")
    engine.wait_log("turn started")
    drained = run_module("engine_drain", dict(via, state="drained", drain_timeout=30))
    assert drained["changed"] and drained["drain"]["clean"], drained.get("msg")
    assert drained["drain"]["in_flight_at_start"] == 1 and len(engine.rows("episodes", "in-flight")) == 1
    serving = run_module("engine_drain", dict(via, state="serving", health_url=engine.url + "/health"))
    assert serving["changed"] and serving["health"]["healthy"], serving.get("msg")

    # an upgrade switch, then a build that crashes at start: reverted to the old container
    state = str(tmp_path / "state")
    switched = run_module("engine_image", dict(via, version="2.4.0", health_url=engine.url + "/health",
                                               state_dir=state))
    assert switched["changed"] and not switched.get("failed"), switched.get("msg")
    wait_for(lambda: engine.health()[1].get("version") == "2.4.0", 60, "2.4.0 serving")
    crashed = run_module("engine_image", dict(via, image="engine:2.4.0-broken-crash", health_url=engine.url + "/health",
                                              health_timeout=8, state_dir=state))
    assert crashed.get("failed") and crashed["reverted"], crashed
    assert "reverted to the old container" in crashed["msg"]
    engine.wait_healthy()
    assert engine.health()[1]["version"] == "2.4.0" and len(engine.rows("episodes", "kept")) == 1

    # every call went through the stand-in, in the newest version both speak
    assert versions_used(docker29) == ["v1.52"], versions_used(docker29)
    assert any("/containers/create" in r for r in docker29.requests)
    assert any("/logs" in r for r in docker29.requests) and any("/wait" in r for r in docker29.requests)


def test_a_pinned_api_version_the_daemon_refuses_is_named_before_anything_changes(
        engines, named, prefix, docker29, monkeypatch):
    engine = start_named(engines, named, "2.3.1", prefix)
    engine.container.reload()
    before = (engine.container.id, engine.container.attrs["State"]["StartedAt"])
    monkeypatch.setenv("DOCKER_API_VERSION", "1.41")
    result = run_module("engine_drain", {"container": engine.name, "docker_host": docker29.url, "state": "drained"})
    assert result.get("failed") and not result["changed"], result
    assert "DOCKER_API_VERSION=1.41, but the Docker daemon at %s (29.0.0) speaks API 1.44 to 1.52" % docker29.url \
        in result["msg"], result["msg"]
    engine.container.reload()
    assert (engine.container.id, engine.container.attrs["State"]["StartedAt"]) == before
    assert engine.health()[0] == 200
    assert not [r for r in docker29.requests if r.startswith("POST")]  # nothing was asked of the daemon
