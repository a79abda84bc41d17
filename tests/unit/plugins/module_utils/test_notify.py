"""Incident messages and their delivery: the runbook's words, retries that never raise."""

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._aftermath.notify import deliver, render, statuspage_call

FACTS = {"engine": "agent-eu-1", "version": "2.3.1", "from": "engine:2.4.0",
         "symptom": "error rate 31.0% vs 0.4% baseline for 6 min, not improving", "data_rollback": True,
         "snapshot": "S1", "rows_exported": 12, "export_dir": "/x", "error_rate": 0.0, "threshold": 0.05}


@pytest.mark.parametrize("event, facts, text", [
    ("start", FACTS, "Rolling back agent-eu-1 to v2.3.1 due to error rate 31.0% vs 0.4% baseline for 6 min, not "
                     "improving. From: engine:2.4.0. Data rollback: yes, to snapshot S1."),
    ("start", {"engine": "e", "version": "v2.3.1"}, "Rolling back e to v2.3.1 due to an operator's decision. "
                                                    "Data rollback: no."),
    ("all_clear", FACTS, "All clear: agent-eu-1 is back on v2.3.1, /health ok, error rate 0.0% (under 5.0%). Data "
                         "rolled back: yes, to snapshot S1; 12 rows written in the bad window were exported to /x."),
    ("all_clear", {"engine": "e", "version": "2.3.1", "error_rate": None}, "All clear: e is back on v2.3.1, /health "
                                                                           "ok, no errors seen. Data rolled back: no "
                                                                           "(the brain was kept as it was)."),
    ("all_clear", {"engine": "e", "version": "2.3.1", "error_rate": 0.0, "external_calls": {"mcp-files": 2}},
     "All clear: e is back on v2.3.1, /health ok, error rate 0.0% (under 5.0%). Data rolled back: no (the brain was "
     "kept as it was). Not undone: 2 bad-window row(s) record calls to external MCP systems (mcp-files x2); check "
     "their effects."),
    ("not_recovered", dict(FACTS, symptom="error rate 9.0%"), "agent-eu-1 is on v2.3.1 and /health answers, but it "
                                                              "has not recovered: error rate 9.0%. No all-clear yet; "
                                                              "watching."),
    ("escalation", dict(FACTS, message="boom"), "ESCALATION: the rollback of agent-eu-1 to v2.3.1 failed: boom. The "
                                                "Engine needs a human now; no all-clear will be sent."),
])
def test_messages(event, facts, text):
    assert render(event, facts) == text


def test_delivery_retries_with_backoff_then_reports_without_raising():
    answers, pauses = [(500, b""), (None, None), (200, b'{"id": "inc-1"}')], []

    def send(url, timeout, method, body, headers):
        status, answer = answers.pop(0)
        if status is None:
            raise IOError("connection refused")
        return status, answer

    outcome = deliver(send, "slack", "POST", "u", {}, retries=3, delay=0.5, sleep=pauses.append)
    assert outcome["delivered"] and outcome["attempts"] == 3 and outcome["answer"] == {"id": "inc-1"}
    assert pauses == [0.5, 1.0]

    failing = deliver(lambda *a, **k: (503, b""), "hook", "POST", "u", {}, retries=2, delay=1, sleep=pauses.append)
    assert (failing["delivered"], failing["attempts"], failing["error"]) == (False, 3, "HTTP 503")


@pytest.mark.parametrize("event, incident, method, path, status", [
    ("start", None, "POST", "/v1/pages/p/incidents", "identified"),
    ("not_recovered", "i1", "PATCH", "/v1/pages/p/incidents/i1", "monitoring"),
    ("all_clear", "i1", "PATCH", "/v1/pages/p/incidents/i1", "resolved"),
    ("all_clear", None, "POST", "/v1/pages/p/incidents", "identified"),  # no incident yet: open one
])
def test_status_page_calls(event, incident, method, path, status):
    verb, url, body = statuspage_call(event, "https://sp/", "p", incident, "text", "name", "major")
    assert (verb, url) == (method, "https://sp" + path) and body["incident"]["status"] == status
