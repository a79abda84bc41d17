"""The issue-5 story on a real fleet: upgrade.yml, bad writes, rollback.yml, with locks, checkpoints and ledger.

Three reference Engines on 2.3.1 (two SQLite brains, one PostgreSQL), driven by the real playbooks.
"""

import json
import os
import re
import threading

from ansible_run import changed_tasks, failures, run_playbook
from fleet import episodes, fleet, ledger, report_rows, task_results, upgraded_by_hand


def test_upgrade_bad_window_and_rollback_of_a_mixed_fleet(engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = fleet(engines, named, prefix, tmp_path)
    before = dict((e.name, docker_client.containers.get(e.name).id) for e in members)

    rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=v2.4.0", check=True)
    assert rc == 0 and not failures(report)
    assert all(docker_client.containers.get(e.name).id == before[e.name] for e in members)
    assert not os.path.exists(str(work / "store"))  # --check took no snapshot
    plans = task_results(report, "Show the upgrade plan")
    assert len(plans) == 3 and all("-> engine:2.4.0" in r["msg"][1] for r in plans)

    rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=v2.4.0")
    assert rc == 0 and not failures(report), report["stats"]
    assert "engine_ops upgrade summary" in report["_trailer"]
    upgraded = report_rows(work, "upgrade")
    for engine in members:
        assert upgraded[engine.name]["result"] == "upgraded"
        assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.4.0").id
        target = open(str(work / "store" / engine.name / "ROLLBACK_TARGET")).read().strip()
        assert target == upgraded[engine.name]["snapshot"]
        engine.bad = ["bad-%s-%d" % (engine.name[-6:], n) for n in range(2)]
        for rid in engine.bad:
            engine.execute(rid, request_id=rid)
        assert episodes(engine) == sorted(engine.kept + engine.bad)
    on_240 = dict((e.name, docker_client.containers.get(e.name).id) for e in members)

    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1", check=True)
    assert rc == 0 and not failures(report)
    assert all(docker_client.containers.get(e.name).id == on_240[e.name] for e in members)
    assert all(episodes(e) == sorted(e.kept + e.bad) for e in members)
    for result in task_results(report, "Show the rollback plan"):
        assert "data rollback: yes" in result["msg"] and any("rows to export" in line for line in result["msg"])

    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1",
                              "-e", "reason='error rate 31% after 2.4.0'")
    assert rc == 0 and not failures(report), report["stats"]
    rows = report_rows(work, "rollback")
    assert "engine_ops rollback summary" in report["_trailer"]
    for engine in members:
        assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
        engine.wait_healthy()
        assert engine.health()[1]["version"] == "2.3.1"
        assert episodes(engine) == sorted(engine.kept)  # the brain is the pre-upgrade snapshot
        row = rows[engine.name]
        assert (row["result"], row["data_rollback"], row["from"], row["to"]) == (
            "rolled_back", True, "engine:2.4.0", "engine:2.3.1")
        assert row["rows_exported"] >= len(engine.bad) and row["downtime_seconds"] > 0
        with open(os.path.join(row["export_dir"], "episodes.jsonl")) as handle:
            assert sorted(json.loads(line)["request_id"] for line in handle) == sorted(engine.bad)

    entries = ledger(work)
    assert sorted((e["operation"], e["result"]["host"]) for e in entries) == sorted(
        [("upgrade", e.name) for e in members] + [("rollback", e.name) for e in members])
    rollback_entry = [e for e in entries if e["operation"] == "rollback"][0]
    assert rollback_entry["why"] == "error rate 31% after 2.4.0" and rollback_entry["who"]
    assert rollback_entry["result"]["snapshot"] and rollback_entry["result"]["phase_seconds"]
    assert oct(os.stat(str(work / "ledger.jsonl")).st_mode & 0o777) == "0o600"

    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1")
    assert rc == 0 and all(changed_tasks(report, e.name) == [] for e in members)
    assert all(r["result"] == "already_current" for r in report_rows(work, "rollback").values())


