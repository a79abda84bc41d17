import pytest

from engine import faults
from engine.health import health_document

OK = {"database": "ok", "llm_provider": "ok", "asset_directory": "ok"}


@pytest.mark.parametrize("rate, turns, expected_failures", [
    (0.5, 10, 5), (0.25, 8, 2), (1.0, 7, 7), (0.0, 9, 0), (0.1, 20, 2),
])
def test_error_fault_fails_exactly_the_configured_share(rate, turns, expected_failures):
    failed = [n for n in range(1, turns + 1) if faults.turn_fails("errors", rate, n)]
    assert len(failed) == expected_failures


def test_error_pattern_is_spread_not_bunched():
    failed = [n for n in range(1, 11) if faults.turn_fails("errors", 0.5, n)]
    assert failed == [2, 4, 6, 8, 10]


@pytest.mark.parametrize("fault", ["none", "health", "latency", "crash", "llm"])
def test_only_the_errors_fault_fails_turns(fault):
    assert not any(faults.turn_fails(fault, 0.5, n) for n in range(1, 20))


@pytest.mark.parametrize("fault, expected", [("latency", 10.0), ("none", 2.0), ("errors", 2.0)])
def test_latency_fault_multiplies_turn_duration(fault, expected):
    assert faults.turn_duration(fault, 2.0, 5.0) == expected


@pytest.mark.parametrize("fault, failing", [
    ("health", {"asset_directory"}), ("llm", {"llm_provider"}), ("none", set()), ("errors", set()),
])
def test_subsystem_faults(fault, failing):
    assert set(faults.subsystem_faults(fault)) == failing


def test_healthy_means_200_and_status_ok():
    status, body = health_document("serving", "2.3.1", 12.5, OK)
    assert status == 200
    assert body == {"status": "ok", "version": "2.3.1", "uptime_seconds": 12.5, "subsystems": OK}


@pytest.mark.parametrize("phase", ["starting", "draining"])
def test_starting_and_draining_answer_503_with_the_phase(phase):
    status, body = health_document(phase, "2.3.1", 1, OK)
    assert (status, body["status"]) == (503, phase)


def test_failing_subsystem_is_named():
    subsystems = dict(OK, llm_provider="error: provider down")
    status, body = health_document("serving", "2.4.0", 1, subsystems)
    assert status == 503
    assert body["status"] == "degraded"
    assert body["failing"] == ["llm_provider"]


def test_migration_required_carries_the_error_code():
    status, body = health_document("migration_required", "2.3.1", 1, OK, "brain is newer")
    assert status == 503
    assert body["error"] == {"code": "MIGRATION_REQUIRED", "message": "brain is newer"}
