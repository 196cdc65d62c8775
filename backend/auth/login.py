"""Password sign-in shared by the four login endpoints (SPEC §2.2, §11.5)."""

from __future__ import annotations

from aiohttp import web

from backend import keys
from backend.auth.passwords import verify_password
from backend.auth.users import Identity, find_by_identifier
from backend.db import read
from backend.errors import ApiError, unauthorized
from backend.kv import redis_key
from backend.ratelimit import hit, refuse_if_over


def failure_keys(app: web.Application, identifier: str, remote: str | None) -> list[str]:
    """Counters of failed logins: one per account name, one per client address."""
    return [redis_key(app, "login-fail", "account", identifier.strip().lower()),
            redis_key(app, "login-fail", "address", remote or "unknown")]


def bad_credentials() -> ApiError:
    return unauthorized("Неверный логин или пароль.", "authentication_failed")


async def check_password(app: web.Application, identifier: str, password: str, remote: str | None) -> Identity:
    """The active user that `identifier` + `password` name; 401 otherwise.

    Failed attempts are counted per account and per client address in Redis (rate limit); a
    missing account still costs one argon2 verification so timing does not reveal it.
    """
    config = app[keys.CONFIG]
    counters = failure_keys(app, identifier, remote)
    # Checked before the password: with 5/900 the 6th attempt is 429 even with the right password.
    await refuse_if_over(app[keys.REDIS], counters, config.login_failure_limit)
    async with read(app[keys.DB]) as conn:
        identity = await find_by_identifier(conn, identifier)
    ok = await verify_password(config, identity.password_hash if identity else None, password)
    if not ok or identity is None:
        for key in counters:
            await hit(app[keys.REDIS], key, config.login_failure_limit)
        raise bad_credentials()
    if not identity.active:
        raise unauthorized("Пользователь заблокирован или удалён.", "user_inactive")
    return identity
