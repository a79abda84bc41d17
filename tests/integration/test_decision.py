"""rollback_decision on real reference Engines: each broken build's own logs and /health give its verdict."""

import threading

import pytest

from ansible_run import run_module

TURN = 0.2  # seconds per turn: enough requests per window for the rates to mean something


def traffic(engine, stop, prefix):
    """Turns one after another until stopped, as users would send them."""
    def run():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                engine.execute("turn %d" % n, duration=TURN, request_id="%s-%d" % (prefix, n))
            except Exception:  # pylint: disable=broad-except
                stop.wait(0.2)  # a crashed or refusing Engine: keep trying like a client would
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def baseline(engines, tmp_path):
    """A baseline from a healthy 2.3.1 under the same traffic."""
    engine = engines.start("2.3.1", engines.brain("sqlite"))
    engine.wait_healthy()
    stop = threading.Event()
    traffic(engine, stop, "base")
    stop.wait(6)
    stop.set()
    path = str(tmp_path / "baseline.json")
    result = run_module("engine_baseline", {"container": engine.container.name, "health_url": engine.url + "/health",
                                            "health_samples": 3, "health_interval": 0.5, "dest": path})
    assert not result.get("failed"), result.get("msg")
    assert result["baseline"]["stats"]["requests"] >= 10 and result["baseline"]["stats"]["error_rate"] == 0
    return path, result["baseline"]


@pytest.mark.parametrize("build, verdict, fired, guard", [
    ("2.4.0", "hold", [], None),
    ("2.4.0-broken-errors", "rollback", ["error_rate"], None),
    ("2.4.0-broken-latency", "rollback", ["latency_p99"], None),
    ("2.4.0-broken-health", "rollback", ["health"], None),
    ("2.4.0-broken-crash", "rollback", ["health"], None),
    ("2.4.0-broken-llm", "hold", [], "external"),
])
def test_each_build_gets_the_right_verdict_from_its_real_evidence(engines, baseline, build, verdict, fired, guard):
    path, dummy = baseline
    engine = engines.start(build, engines.brain("sqlite"))
    stop = threading.Event()
    traffic(engine, stop, "judged")
    try:
        result = run_module("rollback_decision", {
            "container": engine.container.name, "health_url": engine.url + "/health", "baseline": path,
            "observe_seconds": 7, "health_interval": 0.5, "window_seconds": 3, "min_requests": 2,
            "consecutive_windows": 2, "health_grace_seconds": 3})
    finally:
        stop.set()
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert (result["verdict"], result["fired"]) == (verdict, fired), (result["symptom"], result["rules"])
    assert result["rollback"] is (verdict == "rollback")
    if guard:
        assert guard in [r["guard"] for r in result["rules"]]
    if build == "2.4.0-broken-errors":
        assert result["symptom"].startswith("error rate 50.0% vs 0.0% baseline for")
        assert result["evidence"]["overall"]["errors_by_code"]["TOOL_EXECUTION_FAILED"] >= 2
    if build == "2.4.0-broken-llm":
        assert "llm_provider" in result["symptom"] and "outside the Engine" in result["symptom"]


def test_bad_options_are_refused_and_name_the_problem(engines, tmp_path):
    engine = engines.start("2.3.1", engines.brain("sqlite"))
    missing = run_module("rollback_decision", {"container": engine.container.name, "baseline": str(tmp_path / "nope")})
    assert missing["failed"] and "read the baseline" in missing["msg"] and "nothing was changed" in missing["msg"]
    bad_time = run_module("rollback_decision", {"container": engine.container.name, "since": "yesterday"})
    assert bad_time["failed"] and "'yesterday' is not an ISO-8601 UTC time" in bad_time["msg"]
