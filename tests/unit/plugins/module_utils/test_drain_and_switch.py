import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.drain import drain, in_flight
from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.image_switch import (
    ASIDE_SUFFIX, NEXT_SUFFIX, SwitchError, image_record, previous_record, read_state, record_switch,
    recover_interrupted_switch, resolve_target, state_path, switch, write_state)

from fake_docker import FakeDocker


def line(rid, message, **extra):
    return {"request_id": rid, "message": message, "extra": extra, "level": "INFO"}


LOG = [line(None, "engine ready"), line("a", "turn started"),
       line("h", "request completed", path="/health", duration_ms=1),
       line("b", "turn started"), line("a", "request completed", duration_ms=900.0), line("c", "turn started")]


def test_in_flight_are_requests_without_a_completion_line():
    assert in_flight(LOG) == ["b", "c"]


@pytest.fixture
def fake():
    docker = FakeDocker()
    docker.add_image("engine:2.4.0", "sha256:new", {"Env": ["ENGINE_VERSION=2.4.0"]})
    docker.add_image("engine:2.3.1", "sha256:old", {"Env": ["ENGINE_VERSION=2.3.1"]})
    return docker


def test_clean_drain_counts_no_cut_turns(fake):
    engine = fake.add_container("engine", "engine:2.4.0")
    fake.logs[engine["Id"]] = LOG

    def finish_turns(ref, timeout):
        fake.logs[engine["Id"]] = LOG + [line("b", "request completed", duration_ms=1), line("c", "x", duration_ms=2)]
        return 0
    fake.wait = finish_turns
    result = drain(fake, engine, "SIGTERM", 30)
    assert result["clean"] and not result["killed"] and result["exit_code"] == 0
    assert (result["in_flight_at_start"], result["cut_turns"]) == (2, 0)
    assert ("kill", engine["Id"], "SIGTERM") in fake.calls and ("kill", engine["Id"], "SIGKILL") not in fake.calls


def test_drain_past_the_window_kills_and_counts_cut_turns(fake):
    engine = fake.add_container("engine", "engine:2.4.0")
    fake.logs[engine["Id"]] = LOG
    fake.exit_after_signal[engine["Id"]] = None  # ignores SIGTERM within the window
    result = drain(fake, engine, "SIGTERM", 5)
    assert result["killed"] and not result["clean"] and result["exit_code"] == 137
    assert result["cut_turns"] == 2 and result["cut_request_ids"] == ["b", "c"]
    assert [c[2] for c in fake.calls if c[0] == "kill"] == ["SIGTERM", "SIGKILL"]
    assert ("wait", engine["Id"], 5) in fake.calls


def healthy():
    return {"healthy": True, "classification": "ok", "reason": "ok"}


def unhealthy():
    return {"healthy": False, "classification": "subsystem_failure", "reason": "failing subsystems: asset_directory"}


def test_switch_creates_first_then_drains_then_swaps(fake):
    old = fake.add_container("engine", "engine:2.4.0")
    current = image_record(fake.images["engine:2.4.0"], "engine:2.4.0")
    target = image_record(fake.images["engine:2.3.1"], "engine:2.3.1")
    result = switch(fake, old, current, fake.images["engine:2.4.0"], target, healthy, clock=lambda: "T")
    order = [c[0] for c in fake.calls if c[0] != "wait"]
    assert order == ["create", "kill", "rename", "rename", "start", "remove"]
    assert fake.calls[0] == ("create", "engine" + NEXT_SUFFIX, "engine:2.3.1")
    new = fake.by_ref("engine")
    assert new["Id"] == result["container_id"] and new["State"]["Running"] and new["Image"] == "sha256:old"
    assert new["Config"]["Labels"]["engine_ops.lifecycle.previous_image_id"] == "sha256:new"
    assert old["Id"] not in fake.containers and not result["reverted"]
    assert [a["action"] for a in result["actions"]][0] == "create new container"


def test_failed_health_restores_the_old_container(fake):
    old = fake.add_container("engine", "engine:2.4.0")
    current = image_record(fake.images["engine:2.4.0"], "engine:2.4.0")
    target = image_record(fake.images["engine:2.3.1"], "engine:2.3.1")
    answers = iter([unhealthy(), healthy()])
    with pytest.raises(SwitchError) as info:
        switch(fake, old, current, fake.images["engine:2.4.0"], target, lambda: next(answers))
    assert "reverted to the old container" in str(info.value) and "healthy again" in str(info.value)
    assert info.value.changed and info.value.result["reverted"]
    restored = fake.by_ref("engine")
    assert restored["Id"] == old["Id"] and restored["State"]["Running"]
    assert len(fake.containers) == 1


