"""Password sign-in shared by the four login endpoints (SPEC §2.2, §11.5)."""

from __future__ import annotations

import logging

from aiohttp import web

from backend import keys
from backend.auth.passwords import verify_password
from backend.auth.users import Identity, find_by_identifier
from backend.db import read
from backend.errors import ApiError, redis_unavailable, unauthorized
from backend.kv import REDIS_ERRORS, PoolExhausted, redis_key
from backend.ratelimit import Window, give_back, take

log = logging.getLogger("backend.auth")


def account_key(app: web.Application, identifier: str, user_id: int | None) -> str:
    """The failure counter of an account: a known account is counted by its id, so its login,
    email and every spelling of its phone share one counter; an unknown name by the name itself."""
    account = f"id:{user_id}" if user_id is not None else f"name:{identifier.strip().lower()}"
    return redis_key(app, "login-fail", "account", account)


def login_windows(app: web.Application, identifier: str, identity: Identity | None,
                  remote: str | None) -> list[Window]:
    """The counters a login attempt takes a slot in: its account's and its client address's.

    The address limit is far looser (SPEC §2.2): an office behind one NAT address must not lock
    itself out.
    """
    config = app[keys.CONFIG]
    return [(account_key(app, identifier, identity.id if identity else None), config.login_failure_limit),
            (redis_key(app, "login-fail", "address", remote or "unknown"), config.login_address_limit)]


def bad_credentials() -> ApiError:
    return unauthorized("Неверный логин или пароль.", "authentication_failed")


async def check_password(app: web.Application, identifier: str, password: str, remote: str | None) -> Identity:
    """The active user that `identifier` + `password` name; 401 otherwise, 429 past a limit.

    Every attempt takes a slot in the failure counters *before* the password is verified, in one
    atomic step per counter, and gives it back only when the password was right: parallel attempts
    cannot overrun a limit (with 5/900 at most 5 wrong passwords are ever verified, and the 6th
    attempt is 429 even with the right one, SPEC §11.5). A missing account still costs one argon2
    verification so timing does not reveal it.
    """
    config = app[keys.CONFIG]
    redis = app[keys.REDIS]
    async with read(app[keys.DB]) as conn:
        identity = await find_by_identifier(conn, identifier)
    taken: list[str] = []
    try:
        taken = await take(redis, login_windows(app, identifier, identity, remote))
    except PoolExhausted as exc:
        # Not an outage: whoever floods the pool must not get unlimited password guesses with it.
        raise redis_unavailable() from exc
    except REDIS_ERRORS:
        # Without Redis nothing can be counted: logins stay possible (argon2 still slows guessing).
        log.warning("login limits unchecked, Redis unavailable")
    ok = await verify_password(config, identity.password_hash if identity else None, password,
                               app.get(keys.PASSWORD_POOL))
    if not ok or identity is None:
        raise bad_credentials()                  # the slots stay taken: this was a failure
    try:
        await give_back(redis, taken)
    except REDIS_ERRORS:
        log.warning("login slot not given back, Redis unavailable")
    if not identity.active:
        raise unauthorized("Пользователь заблокирован или удалён.", "user_inactive")
    return identity
