import hashlib
import io
import json
from datetime import datetime, timezone

import pytest

from engine.config import Config, ConfigError
from engine.jsonlog import JsonLogger, utcnow_iso
from engine.sealing import open_sealed, seal
from engine.server import ApiError, Engine


def test_config_defaults_follow_the_contract():
    config = Config.from_env({})
    assert (config.port, config.sqlite_path, config.backend, config.fault) == (8000, "/data/brain.sqlite", "sqlite", "none")


def test_database_url_selects_postgres():
    assert Config.from_env({"DATABASE_URL": "postgresql://u@127.0.0.1/b"}).backend == "postgres"


@pytest.mark.parametrize("env, message", [
    ({"ENGINE_FAULT": "meltdown"}, "ENGINE_FAULT must be one of"),
    ({"ENGINE_PORT": "eighty"}, "ENGINE_PORT must be an integer"),
    ({"ENGINE_TURN_SECONDS": "-1"}, "must not be negative"),
    ({"ENGINE_STARTUP_SECONDS": "soon"}, "must be a number"),
])
def test_bad_config_is_refused_with_the_variable_named(env, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_sealed_credentials_open_only_under_the_same_key():
    sealed = seal("key-A", "token-123")
    assert open_sealed("key-A", sealed) == "token-123"
    assert open_sealed("key-B", sealed) is None
    assert open_sealed("", sealed) is None
    assert b"token-123" not in sealed


def test_tampered_credentials_do_not_open():
    sealed = bytearray(seal("key-A", "token-123"))
    sealed[20] ^= 0xFF
    assert open_sealed("key-A", bytes(sealed)) is None


def test_log_lines_have_the_contract_fields():
    stream = io.StringIO()
    fixed = datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=timezone.utc)
    JsonLogger("engine", stream, clock=lambda: fixed).error("boom", "req-1", error_code="X", duration_ms=5.0)
    record = json.loads(stream.getvalue())
    assert record == {"timestamp": "2026-11-28T10:00:00.123456Z", "level": "ERROR", "logger": "engine",
                      "request_id": "req-1", "message": "boom", "extra": {"error_code": "X", "duration_ms": 5.0}}


def test_timestamps_are_fixed_width_so_text_order_is_time_order():
    early = utcnow_iso(datetime(2026, 1, 1, 0, 0, 0, 0, tzinfo=timezone.utc))
    late = utcnow_iso(datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=timezone.utc))
    assert len(early) == len(late) and early < late


KEY = "k-" + "9" * 30


@pytest.mark.parametrize("env, headers, allowed", [
    ({"ENGINE_KEY_HASH": hashlib.sha256(KEY.encode()).hexdigest()}, {"X-Engine-Key": KEY}, True),   # production
    ({"ENGINE_KEY_HASH": hashlib.sha256(KEY.encode()).hexdigest().upper()}, {"X-Engine-Key": KEY}, True),
    ({"ENGINE_API_KEY": KEY}, {"X-Engine-Key": KEY}, True),                                          # development
    ({"ENGINE_API_KEY": KEY}, {"X-Engine-Key": KEY + "x"}, False),
    ({"ENGINE_API_KEY": KEY}, {}, False),
    ({"ENGINE_API_KEY": KEY}, {"Authorization": "Bearer " + KEY}, False),  # the header is X-Engine-Key only
    ({}, {"X-Engine-Key": KEY}, False),                                      # no key configured: nothing passes
])
def test_every_call_but_health_needs_the_engine_key(env, headers, allowed):
    engine = Engine(Config.from_env(env), log=JsonLogger("engine", stream=io.StringIO()))
    if allowed:
        engine.authorize(headers)
    else:
        with pytest.raises(ApiError) as info:
            engine.authorize(headers)
        assert info.value.status == 401 and info.value.code == "UNAUTHORIZED"
