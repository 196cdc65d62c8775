"""User queries shared by every surface: identity with permissions, lookup by identifier, creation."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Collection, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, any_, bindparam, func, insert, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.api.types import normalize_phone
from backend.auth.passwords import check_length, hash_password
from backend.auth.tables import permissions, roles, users
from backend.config import Config
from backend.db import compiled, transaction
from backend.errors import ApiError, field_error, invalid
from backend.principal import PERMISSION_FLAGS, Principal


@dataclass(frozen=True, slots=True)
class Identity:
    """A user row with its role name and permission flags (what every request needs)."""

    id: int
    login: str
    email: str | None
    password_hash: str
    role_id: int
    role_name: str
    client_status: str
    deleted_at: dt.datetime | None
    permissions: frozenset[str]
    # The rest of GET /api/auth/me/, so a bearer request there needs no second query (issue 11).
    name: str = ""
    surname: str = ""
    last_name: str = ""
    phone: str | None = None
    driver_license: str | None = None

    @property
    def active(self) -> bool:
        """Blocked and deleted users are refused on every surface (SPEC §2.1)."""
        return self.deleted_at is None and self.client_status != "blocked"

    def principal(self, *, via: str, client: str = "web", jti: str | None = None,
                  exp: int | None = None) -> Principal:
        return Principal(user_id=self.id, login=self.login, role_id=self.role_id, role_name=self.role_name,
                         permissions=self.permissions, client=client, via=via, token_jti=jti, token_exp=exp)


_FLAG_COLUMNS = [permissions.c[flag] for flag in PERMISSION_FLAGS]

_IDENTITY = (
    select(users.c.id, users.c.login, users.c.email, users.c.password_hash, users.c.role_id,
           roles.c.name.label("role_name"), users.c.client_status, users.c.deleted_at, users.c.name,
           users.c.surname, users.c.last_name, users.c.phone, users.c.driver_license, *_FLAG_COLUMNS)
    .select_from(users.join(roles, roles.c.id == users.c.role_id)
                 .outerjoin(permissions, (permissions.c.role_id == roles.c.id)
                            & permissions.c.deleted_at.is_(None)))
)


def _identity(row: Mapping[str, Any]) -> Identity:
    flags = frozenset(flag for flag in PERMISSION_FLAGS if row[flag])
    return Identity(id=row["id"], login=row["login"], email=row["email"], password_hash=row["password_hash"],
                    role_id=row["role_id"], role_name=row["role_name"], client_status=row["client_status"],
                    deleted_at=row["deleted_at"], permissions=flags, name=row["name"], surname=row["surname"],
                    last_name=row["last_name"], phone=row["phone"], driver_license=row["driver_license"])


async def load_identity(conn: AsyncConnection, user_id: int) -> Identity | None:
    """The user with id `user_id` (deleted ones too: callers decide), or None."""
    row = (await conn.execute(_IDENTITY.where(users.c.id == user_id))).mappings().one_or_none()
    return _identity(row) if row is not None else None


_IDENTITIES_BY_IDS = compiled(_IDENTITY.where(users.c.id == any_(bindparam("user_ids", type_=ARRAY(BigInteger)))))


async def fetch_identities(pool: asyncpg.Pool, user_ids: Collection[int]) -> dict[int, Identity]:
    """load_identity of several users in one query on the hot pool (the access checks of one loop tick, auth.resolve);
    users that do not exist are absent."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(_IDENTITIES_BY_IDS.sql, list(user_ids))
    found: dict[int, Identity] = {}
    for row in rows:
        # The first row of a user, as fetchrow takes it (a role with two live permission rows).
        if row["id"] not in found:
            found[row["id"]] = _identity(row)
    return found


async def find_by_identifier(conn: AsyncConnection, identifier: str) -> Identity | None:
    """A live user whose login or email (case-insensitive) or phone equals `identifier`."""
    identifier = identifier.strip()
    if not identifier:
        return None
    lowered = identifier.lower()
    conditions = [func.lower(users.c.login) == lowered, func.lower(users.c.email) == lowered]
    with contextlib.suppress(ValueError):
        conditions.append(users.c.phone == normalize_phone(identifier))
    query = _IDENTITY.where(or_(*conditions), users.c.deleted_at.is_(None)).order_by(users.c.id).limit(1)
    row = (await conn.execute(query)).mappings().one_or_none()
    return _identity(row) if row is not None else None


async def role_id_by_name(conn: AsyncConnection, name: str) -> int:
    role = (await conn.execute(select(roles.c.id).where(func.lower(roles.c.name) == name.lower(),
                                                        roles.c.deleted_at.is_(None)))).scalar_one_or_none()
    if role is None:
        raise field_error("role", f"Роль «{name}» не существует.")
    return int(role)


UNIQUE_FIELDS = {"users_login_key": "login", "users_email_key": "email", "users_phone_key": "phone",
                 "users_username_key": "username"}


def unique_violation(exc: IntegrityError) -> ApiError:
    """A duplicate login/email/phone as a field error; anything else as a non-field error."""
    text = str(exc.orig)
    for constraint, field in UNIQUE_FIELDS.items():
        if constraint in text:
            return field_error(field, "Пользователь с таким значением уже существует.")
    return invalid({"non_field_errors": ["Данные нарушают целостность."]})


async def create_user(engine: AsyncEngine, config: Config, *, login: str, password: str,
                      role: str | int, email: str | None = None, phone: str | None = None,
                      client_status: str = "approved", pool: Executor | None = None,
                      **fields: Any) -> dict[str, Any]:
    """Create a user with an argon2id hash (computed in `pool`, see hash_password); `role` is a
    role id or name. Returns the row."""
    check_length(config, password)
    if phone:
        try:
            phone = normalize_phone(phone)
        except ValueError as exc:
            raise field_error("phone", str(exc)) from None
    password_hash = await hash_password(config, password, pool)
    try:
        async with transaction(engine) as conn:
            role_id = role if isinstance(role, int) else await role_id_by_name(conn, role)
            row = (await conn.execute(insert(users).values(
                login=login, email=email or None, phone=phone or None, password_hash=password_hash,
                role_id=role_id, client_status=client_status, username=fields.pop("username", None) or login,
                **fields).returning(*users.c))).mappings().one()
    except IntegrityError as exc:
        raise unique_violation(exc) from None
    return dict(row)
