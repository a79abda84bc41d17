"""The quarterly rollback drill on a local staging fleet of three reference Engines, with its report."""

import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from ansible_run import failed_messages, run_module, run_playbook, write_inventory
from conftest import named_engines

PRODUCTION, BROKEN = "2.3.1", "2.4.0-broken-errors"


def staging(engines, named, prefix, tmp_path, count=3, group="staging", notify_url=None):
    # staging drifted from production (2.3.2): the provision phase puts it back on 2.3.1
    members, hosts = named_engines(engines, named, prefix, count, "2.3.2")
    work = tmp_path / "work"
    evals = tmp_path / "eval.sh"  # a real eval: the rolled-back Engine is healthy on the production version
    evals.write_text("#!/bin/sh\nset -e\ncurl -fsS -o /dev/null -H \"X-Engine-Key: $(cat \"$ENGINE_API_KEY_FILE\")\" "
                     "\"$ENGINE_URL/memory/export?tables=server_registry\"\n"  # the evals get the Engine key
                     "curl -fsS \"$ENGINE_URL/health\" | python3 -c 'import json, os, sys; d = json.load(sys.stdin); "
                     "sys.exit(d[\"status\"] != \"ok\" or d[\"version\"] != os.environ[\"ENGINE_VERSION\"])'\n")
    evals.chmod(0o755)
    inventory = write_inventory(tmp_path, group, hosts, group_vars={
        "engine_snapshot_store": str(work / "store"), "engine_state_dir": str(work / "state"),
        "engine_ledger_path": str(work / "ledger.jsonl"), "engine_report_dir": str(work / "reports"),
        "drill_history_path": str(work / "drills" / "history.jsonl"), "drill_seed_turns": 6, "drill_probe_turns": 12,
        "drill_rto_budget": 600,
        "rollback_diagnostics": False, "drill_eval_command": str(evals),
        **({"notify_webhook_url": notify_url} if notify_url else {})})
    return members, inventory, work


def drill(inventory, *extra):
    began = time.monotonic()
    rc, report = run_playbook("playbooks/drill.yml", inventory, "-e", "production_version=v" + PRODUCTION,
                              "-e", "broken_version=" + BROKEN, *extra, timeout=900)
    return rc, report, time.monotonic() - began


def drill_report(work):
    names = sorted(n for n in os.listdir(str(work / "reports")) if n.startswith("drill-") and n.endswith(".json"))
    with open(str(work / "reports" / names[-1])) as handle:
        return json.load(handle), str(work / "reports" / names[-1])[:-len(".json")]