def test_a_running_leftover_refuses_before_anything_changes(fake):
    old = fake.add_container("engine", "engine:2.4.0")
    fake.add_container("engine" + ASIDE_SUFFIX, "engine:2.3.1", running=True)
    current = image_record(fake.images["engine:2.4.0"], "engine:2.4.0")
    target = image_record(fake.images["engine:2.3.1"], "engine:2.3.1")
    with pytest.raises(SwitchError, match="did not finish") as info:
        switch(fake, old, current, fake.images["engine:2.4.0"], target, healthy)
    assert not info.value.changed and fake.calls == []


def test_moved_tag_makes_the_switch_use_the_exact_build(fake):
    old = fake.add_container("engine", "engine:2.4.0")
    recorded = image_record(fake.images["engine:2.3.1"], "engine:2.3.1")
    fake.add_image("engine:2.3.1", "sha256:moved")  # someone re-tagged 2.3.1
    fake.images["sha256:old"] = {"Id": "sha256:old", "RepoDigests": [], "Config": {}}
    switch(fake, old, image_record(fake.images["engine:2.4.0"], "engine:2.4.0"), fake.images["engine:2.4.0"],
           recorded, healthy)
    assert fake.calls[0] == ("create", "engine" + NEXT_SUFFIX, "engine@sha256:" + "d" * 64)  # its repository digest
    fake.calls[:] = []
    del fake.containers[[cid for cid, doc in fake.containers.items() if doc["Name"] == "/engine"][0]]
    old = fake.add_container("engine", "engine:2.4.0")
    recorded["digests"] = []  # a build never pushed: only its image ID names it
    switch(fake, old, image_record(fake.images["engine:2.4.0"], "engine:2.4.0"), fake.images["engine:2.4.0"],
           recorded, healthy)
    assert fake.calls[0] == ("create", "engine" + NEXT_SUFFIX, "sha256:old")


@pytest.mark.parametrize("kwargs, message", [
    ({"version": "latest"}, "'latest' is never"),
    ({"version": "9.9.9"}, "engine:9.9.9 is not present on this host and could not be pulled"),
    ({"image": "engine"}, "no tag"),
    ({"previous": True}, "no previous image is recorded"),
])
def test_resolve_refuses_without_touching_the_engine(fake, kwargs, message):
    fake.fail_on.add("pull")
    old = fake.add_container("engine", "engine:2.4.0")
    with pytest.raises(SwitchError, match=message):
        resolve_target(fake, old, fake.images["engine:2.4.0"], **kwargs)
    assert all(c[0] == "pull" for c in fake.calls)


def test_resolve_version_uses_the_running_repository(fake):
    old = fake.add_container("engine", "engine:2.4.0")
    target = resolve_target(fake, old, fake.images["engine:2.4.0"], version="v2.3.1")
    assert (target["reference"], target["id"]) == ("engine:2.3.1", "sha256:old")


def test_previous_comes_from_the_label_then_the_state_file(fake, tmp_path):
    old = fake.add_container("engine", "engine:2.4.0", config={"Labels": {
        "engine_ops.lifecycle.previous_image": "engine:2.3.1", "engine_ops.lifecycle.previous_image_id": "sha256:old",
        "engine_ops.lifecycle.previous_image_digests": "[]"}})
    assert resolve_target(fake, old, {}, previous=True)["id"] == "sha256:old"
    path = state_path(str(tmp_path / "state"), "/engine")
    current = image_record(fake.images["engine:2.3.1"], "engine:2.3.1")
    write_state(path, record_switch(read_state(path), current, {"id": "sha256:new"}, "c1", clock=lambda: "T"))
    unlabelled = fake.add_container("engine2", "engine:2.4.0")
    assert previous_record(unlabelled, read_state(path))["id"] == "sha256:old"
    assert oct((tmp_path / "state" / "engine.json").stat().st_mode & 0o777) == "0o600"


def test_corrupt_state_file_is_refused(tmp_path):
    path = tmp_path / "engine.json"
    path.write_text("{not json")
    with pytest.raises(SwitchError, match="not valid JSON"):
        read_state(str(path))


