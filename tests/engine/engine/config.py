"""Engine settings, read from environment variables only (as the real Engine is configured)."""

import os
from dataclasses import dataclass

FAULTS = ("none", "health", "errors", "latency", "crash", "llm")


class ConfigError(ValueError):
    pass


def _float(env, name, default):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError("%s must be a number, got %r" % (name, raw)) from None
    if value < 0:
        raise ConfigError("%s must not be negative, got %r" % (name, raw))
    return value


@dataclass(frozen=True)
class Config:
    version: str
    fault: str
    bind: str
    port: int
    sqlite_path: str
    database_url: str
    asset_dir: str
    startup_seconds: float
    turn_seconds: float
    error_rate: float
    latency_factor: float
    key_hash: str
    api_key: str
    encryption_key: str

    @property
    def backend(self):
        return "postgres" if self.database_url else "sqlite"

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        fault = env.get("ENGINE_FAULT", "none") or "none"
        if fault not in FAULTS:
            raise ConfigError("ENGINE_FAULT must be one of %s, got %r" % (", ".join(FAULTS), fault))
        try:
            port = int(env.get("ENGINE_PORT") or env.get("PORT") or 8000)
        except ValueError:
            raise ConfigError("ENGINE_PORT must be an integer") from None
        return cls(
            version=env.get("ENGINE_VERSION", "0.0.0-dev"),
            fault=fault,
            bind=env.get("ENGINE_BIND", "0.0.0.0"),
            port=port,
            sqlite_path=env.get("SQLITE_DB_PATH", "/data/brain.sqlite"),
            database_url=env.get("DATABASE_URL", ""),
            asset_dir=env.get("ASSET_DIR", "/data/assets"),
            startup_seconds=_float(env, "ENGINE_STARTUP_SECONDS", 1.0),
            turn_seconds=_float(env, "ENGINE_TURN_SECONDS", 2.0),
            error_rate=min(_float(env, "ENGINE_FAULT_ERROR_RATE", 0.5), 1.0),
            latency_factor=_float(env, "ENGINE_FAULT_LATENCY_FACTOR", 5.0),
            key_hash=env.get("ENGINE_KEY_HASH", ""),
            api_key=env.get("ENGINE_API_KEY", ""),
            encryption_key=env.get("AD_ENCRYPTION_KEY", ""),
        )
