"""JSON-lines logging to stdout, in the shape the Engine's operators parse."""

import json
import sys
import threading
from datetime import datetime, timezone


def utcnow_iso(now=None):
    """Fixed-width ISO-8601 UTC timestamp, so that text comparison orders correctly."""
    moment = now or datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JsonLogger:
    """Writes one JSON object per line with timestamp, level, logger, request_id, message, extra."""

    _lock = threading.Lock()

    def __init__(self, name, stream=None, clock=None):
        self.name = name
        self.stream = stream or sys.stdout
        self.clock = clock

    def child(self, suffix):
        return JsonLogger(self.name + "." + suffix, self.stream, self.clock)

    def log(self, level, message, request_id=None, **extra):
        record = {
            "timestamp": utcnow_iso(self.clock() if self.clock else None),
            "level": level,
            "logger": self.name,
            "request_id": request_id,
            "message": message,
            "extra": extra,
        }
        line = json.dumps(record, sort_keys=False, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def info(self, message, request_id=None, **extra):
        self.log("INFO", message, request_id, **extra)

    def warning(self, message, request_id=None, **extra):
        self.log("WARNING", message, request_id, **extra)

    def error(self, message, request_id=None, **extra):
        self.log("ERROR", message, request_id, **extra)

    def critical(self, message, request_id=None, **extra):
        self.log("CRITICAL", message, request_id, **extra)
