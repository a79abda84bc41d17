"""After a rollback: diagnostics, postmortem, regression case; and the rollbacks that cannot be done."""

import json
import os
import tarfile

import requests

from ansible_run import failures, run_playbook, write_inventory
from fleet import episodes, fleet, ledger, report_rows, task_results, upgraded_by_hand
from services import AUTH, ENGINE_API_KEY


def upgraded_to(engines, named, prefix, tmp_path, version):
    """One Engine upgraded to `version` with its pinned pre-upgrade snapshot (upgrade.yml has its own tests)."""
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
    return [upgraded_by_hand(engines, members[0], work, version=version)[0]], inventory, work


def test_diagnostics_postmortem_and_regression_case_name_the_real_run(engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = upgraded_to(engines, named, prefix, tmp_path, "2.4.0-broken-errors")
    [engine] = members
    for n in range(6):
        engine.execute("bad %d" % n, request_id="bad-%d" % n)
    written = [r for r in episodes(engine) if r.startswith("bad-")]  # half of the turns fail on this build
    assert len(written) == 3
    cases = tmp_path / "eval-cases"
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1", "-e", "rollback_window_seconds=3600",
                              "-e", "rollback_regression_dir=%s" % cases)
    assert rc == 0 and not failures(report), report["stats"]
    row = report_rows(work, "rollback")[engine.name]
    assert row["verdict"] == "inconclusive"  # one window of evidence so far: if unsure, roll back (no reason needed)
    entry = [e for e in ledger(work) if e["operation"] == "rollback"][-1]

    archive = entry["diagnostics"]
    assert archive.startswith(str(work / "reports" / "diagnostics")) and os.path.isfile(archive)
    assert oct(os.stat(archive).st_mode & 0o777) == "0o600"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
        bad_logs = tar.extractfile("logs/%s-engine_ops-previous.jsonl" % engine.name).read().decode()
        inspect = json.load(tar.extractfile("inspect/%s-engine_ops-previous.json" % engine.name))
        exported = tar.extractfile("exports/episodes.jsonl").read().decode()
        summary = json.load(tar.extractfile("summary.json"))
    assert (manifest["from"], manifest["to"]) == ("engine:2.4.0-broken-errors", "engine:2.3.1")
    assert sorted(f["name"] for f in manifest["files"]) == sorted(n for n in names if n != "manifest.json")
    assert "TOOL_EXECUTION_FAILED" in bad_logs and "bad-5" in bad_logs
    assert inspect["Config"]["Image"] == "engine:2.4.0-broken-errors"
    assert sorted(json.loads(line)["request_id"] for line in exported.splitlines()) == written
    assert summary["rows_exported"] == row["rows_exported"]

    with open(entry["postmortem"]) as handle:
        postmortem = handle.read()
    assert "rolled back from engine:2.4.0-broken-errors to engine:2.3.1" in postmortem
    assert "| planned |" in postmortem and "| switched |" in postmortem and "| done |" in postmortem
    assert entry["symptom"].startswith("error rate 50.0%") and entry["symptom"] in postmortem
    assert archive in postmortem and "%d rows written in the bad window" % row["rows_exported"] in postmortem

    [case_file] = os.listdir(str(cases))
    with open(str(cases / case_file)) as handle:
        case = json.load(handle)
    assert (case["bad_version"], case["good_version"]) == ("engine:2.4.0-broken-errors", "engine:2.3.1")
    assert case["error_codes"]["TOOL_EXECUTION_FAILED"] == 3 and case["expect"]["no_error_codes"] == ["TOOL_EXECUTION_FAILED"]
    assert {r["error_code"] for r in case["failing_requests"]} == {"TOOL_EXECUTION_FAILED"}


