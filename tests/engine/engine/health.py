"""The /health document and its HTTP status, as one pure function of the Engine's state."""


def health_document(phase, version, uptime, subsystems, migration_error=None):
    """Return (http_status, body). Healthy means 200 and status == "ok", nothing else."""
    body = {"status": "ok", "version": version, "uptime_seconds": round(uptime, 3), "subsystems": dict(subsystems)}
    if phase == "migration_required":
        body["status"] = "error"
        body["error"] = {"code": "MIGRATION_REQUIRED", "message": migration_error}
        return 503, body
    if phase in ("starting", "draining"):
        body["status"] = phase
        return 503, body
    failing = sorted(name for name, state in subsystems.items() if state != "ok")
    if failing:
        body["status"] = "degraded"
        body["failing"] = failing
        return 503, body
    return 200, body
