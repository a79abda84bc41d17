"""Bringing a bad window back after a data rollback: playbooks/reimport.yml and brain_import on real Engines."""

import json
import os

import requests

from ansible_run import failed_messages, failures, run_module, run_playbook
from conftest import AUTH, BOTH_BACKENDS, ENGINE_API_KEY
from fleet import task_results
from test_rollback_playbook import prepare


@BOTH_BACKENDS
def test_chosen_tables_of_the_export_come_back_through_the_engine(
        engines, named, prefix, backend, tmp_path, docker_client):
    engine, inventory, kept, bad, snap = prepare(engines, named, prefix, backend, tmp_path)
    ledger, reports = str(tmp_path / "ledger.jsonl"), str(tmp_path / "reports")
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1", "-e", "reason=test",
                              "-e", "engine_ledger_path=" + ledger, "-e", "engine_report_dir=" + reports)
    assert rc == 0 and not failures(report), report["stats"]
    engine.wait_healthy()
    exports = os.path.join(str(tmp_path / "store"), engine.name, snap["id"], "exports")
    [stamp] = os.listdir(exports)
    export_dir = os.path.join(exports, stamp)
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(kept)
    after = engine.execute("written after the rollback", request_id="after")  # takes the key of the first bad row
    assert after[0] == 200
    tables = json.dumps({"tables": ["episodes", "episodes_vec", "conversations"], "export_dir": export_dir,
                         "engine_ledger_path": ledger, "engine_report_dir": reports, "reason": "root cause fixed"})

    refused = run_module("brain_import", {"container": engine.name, "backend": backend, "export_dir": export_dir,
                                          "tables": ["episodes"], "engine_url": engine.url,
                                          "engine_api_key": ENGINE_API_KEY}, check=True)
    assert refused.get("failed") and "has no column importance" in refused["msg"]  # 2.4.0 added it; 2.3.1 lacks it
    assert refused["msg"].endswith("nothing was changed")

    ignore = json.dumps({"ignore_columns": ["episodes.importance"]})
    rc, report = run_playbook("playbooks/reimport.yml", inventory, "-e", tables, "-e", ignore, check=True)
    assert rc == 0 and not failures(report), failed_messages(report)
    [planned] = task_results(report, "Plan the re-import without sending anything")
    assert planned["plan"]["episodes"]["rows"] == len(bad) and planned["plan"]["episodes"]["conflicts"] == 1
    assert planned["plan"]["episodes"]["importable"] == len(bad) - 1
    assert planned["plan"]["episodes"]["columns_not_in_brain"] == ["importance"]
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(kept + ["after"])  # --check sent nothing

    rc, report = run_playbook("playbooks/reimport.yml", inventory, "-e", tables, "-e", ignore)
    assert rc != 0 and "rows whose key the restored brain holds with other values" in json.dumps(report)
    assert sorted(r[1] for r in engine.rows("episodes")) == sorted(kept + ["after"])  # nothing was imported

    rc, report = run_playbook("playbooks/reimport.yml", inventory, "-e", tables, "-e", ignore,
                              "-e", "on_conflict=skip")
    assert rc == 0 and not failures(report), report["stats"]
    [done] = task_results(report, "Import the rows through the Engine")
    assert done["changed"] and done["imported"]["episodes"] == len(bad) - 1
    episodes = sorted(r[1] for r in engine.rows("episodes"))
    assert episodes == sorted(kept + ["after"] + bad[1:])
    found = requests.get(engine.url + "/memory/search", params={"q": bad[1], "k": 1}, headers=AUTH, timeout=10).json()
    assert found["nearest"][0]["distance"] == 0.0  # its embedding came back exactly, and the Engine indexed it

    rc, report = run_playbook("playbooks/reimport.yml", inventory, "-e", tables, "-e", ignore,
                              "-e", "on_conflict=skip")
    assert rc == 0 and not failures(report)
    [again] = task_results(report, "Import the rows through the Engine")
    assert not again["changed"] and again["plan"]["episodes"]["already_present"] == len(bad) - 1
    with open(ledger) as handle:
        entries = [json.loads(line) for line in handle]
    reimports = [e for e in entries if e["operation"] == "reimport"]
    assert [e["result"]["result"] for e in reimports] == ["failed", "imported", "nothing to import"]
    assert reimports[1]["why"] == "root cause fixed" and reimports[1]["result"]["imported"]["episodes"] == len(bad) - 1


def test_tables_not_in_the_export_or_none_at_all_are_refused(engines, named, prefix, tmp_path):
    engine, inventory, kept, bad, snap = prepare(engines, named, prefix, "sqlite", tmp_path, version_after="2.3.2")
    export_dir = str(tmp_path / "export")
    os.makedirs(export_dir)
    with open(os.path.join(export_dir, "summary.json"), "w") as handle:
        json.dump({"rows": {}}, handle)
    args = {"container": engine.name, "export_dir": export_dir, "engine_url": engine.url,
            "engine_api_key": ENGINE_API_KEY}
    for tables, message in (([], "name the tables to re-import"), (["episodes"], "has no rows of episodes")):
        result = run_module("brain_import", dict(args, tables=tables))
        assert result.get("failed") and message in result["msg"] and result["msg"].endswith("nothing was changed")