def test_a_switch_killed_between_its_renames_is_put_back_and_can_run_again(fake):
    old = fake.add_container("engine", "engine:2.4.0")
    current = image_record(fake.images["engine:2.4.0"], "engine:2.4.0")
    target = image_record(fake.images["engine:2.3.1"], "engine:2.3.1")
    renames = []
    real_rename = fake.rename

    def killed_on_the_second(ref, name):
        renames.append(name)
        if len(renames) == 2:
            raise KeyboardInterrupt("the controller died here")
        real_rename(ref, name)
    fake.rename = killed_on_the_second
    with pytest.raises(KeyboardInterrupt):
        switch(fake, old, current, fake.images["engine:2.4.0"], target, healthy, clock=lambda: "T")
    fake.rename = real_rename
    assert fake.by_ref("engine") is None and fake.by_ref("engine" + ASIDE_SUFFIX) and fake.by_ref("engine" + NEXT_SUFFIX)

    seen, note = recover_interrupted_switch(fake, "engine", check_mode=True)
    assert seen["Id"] == old["Id"] and "would be renamed back" in note and fake.by_ref("engine") is None
    # read-only, it is seen under the Engine's own name: its snapshots and history are looked up by that name
    assert seen["Name"] == "/engine" and fake.by_ref("engine" + ASIDE_SUFFIX)["Name"].endswith(ASIDE_SUFFIX)
    back, note = recover_interrupted_switch(fake, "engine")
    assert back["Id"] == old["Id"] and fake.by_ref("engine")["Id"] == old["Id"] and "renamed back to engine" in note
    assert recover_interrupted_switch(fake, "engine") == (None, None)
    result = switch(fake, back, current, fake.images["engine:2.4.0"], target, healthy, clock=lambda: "T")
    assert fake.by_ref("engine")["Id"] == result["container_id"] and fake.by_ref("engine")["Image"] == "sha256:old"
    assert fake.by_ref("engine" + NEXT_SUFFIX) is None  # the leftover of the killed run was removed


@pytest.mark.parametrize("read_only, check_mode, renamed", [(True, False, False), (False, True, False),
                                                            (False, False, True)])
def test_a_read_only_module_finds_an_interrupted_switch_without_renaming(fake, read_only, check_mode, renamed):
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._module import EngineOpsModule

    old = fake.add_container("engine" + ASIDE_SUFFIX, "engine:2.4.0")  # a switch died between its renames

    class Module:
        params = {"container": "engine", "compose_project": None, "compose_service": "engine"}
        find_engine = EngineOpsModule.find_engine

        def __init__(self):
            self.docker, self.read_only, self.check_mode, self.warnings = fake, read_only, check_mode, []

        def warn(self, text):
            self.warnings.append(text)

    module = Module()
    found = module.find_engine()
    assert found["Id"] == old["Id"] and len(module.warnings) == 1
    assert (fake.by_ref("engine") is not None) == renamed
    assert ("rename" in [c[0] for c in fake.calls]) == renamed


def test_a_switch_killed_before_it_wrote_its_record_is_recorded_from_the_containers_labels():
    from ansible_collections.engine_ops.lifecycle.plugins.module_utils._docker.image_switch import (
        LABEL, record_switch, unrecorded_switch)
    target = {"reference": "engine:2.3.1", "id": "sha256:old", "digests": []}
    labels = {LABEL + "previous_image": "engine:2.4.0", LABEL + "previous_image_id": "sha256:new",
              LABEL + "previous_image_digests": '["reg/engine@sha256:abc"]', LABEL + "replaced_at": "2026-12-07T18:00:00Z"}
    container = {"Id": "c2", "Image": "sha256:old", "Config": {"Labels": labels}}
    previous, at = unrecorded_switch({"history": []}, container, target)
    assert previous == {"reference": "engine:2.4.0", "id": "sha256:new", "digests": ["reg/engine@sha256:abc"]}
    assert at == "2026-12-07T18:00:00Z"
    recorded = record_switch({"history": []}, previous, target, "c2", clock=lambda: at)
    assert unrecorded_switch(recorded, container, target) is None  # recorded once, never twice
    assert unrecorded_switch({}, dict(container, Config={"Labels": {}}), target) is None  # started by hand
    assert unrecorded_switch({}, dict(container, Image="sha256:other"), target) is None  # not on the target
