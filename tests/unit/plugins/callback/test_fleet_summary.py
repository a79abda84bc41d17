"""The fleet summary: rows for every Engine, also those that failed early or were never reached."""

import json
import os
import time

from ansible_collections.engine_ops.lifecycle.plugins.callback.fleet_summary import (
    OPERATIONS, complete, render, write_report)

ROLLBACK_COLUMNS = dict(OPERATIONS)["rollback"]


def test_engines_without_a_reported_result_get_a_row_saying_why():
    rows = {"e1": {"host": "e1", "result": "rolled_back"}}
    done = complete(rows, ["e1", "e2", "e3", "e4"], processed={"e1": 1, "e2": 1, "e3": 1},
                    failures={"e2": 1}, dark={"e3": 1})
    assert [done[h]["result"] for h in ("e1", "e2", "e3", "e4")] == ["rolled_back", "failed", "unreachable", "not_run"]


def test_the_table_has_a_header_a_rule_and_one_aligned_line_per_engine():
    rows = {"b": {"host": "b", "from": "engine:2.4.0", "to": "engine:2.3.1", "data_rollback": True,
                  "downtime_seconds": 1.25, "rows_exported": 12, "external_calls": {"mcp-files": 2, "mcp-search": 1},
                  "result": "rolled_back"},
            "a": {"host": "a", "result": "not_run"}}
    lines = render(rows, ROLLBACK_COLUMNS).splitlines()
    assert lines[0].split() == ["host", "from", "to", "data", "downtime", "s", "rows", "exported", "external", "calls",
                                "result"]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["a", "-", "-", "-", "-", "-", "-", "not_run"]
    assert lines[3].split() == ["b", "engine:2.4.0", "engine:2.3.1", "yes", "1.25", "12", "3", "rolled_back"]
    assert lines[2].index("not_run") == lines[3].index("rolled_back")


def test_the_report_is_private_json(tmp_path):
    path = write_report(str(tmp_path / "reports"), "rollback", {"e1": {"host": "e1"}},
                        now=lambda: time.gmtime(0))
    assert os.path.basename(path) == "rollback-19700101T000000Z.json"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert json.load(open(path)) == {"operation": "rollback", "engines": [{"host": "e1"}]}


def test_runs_finishing_in_the_same_second_keep_their_own_reports(tmp_path):
    """Slices of one AWX job write into one report directory and may finish in the same second."""
    paths = [write_report(str(tmp_path), "rollback", {h: {"host": h}}, now=lambda: time.gmtime(0)) for h in ("a", "b", "c")]
    names = ["rollback-19700101T000000Z.json", "rollback-19700101T000000Z-2.json", "rollback-19700101T000000Z-3.json"]
    assert [os.path.basename(p) for p in paths] == names
    assert [json.load(open(p))["engines"][0]["host"] for p in paths] == ["a", "b", "c"]
