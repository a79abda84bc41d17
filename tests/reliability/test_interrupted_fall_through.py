"""A rollback whose image-only attempt falls through to a data rollback, killed at each step of it, then run again.

The case an operator meets (issue 22): snapshots taken with snapshot.yml (no rollback target pinned), the Engine
upgraded by hand to a release whose migration the fingerprint cannot see (2.3.3-broken-dataonly: same schema, yet
2.3.1 answers MIGRATION_REQUIRED), then `rollback.yml -e version=2.3.1`. The plan compares with the newest snapshot
taken on 2.3.1, tries the image alone, meets MIGRATION_REQUIRED, puts the Engine back, restores the brain and
switches again. Killed anywhere in that, the same command run again must end where one clean run ends: the Engine
healthy on 2.3.1, the brain equal to the snapshot, every bad-window row exported exactly once, one brain set aside.
"""

import os

import pytest

from ansible_run import failed_messages, failures, run_module, run_playbook
from fleet import checkpoint_phases, fleet, kill_tree, ledger, recreated, report_rows, task_results
from rollback_state import (FINISHED, ROLLBACK, exported, request_ids, run_again_and_check, set_aside_brains, spawn_killable,
                            sqlite_rows, wait_killed)
from services import wait_for

BAD = ["bad-%d" % n for n in range(6)]


class HandUpgraded:
    """One SQLite Engine with history, a snapshot as snapshot.yml takes it (nothing pinned), upgraded by hand, bad-window
    turns."""

    def __init__(self, engines, named, prefix, tmp_path, docker_client, version="2.3.3-broken-dataonly", env=None):
        self.client = docker_client
        members, self.inventory, self.work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
        [engine] = members
        # what snapshot.yml takes (its module, run directly): a snapshot, nothing pinned
        taken = run_module("brain_snapshot", {"container": engine.name, "store": str(self.work / "store"),
                                              "reason": "nightly"})
        assert not taken.get("failed"), taken.get("msg")
        self.store = self.work / "store" / engine.name
        assert not (self.store / "ROLLBACK_TARGET").exists()  # snapshot.yml pins nothing
        [self.snapshot_id] = [n for n in os.listdir(str(self.store)) if not n.startswith(".") and n != "ROLLBACK_TARGET"]
        self.engine = recreated(engines, engine, dict(env or {}), version=version)  # docker rm; docker run
        self.engine.wait_healthy()
        for rid in BAD:
            self.engine.execute(rid, request_id=rid)
        self.brain_path = self.engine.brain.sqlite_path(docker_client)
        self.snapshot_file = str(self.store / self.snapshot_id / "brain.sqlite")
        # the broken release fails about half of all turns: the bad window is what it did write
        self.bad = [r for r in request_ids(sqlite_rows(self.brain_path)) if r in BAD]
        assert self.bad, "the broken release wrote nothing in the bad window: the test proves nothing"

    def container(self):
        return self.client.containers.get(self.engine.name)

    def set_aside(self):
        return set_aside_brains(self.brain_path)

    def assert_finished(self, row):
        """The end state of one clean fall-through rollback, however many runs it took."""
        container = self.container()
        assert container.image.id == self.client.images.get("engine:2.3.1").id and container.attrs["State"]["Running"]
        self.engine.wait_healthy()
        assert self.engine.health()[1]["version"] == "2.3.1"
        live, snapshot = sqlite_rows(self.brain_path), sqlite_rows(self.snapshot_file)
        assert live == snapshot, "the live brain is not the snapshot"
        [aside] = self.set_aside()  # swapped once
        assert set(self.bad) <= set(request_ids(sqlite_rows(aside)))
        assert sorted(exported(row["export_dir"])) == sorted(self.bad), "export incomplete or doubled"
        assert row["snapshot"] == self.snapshot_id and row["data_rollback"] is True, row
        results = [e["result"] for e in ledger(self.work) if e["operation"] == "rollback"]
        assert results[-1]["result"] in FINISHED, results


def rollback(hand, kill_at=None):
    mark = str(hand.work / "killed-at")
    return spawn_killable(hand.inventory, ROLLBACK, mark, kill_at), mark


def test_an_uninterrupted_run_falls_through_with_the_newest_snapshot_taken_on_the_target(
        engines, named, prefix, tmp_path, docker_client):
    """The reference end state the interrupted runs below must reach."""
    hand = HandUpgraded(engines, named, prefix, tmp_path, docker_client)
    rc, report = run_playbook("playbooks/rollback.yml", hand.inventory, *ROLLBACK)
    assert rc == 0 and not failures(report), (report["stats"], failed_messages(report))
    plan = task_results(report, "Show the rollback plan")[0]["msg"]
    assert "data rollback: no" in plan and "new run" in plan, plan
    assert any(("schema matches snapshot %s, the newest valid snapshot taken on 2.3.1; no rollback target was pinned"
                % hand.snapshot_id) in line for line in plan), plan
    row = report_rows(hand.work, "rollback")[hand.engine.name]
    assert row["fell_through"] is True and row["result"] == "rolled_back", row
    hand.assert_finished(row)


def test_killed_while_the_old_image_refuses_the_brain(engines, named, prefix, tmp_path, docker_client):
    """Killed after the image-only switch started 2.3.1 on the unrestored brain, before it put the Engine back."""
    # 6 s of start-up before 2.3.1 answers at all: the kill lands while the switch waits for its /health
    hand = HandUpgraded(engines, named, prefix, tmp_path, docker_client, env={"ENGINE_STARTUP_SECONDS": "6"})
    target = docker_client.images.get("engine:2.3.1").id
    proc, dummy = rollback(hand)
    wait_for(lambda: hand.container().image.id == target and hand.container().attrs["State"]["Running"], 240,
             "the image-only switch to start 2.3.1", interval=0.02)
    kill_tree(proc)  # the controller and the switch it ran (a module left running would revert on its own)
    assert hand.container().image.id == target, "killed too late: the switch had already put the Engine back"
    assert "fell_through" not in checkpoint_phases(hand.work, hand.engine) and not hand.set_aside()
    row, plan = run_again_and_check(hand)
    assert row["fell_through"] in (True, "True"), row


@pytest.mark.parametrize("words", ["Record the changed decision", "Record the stage",
                                   "Switch the Engine on the restored brain"])
def test_killed_at_each_step_of_the_fall_through(engines, named, prefix, tmp_path, docker_client, words):
    hand = HandUpgraded(engines, named, prefix, tmp_path, docker_client)
    proc, mark = rollback(hand, "start:" + words)
    wait_killed(proc, mark, words)
    row, plan = run_again_and_check(hand)
    assert any("data rollback: yes" in line for line in plan) == (words != "Record the changed decision"), plan