def test_upgrade_to_a_broken_build_rolls_back_by_itself_and_stops_after_the_canary(
        engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite", "sqlite"))
    rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=2.4.0-broken-health")
    assert rc != 0
    rows = report_rows(work, "upgrade")
    canary = [name for name, row in rows.items() if row["result"] != "not_run"]
    assert len(canary) == 1 and rows[canary[0]]["result"] == "rolled_back"
    untouched = [e for e in members if e.name not in canary]
    assert rows[untouched[0].name]["result"] == "not_run"
    for engine in members:  # the canary is back exactly where it was; the other was never touched
        assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
        engine.wait_healthy()
        assert episodes(engine) == sorted(engine.kept)
    rolled = report_rows(work, "rollback")[canary[0]]
    assert rolled["data_rollback"] is True and rolled["result"] == "rolled_back"
    assert not os.path.exists(str(work / "store" / untouched[0].name))


def test_image_only_rollback_falls_through_to_the_data_rollback_on_migration_required(
        engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
    [engine] = members
    engine = upgraded_by_hand(engines, engine, work, version="2.3.3-broken-dataonly")[0]
    engine.execute("bad", request_id="bad-1")
    container = docker_client.containers.get(engine.name)
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1")
    assert rc != 0  # the evidence says hold (one turn, healthy): rolling back against it needs a reason
    [refusal] = task_results(report, "Refuse to roll back against a hold verdict without a reason")
    assert "the evidence says hold" in refusal["msg"] and "nothing was changed" in refusal["msg"]
    assert docker_client.containers.get(engine.name).attrs["State"]["StartedAt"] == container.attrs["State"]["StartedAt"]
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1",
                              "-e", "reason='customers confirm lost memories'")
    assert rc == 0 and not failures(report), report["stats"]
    entry = [e for e in ledger(work) if e["operation"] == "rollback"][-1]
    assert entry["against_verdict"] is True and entry["why"] == "customers confirm lost memories"
    plan = task_results(report, "Show the rollback plan")[0]["msg"]
    assert "data rollback: no" in plan  # the schema fingerprint did not move ...
    row = report_rows(work, "rollback")[engine.name]
    assert row["fell_through"] is True and row["data_rollback"] is True  # ... but 2.3.1 refused the brain
    assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
    engine.wait_healthy()
    assert episodes(engine) == sorted(engine.kept)


def test_the_free_strategy_rolls_each_engine_back_without_waiting_for_the_others(
        engines, named, prefix, tmp_path, docker_client):
    """-e rollback_strategy=free (for large fleets): the same rollback, each Engine through its window on its own."""
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite", "postgres"))
    members = [upgraded_by_hand(engines, engine, work)[0] for engine in members]
    for engine in members:
        engine.execute("bad", request_id="bad-" + engine.name[-6:])
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1", "-e", "reason=test",
                              "-e", "rollback_strategy=free")
    assert rc == 0 and not failures(report), report["stats"]
    rows = report_rows(work, "rollback")
    for engine in members:
        assert rows[engine.name]["result"] == "rolled_back" and rows[engine.name]["data_rollback"] in (True, "True")
        assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
        engine.wait_healthy()
        assert episodes(engine) == sorted(engine.kept)
    assert sorted(e["result"]["host"] for e in ledger(work) if e["operation"] == "rollback") == sorted(
        e.name for e in members)


def test_scheduled_snapshots_keep_the_newest_and_health_runs_by_fqcn(engines, named, prefix, tmp_path):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite", "postgres"))
    for dummy in range(3):
        rc, report = run_playbook("engine_ops.lifecycle.snapshot", inventory, "-e", "keep=2", "-e", "reason=nightly")
        assert rc == 0 and not failures(report), report["stats"]
    for engine in members:
        snapshots = [n for n in os.listdir(str(work / "store" / engine.name))
                     if not n.startswith((".", "ROLLBACK", "baselines"))]
        assert len(snapshots) == 2
    rows = report_rows(work, "snapshot")
    assert all(row["result"] == "taken" and len(row["removed"]) == 1 for row in rows.values())
    assert [e["operation"] for e in ledger(work)] == ["snapshot"] * 6

    rc, report = run_playbook("engine_ops.lifecycle.baseline", inventory)
    assert rc == 0 and not failures(report), report["stats"]
    for engine in members:
        [name] = os.listdir(str(work / "store" / engine.name / "baselines"))
        with open(str(work / "store" / engine.name / "baselines" / name)) as handle:
            measured = json.load(handle)
        assert measured["stats"]["requests"] == len(engine.kept) and measured["stats"]["error_rate"] == 0
        assert measured["health"]["classifications"] == {"ok": 5}

    rc, report = run_playbook("engine_ops.lifecycle.health", inventory)
    assert rc == 0 and "engine_ops health summary" in report["_trailer"]
    members[0].container.stop(timeout=30)
    rc, report = run_playbook("engine_ops.lifecycle.health", inventory, "-e", "health_deadline=2")
    assert rc != 0 and list(failures(report)) == [members[0].name]