def test_a_drill_on_three_staging_engines_passes_and_reports_every_phase(
        engines, named, prefix, tmp_path, docker_client, receiver):
    """The drill takes the rollback's own decision (auto) and notification path (the staging inventory's webhook):
    it passes when both work, and the next quarter's drill fails when the notifications are not delivered."""
    members, inventory, work = staging(engines, named, prefix, tmp_path, notify_url=receiver.url + "/hook")
    rc, report, wall = drill(inventory)
    assert rc == 0, report["_trailer"][-4000:]
    data, base = drill_report(work)
    assert data["result"] == "passed" and data["failed_hosts"] == [], data["findings"]
    assert data["production_version"] == PRODUCTION and data["broken_version"] == BROKEN
    expected = ["provision", "seed", "snapshot", "upgrade", "detect", "rollback", "verify", "report"]
    for engine in members:
        host = data["hosts"][engine.name]
        assert [p["name"] for p in host["phases"]] == expected
        assert host["verdict"] == "rollback" and "error rate" in host["symptom"]
        assert host["verified"]["data_rollback"] in (True, "True")  # decided by auto: 2.4.0 migrated the brain
        assert host["verified"]["brain_equals_snapshot"] in (True, "True")
        assert host["verified"]["notifications"] and not host["verified"]["notifications_failed"], host["verified"]
        assert int(host["verified"]["exported_rows"]) > 0 and host["verified"]["health"] == "ok"
        assert host["verified"]["evals"] == "green"
        assert docker_client.containers.get(engine.name).image.id == docker_client.images.get("engine:" + PRODUCTION).id
        assert engine.health()[1]["version"] == PRODUCTION
        # structure, not speed: the phases are ordered and contiguous (each starts where the one before ended),
        # their sum is the host's drill time, and all of them lie inside the drill's wall time
        phases = host["phases"]
        for before, after in zip(phases, phases[1:]):
            assert abs(before["offset"] + before["seconds"] - after["offset"]) < 0.01, (before, after)
        assert phases[0]["offset"] >= 0 and all(p["seconds"] >= 0 for p in phases)
        assert abs(sum(p["seconds"] for p in phases) - host["total_seconds"]) < 0.01
        assert phases[-1]["offset"] + phases[-1]["seconds"] <= data["wall_seconds"] + 0.01
        assert host["total_seconds"] <= data["wall_seconds"] <= wall + 0.5
    assert data["rto_budget_seconds"] == 600 and data["recovery_seconds_max"] < 600
    assert any(f.startswith("slowest phase: ") for f in data["findings"])
    assert "first drill in this history" in " ".join(data["findings"])
    with open(base + ".md") as handle:
        markdown = handle.read()
    assert "# Rollback drill %s: PASSED" % data["id"] in markdown and "## What slowed it down" in markdown
    suite = ET.parse(base + ".xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) == 3 * (len(expected) + 1) + 1
    png = base + ".png"
    subprocess.run(["rsvg-convert", "-o", png, base + ".svg"], check=True)
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(png) > 5000
    assert oct(os.stat(base + ".json").st_mode & 0o777) == "0o600"

    hooked = [body for method, path, body, dummy in receiver.calls if path == "/hook"]
    assert {b["facts"]["engine"] for b in hooked} == {m.name for m in members}, hooked  # each rollback announced
    assert not [p for dummy, p, dummy2, dummy3 in receiver.calls if p.startswith("/status")]  # no customer impact

    # the next quarter compares with this one; its notifications are not delivered (the webhook answers 500), and
    # a drill whose notification path is broken fails, saying so
    # (one Engine of the fleet this time, as an operator limits a drill)
    receiver.failing.add("/hook")
    rc, report, dummy = drill(inventory, "--limit", members[0].name)
    assert rc != 0, report["_trailer"][-4000:]
    second, dummy = drill_report(work)
    assert second["result"] == "failed" and second["failed_hosts"] == [members[0].name], second["failed_hosts"]
    reason = second["hosts"][members[0].name]["reason"]
    assert "notifications sent" in reason and "failed:" in reason, reason
    assert second["previous_drill"] == data["id"] and {c["phase"] for c in second["changes"]} >= set(expected)
    with open(str(work / "drills" / "history.jsonl")) as handle:
        assert [json.loads(line)["id"] for line in handle] == [data["id"], second["id"]]


def test_a_drill_whose_rollback_cannot_work_fails_and_says_why(engines, named, prefix, tmp_path):
    members, inventory, work = staging(engines, named, prefix, tmp_path, count=1)
    rc, report, dummy = drill(inventory, "-e", "drill_inject_fault=corrupt_snapshot")
    assert rc != 0
    data, base = drill_report(work)
    host = data["hosts"][members[0].name]
    assert data["result"] == "failed" and data["failed_hosts"] == [members[0].name]
    assert host["result"] == "failed" and "snapshot" in host["reason"], host["reason"]
    assert [p["name"] for p in host["phases"]][-2:] == ["rollback", "report"]
    assert any(f.startswith("FAILED on %s" % members[0].name) for f in data["findings"])
    suite = ET.parse(base + ".xml").getroot().find("testsuite")
    assert int(suite.get("failures")) >= 1


def test_a_drill_seeded_from_a_production_snapshot(engines, named, prefix, tmp_path):
    production = engines.start(PRODUCTION, engines.brain("sqlite"))
    production.wait_healthy()
    for n in range(4):
        assert production.execute("production turn %d" % n, request_id="prod-%d" % n)[0] == 200
    prod_store = str(tmp_path / "prod-store")
    taken = run_module("brain_snapshot", {"container": production.container.name, "store": prod_store})
    assert taken["changed"], taken.get("msg")
    members, inventory, work = staging(engines, named, prefix, tmp_path, count=1)
    seed = os.path.join(prod_store, production.container.name, taken["snapshot"]["id"])
    (tmp_path / "prod").mkdir()
    prod_inventory = write_inventory(tmp_path / "prod", "engines", {
        "prod-1": {"engine_version": "v" + PRODUCTION}, "prod-2": {"engine_version": PRODUCTION}})
    rc, report = run_playbook("playbooks/drill.yml", inventory, "-e", "broken_version=" + BROKEN, "-e",
                              "drill_production_inventory=" + prod_inventory, "-e", "drill_seed_snapshot=" + seed,
                              timeout=900)
    assert rc == 0, report["_trailer"][-4000:]
    data, dummy = drill_report(work)
    assert data["result"] == "passed"
    ids = {row[1] for row in members[0].rows("episodes")}
    assert {"prod-%d" % n for n in range(4)} <= ids  # the production brain, back after the rollback
    assert not any(i.startswith("drill-") and "-seed-" in i for i in ids)  # no generated seed turns


def test_a_drill_refuses_a_production_inventory_that_runs_two_versions(engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = staging(engines, named, prefix, tmp_path, count=1)
    (tmp_path / "prod").mkdir()
    prod_inventory = write_inventory(tmp_path / "prod", "engines", {
        "prod-1": {"engine_version": "2.3.1"}, "prod-2": {"engine_version": "2.3.2"}})
    before = docker_client.containers.get(members[0].name).id
    rc, report = run_playbook("playbooks/drill.yml", inventory, "-e", "broken_version=" + BROKEN, "-e",
                              "drill_production_inventory=" + prod_inventory)
    assert rc != 0
    messages = " ".join(r.get("msg") or "" for p in report["plays"] for t in p["tasks"] for r in t["hosts"].values()
                        if r.get("failed"))
    assert "found '2.3.1,2.3.2'" in messages and "nothing was changed" in messages, messages
    assert docker_client.containers.get(members[0].name).id == before


def test_a_drill_refuses_engines_outside_staging(engines, named, prefix, tmp_path, docker_client):
    members, inventory, work = staging(engines, named, prefix, tmp_path, count=1, group="engines")
    before = docker_client.containers.get(members[0].name).id
    rc, report = run_playbook("playbooks/drill.yml", inventory, "-e", "target=engines", "-e",
                              "production_version=" + PRODUCTION, "-e", "broken_version=" + BROKEN)
    assert rc != 0
    messages = [r.get("msg") for p in report["plays"] for t in p["tasks"] for r in t["hosts"].values() if r.get("failed")]
    assert any("is not in the staging group 'staging'" in (m or "") and "nothing was changed" in m for m in messages)
    assert docker_client.containers.get(members[0].name).id == before
    assert not os.path.exists(str(work / "store"))


@pytest.fixture(autouse=True, scope="module")
def _renderer():
    if shutil.which("rsvg-convert") is None:
        pytest.fail("rsvg-convert is missing (librsvg2-bin): run scripts/bootstrap.sh")


@pytest.mark.parametrize("method", ["systemd", "cron"])
def test_the_quarterly_schedule_installs_and_runs_the_drill_command(tmp_path, method):
    recorder = tmp_path / "ansible-playbook"
    recorder.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%%s\\n' \"$a\"; done > %s\necho \"env=$DRILL_MARK\"\n"
                        % (tmp_path / "argv"))
    recorder.chmod(0o755)
    extra = {"production_version": "2.3.1", "broken_version": "2.4.0-broken-errors", "note": "it's quarterly"}
    settings = {"drill_schedule_method": method, "drill_schedule_inventory": "/etc/engine_ops/staging inventory.yml",
                "drill_schedule_extra_vars": extra, "drill_schedule_ansible_playbook": str(recorder),
                "drill_schedule_environment": {"DRILL_MARK": "a b"}, "drill_schedule_log": str(tmp_path / "log" / "drill.log"),
                "drill_schedule_unit_dir": str(tmp_path / "units"), "drill_schedule_cron_file": str(tmp_path / "cron.d" / "drill"),
                "drill_schedule_script": str(tmp_path / "bin" / "engine-ops-drill"), "drill_schedule_working_dir": str(tmp_path)}
    for folder in ("units", "cron.d", "bin"):
        (tmp_path / folder).mkdir()
    inventory = write_inventory(tmp_path, "control", {"localhost": {}})
    rc, report = run_playbook("playbooks/drill_schedule.yml", inventory, "-e", json.dumps(settings))
    assert rc == 0, [(t["task"]["name"], r.get("msg")) for p in report["plays"] for t in p["tasks"]
                     for r in t["hosts"].values() if r.get("failed")]
    if method == "systemd":
        timer = (tmp_path / "units" / "engine-ops-drill.timer").read_text()
        assert "OnCalendar=*-01,04,07,10-01 03:00:00" in timer and "Persistent=true" in timer
        service = (tmp_path / "units" / "engine-ops-drill.service").read_text()
        assert "ExecStart=%s" % settings["drill_schedule_script"] in service
        subprocess.run(["systemd-analyze", "verify", str(tmp_path / "units" / "engine-ops-drill.timer"),
                        str(tmp_path / "units" / "engine-ops-drill.service")], check=True)
        nxt = subprocess.run(["systemd-analyze", "calendar", "*-01,04,07,10-01 03:00:00"], capture_output=True,
                             text=True, check=True).stdout
        assert "Next elapse:" in nxt
    else:
        cron = (tmp_path / "cron.d" / "drill").read_text()
        line = [entry for entry in cron.splitlines() if entry and not entry.startswith("#") and "=" not in entry][0]
        assert line.split()[:6] == ["0", "3", "1", "1,4,7,10", "*", "root"], line
        assert line.split(None, 6)[6].strip("'") == settings["drill_schedule_script"]
    subprocess.run([settings["drill_schedule_script"]], check=True)  # what the timer or cron will run
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv[:3] == ["-i", "/etc/engine_ops/staging inventory.yml", "engine_ops.lifecycle.drill"]
    assert argv[3] == "-e" and json.loads(argv[4]) == extra
    assert "env=a b" in (tmp_path / "log" / "drill.log").read_text()
    rc, report = run_playbook("playbooks/drill_schedule.yml", inventory, "-e", json.dumps(settings))
    assert rc == 0 and not [t for p in report["plays"] for t in p["tasks"] if t["hosts"]["localhost"].get("changed")]
    rc, report = run_playbook("playbooks/drill_schedule.yml", inventory, "-e", json.dumps(dict(settings, drill_schedule_state="absent")))
    assert rc == 0 and not os.path.exists(settings["drill_schedule_script"])
    assert not (tmp_path / "units" / "engine-ops-drill.timer").exists() and not (tmp_path / "cron.d" / "drill").exists()


@pytest.mark.parametrize("key, expected", [("", "engine_api_key is not set"),
                                           ("not-the-key", "refused engine_api_key (HTTP 401)")])
def test_a_missing_or_wrong_engine_key_is_refused_before_anything_changes(
        engines, named, prefix, tmp_path, key, expected):
    members, inventory, work = staging(engines, named, prefix, tmp_path, count=1)
    [engine] = members
    before = (engine.container.id, docker_client_image(engine))
    rc, report, dummy = drill(inventory, "-e", "engine_api_key=" + key)
    assert rc != 0
    messages = failed_messages(report)
    assert any(expected in m and m.endswith("nothing was changed") for m in messages), messages
    engine.container.reload()
    assert (engine.container.id, docker_client_image(engine)) == before  # still the drifted 2.3.2, untouched
    assert not os.path.exists(str(work / "store"))


def docker_client_image(engine):
    engine.container.reload()
    return engine.container.attrs["Config"]["Image"]


@pytest.mark.parametrize("case, extra, expected", [
    ("bad-calendar", {"drill_schedule_calendar": "every third tuesday"},
     "systemd-analyze verify rejected the drill units: "),
    ("no-systemd-analyze", {"drill_schedule_systemd_analyze": "/nonexistent/systemd-analyze"},
     "/nonexistent/systemd-analyze could not be run on localhost (is it installed?), so the units could not be "
     "verified")])
def test_units_that_cannot_be_verified_are_refused_with_nothing_installed(tmp_path, case, extra, expected):
    settings = {"drill_schedule_method": "systemd", "drill_schedule_inventory": "/etc/engine_ops/staging.yml",
                "drill_schedule_log": str(tmp_path / "log" / "drill.log"), "drill_schedule_unit_dir": str(tmp_path / "units"),
                "drill_schedule_script": str(tmp_path / "bin" / "engine-ops-drill"), "drill_schedule_working_dir": str(tmp_path),
                "drill_schedule_activate": False}
    for folder in ("units", "bin", "scratch"):
        (tmp_path / folder).mkdir()
    inventory = write_inventory(tmp_path, "control", {"localhost": {}})
    rc, report = run_playbook("playbooks/drill_schedule.yml", inventory, "-e", json.dumps(dict(settings, **extra)),
                              env={"TMPDIR": str(tmp_path / "scratch")})  # where the role's scratch directory goes
    assert rc != 0
    messages = failed_messages(report)
    assert any(expected in m and m.endswith("nothing was changed (no script, no units in %s, no timer)"
                                            % settings["drill_schedule_unit_dir"]) for m in messages), messages
    if case == "bad-calendar":
        assert any("every third tuesday" in m for m in messages), messages  # systemd-analyze's own words
    assert not os.listdir(str(tmp_path / "units")) and not os.listdir(str(tmp_path / "bin"))
    assert not (tmp_path / "log").exists()
    assert not [n for n in os.listdir(str(tmp_path / "scratch")) if n.startswith("engine-ops-drill-units.")]
