"""The controller killed (SIGKILL, no clean-up of any kind) at each phase boundary of a data rollback, then run again.

Each case: one SQLite Engine upgraded 2.3.1 -> 2.4.0 (the pinned snapshot upgrade.yml takes, then 2.4.0), turns written
in the bad window, `rollback.yml -e version=2.3.1` started and killed at one point, then the same command
run again. The second run must converge on the end state of one clean rollback: the brain equals the
snapshot, the export holds every bad-window row exactly once, the replaced brain is kept, the image was
switched once and the brain swapped once.
"""

import os

import pytest
import requests

from fleet import checkpoint_phases, kill_tree
from rollback_state import FINISHED, ROLLBACK, Upgraded, exported, run_again_and_check, spawn_killable, wait_killed
from services import wait_for


def killed_at(upgraded, tmp_path, kill_at=None):
    """Start the rollback with the kill_at callback armed; return the process and the mark file."""
    mark = str(tmp_path / "killed-at")
    return spawn_killable(upgraded.inventory, ROLLBACK, mark, kill_at), mark


def kill(proc):
    kill_tree(proc)  # the controller and every worker and module it started (workers run in sessions of their own)


def test_killed_right_after_taking_the_lock(engines, named, prefix, tmp_path, docker_client):
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client)
    before = upgraded.fingerprint()
    proc, mark = killed_at(upgraded, tmp_path, "ok:Lock the Engine")
    wait_killed(proc, mark, "Lock the Engine")
    assert upgraded.fingerprint() == before  # killed before the plan: nothing was touched
    assert os.path.exists(str(upgraded.work / "state" / ("%s.lock" % upgraded.engine.name)))  # the dead run's lock
    run_again_and_check(upgraded, resumed=False)


def test_killed_while_staging_the_snapshot(engines, named, prefix, tmp_path, docker_client):
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client, ballast_mb=150)
    before = upgraded.fingerprint()
    staged = os.path.join(os.path.dirname(upgraded.brain_path), ".brain.sqlite.restore-%s" % upgraded.snapshot_id)
    proc, dummy = killed_at(upgraded, tmp_path)
    wait_for(lambda: os.path.exists(staged + ".partial"), 180, "the stage to start copying", interval=0.005)
    kill(proc)
    assert "staged" not in checkpoint_phases(upgraded.work, upgraded.engine)
    assert upgraded.fingerprint() == before  # the Engine kept serving on its own brain
    run_again_and_check(upgraded)
    assert not os.path.exists(staged + ".partial") and not os.path.exists(staged)


def test_killed_while_the_engine_drains(engines, named, prefix, tmp_path, docker_client):
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client)
    engine = upgraded.engine
    # a long turn the drain waits for: it completes after the kill, and the export has it
    thread, result = engine.execute_in_background(message="long", duration=25, request_id="in-flight")
    engine.wait_log("turn started", request_id="in-flight")  # in flight before the run begins
    proc, dummy = killed_at(upgraded, tmp_path)
    wait_for(lambda: engine.health()[1].get("status") == "draining", 180, "the swap to drain the Engine", interval=0.05)
    kill(proc)
    assert "staged" in checkpoint_phases(upgraded.work, engine)
    assert upgraded.set_aside() == []  # not swapped yet
    thread.join(timeout=60)
    assert result["response"][0] == 200  # the drain let the turn finish although the controller died
    row, dummy = run_again_and_check(upgraded)
    assert "in-flight" in exported(row["export_dir"])


def test_killed_after_the_swap_before_the_image_switch(engines, named, prefix, tmp_path, docker_client):
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client)
    proc, mark = killed_at(upgraded, tmp_path, "start:Switch the Engine to 2.3.1")
    wait_killed(proc, mark, "Switch the Engine to")
    assert len(upgraded.set_aside()) == 1  # swapped, and the Engine (stopped) still on 2.4.0
    assert upgraded.container().image.id == docker_client.images.get("engine:2.4.0").id
    run_again_and_check(upgraded)


def test_killed_after_the_image_switch_before_health(engines, named, prefix, tmp_path, docker_client):
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client, env={"ENGINE_STARTUP_SECONDS": "6"})
    target = docker_client.images.get("engine:2.3.1").id
    proc, dummy = killed_at(upgraded, tmp_path)

    def switched_not_healthy():
        container = upgraded.container()
        return container.image.id == target and container.attrs["State"]["Running"]
    wait_for(switched_not_healthy, 240, "the new container to start", interval=0.05)
    try:
        status = upgraded.engine.health()[1].get("status")
    except requests.RequestException:
        status = "not listening yet"
    kill(proc)
    assert status != "ok", "killed too late: the Engine was already healthy"
    assert "switched" not in checkpoint_phases(upgraded.work, upgraded.engine)
    run_again_and_check(upgraded)


def test_killed_between_the_image_switchs_renames(engines, named, prefix, tmp_path, docker_client):
    """The two renames of a switch are milliseconds apart: killed right after the swap, the state a kill between
    them leaves is made by hand (the old container renamed aside, stopped, no container under the Engine's name)."""
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client)
    proc, mark = killed_at(upgraded, tmp_path, "start:Switch the Engine to 2.3.1")
    wait_killed(proc, mark, "Switch the Engine to")
    upgraded.container().rename(upgraded.engine.name + "-engine_ops-previous")
    row, dummy = run_again_and_check(upgraded)
    assert row["result"] in FINISHED


@pytest.mark.parametrize("words", ["Record the stage", "Record that the Engine serves healthy"])
def test_killed_at_the_checkpoints(engines, named, prefix, tmp_path, docker_client, words):
    """The bookkeeping steps themselves: killed right before the checkpoint that would record a phase."""
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client)
    proc, mark = killed_at(upgraded, tmp_path, "start:" + words)
    wait_killed(proc, mark, words)
    run_again_and_check(upgraded)
