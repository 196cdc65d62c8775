"""Car-sharing cookie endpoints (seed 000, SPEC §4.1): /profile/signin, /sign-in, signout, signup, profile."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from backend import keys
from backend.api.access import client_address, current_user
from backend.api.responses import respond
from backend.api.routing import USER, route
from backend.api.validation import read_json
from backend.auth import sessions
from backend.auth.api_handlers import user_row
from backend.auth.login import check_password
from backend.auth.schemas import ProfileOut, SigninIn, SignupIn, profile_body
from backend.auth.users import create_user


async def signin(request: web.Request) -> web.Response:
    """POST /profile/signin (alias /sign-in): bind the user to a NEW session key."""
    data = await read_json(request, SigninIn)
    identity = await check_password(request.app, data.login, data.password, client_address(request))
    await sessions.sign_in(request, identity)
    return respond(profile_body(await user_row(request.app, identity.id)))


async def signout(request: web.Request) -> web.Response:
    """POST /profile/signout: unbind the user; the sessid stays usable (seed 000)."""
    await sessions.sign_out(request)
    return respond({"detail": "Вы вышли из учётной записи."})


async def profile(request: web.Request) -> web.Response:
    """GET /profile: the signed-in user (401 for an anonymous session)."""
    row = await user_row(request.app, current_user(request).user_id or 0)
    return respond(profile_body(row))


async def signup(request: web.Request) -> web.Response:
    """POST /profile/signup: a new client, pending approval by an operator."""
    data = await read_json(request, SignupIn)
    app = request.app
    row = await create_user(app[keys.DB], app[keys.CONFIG], login=data.login.strip(), password=data.password,
                            role="client", email=data.email, phone=data.phone, client_status="pending",
                            name=data.name, surname=data.surname, driver_license=data.driver_license or None,
                            pool=app[keys.PASSWORD_POOL])
    await app[keys.USER_LIFECYCLE].registered(app[keys.BUS], row)
    return respond(profile_body(row), status=201)


def setup(app: web.Application) -> None:
    common: dict[str, Any] = {"tag": "profile"}
    route(app, "POST", "/profile/signin", signin, summary="Sign in (cookie session)", body=SigninIn,
          response=ProfileOut, responses=(429,), **common)
    route(app, "POST", "/sign-in", signin, summary="Sign in (alias of /profile/signin)", body=SigninIn,
          response=ProfileOut, responses=(429,), **common)
    route(app, "POST", "/profile/signout", signout, summary="Sign out (the session stays)", **common)
    route(app, "GET", "/profile", profile, summary="Current user (cookie session)", response=ProfileOut,
          auth=USER, **common)
    route(app, "POST", "/profile/signup", signup, summary="Register a car-sharing client", body=SignupIn,
          response=ProfileOut, status=201, **common)
