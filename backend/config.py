"""Configuration: the only module that reads the environment (SPEC §11.1–2)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

_N = TypeVar("_N", int, float)


class ConfigError(ValueError):
    """A variable of the environment could not be parsed; the message names it."""


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _at_least(value: _N, lowest: float, name: str) -> _N:
    """`value` when it is at least `lowest` (a TTL of 0 would delete what it should keep)."""
    if value < lowest:
        raise ConfigError(f"{name} must be at least {lowest:g}, got {value:g}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    port = _int(env, name, default)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be a TCP port (0-65535), got {port}")
    return port


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class Rate:
    """A limit written COUNT/SECONDS (SPEC §11.2)."""

    count: int
    seconds: int

    @classmethod
    def parse(cls, name: str, raw: str) -> Rate:
        count, sep, seconds = raw.partition("/")
        try:
            rate = cls(int(count), int(seconds))
        except ValueError:
            raise ConfigError(f"{name} must be COUNT/SECONDS, got {raw!r}") from None
        if not sep or rate.count <= 0 or rate.seconds <= 0:
            raise ConfigError(f"{name} must be COUNT/SECONDS with positive numbers, got {raw!r}")
        return rate


def _rate(env: Mapping[str, str], name: str, default: str) -> Rate:
    return Rate.parse(name, env.get(name) or default)


def _provider_secret(env: Mapping[str, str], provider: str) -> str:
    """CALLUP_PROVIDER_SECRET; unset means a random key per process, never a documented default."""
    secret = (env.get("CALLUP_PROVIDER_SECRET") or "").strip()
    if secret:
        return secret
    if provider == "http":
        # A real provider must sign its callbacks with a key both sides know; a random one would
        # refuse every callback, a well-known one would let anybody change orders.
        raise ConfigError("CALLUP_PROVIDER_SECRET must be set when CALLUP_PROVIDER=http")
    # The simulated provider reports in-process and signs nothing, so nobody needs to know this key:
    # /v1/provider/events stays closed instead of open to whoever read the docs.
    return _random_secret()


def _random_secret() -> str:
    return os.urandom(32).hex()


def _replica_url(env: Mapping[str, str]) -> str | None:
    """DATABASE_REPLICA_URL: a PostgreSQL URL, and only beside DATABASE_URL (the embedded server
    starts on a new port each time, so nothing can replicate it)."""
    url = (env.get("DATABASE_REPLICA_URL") or "").strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
        raise ConfigError(f"DATABASE_REPLICA_URL must be a postgresql:// URL, got {url!r}")
    if not env.get("DATABASE_URL"):
        raise ConfigError("DATABASE_REPLICA_URL needs DATABASE_URL (the primary it replicates)")
    return url


def _jwt_keys(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """JWT_SECRETS=kid1:s1,kid2:s2 (first signs, all verify); JWT_SECRET=s alone is kid k1."""
    many = env.get("JWT_SECRETS")
    if many:
        keys = []
        for item in many.split(","):
            kid, sep, secret = item.strip().partition(":")
            if not sep or not kid or not secret:
                raise ConfigError("JWT_SECRETS must be kid:secret,kid:secret")
            keys.append((kid, secret))
        return tuple(keys)
    single = env.get("JWT_SECRET")
    if single:
        return (("k1", single),)
    # No secret configured: a per-process random key keeps a dev server safe but makes tokens
    # instance-local, so run.py refuses this for several instances (README).
    return (("dev", os.urandom(32).hex()),)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Every setting of the service, typed; tests derive variants with dataclasses.replace."""

    database_url: str | None = None
    database_replica_url: str | None = None   # lag-tolerant reads go there (SPEC §13.2)
    replica_retry: float = 5.0        # a lost replica is tried again after this
    redis_url: str | None = None
    redis_prefix: str = ""
    redis_cluster: bool = False       # REDIS_URL names any node of a Redis Cluster (SPEC §13.1)
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_hot_pool_size: int = 10        # raw asyncpg: identities, bookings, chat messages, waybill records
    redis_pool_size: int = 256        # Redis connections per instance; a request past them waits…
    redis_pool_timeout: float = 2.0   # …this long, then Redis counts as unavailable (503, never 500)
    max_body: int = 1 << 20
    max_photo: int = 5 << 20
    log_level: str = "INFO"
    trust_proxy: bool = False
    allowed_origins: tuple[str, ...] = ()
    cookie_secure: bool = False
    session_ttl: int = 30 * 24 * 3600
    jwt_keys: tuple[tuple[str, str], ...] = field(default_factory=lambda: (("k1", "test-secret-" + "x" * 32),))
    access_ttl: float = 3600.0
    refresh_ttl: float = 2592000.0
    password_min_length: int = 8
    argon2_memory_kib: int = 65536
    argon2_time_cost: int = 3
    login_failure_limit: Rate = Rate(5, 900)       # per account
    login_address_limit: Rate = Rate(50, 900)      # per client address: an office behind one NAT
    reservation_ttl: float = 900.0
    sweep_interval: float = 2.0
    callup_code_ttl: float = 300.0
    callup_sim_delay: float = 2.0
    callup_call_timeout: float = 60.0
    callup_max_attempts: int = 3
    callup_prefixes: tuple[str, ...] = ("7487260", "7487261")
    callup_phone_limit: Rate = Rate(3, 600)
    callup_app_rate: Rate = Rate(60, 60)
    callup_provider: str = "simulated"
    callup_provider_url: str | None = None
    callup_provider_secret: str = field(default_factory=_random_secret)
    ws_heartbeat: float = 30.0
    ws_send_buffer: int = 1 << 20
    ws_rate: int = 20
    ws_auth_timeout: float = 10.0
    history_size: int = 100           # events kept per stream channel (SPEC §12.1)
    history_ttl: float = 300.0        # and at most this old
    presence_ttl: float = 30.0        # a killed instance's users leave within this (SPEC §12.4)
    instance: str = ""
    header_timeout: float = 10.0      # a connection without complete request headers is closed
    host: str = "127.0.0.1"           # listen address of `run.py serve` (--host wins)
    port: int = 8080                  # (--port wins)
    data_dir: str = "./var"           # embedded servers' data (--data-dir wins)
    pg_port: int = 0                  # embedded PostgreSQL's port; 0 = a free one picked at start
    valkey_port: int = 0              # embedded Valkey's port; 0 = a free one picked at start

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        """Read and check every variable once; a bad value fails at start with its name."""
        provider = env.get("CALLUP_PROVIDER", "simulated")
        if provider not in {"simulated", "http"}:
            raise ConfigError("CALLUP_PROVIDER must be simulated or http")
        if _bool(env, "REDIS_CLUSTER", False) and not env.get("REDIS_URL"):
            # The embedded Valkey started without REDIS_URL is one plain server, never a cluster.
            raise ConfigError("REDIS_CLUSTER=true needs REDIS_URL (any node of the cluster)")
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            database_replica_url=_replica_url(env),
            replica_retry=_seconds(env, "DATABASE_REPLICA_RETRY", 5),
            redis_url=env.get("REDIS_URL") or None,
            redis_prefix=env.get("REDIS_PREFIX", ""),
            redis_cluster=_bool(env, "REDIS_CLUSTER", False),
            db_pool_size=_int(env, "DB_POOL_SIZE", 10),
            db_max_overflow=_int(env, "DB_MAX_OVERFLOW", 10),
            db_hot_pool_size=_int(env, "DB_HOT_POOL_SIZE", 10),
            redis_pool_size=_int(env, "REDIS_POOL_SIZE", 256),
            redis_pool_timeout=_seconds(env, "REDIS_POOL_TIMEOUT", 2),
            max_body=_int(env, "MAX_BODY_SIZE", 1 << 20),
            max_photo=_int(env, "MAX_PHOTO_SIZE", 5 << 20),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            trust_proxy=_bool(env, "TRUST_PROXY", False),
            allowed_origins=_list(env, "ALLOWED_ORIGINS"),
            cookie_secure=_bool(env, "COOKIE_SECURE", False),
            session_ttl=_int(env, "SESSION_TTL", 30 * 24 * 3600),
            jwt_keys=_jwt_keys(env),
            access_ttl=_seconds(env, "ACCESS_TTL", 3600),
            refresh_ttl=_seconds(env, "REFRESH_TTL", 2592000),
            password_min_length=_int(env, "PASSWORD_MIN_LENGTH", 8),
            argon2_memory_kib=_int(env, "ARGON2_MEMORY_KIB", 65536),
            argon2_time_cost=_int(env, "ARGON2_TIME_COST", 3),
            login_failure_limit=_rate(env, "LOGIN_FAILURE_LIMIT", "5/900"),
            login_address_limit=_rate(env, "LOGIN_ADDRESS_LIMIT", "50/900"),
            reservation_ttl=_seconds(env, "RESERVATION_TTL", 900),
            sweep_interval=_seconds(env, "SWEEP_INTERVAL", 2),
            callup_code_ttl=_seconds(env, "CALLUP_CODE_TTL", 300),
            callup_sim_delay=_seconds(env, "CALLUP_SIM_DELAY", 2),
            callup_call_timeout=_seconds(env, "CALLUP_CALL_TIMEOUT", 60),
            callup_max_attempts=_int(env, "CALLUP_MAX_ATTEMPTS", 3),
            callup_prefixes=_list(env, "CALLUP_PREFIXES", ("7487260", "7487261")),
            callup_phone_limit=_rate(env, "CALLUP_PHONE_LIMIT", "3/600"),
            callup_app_rate=_rate(env, "CALLUP_APP_RATE", "60/60"),
            callup_provider=provider,
            callup_provider_url=env.get("CALLUP_PROVIDER_URL") or None,
            callup_provider_secret=_provider_secret(env, provider),
            ws_heartbeat=_seconds(env, "WS_HEARTBEAT", 30),
            # 0 would switch aiohttp's timer off and hold half-sent requests forever (issue 10).
            header_timeout=_at_least(_seconds(env, "HEADER_TIMEOUT", 10), 0.001, "HEADER_TIMEOUT"),
            host=env.get("HOST") or "127.0.0.1",
            port=_port(env, "PORT", 8080),
            data_dir=env.get("DATA_DIR") or "./var",
            pg_port=_port(env, "PG_PORT", 0),
            valkey_port=_port(env, "VALKEY_PORT", 0),
            ws_send_buffer=_int(env, "WS_SEND_BUFFER", 1 << 20),
            ws_rate=_int(env, "WS_RATE", 20),
            ws_auth_timeout=_seconds(env, "WS_AUTH_TIMEOUT", 10),
            history_size=_at_least(_int(env, "HISTORY_SIZE", 100), 0, "HISTORY_SIZE"),
            history_ttl=_at_least(_seconds(env, "HISTORY_TTL", 300), 0.001, "HISTORY_TTL"),
            presence_ttl=_at_least(_seconds(env, "PRESENCE_TTL", 30), 0.001, "PRESENCE_TTL"),
        )
