"""Password sign-in shared by the four login endpoints (SPEC §2.2, §11.5)."""

from __future__ import annotations

import logging

from aiohttp import web

from backend import keys
from backend.auth.passwords import verify_password
from backend.auth.users import Identity, find_by_identifier
from backend.db import read
from backend.errors import ApiError, unauthorized
from backend.kv import REDIS_ERRORS, redis_key
from backend.ratelimit import hit, refuse_if_over

log = logging.getLogger("backend.auth")


def failure_keys(app: web.Application, identifier: str, identity: Identity | None,
                 remote: str | None) -> list[str]:
    """Counters of failed logins: one per account, one per client address.

    A known account is counted by its id, so its login, email and every spelling of its phone
    share one counter; an unknown name is counted by the name itself.
    """
    account = f"id:{identity.id}" if identity is not None else f"name:{identifier.strip().lower()}"
    return [redis_key(app, "login-fail", "account", account),
            redis_key(app, "login-fail", "address", remote or "unknown")]


def bad_credentials() -> ApiError:
    return unauthorized("Неверный логин или пароль.", "authentication_failed")


async def check_password(app: web.Application, identifier: str, password: str, remote: str | None) -> Identity:
    """The active user that `identifier` + `password` name; 401 otherwise.

    Failed attempts are counted per account and per client address in Redis (rate limit); a
    missing account still costs one argon2 verification so timing does not reveal it.
    """
    config = app[keys.CONFIG]
    redis = app[keys.REDIS]
    async with read(app[keys.DB]) as conn:
        identity = await find_by_identifier(conn, identifier)
    counters = failure_keys(app, identifier, identity, remote)
    # Checked before the password: with 5/900 the 6th attempt is 429 even with the right password.
    # Without Redis nothing can be counted: logins stay possible (argon2 still slows guessing).
    try:
        await refuse_if_over(redis, counters, config.login_failure_limit)
    except REDIS_ERRORS:
        log.warning("login limits unchecked, Redis unavailable")
    ok = await verify_password(config, identity.password_hash if identity else None, password)
    if not ok or identity is None:
        try:
            for key in counters:
                await hit(redis, key, config.login_failure_limit)
        except REDIS_ERRORS:
            log.warning("login failure not counted, Redis unavailable")
        raise bad_credentials()
    if not identity.active:
        raise unauthorized("Пользователь заблокирован или удалён.", "user_inactive")
    return identity
