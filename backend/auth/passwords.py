"""Password hashing (argon2id, off the event loop) and the password fingerprint of tokens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import lru_cache

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend import keys
from backend.config import Config
from backend.errors import field_error

# A real hash to verify against when the account does not exist, so a missing login costs the
# same time as a wrong password (no user enumeration by timing).
_DUMMY_PASSWORD = "not-a-real-password"


@lru_cache(maxsize=8)
def _hasher(memory_kib: int, time_cost: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hasher(config: Config) -> PasswordHasher:
    return _hasher(config.argon2_memory_kib, config.argon2_time_cost)


@lru_cache(maxsize=8)
def _dummy_hash(memory_kib: int, time_cost: int) -> str:
    return _hasher(memory_kib, time_cost).hash(_DUMMY_PASSWORD)


def hashing_pool() -> ThreadPoolExecutor:
    """The threads argon2 runs in: one core fewer than the machine has.

    argon2 releases the GIL and keeps a core busy for its whole run; with as many hashing threads
    as cores (the default executor has cores + 4), 50 concurrent logins starve the event loop's
    thread of CPU and every other request waits (measured by scripts/bench/auth.py). No thread
    starts before the first hash, so building one does no work.
    """
    return ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="argon2")


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    """Shut the app's hashing pool down with the app (auth.setup made it, so hooks can hold it)."""
    yield
    # Off the loop: a hash still running finishes first; queued ones are dropped with the app.
    await asyncio.to_thread(app[keys.PASSWORD_POOL].shutdown, wait=True, cancel_futures=True)


def check_length(config: Config, password: str, field: str = "password") -> None:
    """400 when the password is shorter than PASSWORD_MIN_LENGTH (every surface)."""
    if len(password) < config.password_min_length:
        raise field_error(field, f"Пароль должен содержать не менее {config.password_min_length} символов.")


async def hash_password(config: Config, password: str, pool: Executor | None = None) -> str:
    """argon2id hash, computed in `pool` (the app's PASSWORD_POOL; None: the loop's default
    executor, for the CLI and tests) — hashing must never block the loop."""
    return await asyncio.get_running_loop().run_in_executor(pool, hasher(config).hash, password)


def _verify(config: Config, password_hash: str | None, password: str) -> bool:
    target = password_hash or _dummy_hash(config.argon2_memory_kib, config.argon2_time_cost)
    try:
        ok = hasher(config).verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


async def verify_password(config: Config, password_hash: str | None, password: str,
                          pool: Executor | None = None) -> bool:
    """True when `password` matches; a None hash (no such user) still costs one verification.
    Runs in `pool`, like hash_password."""
    return await asyncio.get_running_loop().run_in_executor(pool, _verify, config, password_hash, password)


def password_fingerprint(secret: str, password_hash: str) -> str:
    """Keyed fingerprint of the current hash: any change of the hash invalidates older tokens.

    Keyed with the secret of the token's own `kid`, so rotating the signing key does not
    invalidate tokens that the old key still verifies.
    """
    return hmac.new(secret.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:16]


def stored_fingerprint(config: Config, password_hash: str) -> str:
    """`kid:fp` for refresh tokens and sessions, which outlive one signing key."""
    kid, secret = config.jwt_keys[0]
    return f"{kid}:{password_fingerprint(secret, password_hash)}"


def fingerprint_matches(config: Config, stored: str | None, password_hash: str) -> bool:
    """True while the hash is the one `stored` was made from (and its key is still configured)."""
    kid, _, fp = (stored or "").partition(":")
    secret = dict(config.jwt_keys).get(kid)
    return secret is not None and hmac.compare_digest(password_fingerprint(secret, password_hash), fp)
