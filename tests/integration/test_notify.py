"""Notifications around real rollbacks, received by a local HTTP receiver that records every call."""

import json
import os
import uuid

from ansible_run import failures, run_playbook
from fleet import fleet, ledger, report_rows, upgraded_by_hand

SECRET = "T0KEN-" + uuid.uuid4().hex


def notify_vars(receiver, impact=True):
    return ["-e", json.dumps({
        "notify_slack_webhook_url": "%s/slack/%s" % (receiver.url, SECRET),
        "notify_webhook_url": "%s/hook/x" % receiver.url,
        "notify_webhook_headers": {"Authorization": "Bearer " + SECRET},
        "notify_statuspage": {"api_url": receiver.url + "/status", "page_id": "page1", "api_key": SECRET},
        "rollback_customer_impact": impact, "rollback_all_clear_seconds": 2, "reason": "error rate 31% after 2.4.0"})]


def upgraded(engines, named, prefix, tmp_path):
    """An Engine upgraded to 2.4.0 with its pinned pre-upgrade snapshot (upgrade.yml has its own tests), one bad turn."""
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",))
    engine = upgraded_by_hand(engines, members[0], work)[0]
    engine.execute("bad", request_id="bad-1")
    return engine, inventory, work


def test_a_rollback_tells_the_channel_and_the_status_page_in_order(engines, named, prefix, tmp_path, receiver):
    engine, inventory, work = upgraded(engines, named, prefix, tmp_path)
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=v2.3.1", "-vvv",
                              *notify_vars(receiver))
    assert rc == 0 and not failures(report), report["stats"]
    row = report_rows(work, "rollback")[engine.name]
    snapshot = row["snapshot"]
    start = ("Rolling back %s to v2.3.1 due to error rate 31%% after 2.4.0. From: engine:2.4.0. "
             "Data rollback: yes, to snapshot %s." % (engine.name, snapshot))
    texts = receiver.texts()
    assert texts[:3] == [("POST", "slack", start), ("POST", "hook", start), ("POST", "status", start)]
    assert [t[:2] for t in texts[3:]] == [("POST", "slack"), ("POST", "hook"), ("PATCH", "status")]
    clear = texts[3][2]
    assert clear.startswith("All clear: %s is back on v2.3.1, /health ok, " % engine.name)
    assert ("Data rolled back: yes, to snapshot %s; %d rows written in the bad window were exported to %s."
            % (snapshot, row["rows_exported"], row["export_dir"])) in clear
    assert receiver.calls[5][1] == "/status/v1/pages/page1/incidents/inc-42"
    assert receiver.calls[5][2]["incident"]["status"] == "resolved"
    assert receiver.calls[2][3]["Authorization"] == "OAuth " + SECRET
    assert receiver.calls[1][3]["Authorization"] == "Bearer " + SECRET
    # the secrets reach the receivers, and nowhere else
    verbose = report["_before"] + report["_trailer"] + report["_stderr"]
    assert "ESTABLISH LOCAL CONNECTION" in verbose  # -vvv really was verbose
    assert SECRET not in json.dumps(report) + verbose
    with open(str(work / "ledger.jsonl")) as handle:
        assert SECRET not in handle.read()
    entry = [e for e in ledger(work) if e["operation"] == "rollback"][-1]
    assert [n["event"] for n in entry["notifications"]] == ["start", "all_clear"]


def test_a_failed_rollback_escalates_and_never_sends_an_all_clear(engines, named, prefix, tmp_path, receiver):
    members, inventory, work = fleet(engines, named, prefix, tmp_path, backends=("sqlite",), version="2.4.0")
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.4.0-broken-health",
                              *notify_vars(receiver, impact=False))
    assert rc != 0
    texts = receiver.texts()
    assert [t[:2] for t in texts] == [("POST", "slack"), ("POST", "hook"), ("POST", "slack"), ("POST", "hook")]
    assert texts[0][2].startswith("Rolling back %s to v2.4.0-broken-health due to " % members[0].name)
    assert texts[2][2].startswith("ESCALATION: the rollback of %s to v2.4.0-broken-health failed: " % members[0].name)
    assert not [t for t in texts if t[2].startswith("All clear")]
    members[0].wait_healthy()  # the old container was put back


def test_a_receiver_that_answers_500_does_not_stop_the_rollback(engines, named, prefix, tmp_path, receiver):
    engine, inventory, work = upgraded(engines, named, prefix, tmp_path)
    receiver.failing.add("/slack/")
    rc, report = run_playbook("playbooks/rollback.yml", inventory, "-e", "version=2.3.1", *notify_vars(receiver, False))
    assert rc == 0 and not failures(report), report["stats"]
    assert report_rows(work, "rollback")[engine.name]["result"] == "rolled_back"
    assert len([c for c in receiver.calls if c[1].startswith("/slack/")]) == 8  # 2 events x (1 + 3 retries)
    warnings = [w for p in report["plays"] for t in p["tasks"] for r in t["hosts"].values() for w in r.get("warnings", [])]
    assert any("slack notification (start) was not delivered after 4 attempts: HTTP 500" in w for w in warnings)
    entry = [e for e in ledger(work) if e["operation"] == "rollback"][-1]
    slack = [d for n in entry["notifications"] for d in n["deliveries"] if d["target"] == "slack"]
    assert [d["delivered"] for d in slack] == [False, False] and slack[0]["error"] == "HTTP 500"
    assert os.path.exists(str(work / "ledger.jsonl"))
