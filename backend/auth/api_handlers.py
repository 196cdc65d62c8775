"""Seed 001 token endpoints: POST /api/auth/login/, GET /api/auth/me/ (SPEC §3.2)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from backend import keys
from backend.api.access import client_address, current_user
from backend.api.responses import respond
from backend.api.routing import USER, route
from backend.api.validation import read_json
from backend.auth.grants import issue_access_for
from backend.auth.login import check_password
from backend.auth.schemas import ApiLoginIn, ApiLoginOut, MeOut
from backend.auth.tables import users
from backend.db import read
from backend.errors import not_found


async def user_row(app: web.Application, user_id: int) -> dict[str, Any]:
    """The live user row (404 if it vanished)."""
    async with read(app[keys.DB]) as conn:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).mappings().one_or_none()
    if row is None:
        raise not_found()
    return dict(row)


async def api_login(request: web.Request) -> web.Response:
    """POST /api/auth/login/: password → access JWT and the user."""
    data = await read_json(request, ApiLoginIn)
    identity = await check_password(request.app, data.login, data.password, client_address(request))
    # Not plain issue_access: a token issued in the second of a logout-all must outlive it.
    token = await issue_access_for(request.app, identity, data.client)
    row = await user_row(request.app, identity.id)
    body = ApiLoginOut(access=token.token, user={**row, "role": row["role_id"]})
    return respond(body.model_dump(mode="json"))


async def api_me(request: web.Request) -> web.Response:
    """GET /api/auth/me/: the current user."""
    user_id = current_user(request).user_id or 0
    identity = request.get(keys.IDENTITY)
    if identity is not None and identity.id == user_id:
        # The authenticate step's identity query (bearer or cookie session) read every field already,
        # and the user is live (deleted or blocked users are refused before this): deleted_at is None.
        return respond({"id": identity.id, "name": identity.name, "surname": identity.surname,
                        "last_name": identity.last_name, "login": identity.login, "phone": identity.phone,
                        "driver_license": identity.driver_license, "role": identity.role_id, "deleted_at": None})
    row = await user_row(request.app, user_id)
    return respond(MeOut.model_validate({**row, "role": row["role_id"]}).model_dump(mode="json"))


def setup(app: web.Application) -> None:
    route(app, "POST", "/api/auth/login/", api_login, summary="Sign in (seed 001)", tag="auth",
          body=ApiLoginIn, response=ApiLoginOut, slash_optional=True, responses=(429,))
    route(app, "GET", "/api/auth/me/", api_me, summary="Current user (seed 001)", tag="auth",
          response=MeOut, slash_optional=True, auth=USER, responses=(404,))
