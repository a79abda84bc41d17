"""Two rollbacks at once: of one Engine (the second is refused and told who holds the lock), and of different
Engines on one host (they proceed side by side).

The overlaps are made by the evals, which wait on files the test controls: no fixed sleep decides what overlaps.
"""

import json

from ansible_run import run_playbook
from fleet import checkpoint_entries, fleet, ledger, spawn_playbook, task_results, upgraded_by_hand
from services import wait_for


def eval_waiting_for(arrived, *needed, count=None):
    """An eval command that says it has arrived (touches `arrived`), then waits until the files `needed` exist (or
    until `count` files are in the folder of `arrived`); it fails after two minutes so a broken test ends."""
    if count is None:
        ready = " && ".join("[ -e %s ]" % path for path in needed)
    else:
        ready = '[ "$(ls %s | wc -l)" -ge %d ]' % (arrived.rsplit("/", 1)[0], count)
    return ("sh -c 'touch %s; for i in $(seq 2400); do if %s; then exit 0; fi; sleep 0.05; done; exit 1'"
            % (arrived, ready))


def test_a_second_concurrent_rollback_is_refused_and_told_who_holds_the_lock(
        engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
    engine, dummy = upgraded_by_hand(engines, members[0], work)
    arrived, go = tmp_path / "first-in-evals", tmp_path / "go"
    first = spawn_playbook(inventory, "-e", "version=2.3.1", "-e", "reason=test",
                           "-e", json.dumps({"rollback_eval_command": eval_waiting_for(str(arrived), str(go))}))
    try:
        wait_for(arrived.exists, 180, "the first rollback to reach its evals")
        container = docker_client.containers.get(engine.name)
        rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1")
        assert rc != 0
        [refusal] = [r for r in task_results(report, "Lock the Engine against a second concurrent run") if r.get("failed")]
        assert "is locked by rollback to 2.3.1 by" in refusal["msg"] and "nothing was changed" in refusal["msg"]
        assert refusal["holder"]["pid"] == first.pid
        assert docker_client.containers.get(engine.name).attrs["State"]["StartedAt"] == container.attrs["State"]["StartedAt"]
    finally:
        go.touch()
        out = first.communicate(timeout=300)[0].decode()
    assert first.returncode == 0, out[-3000:]
    assert "rolled_back" in out


def test_rollbacks_of_different_engines_on_one_host_run_side_by_side(engines, named, prefix, tmp_path, docker_client):
    """Two operators, two Engines, one host and one state directory: each run takes its own Engine's lock only."""
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite", "sqlite"))
    members = [upgraded_by_hand(engines, engine, work)[0] for engine in members]
    for engine in members:
        engine.execute("bad", request_id="bad-" + engine.name[-6:])
    (tmp_path / "in-evals").mkdir()
    # each run's evals wait until the other run is in its evals too: they can only pass side by side
    runs = [spawn_playbook(inventory, "-e", "version=2.3.1", "-e", "reason=test", "-e", "target=%s" % engine.name,
                           "-e", json.dumps({"rollback_eval_command": eval_waiting_for(
                               str(tmp_path / "in-evals" / engine.name), count=2)}))
            for engine in members]
    outputs = [run.communicate(timeout=600)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [out[-2000:] for out in outputs]
    entries = [e for e in ledger(work) if e["operation"] == "rollback"]
    assert sorted(e["result"]["host"] for e in entries) == sorted(e.name for e in members)
    assert all(e["result"]["result"] == "rolled_back" for e in entries)
    # side by side: from its plan to its all-done, each run's span overlaps the other's
    spans = []
    for engine in members:
        at = dict((p["phase"], p["at"]) for p in checkpoint_entries(work, engine))
        spans.append((at["planned"], at["done"]))
    assert max(s for s, f in spans) < min(f for s, f in spans), spans
    for engine in members:
        assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
        engine.wait_healthy()
