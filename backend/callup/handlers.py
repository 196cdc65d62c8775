"""HTTP handlers of /v1 (seed 002): parse, make one domain call, shape the envelope."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from backend import keys
from backend.api.responses import respond
from backend.api.validation import parse_json, read_body, read_json, read_query, require_json
from backend.callup import apps, const, limits, orders
from backend.callup.calls import signature_valid
from backend.callup.schemas import (
    CODE_MESSAGE,
    AppMe,
    CallerId,
    CodeInfo,
    OrderCreated,
    OrderIn,
    OrderOut,
    OrderQuery,
    ProviderEventIn,
    ProviderEventOut,
    VerifyOut,
    check_code,
    mask_phone,
)
from backend.db import read
from backend.errors import field_error

ORDER_FIELDS = ("id", "status", "created_at", "expires_at", "attempts")


def ok(data: BaseModel) -> web.Response:
    """The seed's success envelope; absent optional values (code.value) are left out, not null."""
    return respond({"data": data.model_dump(mode="json", exclude_none=True), "errors": None})


def current_app_id(request: web.Request) -> int:
    """The app of the request's X-Application-Token; anything else is `access denied` (SPEC §6.1).

    Unknown, blocked and deleted tokens were already refused by the authenticate middleware.
    """
    principal = request.get(keys.PRINCIPAL)
    if principal is None or principal.app_id is None:
        raise const.access_denied()
    return principal.app_id


def order_id_of(request: web.Request) -> uuid.UUID:
    """The {order_id} of the path; a malformed one names no order (404, never 500)."""
    try:
        return uuid.UUID(request.match_info["order_id"])
    except ValueError:
        raise const.order_not_found() from None


async def create_order(request: web.Request) -> web.Response:
    """POST /v1/orders[?fields=code.value]: order a call that carries a 4-digit code."""
    app_id = current_app_id(request)
    query = read_query(request, OrderQuery)
    data = await read_json(request, OrderIn)
    app, config = request.app, request.app[keys.CONFIG]
    await limits.admit_order(app[keys.REDIS], config.redis_prefix, app_id, data.phone,
                             config.callup_phone_limit, config.callup_app_rate)
    order = await orders.create(app[keys.DB], app[keys.BUS], app_id=app_id, phone=data.phone, code=data.code,
                                prefixes=config.callup_prefixes, ttl=config.callup_code_ttl)
    app[keys.CALLUP_CALLS].start(orders.call_of(order))
    shown = query.wants_code or data.code is not None
    prefix = order["caller_prefix"]
    return ok(OrderCreated(id=order["id"], cid=CallerId(prefix=prefix, mask=prefix + "*" * const.CODE_LEN),
                           code=CodeInfo(value=order["code"] if shown else None)))


async def verify_code(request: web.Request) -> web.Response:
    """GET /v1/auth/{order_id}/{order_code}: check the code the user read off the caller's number."""
    app_id = current_app_id(request)
    order_id = order_id_of(request)
    try:
        code = check_code(request.match_info["order_code"])
    except ValueError:
        raise field_error("order_code", CODE_MESSAGE) from None
    await orders.verify(request.app[keys.DB], request.app[keys.BUS], app_id=app_id, order_id=order_id,
                        code=code, max_attempts=request.app[keys.CONFIG].callup_max_attempts)
    return ok(VerifyOut(success=True))


async def get_order(request: web.Request) -> web.Response:
    """GET /v1/orders/{order_id}: an order's status, the phone masked."""
    order = await orders.find(request.app[keys.DB], current_app_id(request), order_id_of(request))
    data: dict[str, Any] = {name: order[name] for name in ORDER_FIELDS}
    return ok(OrderOut(phone=mask_phone(order["phone"]), **data))


async def app_me(request: web.Request) -> web.Response:
    """GET /v1/apps/me: the calling app, so it knows its id (its callup:app:{id} channel)."""
    app_id = current_app_id(request)
    async with read(request.app[keys.DB]) as conn:
        name = await apps.app_name(conn, app_id)
    return ok(AppMe(id=app_id, name=name))


async def provider_event(request: web.Request) -> web.Response:
    """POST /v1/provider/events: a call's outcome, authenticated by its body's HMAC (SPEC §11.17)."""
    body = await read_body(request)
    # The signature is checked first: an unsigned caller learns nothing, not even what is malformed.
    if not signature_valid(request.app[keys.CONFIG].callup_provider_secret, body,
                           request.headers.get("X-Signature")):
        raise const.invalid_signature()
    require_json(request)
    event = parse_json(body, ProviderEventIn)
    result = await request.app[keys.CALLUP_CALLS].report(event.order_id, event.status,
                                                         f"provider: {event.reason or event.status}")
    if result is None:
        raise const.order_not_found()
    applied, status = result
    return ok(ProviderEventOut(applied=applied, status=status))
