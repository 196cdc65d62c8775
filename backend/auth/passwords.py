"""Password hashing (argon2id, off the event loop) and the password fingerprint of tokens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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


def check_length(config: Config, password: str, field: str = "password") -> None:
    """400 when the password is shorter than PASSWORD_MIN_LENGTH (every surface)."""
    if len(password) < config.password_min_length:
        raise field_error(field, f"Пароль должен содержать не менее {config.password_min_length} символов.")


async def hash_password(config: Config, password: str) -> str:
    """argon2id hash, computed in a worker thread (hashing must never block the loop)."""
    return await asyncio.get_running_loop().run_in_executor(None, hasher(config).hash, password)


def _verify(config: Config, password_hash: str | None, password: str) -> bool:
    target = password_hash or _dummy_hash(config.argon2_memory_kib, config.argon2_time_cost)
    try:
        ok = hasher(config).verify(target, password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


async def verify_password(config: Config, password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a None hash (no such user) still costs one verification."""
    return await asyncio.get_running_loop().run_in_executor(None, _verify, config, password_hash, password)


def password_fingerprint(secret: str, password_hash: str) -> str:
    """Keyed fingerprint of the current hash: any change of the hash invalidates older tokens.

    Keyed with the secret of the token's own `kid`, so rotating the signing key does not
    invalidate tokens that the old key still verifies.
    """
    return hmac.new(secret.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:16]
