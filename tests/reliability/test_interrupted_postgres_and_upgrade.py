"""The interruption matrix beyond a SQLite rollback: a PostgreSQL rollback and an upgrade, the controller killed
(SIGKILL, the whole process tree) at each phase boundary, then the same command run again.

The second run must end where one uninterrupted run ends. For the PostgreSQL rollback: the Engine healthy on 2.3.1,
the brain holding exactly the snapshot's rows, the bad-window rows exported exactly once, one replaced brain kept
(a schema or a database beside the live one), the image switched once. For the upgrade: the Engine healthy on
2.4.0, its pre-upgrade brain in the snapshot that is the rollback target, the image switched once, the checkpoint
closed and the lock released.
"""

import json
import os

import pytest

from ansible_run import failed_messages, failures, run_playbook
from fleet import fleet, ledger
from rollback_state import (ROLLBACK, Upgraded, exported, request_ids, run_again_and_check, spawn_killable,
                            sqlite_rows, switches_to, wait_killed)

UPGRADE = ("-e", "version=2.4.0", "-e", "reason=reliability")


@pytest.mark.parametrize("kill_at, resumed", [
    ("ok:Lock the Engine", False),
    ("start:Record the stage", True),
    ("start:Switch the Engine to 2.3.1", True),
    ("start:Record that the Engine serves healthy", True),
])
def test_a_postgresql_rollback_killed_then_run_again(engines, named, prefix, tmp_path, docker_client, kill_at, resumed):
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client, backend="postgres")
    mark = str(tmp_path / "killed-at")
    proc = spawn_killable(upgraded.inventory, ROLLBACK, mark, kill_at)
    wait_killed(proc, mark, kill_at.split(":", 1)[1])
    row, dummy = run_again_and_check(upgraded, resumed)  # the same end state checks as on SQLite, read from PostgreSQL
    assert sorted(exported(row["export_dir"])) == sorted(upgraded.engine.bad), "export incomplete or doubled"


@pytest.mark.parametrize("kill_at", [
    "ok:Lock the Engine",
    "start:Record the snapshot",
    "start:Switch the Engine to",
    "start:Record that the Engine serves healthy",
    "start:Close the checkpoint",
])
def test_an_upgrade_killed_then_run_again(engines, named, prefix, tmp_path, docker_client, kill_at):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
    [engine] = members
    before = request_ids(sqlite_rows(engine.brain.sqlite_path(docker_client)))
    mark = str(tmp_path / "killed-at")
    proc = spawn_killable(inventory, UPGRADE, mark, kill_at, playbook="playbooks/upgrade.yml")
    wait_killed(proc, mark, kill_at.split(":", 1)[1])

    rc, report = run_playbook("playbooks/upgrade.yml", inventory, *UPGRADE)
    assert rc == 0 and not failures(report), (report["stats"], failed_messages(report), report["_stderr"][-2000:])
    container = docker_client.containers.get(engine.name)
    assert container.image.id == docker_client.images.get("engine:2.4.0").id and container.attrs["State"]["Running"]
    engine.wait_healthy()
    assert engine.health()[1]["version"] == "2.4.0"
    store = work / "store" / engine.name
    target = (store / "ROLLBACK_TARGET").read_text().strip()
    snapshots = sorted(n for n in os.listdir(str(store)) if not n.startswith(".") and n != "ROLLBACK_TARGET")
    assert snapshots == [target], "one pre-upgrade snapshot, and it is the rollback target: %s" % snapshots
    assert request_ids(sqlite_rows(str(store / target / "brain.sqlite"))) == before, "the snapshot is not the brain"
    switches = switches_to(work, engine.name, "engine:2.4.0")
    assert len(switches) == 1, "the image was switched %d times" % len(switches)
    with open(str(work / "state" / ("%s.upgrade.json" % engine.name))) as handle:
        checkpoint = json.load(handle)
    assert checkpoint["status"] == "done", checkpoint
    lock = str(work / "state" / ("%s.lock" % engine.name))
    assert not open(lock).read().strip(), "the lock was kept"
    upgrades = [e["result"] for e in ledger(work) if e["operation"] == "upgrade"]
    assert upgrades[-1]["result"] in ("upgraded", "already_current") and upgrades[-1]["snapshot"] == target, upgrades
