"""TEMPORARY until backend/auth lands: a header-based principal so the fleet HTTP layer can be exercised."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import insert, select

from backend import keys
from backend.auth.principal import PERMISSION_FLAGS, Principal
from backend.auth.tables import permissions, roles, users
from backend.db import transaction


@web.middleware
async def shim(request: web.Request, handler: Any) -> web.StreamResponse:
    uid = request.headers.get("X-Test-User")
    if uid:
        async with transaction(request.app[keys.DB]) as conn:
            row = (await conn.execute(select(permissions).join(users, users.c.role_id == permissions.c.role_id)
                                      .where(users.c.id == int(uid)))).mappings().one()
        request[keys.PRINCIPAL] = Principal(user_id=int(uid), permissions=frozenset(f for f in PERMISSION_FLAGS if row[f]))
    return await handler(request)


def add(app: web.Application) -> None:
    app.middlewares.append(shim)


@dataclass
class User:
    id: int
    headers: dict


@pytest.fixture
async def client(make_client: Any) -> Any:
    return await make_client(setup=add)


@pytest.fixture
async def two_apps(make_client: Any) -> Any:
    return await make_client(setup=add), await make_client(setup=add)


@pytest.fixture
def make_user(engine: Any) -> Any:
    n = [0]
    async def make(role: str) -> User:
        n[0] += 1
        async with transaction(engine) as conn:
            rid = (await conn.execute(select(roles.c.id).where(roles.c.name == role))).scalar_one()
            uid = (await conn.execute(insert(users).values(login=f"{role}{n[0]}", password_hash="x", role_id=rid)
                                      .returning(users.c.id))).scalar_one()
        return User(uid, {"X-Test-User": str(uid)})
    return make
