"""The rollback decision: every rule and guard, table-driven, on synthetic evidence."""

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.decision import decide

BASELINE = {"error_rate": 0.004, "p99_ms": 5000.0}
HEALTHY = {"samples": 10, "classifications": {"ok": 10}, "non_ok_at_end": False}


def w(rate, p99=4000.0, requests=40):
    return {"requests": requests, "error_rate": rate, "p99_ms": p99, "errors_by_code": {}}


def health(classification, seconds, failing=()):
    return {"samples": 10, "classifications": {classification: 10}, "non_ok_at_end": True,
            "non_ok_seconds": seconds, "non_ok_classification": classification, "failing": list(failing)}


def rule(result, name):
    return [r for r in result["rules"] if r["rule"] == name][0]


@pytest.mark.parametrize("case, windows, kwargs, verdict, fired, guard", [
    ("healthy release", [w(0.0)] * 5, {}, "hold", [], None),
    ("error rate breached, sustained, not improving", [w(0.0), w(0.31), w(0.33), w(0.30)], {}, "rollback",
     ["error_rate"], None),
    ("one outlier window in the middle", [w(0.0), w(0.4), w(0.0), w(0.0)], {}, "hold", [], "outlier"),
    ("a breach that has lasted one window so far", [w(0.0), w(0.0), w(0.4)], {}, "inconclusive", [], None),
    ("improving sharply", [w(0.6), w(0.5), w(0.1)], {}, "hold", [], "improving"),
    ("below the 5 % on-call threshold", [w(0.04)] * 4, {}, "hold", [], None),
    ("above 5 % but within 2x a noisy baseline", [w(0.07)] * 4, {"baseline": {"error_rate": 0.04}}, "hold", [], None),
    ("windows too small to judge", [w(1.0, requests=2)] * 4, {}, "hold", [], None),
    ("error rate change announced", [w(0.3)] * 4, {"expected_changes": ["error_rate"]}, "hold", [], "expected"),
    ("errors local to one conversation", [w(0.3)] * 4,
     {"concentration": {"errors": 30, "share": 0.9, "key": "conversation c-1"}}, "hold", [], "local"),
    ("p99 beyond 2x baseline", [w(0.0, 4000), w(0.0, 12000), w(0.0, 12500)], {}, "rollback", ["latency_p99"], None),
    ("latency change announced", [w(0.0, 12000)] * 3, {"expected_changes": ["latency"]}, "hold", [], "expected"),
])
def test_error_and_latency_rules(case, windows, kwargs, verdict, fired, guard):
    args = dict(baseline=BASELINE, health=HEALTHY)
    args.update(kwargs)
    result = decide(windows, 60, **args)
    assert (result["verdict"], result["fired"]) == (verdict, fired), case
    if guard:
        assert guard in [r["guard"] for r in result["rules"]], case


def test_the_symptom_line_carries_the_numbers():
    result = decide([w(0.0)] + [w(0.31)] * 6, 60, baseline=BASELINE, health=HEALTHY)
    assert result["symptom"] == "error rate 31.0% vs 0.4% baseline for 6 min, not improving"
    numbers = rule(result, "error_rate")["numbers"]
    assert numbers["threshold"] == 0.05 and numbers["breaching_windows"] == 6 and not numbers["improving"]


@pytest.mark.parametrize("case, health_, verdict, guard", [
    ("non-ok beyond the grace period", health("subsystem_failure", 240, ["asset_directory"]), "rollback", None),
    ("non-ok but within the grace period", health("subsystem_failure", 30, ["asset_directory"]), "inconclusive", None),
    ("down: unreachable beyond the grace period", health("unreachable", 600), "rollback", None),
    ("only llm_provider fails: outside the Engine", health("external_only", 600, ["llm_provider"]), "hold", "external"),
    ("health change announced", health("subsystem_failure", 600, ["asset_directory"]), "hold", "expected"),
])
def test_health_rule(case, health_, verdict, guard):
    expected = ["health"] if "announced" in case else []
    result = decide([w(0.0)] * 3, 60, baseline=BASELINE, health=health_, expected_changes=expected)
    assert result["verdict"] == verdict, case
    assert rule(result, "health")["guard"] == guard
    if verdict == "rollback":
        assert result["symptom"].startswith("/health %s" % health_["non_ok_classification"])


def test_errors_during_an_llm_provider_outage_are_attributed_to_it():
    result = decide([w(1.0)] * 4, 60, baseline=BASELINE, health=health("external_only", 600, ["llm_provider"]))
    assert result["verdict"] == "hold" and rule(result, "error_rate")["guard"] == "external"
    assert "outside the Engine" in result["symptom"]


@pytest.mark.parametrize("before, now, expected, verdict", [
    ({"a": "passed", "b": "passed"}, {"a": "passed", "b": "failed"}, [], "rollback"),
    ({"a": "passed", "b": "failed"}, {"a": "passed", "b": "failed"}, [], "hold"),      # failed before too
    ({"a": "passed"}, {"a": "passed", "new": "failed"}, [], "hold"),                   # no baseline for it
    ({"a": "passed", "b": "passed"}, {"a": "passed", "b": "failed"}, ["eval:b"], "hold"),
    ({"a": "passed"}, {"a": "skipped"}, [], "hold"),
])
def test_eval_rule_compares_case_by_case(before, now, expected, verdict):
    result = decide([w(0.0)] * 3, 60, baseline=BASELINE, health=HEALTHY,
                    evals={"baseline": before, "now": now}, expected_changes=expected)
    assert result["verdict"] == verdict
    if verdict == "rollback":
        assert result["symptom"] == "1 eval case(s) that passed before now fail: b"


@pytest.mark.parametrize("reports, verdict", [
    ([{"summary": "agents forget everything", "confirmed": True}], "rollback"),
    ([{"summary": "one user says it is slow", "confirmed": False}], "hold"),
])
def test_customer_reports_count_once_confirmed(reports, verdict):
    result = decide([w(0.0)] * 3, 60, baseline=BASELINE, health=HEALTHY, customer_reports=reports)
    assert result["verdict"] == verdict


@pytest.mark.parametrize("action, rollback", [("rollback", True), ("hold", False)])
def test_inconclusive_rolls_back_unless_configured_otherwise(action, rollback):
    result = decide([w(0.0), w(0.5)], 60, baseline=BASELINE, health=HEALTHY, config={"inconclusive_action": action})
    assert result["verdict"] == "inconclusive" and result["rollback"] is rollback


def test_without_a_baseline_latency_is_not_judged_but_the_error_threshold_still_is():
    result = decide([w(0.4, 99000)] * 3, 60, baseline=None, health=HEALTHY)
    assert result["fired"] == ["error_rate"]
    assert rule(result, "latency_p99")["detail"] == "no baseline p99: latency not judged"
