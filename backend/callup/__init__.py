"""CallUp flash-call verification (SPEC §6, seed 002): apps, call orders, call providers, checks.

Other domains reach it through its functions (`apps.active_app_id` resolves X-Application-Token),
never through its tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

__all__ = ["calls_ctx", "setup"]


async def calls_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own this instance's call tasks and the provider's HTTP session (after the DB and the bus)."""
    from backend import keys
    from backend.callup.calls import Calls, HttpProvider, SimulatedProvider

    config = app[keys.CONFIG]
    calls = Calls(app[keys.DB], app[keys.BUS])
    app[keys.CALLUP_CALLS] = calls
    if config.callup_provider == "http":
        if not config.callup_provider_url:
            raise RuntimeError("CALLUP_PROVIDER=http needs CALLUP_PROVIDER_URL")
        # One session (one connection pool) for every call of this instance, closed after the calls.
        async with aiohttp.ClientSession() as session:
            calls.provider = HttpProvider(session, config.callup_provider_url)
            try:
                yield
            finally:
                await calls.close()
        return
    calls.provider = SimulatedProvider(config.callup_sim_delay, calls.report, calls.spawn)
    yield
    await calls.close()


def setup(app: web.Application) -> None:
    """Declare the `callup` channels, the /v1 routes and /api/callup/apps/."""
    from backend import keys
    from backend.api.routing import app_token, route, signed
    from backend.callup import const, resources, schemas
    from backend.callup import handlers as h
    from backend.callup.apps import principal_from_app_token
    from backend.callup.channels import app_feed_readers
    from backend.callup.sweeper import sweeper_ctx
    from backend.realtime.channels import Namespace

    prefixes = app[keys.CONFIG].callup_prefixes
    if not prefixes or not all(schemas.PREFIX.match(prefix) for prefix in prefixes):
        # Fail at start with the variable's name, not with a 500 on the first order.
        raise ValueError(f"CALLUP_PREFIXES must list 7-digit caller prefixes, got {','.join(prefixes)!r}")
    app[keys.CHANNELS].add(Namespace("callup", authorize=app_feed_readers, rest=r"app:[1-9][0-9]{0,18}"))
    app[keys.APP_TOKEN_RESOLVER] = principal_from_app_token
    # Appended after create_app's DB, bus and calls contexts: opened after them, closed before.
    app.cleanup_ctx.append(sweeper_ctx)
    env = schemas.envelope
    common = {"tag": "callup", "auth": app_token(refuse=const.access_denied)}
    route(app, "POST", "/v1/orders", h.create_order, summary="Order a call carrying a code",
          body=schemas.OrderIn, query=schemas.OrderQuery, response=env(schemas.OrderCreated), responses=(429,),
          **common)
    route(app, "GET", "/v1/orders/{order_id}", h.get_order, summary="An order's status",
          response=env(schemas.OrderOut), **common)
    route(app, "GET", "/v1/auth/{order_id}/{order_code}", h.verify_code, summary="Check a code",
          response=env(schemas.VerifyOut), responses=(400, 409, 410, 423), **common)
    route(app, "GET", "/v1/apps/me", h.app_me, summary="The calling app", response=env(schemas.AppMe),
          **common)
    route(app, "POST", "/v1/provider/events", h.provider_event, tag="callup",
          summary="Call provider callback (X-Signature: sha256=HMAC of the body)",
          body=schemas.ProviderEventIn, response=env(schemas.ProviderEventOut),
          auth=signed(refuse=const.invalid_signature), responses=(404,))
    resources.setup(app)
