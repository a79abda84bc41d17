import json

import pytest

from ansible_collections.engine_ops.lifecycle.plugins.module_utils._judge.health import classify, percentile, probe, sample

OK = {"database": "ok", "llm_provider": "ok", "asset_directory": "ok"}


def doc(status="ok", subsystems=None, **extra):
    return json.dumps(dict({"status": status, "version": "2.3.1", "uptime_seconds": 3,
                            "subsystems": subsystems or OK}, **extra))


@pytest.mark.parametrize("http, body, classification, healthy, failing", [
    (200, doc(), "ok", True, []),
    (204, doc(), "ok", True, []),
    (503, doc("starting"), "starting", False, []),
    (503, doc("draining"), "draining", False, []),
    (503, doc("degraded", dict(OK, asset_directory="error: x")), "subsystem_failure", False, ["asset_directory"]),
    (503, doc("degraded", dict(OK, llm_provider="error: x")), "external_only", False, ["llm_provider"]),
    (503, doc("degraded", dict(OK, llm_provider="error", database="error")), "subsystem_failure", False,
     ["database", "llm_provider"]),
    (503, doc("error", error={"code": "MIGRATION_REQUIRED", "message": "newer brain"}), "migration_required", False,
     []),
    (200, doc("degraded"), "unhealthy", False, []),  # 2xx alone is not healthy
    (500, "<html>oops</html>", "unhealthy", False, []),
    (200, "[]", "unhealthy", False, []),
])
def test_classification(http, body, classification, healthy, failing):
    result = classify(http, body)
    assert (result["classification"], result["healthy"], result["failing"]) == (classification, healthy, failing)


def test_no_answer_is_unreachable():
    result = classify(None, None, error=ConnectionRefusedError("refused"))
    assert result["classification"] == "unreachable" and "refused" in result["reason"]


class Clock:
    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


def scripted(answers, clock, cost=0.01):
    answers = list(answers)

    def get(url, timeout):
        clock.t += cost
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer
    return get


def test_probe_waits_through_starting_until_consecutive_ok():
    clock = Clock()
    get = scripted([OSError("refused"), (503, doc("starting")), (200, doc()), (503, doc("starting")),
                    (200, doc()), (200, doc())], clock)
    result = probe(get, "http://x/health", consecutive=2, deadline=30, now=clock.now, sleep=clock.sleep,
                   rng=lambda: 0.5)
    assert result["healthy"] and result["attempts"] == 6 and result["consecutive_ok"] == 2
    assert result["classifications_seen"] == {"unreachable": 1, "starting": 2, "ok": 3}


def test_probe_backs_off_exponentially_up_to_the_cap():
    clock = Clock()
    get = scripted([OSError("refused")], clock, cost=0)
    result = probe(get, "http://x/health", deadline=5, backoff=0.1, backoff_max=0.8, jitter=0, now=clock.now,
                   sleep=clock.sleep)
    assert not result["healthy"] and "deadline of 5" in result["reason"]
    assert clock.sleeps[:5] == [0.1, 0.2, 0.4, 0.8, 0.8]
    assert clock.t == pytest.approx(5.0)  # never sleeps past the deadline


@pytest.mark.parametrize("rng_value, expected", [(0.0, 0.09), (1.0, 0.11), (0.5, 0.1)])
def test_jitter_spreads_pauses(rng_value, expected):
    clock = Clock()
    probe(scripted([OSError("x"), (200, doc())], clock, cost=0), "u", backoff=0.1, jitter=0.1, now=clock.now,
          sleep=clock.sleep, rng=lambda: rng_value)
    assert clock.sleeps[0] == pytest.approx(expected)


def test_probe_stops_at_migration_required_unless_told_to_keep_going():
    clock = Clock()
    answer = (503, doc("error", error={"code": "MIGRATION_REQUIRED", "message": "m"}))
    result = probe(scripted([answer], clock), "u", deadline=30, now=clock.now, sleep=clock.sleep)
    assert result["classification"] == "migration_required" and result["attempts"] == 1 and not result["healthy"]
    clock = Clock()
    result = probe(scripted([answer], clock), "u", deadline=2, stop_on=(), now=clock.now, sleep=clock.sleep)
    assert result["attempts"] > 1


def test_sample_reports_error_rate_and_percentiles():
    clock = Clock()
    answers = [(200, doc())] * 8 + [(503, doc("degraded", dict(OK, database="error")))] * 2
    latencies = iter([0.010, 0.020, 0.030, 0.040, 0.050, 0.060, 0.070, 0.080, 0.090, 0.500])
    answers_iter = iter(answers)

    def get(url, timeout):
        clock.t += next(latencies)
        return next(answers_iter)
    stats = sample(get, "u", 10, interval=1, now=clock.now, sleep=clock.sleep)
    assert stats["error_rate"] == 0.2 and stats["classifications"] == {"ok": 8, "subsystem_failure": 2}
    assert stats["latency_ms"]["p50"] == pytest.approx(50.0)
    assert stats["latency_ms"]["p99"] == pytest.approx(500.0) and clock.sleeps == [1] * 9


@pytest.mark.parametrize("values, share, expected", [
    ([1], 50, 1), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 100, 4), (list(range(1, 101)), 95, 95),
    (list(range(1, 101)), 99, 99),
])
def test_percentile_nearest_rank(values, share, expected):
    assert percentile(values, share) == expected
