"""User queries of the messenger surface (SPEC §7.1): registration, lookup, search by username,
the full replace of editable fields and the avatar pointer. The users table is auth's, so the
messenger (backend.chat) reads and writes it only through these functions."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.api.crud import live_row
from backend.auth.tables import users
from backend.auth.users import create_user, unique_violation
from backend.config import Config
from backend.db import read, transaction
from backend.errors import ApiError

# Visible to the messenger: not deleted and not blocked (both are refused at sign-in anyway).
LIVE = (users.c.deleted_at.is_(None), users.c.client_status != "blocked")


def live_count(*user_ids: ColumnElement[Any]) -> ScalarSelect[int]:
    """How many of `user_ids` (columns or parameters of the caller's statement) are visible users,
    as a subquery: a hot path checks its members inside its own one statement while the table
    stays this module's."""
    return (select(func.count()).select_from(users)
            .where(or_(*(users.c.id == user_id for user_id in user_ids)), *LIVE).scalar_subquery())
UNSET: Any = object()          # "phone" absent from a PUT body: keep the stored one

_NOT_IN_USERNAME = re.compile(r"[^\w.-]+")
DEFAULT_NAME_TRIES = 8


def email_taken() -> ApiError:
    return ApiError(400, "email_taken", "Пользователь с таким email уже существует.")


def username_taken() -> ApiError:
    return ApiError(400, "username_taken", "Пользователь с таким username уже существует.")


def phone_taken() -> ApiError:
    return ApiError(400, "phone_taken", "Пользователь с таким телефоном уже существует.")


# create_user() reports a unique violation as a field error; the messenger names each one.
_TAKEN = {"email": email_taken, "username": username_taken, "login": username_taken, "phone": phone_taken}


def _messenger_error(err: ApiError) -> ApiError:
    """A duplicate as email_taken / username_taken / phone_taken; any other error unchanged."""
    if err.code == "validation_error" and len(err.fields) == 1:
        (field,) = err.fields
        if field in _TAKEN:
            return _TAKEN[field]()
    return err


async def _name_is_free(conn: AsyncConnection, name: str) -> bool:
    lowered = name.lower()
    query = select(users.c.id).where(or_(func.lower(users.c.username) == lowered,
                                         func.lower(users.c.login) == lowered),
                                     users.c.deleted_at.is_(None)).limit(1)
    return (await conn.execute(query)).first() is None


async def _default_username(engine: AsyncEngine, email: str) -> str:
    """The email's local part, with digits added while it is taken.

    Not the whole email: usernames are searchable by everyone, and another user's email must
    stay hidden (SPEC §11.22).
    """
    base = _NOT_IN_USERNAME.sub("", email.split("@", 1)[0])[:32] or "user"
    candidate = base
    async with read(engine) as conn:
        for _ in range(DEFAULT_NAME_TRIES):
            if await _name_is_free(conn, candidate):
                return candidate
            candidate = f"{base}{secrets.randbelow(10**6):06d}"
    return f"{base}{secrets.token_hex(6)}"


async def register(engine: AsyncEngine, config: Config, pool: Executor, *, email: str, password: str,
                   username: str | None, name: str, status: str, phone: str | None) -> dict[str, Any]:
    """Create a self-registered messenger user (role client, pending: SPEC §11.13).

    The login is the username, so the account can sign in on every surface by it or by email.
    """
    chosen = username is not None
    for _ in range(2):           # a defaulted name can lose a race once; a chosen one reports it
        name_to_use = username if chosen else await _default_username(engine, email)
        try:
            return await create_user(engine, config, login=name_to_use, username=name_to_use, password=password,
                                     role="client", email=email, phone=phone, client_status="pending",
                                     name=name, status=status, pool=pool)
        except ApiError as err:
            mapped = _messenger_error(err)
            if chosen or mapped.code != "username_taken":
                raise mapped from None
    raise username_taken()


async def live_user(conn: AsyncConnection, user_id: int) -> dict[str, Any] | None:
    """The visible user with id `user_id`, or None."""
    row = (await conn.execute(select(users).where(users.c.id == user_id, *LIVE))).mappings().one_or_none()
    return dict(row) if row is not None else None


async def require_user(conn: AsyncConnection, user_id: int, *, field: str) -> None:
    """A 400 on `field` unless user `user_id` exists and is not deleted (other domains' references)."""
    await live_row(conn, users, user_id, field=field)


async def search_by_username(conn: AsyncConnection, fragment: str, limit: int) -> list[dict[str, Any]]:
    """Visible users whose username contains `fragment` (case-insensitive): exact, then prefix matches."""
    lowered = fragment.lower()
    username = func.lower(users.c.username)
    rank = case((username == lowered, 0), (username.startswith(lowered, autoescape=True), 1), else_=2)
    query = (select(users).where(users.c.username.icontains(fragment, autoescape=True), *LIVE)
             .order_by(rank, username, users.c.id).limit(limit))
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def live_ids(conn: AsyncConnection, ids: Iterable[int]) -> set[int]:
    """Which of `ids` are visible users (not deleted, not blocked): a chat with anyone else is closed."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    return set((await conn.execute(select(users.c.id).where(users.c.id.in_(wanted), *LIVE))).scalars())


async def brief_users(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """id → {id, username, name} for chat member lists (deleted users too: old chats keep their names)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(users.c.id, users.c.username, users.c.name).where(users.c.id.in_(wanted))
    # Plain str keys: RowMapping's are quoted_name, which orjson refuses in event payloads.
    return {row.id: {"id": row.id, "username": row.username, "name": row.name}
            for row in await conn.execute(query)}


async def replace_profile(engine: AsyncEngine, user_id: int, *, email: str | None, username: str, name: str,
                          status: str, phone: Any = UNSET) -> dict[str, Any] | None:
    """Replace the editable fields of a visible user; None when there is no such user."""
    values: dict[str, Any] = {"email": email, "username": username, "name": name, "status": status,
                              "updated_at": func.now()}
    if phone is not UNSET:
        values["phone"] = phone
    try:
        async with transaction(engine) as conn:
            row = (await conn.execute(update(users).where(users.c.id == user_id, *LIVE).values(**values)
                                      .returning(*users.c))).mappings().one_or_none()
    except IntegrityError as exc:
        raise _messenger_error(unique_violation(exc)) from None
    return dict(row) if row is not None else None


async def set_avatar(conn: AsyncConnection, user_id: int, photo_id: int) -> int | None:
    """Point the user's avatar at `photo_id` (inside the caller's transaction); returns the old id."""
    previous = (await conn.execute(select(users.c.avatar_photo_id).where(users.c.id == user_id)
                                   .with_for_update())).scalar_one_or_none()
    await conn.execute(update(users).where(users.c.id == user_id)
                       .values(avatar_photo_id=photo_id, updated_at=func.now()))
    return previous


async def avatar_of(conn: AsyncConnection, user_id: int) -> int | None:
    """The current avatar photo id of a visible user (None: no such user or no avatar)."""
    return (await conn.execute(select(users.c.avatar_photo_id).where(users.c.id == user_id, *LIVE))
            ).scalar_one_or_none()
