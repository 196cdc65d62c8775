"""Seed 003 token auth: POST /auth/login, /auth/refresh, /auth/logout, GET /auth/me (SPEC §3.3)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from backend import keys
from backend.api.access import client_address, current_user
from backend.api.responses import respond
from backend.api.routing import USER, route
from backend.api.validation import read_json, read_query
from backend.auth.grants import issue_pair, rotate
from backend.auth.login import check_password
from backend.auth.schemas import (
    DetailOut,
    LogoutQuery,
    RefreshIn,
    RefreshOut,
    TokenLoginIn,
    TokenLoginOut,
    TokenUser,
)
from backend.auth.tables import roles, users
from backend.db import read
from backend.errors import ApiError, not_found, unauthorized
from backend.principal import Principal

TAG = "auth (seed 003)"


async def token_user(app: web.Application, user_id: int) -> TokenUser:
    """The /auth user shape: role by name, first_name = name, last_name = surname (SPEC §11.8)."""
    query = (select(users.c.id, users.c.email, users.c.name, users.c.surname, roles.c.name.label("role"))
             .select_from(users.join(roles, roles.c.id == users.c.role_id)).where(users.c.id == user_id))
    async with read(app[keys.DB]) as conn:
        row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise not_found()
    return TokenUser(id=row.id, email=row.email, role=row.role, first_name=row.name, last_name=row.surname)


def _bearer_user(request: web.Request) -> Principal:
    """The caller, who must have come with an access token (not a cookie session)."""
    principal = current_user(request)
    if principal.via != "bearer" or principal.token_jti is None:
        raise unauthorized()
    return principal


async def token_login(request: web.Request) -> web.Response:
    """POST /auth/login: password → access token, refresh token and the user."""
    data = await read_json(request, TokenLoginIn)
    try:
        identity = await check_password(request.app, data.identifier, data.password, client_address(request))
    except ApiError as err:
        if err.code != "authentication_failed":
            raise                                  # 429 and user_inactive keep their status
        # Seed 003: wrong credentials are 422, not 401.
        raise ApiError(422, err.code, err.message) from None
    pair = await issue_pair(request.app, identity, "web")
    user = await token_user(request.app, identity.id)
    return respond(TokenLoginOut(access_token=pair.access.token, refresh_token=pair.refresh_token,
                               expires_in=int(request.app[keys.CONFIG].access_ttl), user=user))


async def token_refresh(request: web.Request) -> web.Response:
    """POST /auth/refresh: rotate the refresh token; a reused one revokes its family (401)."""
    data = await read_json(request, RefreshIn)
    pair = await rotate(request.app, data.refresh_token)
    return respond(RefreshOut(access_token=pair.access.token, refresh_token=pair.refresh_token,
                            expires_in=int(request.app[keys.CONFIG].access_ttl)))


async def token_logout(request: web.Request) -> web.Response:
    """POST /auth/logout: this access token and its refresh family; ?all=true: everything of the user."""
    query = read_query(request, LogoutQuery)
    principal = _bearer_user(request)
    assert principal.user_id is not None and principal.token_jti is not None
    if query.all:
        await request.app[keys.REVOCATIONS].revoke_everything(principal.user_id)
        return respond(DetailOut(detail="Все сеансы завершены."))
    await request.app[keys.REVOCATIONS].revoke_token(principal.user_id, principal.token_jti, principal.token_exp)
    return respond(DetailOut(detail="Выход выполнен."))


async def token_me(request: web.Request) -> web.Response:
    """GET /auth/me: the current user in the /auth shape."""
    return respond(await token_user(request.app, _bearer_user(request).user_id or 0))


def setup(app: web.Application) -> None:
    route(app, "POST", "/auth/login", token_login, summary="Sign in: access + refresh token", tag=TAG,
          body=TokenLoginIn, response=TokenLoginOut, responses=(429,))
    route(app, "POST", "/auth/refresh", token_refresh, summary="Rotate a refresh token", tag=TAG,
          body=RefreshIn, response=RefreshOut)
    route(app, "POST", "/auth/logout", token_logout, summary="Revoke this token (?all=true: every session)",
          tag=TAG, query=LogoutQuery, response=DetailOut, auth=USER)
    route(app, "GET", "/auth/me", token_me, summary="Current user (seed 003)", tag=TAG, response=TokenUser,
          auth=USER, responses=(404,))
