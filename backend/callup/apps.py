"""CallUp apps: the token lookup of every /v1 request, creation, token rotation and blocking (SPEC §6.1)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp import web
from sqlalchemy import RowMapping, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend import keys
from backend.callup.const import access_denied
from backend.callup.tables import apps
from backend.db import compiled, transaction
from backend.errors import not_found
from backend.principal import Principal

_ACTIVE_BY_TOKEN = compiled(select(apps.c.id).where(
    apps.c.token == bindparam("token"), apps.c.deleted_at.is_(None), apps.c.blocked_at.is_(None)))


async def active_app_id(pool: asyncpg.Pool, token: uuid.UUID) -> int | None:
    """The id of the live, unblocked app holding `token`, or None.

    Runs on the hot pool: every /v1 request resolves its app here. No cache, so a rotated token
    or a blocked app is refused by the very next request on every instance.
    """
    async with pool.acquire() as conn:
        app_id = await conn.fetchval(_ACTIVE_BY_TOKEN.sql, token)
    return int(app_id) if app_id is not None else None


async def principal_from_app_token(app: web.Application, raw: str) -> Principal:
    """A CallUp app by its X-Application-Token; unknown, deleted or blocked → 403 access denied.

    Injected into auth's authenticate step as `keys.APP_TOKEN_RESOLVER` by callup's setup().
    """
    try:
        token = uuid.UUID(raw.strip())
    except ValueError:
        raise access_denied() from None
    app_id = await active_app_id(app[keys.HOT_DB], token)
    if app_id is None:
        raise access_denied()
    return Principal(app_id=app_id, via="app", client="app")


async def app_name(conn: AsyncConnection, app_id: int) -> str:
    """The name of a live app (GET /v1/apps/me)."""
    name = (await conn.execute(select(apps.c.name).where(apps.c.id == app_id, apps.c.deleted_at.is_(None)))
            ).scalar_one_or_none()
    if name is None:
        raise not_found()
    return str(name)


async def token_named(conn: AsyncConnection, name: str) -> str | None:
    """The token of the oldest live app called `name` (the demo app, printed on every start)."""
    token = (await conn.execute(select(apps.c.token).where(apps.c.name == name, apps.c.deleted_at.is_(None))
                                .order_by(apps.c.id).limit(1))).scalar_one_or_none()
    return str(token) if token is not None else None


async def create(engine: AsyncEngine, name: str, owner_id: int | None = None) -> RowMapping:
    """Insert an app with a fresh uuid4 token (run.py create-app)."""
    async with transaction(engine) as conn:
        return (await conn.execute(insert(apps).values(name=name, token=uuid.uuid4(), owner_id=owner_id)
                                   .returning(*apps.c))).mappings().one()


# The admin actions of /api/callup/apps/{id}/…/: the new column values each one writes.
ACTIONS: dict[str, Any] = {
    "rotate-token": lambda: {"token": uuid.uuid4()},
    "block": lambda: {"blocked_at": func.coalesce(apps.c.blocked_at, func.now())},   # keeps the first time
    "unblock": lambda: {"blocked_at": None},
}


async def apply_action(engine: AsyncEngine, app_id: int, action: str) -> RowMapping:
    """Rotate the token of, block or unblock a live app; 404 for a missing or deleted one."""
    async with transaction(engine) as conn:
        row = (await conn.execute(update(apps).where(apps.c.id == app_id, apps.c.deleted_at.is_(None))
                                  .values(**ACTIONS[action]()).returning(*apps.c))).mappings().one_or_none()
    if row is None:
        raise not_found()
    return row
