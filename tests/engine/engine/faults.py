"""Deliberate defects of the broken builds, kept apart so each is a pure, testable rule."""


def turn_fails(fault, error_rate, turn_number):
    """Deterministic error pattern: exactly `error_rate` of turns fail, evenly spread.

    Turn n (1-based) fails when floor(n * rate) moves past floor((n - 1) * rate).
    """
    if fault != "errors" or error_rate <= 0:
        return False
    return int(turn_number * error_rate) > int((turn_number - 1) * error_rate)


def turn_duration(fault, base_seconds, latency_factor):
    return base_seconds * latency_factor if fault == "latency" else base_seconds


def subsystem_faults(fault):
    """Subsystems a broken build reports as failing, with the reason it gives."""
    if fault == "health":
        return {"asset_directory": "error: asset index is corrupt"}
    if fault == "llm":
        return {"llm_provider": "error: provider answered 503 Service Unavailable"}
    return {}
