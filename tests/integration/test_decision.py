"""rollback_decision on real reference Engines: each broken build's own logs and /health give its verdict."""

import re
import subprocess
import threading
import time
import uuid

import pytest
import requests

from ansible_run import run_module
from conftest import free_port, wait_for
from services import EngineFactory

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


@pytest.fixture(scope="module")
def baseline(docker_client, pg_params, tmp_path_factory):
    """A baseline from a healthy 2.3.1 under the same traffic, recorded once for every build judged against it (a
    file: the Engine that gave it is removed once it is written)."""
    engines = EngineFactory(docker_client, pg_params, "eo-" + uuid.uuid4().hex[:8])
    try:
        engine = engines.start("2.3.1", engines.brain("sqlite"))
        engine.wait_healthy()
        stop = threading.Event()
        traffic(engine, stop, "base")
        stop.wait(6)
        stop.set()
        path = str(tmp_path_factory.mktemp("baseline") / "baseline.json")
        result = run_module("engine_baseline", {"container": engine.container.name,
                                                "health_url": engine.url + "/health", "health_samples": 3,
                                                "health_interval": 0.5, "dest": path})
    finally:
        engines.cleanup()
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
    # judged as a release that has been deployed: its own start-up (a second of "starting", longer on a busy
    # machine) is not evidence about it
    engine.wait_started()
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
        # half of all turns fail; a window holding an odd number of them shows a little more or less than 50 %
        rate = re.match(r"error rate (\d+\.\d)% vs 0\.0% baseline for \d+ s, not improving$", result["symptom"])
        assert rate and 30 <= float(rate.group(1)) <= 70, result["symptom"]
        assert result["evidence"]["overall"]["errors_by_code"]["TOOL_EXECUTION_FAILED"] >= 2
    if build == "2.4.0-broken-llm":
        assert "llm_provider" in result["symptom"] and "outside the Engine" in result["symptom"]


def test_bad_options_are_refused_and_name_the_problem(engines, tmp_path):
    engine = engines.start("2.3.1", engines.brain("sqlite"))
    missing = run_module("rollback_decision", {"container": engine.container.name, "baseline": str(tmp_path / "nope")})
    assert missing["failed"] and "read the baseline" in missing["msg"] and "nothing was changed" in missing["msg"]
    bad_time = run_module("rollback_decision", {"container": engine.container.name, "since": "yesterday"})
    assert bad_time["failed"] and "'yesterday' is not an ISO-8601 UTC time" in bad_time["msg"]


@pytest.fixture
def prometheus(tmp_path):
    """A real Prometheus serving series backfilled with promtool: the last 10 minutes of a failing release.

    The error ratio climbs from 0.4 % to 30 % five minutes ago and stays there; p99 stays at 2 s.
    """
    now = int(time.time())
    lines = ["# HELP engine_error_ratio Errors per request.", "# TYPE engine_error_ratio gauge"]
    for stamp in range(now - 600, now, 15):
        lines.append('engine_error_ratio{engine="judged"} %s %d' % ("0.3" if stamp >= now - 300 else "0.004", stamp))
    lines += ["# HELP engine_latency_p99_ms p99 latency.", "# TYPE engine_latency_p99_ms gauge"]
    lines += ['engine_latency_p99_ms{engine="judged"} 2000 %d' % stamp for stamp in range(now - 600, now, 15)]
    lines += ["# HELP engine_requests Requests per minute.", "# TYPE engine_requests gauge"]
    lines += ['engine_requests{engine="judged"} 120 %d' % stamp for stamp in range(now - 600, now, 15)]
    source = tmp_path / "series.om"
    source.write_text("\n".join(lines) + "\n# EOF\n")
    data = tmp_path / "tsdb"
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                   check=True, capture_output=True)
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    port = free_port()
    proc = subprocess.Popen(["prometheus", "--config.file=%s" % config, "--storage.tsdb.path=%s" % data,
                             "--web.listen-address=127.0.0.1:%d" % port], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_for(lambda: requests.get(url + "/-/ready", timeout=2).status_code == 200, 60, "Prometheus ready")
        yield url, now
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_windows_from_a_prometheus_query_api(engines, prometheus, tmp_path):
    url, now = prometheus
    engine = engines.start("2.4.0", engines.brain("sqlite"))
    engine.wait_healthy()
    baseline = tmp_path / "baseline.json"
    baseline.write_text('{"stats": {"error_rate": 0.004, "p99_ms": 2000}}')
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 540))
    result = run_module("rollback_decision", {
        "container": engine.container.name, "health_url": engine.url + "/health", "baseline": str(baseline),
        "since": since, "window_seconds": 60, "prometheus": {
            "url": url, "error_rate_query": 'engine_error_ratio{engine="judged"}',
            "p99_query": 'engine_latency_p99_ms{engine="judged"}', "requests_query": 'engine_requests{engine="judged"}'}})
    assert not result.get("failed"), result.get("msg")
    assert result["evidence"]["source"] == "prometheus" and len(result["evidence"]["windows"]) >= 8
    assert result["verdict"] == "rollback" and result["fired"] == ["error_rate"]
    assert result["symptom"].startswith("error rate 30.0% vs 0.4% baseline for ")

    broken = run_module("rollback_decision", {"container": engine.container.name, "since": since,
                                              "prometheus": {"url": url, "error_rate_query": "sum(("}})
    assert broken["failed"] and "Prometheus query" in broken["msg"] and "nothing was changed" in broken["msg"]