def test_red_evals_after_an_upgrade_roll_it_back_with_the_brain(engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("postgres",))
    [engine] = members
    seen = tmp_path / "eval-env"
    script = tmp_path / "eval.sh"
    script.write_text("#!/bin/sh\necho \"$ENGINE_VERSION $ENGINE_URL\" >> %s\n"
                      "[ \"$ENGINE_VERSION\" = 2.3.1 ]\n" % seen)  # red on 2.4.0, green after the rollback
    script.chmod(0o755)
    rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=2.4.0",
                              "-e", "upgrade_eval_command=%s" % script)
    assert rc != 0
    row = report_rows(work, "upgrade")[engine.name]
    assert row["result"] == "rolled_back" and "eval command" in row["message"]
    assert seen.read_text().split("\n")[:2] == ["2.4.0 %s" % engine.url, "2.3.1 %s" % engine.url]
    assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
    engine.wait_healthy()
    assert episodes(engine) == sorted(engine.kept)
    assert report_rows(work, "rollback")[engine.name]["data_rollback"] is True


def test_the_upgrade_watch_rolls_back_a_release_whose_errors_show_in_its_logs(
        engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
    [engine] = members
    stop = threading.Event()

    def users():  # traffic throughout, as in production: the new release's failures show in its own logs
        n = 0
        while not stop.is_set():
            n += 1
            try:
                engine.execute("turn %d" % n, duration=0.1, request_id="user-%d" % n)
            except Exception:  # pylint: disable=broad-except
                stop.wait(0.1)

    thread = threading.Thread(target=users, daemon=True)
    thread.start()
    try:
        rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=2.4.0-broken-errors",
                                  "-e", "upgrade_watch_seconds=8", "-e", "upgrade_window_seconds=2")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert rc != 0
    row = report_rows(work, "upgrade")[engine.name]
    assert row["verdict"] == "rollback", row
    # half of all turns fail on this build; a window holding an odd number of them shows a little more or less
    rate = re.match(r"error rate (\d+\.\d)% vs 0\.0% baseline for \d+ s, not improving$", row["symptom"])
    assert rate and 30 <= float(rate.group(1)) <= 70, row["symptom"]
    assert row["result"] == "rolled_back"
    assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.3.1").id
    engine.wait_healthy()
    kept = [r for r in episodes(engine) if not r.startswith("user-")]
    assert kept == sorted(engine.kept)
    baseline = os.path.join(str(work / "store"), engine.name, row["snapshot"], "baseline.json")
    with open(baseline) as handle:
        assert json.load(handle)["stats"]["error_rate"] == 0.0


def test_a_rolled_back_version_is_not_redeployed_without_a_root_cause(engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
    engine = upgraded_by_hand(engines, members[0], work)[0]
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1", "-e", "reason='bad memory'")
    assert rc == 0, report["stats"]
    before = docker_client.containers.get(engine.name)

    rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=v2.4.0")
    assert rc != 0
    [refusal] = [r for r in task_results(report, "Refuse to redeploy a rolled-back version without a root cause")
                 if r.get("failed")]
    assert "engine:2.4.0 was rolled back 1 time(s), last on %s" % engine.name in refusal["msg"]
    assert "(bad memory)" in refusal["msg"] and "nothing was changed" in refusal["msg"]
    after = docker_client.containers.get(engine.name)
    assert (after.id, after.attrs["State"]["StartedAt"]) == (before.id, before.attrs["State"]["StartedAt"])

    rc, report = run_playbook("playbooks/upgrade.yml", inventory, "-e", "version=v2.4.0",
                              "-e", "root_cause=https://tracker.example/INC-7")
    assert rc == 0 and not failures(report), report["stats"]
    assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:2.4.0").id
    assert ledger(work)[-1]["root_cause"] == "https://tracker.example/INC-7"
