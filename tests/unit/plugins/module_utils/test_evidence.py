"""Evidence from Engine log lines and eval results: only contract fields, optional ones when present."""

import json

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.evidence import (
    EvidenceError, concentration, eval_cases, health_summary, parse_timestamp, requests_from_logs, stats, watch_health,
    windows)


def line(ts, rid, message, level="INFO", **extra):
    return {"timestamp": "2026-11-28T10:00:%06.3fZ" % ts, "level": level, "logger": "engine", "request_id": rid,
            "message": message, "extra": extra}


LOGS = [
    line(0.5, None, "engine ready"),
    line(1.0, "r1", "turn started", conversation_id="c1"),
    line(3.0, "r1", "turn completed", duration_ms=2000),
    line(3.0, "r1", "request completed", duration_ms=2010.5, status=200, path="/execute"),
    line(4.0, "h1", "request completed", duration_ms=1.2, status=200, path="/health"),
    line(5.0, "r2", "turn started", conversation_id="c2"),
    line(5.2, "r2", "request failed", level="ERROR", error_code="TOOL_EXECUTION_FAILED", status=500),
    line(5.2, "r2", "request completed", duration_ms=200, status=500),
    line(6.0, "r3", "turn started"),                          # in flight: not a request yet
    line(7.0, None, "brain needs a newer Engine", level="ERROR", error_code="MIGRATION_REQUIRED"),
    {"not": "an engine line"},
]


def test_requests_are_completed_request_ids_without_health_probes():
    requests, engine_errors = requests_from_logs(LOGS)
    assert [r["request_id"] for r in requests] == ["r1", "r2"]
    assert requests[0]["duration_ms"] == 2010.5 and requests[0]["conversation"] == "c1"
    assert requests[1]["error_code"] == "TOOL_EXECUTION_FAILED"
    assert engine_errors == {"MIGRATION_REQUIRED": 1}
    assert requests[0]["at"] == parse_timestamp("2026-11-28T10:00:03Z")


def test_stats_and_windows():
    requests, dummy = requests_from_logs(LOGS)
    overall = stats(requests)
    assert (overall["requests"], overall["errors"], overall["error_rate"]) == (2, 1, 0.5)
    assert overall["errors_by_code"] == {"TOOL_EXECUTION_FAILED": 1} and overall["p99_ms"] == 2010.5
    assert stats(requests, excluded_codes=["TOOL_EXECUTION_FAILED"])["error_rate"] == 0.0
    start = parse_timestamp("2026-11-28T10:00:00Z")
    found = windows(requests, start, start + 6, 4)
    assert [(x["requests"], x["errors"]) for x in found] == [(1, 0), (1, 1)]
    assert found[1]["end"] - found[1]["start"] == 2


def test_concentration_names_the_request_or_conversation():
    requests = [{"request_id": "r%d" % n, "error_code": "X", "conversation": "c1" if n < 9 else "c2", "at": 0,
                 "duration_ms": 1} for n in range(10)]
    assert concentration(requests) == {"errors": 10, "share": 0.9, "key": "conversation c1"}
    assert concentration([])["share"] == 0.0


def test_health_summary_reports_the_non_ok_streak_at_the_end():
    samples = [{"at": 0, "classification": "subsystem_failure", "failing": ["x"]},
               {"at": 10, "classification": "ok"},
               {"at": 20, "classification": "subsystem_failure", "failing": ["asset_directory"]},
               {"at": 50, "classification": "subsystem_failure", "failing": ["asset_directory"]}]
    summary = health_summary(samples)
    assert summary["non_ok_seconds"] == 30 and summary["failing"] == ["asset_directory"]
    assert not health_summary(samples[:2])["non_ok_at_end"]


JUNIT = """<testsuites><testsuite name="evals">
<testcase classname="memory" name="recall"/>
<testcase classname="memory" name="forget"><failure message="x"/></testcase>
<testcase name="tools"><error/></testcase>
<testcase name="slow"><skipped/></testcase>
</testsuite></testsuites>"""


@pytest.mark.parametrize("text, cases", [
    (JUNIT, {"memory.recall": "passed", "memory.forget": "failed", "tools": "failed", "slow": "skipped"}),
    (json.dumps({"cases": [{"name": "a", "status": "pass"}, {"name": "b", "passed": False}]}),
     {"a": "passed", "b": "failed"}),
    (json.dumps({"a": True, "b": "failed", "c": "skipped"}), {"a": "passed", "b": "failed", "c": "skipped"}),
])
def test_eval_results_in_junit_or_json(text, cases):
    assert eval_cases(text) == cases


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("<testsuite>", "not valid JUnit"), ("nope", "neither JUnit XML nor JSON"),
    ("[{\"status\": \"passed\"}]", "needs a name"), ("42", "neither a list"),
])
def test_bad_eval_results_are_named(text, message):
    with pytest.raises(EvidenceError, match=message):
        eval_cases(text)


@pytest.mark.parametrize("seconds, count, taken", [(0, None, 1), (2.0, None, 5), (0, 5, 5), (100, 3, 3)])
def test_watch_health_takes_samples_for_a_time_or_a_count(seconds, count, taken):
    moment = [1000.0]

    def sleep(pause):
        moment[0] += pause

    samples = watch_health(lambda url: {"classification": "ok"}, "u", seconds, 0.5, count=count,
                           clock=lambda: moment[0], sleep=sleep)
    assert len(samples) == taken and samples[-1]["at"] - samples[0]["at"] == 0.5 * (taken - 1)