def test_a_release_that_dropped_a_table_cannot_be_rolled_back_image_only(engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = upgraded_to(engines, named, prefix, tmp_path, "2.3.4-broken-dropped")
    [engine] = members
    assert "ingestion_chunks" not in [r[1] for r in engine.brain.schema(docker_client)]  # the release dropped it
    before = docker_client.containers.get(engine.name)
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1", "-e", "reason=test",
                              "-e", "rollback_data_rollback=never")
    assert rc != 0
    [refusal] = [r for r in task_results(report, "Refuse an image-only rollback over a brain that lost what the old "
                                                 "version needs") if r.get("failed")]
    assert "the running release dropped ingestion_chunks" in refusal["msg"] and "nothing was changed" in refusal["msg"]
    after = docker_client.containers.get(engine.name)
    assert (after.id, after.attrs["State"]["StartedAt"]) == (before.id, before.attrs["State"]["StartedAt"])

    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1", "-e", "reason=test")
    assert rc == 0 and not failures(report), report["stats"]
    plan = task_results(report, "Show the rollback plan")[0]["msg"]
    assert any(line.startswith("dropped by the running release: ingestion_chunks") for line in plan)
    engine.wait_healthy()
    assert engine.rows("ingestion_chunks") == [] and episodes(engine) == sorted(engine.kept)


def test_no_usable_snapshot_means_no_rollback_and_recovery_guidance(engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = upgraded_to(engines, named, prefix, tmp_path, "2.4.0")
    [engine] = members
    store = str(work / "store" / engine.name)
    [snapshot] = [n for n in os.listdir(store) if n[0].isdigit()]
    with open(os.path.join(store, snapshot, "manifest.json"), "a") as handle:
        handle.write(" ")  # the manifest no longer matches its checksum
    before = docker_client.containers.get(engine.name)
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1", "-e", "reason=test")
    assert rc != 0
    [refusal] = [r for r in task_results(report, "Refuse a data rollback without a valid snapshot, with data-recovery "
                                                 "guidance") if r.get("failed")]
    assert "does not match its checksum" in refusal["msg"] and "nothing was changed" in refusal["msg"]
    assert "cannot be rolled back: no snapshot of it is usable" in refusal["msg"]
    assert "copy it aside now" in refusal["msg"]
    after = docker_client.containers.get(engine.name)
    assert (after.id, after.attrs["State"]["StartedAt"]) == (before.id, before.attrs["State"]["StartedAt"])


def test_calls_to_external_mcp_servers_in_the_bad_window_are_reported(engines, named, prefix, tmp_path, docker_client):
    brain = engines.brain("sqlite")
    docker_client.containers.run("engine:2.3.1", ["python3", "-m", "engine", "seed", "--episodes", "20"], remove=True,
                                 volumes={brain.volume: {"bind": "/data", "mode": "rw"}}, network_mode="none")
    engine = engines.start("2.3.1", brain)
    engine.name = "%s-mcp" % prefix
    engine.container.rename(engine.name)
    named(engine.name)
    engine.wait_healthy()
    work = tmp_path / "work"
    inventory = write_inventory(tmp_path, "engines", {engine.name: {
        "engine_container": engine.name, "engine_url": engine.url, "engine_api_key": ENGINE_API_KEY, "engine_snapshot_store": str(work / "store"),
        "engine_state_dir": str(work / "state"), "engine_ledger_path": str(work / "ledger.jsonl"),
        "engine_report_dir": str(work / "reports"), "upgrade_watch_seconds": 0}})
    engine = upgraded_by_hand(engines, engine, work)[0]
    for n, calls in enumerate([[{"server": "mcp-files", "tool": "read_file"}], [], [{"server": "mcp-files", "tool": "write_file"}]]):
        response = requests.post(engine.url + "/execute", json={"message": "m%d" % n, "tool_calls": calls},
                                 headers=dict(AUTH, **{"X-Request-ID": "bad-%d" % n}), timeout=60)
        assert response.status_code == 200
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1", "-e", "reason=test")
    assert rc == 0 and not failures(report), report["stats"]
    row = report_rows(work, "rollback")[engine.name]
    assert row["external_calls"] == {"mcp-files": 4}  # per call: a trajectory step and an observability event
    assert "external calls" in report["_trailer"]
    entry = ledger(work)[-1]
    with open(entry["postmortem"]) as handle:
        postmortem = handle.read()
    assert "record calls to external (MCP) systems" in postmortem and "`mcp-files`: 4 row(s)" in postmortem
