"""The drill report: phases from markers, findings, history comparison, and the four renderings."""

import json
import xml.etree.ElementTree as ET

from ansible_collections.engine_ops.lifecycle.plugins.plugin_utils._drill_report import (
    Timeline, build_report, read_history, render_junit, render_markdown, render_svg, write_reports)

PHASES = [("provision", 2.0), ("seed", 1.0), ("snapshot", 1.0), ("upgrade", 3.0), ("detect", 4.0), ("rollback", 6.0),
          ("verify", 1.0), ("report", 0.5)]


def timeline(hosts=("a", "b"), slow=None, fail_in=None):
    tl = Timeline(start=100.0)
    for host in hosts:
        now = 100.5
        for name, seconds in PHASES:
            seconds = (slow or {}).get(name, seconds)
            tl.task_start(host, "Drill phase - " + name, now)
            tl.task_end(host, "Drill phase - " + name, now + 0.01)
            tl.task_start(host, "work of " + name, now + 0.01)
            tl.task_end(host, "work of " + name, now + seconds, failed=(name == fail_in))
            now += seconds
    return tl


SETTINGS = {"id": "Q4", "production_version": "2.3.1", "broken_version": "2.4.0-bad", "rto_budget": 60}


def test_phases_are_contiguous_and_add_up_to_the_drill():
    report = build_report(timeline(), {"a": {"result": "passed"}, "b": {"result": "passed"}}, SETTINGS, [], 120.0)
    host = report["hosts"]["a"]
    assert [p["name"] for p in host["phases"]] == [n for n, s in PHASES]
    assert host["total_seconds"] == sum(s for n, s in PHASES)
    assert host["recovery_seconds"] == 10.0  # detect + rollback
    assert report["wall_seconds"] == 20.0 and report["result"] == "passed"
    assert report["slowest_steps"][0]["task"] == "work of rollback"
    assert report["findings"][0].startswith("slowest phase: rollback on ")
    assert "first drill in this history" in report["findings"][-1]


def test_a_failed_host_or_a_blown_budget_fails_the_drill():
    results = {"a": {"result": "passed"}, "b": {"result": "failed", "reason": "rollback: no usable snapshot"}}
    report = build_report(timeline(fail_in="rollback"), results, SETTINGS, [], 120.0)
    assert report["result"] == "failed" and report["failed_hosts"] == ["b"]
    assert report["findings"][0] == "FAILED on b: rollback: no usable snapshot"
    slow = build_report(timeline(slow={"rollback": 70.0}), {"a": {"result": "passed"}, "b": {"result": "passed"}},
                        SETTINGS, [], 200.0)
    assert slow["result"] == "failed" and slow["over_budget"] == ["a", "b"]
    assert any("over the 60 s budget" in f for f in slow["findings"])


def test_each_phase_is_compared_with_the_previous_drill():
    previous = [{"id": "Q3", "phase_max": dict(PHASES)}]
    report = build_report(timeline(slow={"rollback": 12.0}), {"a": {"result": "passed"}, "b": {"result": "passed"}},
                          SETTINGS, previous, 130.0)
    regressed = [c for c in report["changes"] if c["regressed"]]
    assert [(c["phase"], c["previous"], c["seconds"], c["change_pct"]) for c in regressed] == [("rollback", 6.0, 12.0, 100)]
    assert "regressed since drill Q3: rollback 6.0 s -> 12.0 s (+100%)" in report["findings"]
    calm = build_report(timeline(), {"a": {"result": "passed"}}, SETTINGS, previous, 120.0)
    assert "no phase regressed since drill Q3" in calm["findings"]


def test_renderings_and_history(tmp_path):
    results = {"a": {"result": "passed"}, "b": {"result": "failed", "reason": "verify: brain differs"}}
    report = build_report(timeline(fail_in="verify"), results, SETTINGS, [], 120.0)
    markdown = render_markdown(report)
    assert markdown.startswith("# Rollback drill Q4: FAILED") and "| a | 2.0 | 1.0 |" in markdown
    suite = ET.fromstring(render_junit(report)).find("testsuite")
    assert suite.get("tests") == str(2 * (len(PHASES) + 1) + 1) and suite.get("failures") == "3"
    svg = ET.fromstring(render_svg(report))
    assert svg.tag.endswith("svg") and len(svg.findall("{http://www.w3.org/2000/svg}rect")) > 2 * len(PHASES)
    history = str(tmp_path / "drills" / "history.jsonl")
    paths = write_reports(report, str(tmp_path / "reports"), history)
    assert sorted(paths) == ["json", "junit", "markdown", "svg"]
    assert json.load(open(paths["json"]))["id"] == "Q4"
    assert read_history(history)[0]["phase_max"]["rollback"] == 6.0
