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

import psycopg
import pytest
from psycopg import sql

from ansible_run import failed_messages, failures, run_playbook
from fleet import fleet, ledger, report_rows, task_results
from rollback_state import Upgraded, exported, request_ids, spawn_killable, sqlite_rows, wait_killed

ROLLBACK = ("-e", "version=2.3.1", "-e", "reason=reliability")
UPGRADE = ("-e", "version=2.4.0", "-e", "reason=reliability")
FINISHED = ("rolled_back", "resumed_and_finished")


def set_aside_postgres(engine, pg_params):
    """The replaced brains a PostgreSQL swap kept: schemas beside `public` or databases beside the brain's."""
    with psycopg.connect(engine.brain.dsn(), autocommit=True) as conn:
        schemas = [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                              ("engine\\_ops\\_pre\\_restore\\_%",))]
    params = dict(pg_params, dbname="postgres")
    with psycopg.connect(autocommit=True, **params) as conn:
        databases = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                                (engine.brain.database[:34] + "\\_\\_pre\\_restore\\_%",))]
    return [("schema", s) for s in schemas] + [("database", d) for d in databases]


def episodes_of_aside(engine, pg_params, aside):
    kind, name = aside
    if kind == "schema":
        with psycopg.connect(engine.brain.dsn(), autocommit=True) as conn:
            return sorted(r[0] for r in conn.execute(sql.SQL("SELECT request_id FROM {}.episodes").format(
                sql.Identifier(name))))
    with psycopg.connect(autocommit=True, **dict(pg_params, dbname=name)) as conn:
        return sorted(r[0] for r in conn.execute("SELECT request_id FROM episodes"))


@pytest.mark.parametrize("kill_at, resumed", [
    ("ok:Lock the Engine", False),
    ("start:Record the stage", True),
    ("start:Switch the Engine to 2.3.1", True),
    ("start:Record that the Engine serves healthy", True),
])
def test_a_postgresql_rollback_killed_then_run_again(engines, named, prefix, tmp_path, docker_client, pg_params,
                                                     kill_at, resumed):
    upgraded = Upgraded(engines, named, prefix, tmp_path, docker_client, backend="postgres")
    engine = upgraded.engine
    mark = str(tmp_path / "killed-at")
    proc = spawn_killable(upgraded.inventory, ROLLBACK, mark, kill_at)
    wait_killed(proc, mark, kill_at.split(":", 1)[1])

    rc, report = run_playbook("playbooks/rollback.yml", upgraded.inventory, *ROLLBACK)
    assert rc == 0 and not failures(report), (report["stats"], failed_messages(report), report["_stderr"][-2000:])
    plan = task_results(report, "Show the rollback plan")[0]["msg"]
    said = [line for line in plan if line == "new run" or line.startswith("resuming an interrupted run")]
    assert len(said) == 1 and said[0].startswith("resuming") == resumed, plan
    row = report_rows(upgraded.work, "rollback")[engine.name]
    assert row["result"] in FINISHED, row

    container = upgraded.container()
    assert container.image.id == docker_client.images.get("engine:2.3.1").id and container.attrs["State"]["Running"]
    engine.wait_healthy()
    assert engine.health()[1]["version"] == "2.3.1"
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(engine.kept), "the live brain is not the snapshot"
    [aside] = set_aside_postgres(engine, pg_params)  # swapped once, and the replaced brain is kept
    assert set(engine.kept + engine.bad) <= set(episodes_of_aside(engine, pg_params, aside))
    assert sorted(exported(row["export_dir"])) == sorted(engine.bad), "export incomplete or doubled"
    assert len(upgraded.switches_to("engine:2.3.1")) == 1, "the image was switched more than once"
    results = [e["result"]["result"] for e in ledger(upgraded.work) if e["operation"] == "rollback"]
    assert results[-1] in FINISHED, results


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
    with open(str(work / "state" / ("%s.json" % engine.name))) as handle:
        switches = [h for h in json.load(handle)["history"]
                    if h["replaced_by"]["reference"] == "engine:2.4.0"]
    assert len(switches) == 1, "the image was switched %d times" % len(switches)
    with open(str(work / "state" / ("%s.upgrade.json" % engine.name))) as handle:
        checkpoint = json.load(handle)
    assert checkpoint["status"] == "done", checkpoint
    lock = str(work / "state" / ("%s.lock" % engine.name))
    assert not open(lock).read().strip(), "the lock was kept"
    upgrades = [e["result"] for e in ledger(work) if e["operation"] == "upgrade"]
    assert upgrades[-1]["result"] in ("upgraded", "already_current") and upgrades[-1]["snapshot"] == target, upgrades
