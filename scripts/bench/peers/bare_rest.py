#!/usr/bin/env python3
"""The REST ceiling of scripts/bench/rest.py: bare aiohttp doing only what a correct server must.

Handlers on the raw asyncpg pool (prepared statements, asyncpg's own cache), one redis-py MGET for
the deny-list, HS256 checked by hand once, orjson; no middlewares, no logging, no metrics, no
validation layer, no cache.

    DATABASE_URL=... REDIS_URL=... JWT_SECRET=... python scripts/bench/peers/bare_rest.py --port 8201
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import shared_rest as s
import uvloop
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

POOL = web.AppKey("pool", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)
Handler = Callable[[web.Request], Awaitable[web.Response]]


def answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def caller(request: web.Request, conn: asyncpg.Connection) -> tuple[dict[str, Any], Any]:
    """(claims, identity row) of the bearer; raises s.Unauthorized."""
    claims = s.claims_of(request.headers.get("Authorization"), by_hand=True)
    denied = await request.app[REDIS].mget(s.deny_keys(claims))
    row = await conn.fetchrow(s.IDENTITY_SQL, claims["sub"])
    s.check_identity(claims, denied, row)
    return claims, row


def authenticated(handler: Callable[[web.Request, asyncpg.Connection, Any], Awaitable[web.Response]]) -> Handler:
    async def wrapped(request: web.Request) -> web.Response:
        async with request.app[POOL].acquire() as conn:
            try:
                _, row = await caller(request, conn)
            except s.Unauthorized:
                return answer({"detail": "unauthorized"}, 401)
            return await handler(request, conn, row)
    return wrapped


async def publish(request: web.Request, events: list[tuple[str, dict[str, Any]]]) -> None:
    async with request.app[REDIS].pipeline(transaction=False) as pipe:
        for channel, frame in events:
            pipe.publish(channel, orjson.dumps(frame))
        await pipe.execute()


async def live(request: web.Request) -> web.Response:
    return answer({"status": "ok", "instance": "bare"})


async def cars(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(s.FREE_CARS_SQL)
    return answer([s.public_car(row) for row in rows])


@authenticated
async def me(request: web.Request, conn: asyncpg.Connection, user: Any) -> web.Response:
    return answer(s.me(user))


@authenticated
async def messages(request: web.Request, conn: asyncpg.Connection, user: Any) -> web.Response:
    limit = int(request.query.get("limit", "50"))
    rows = await conn.fetch(s.MESSAGES_SQL, int(request.match_info["id"]), user["id"], limit)
    return answer({"messages": [s.message(row) for row in reversed(rows)]})


@authenticated
async def post_message(request: web.Request, conn: asyncpg.Connection, user: Any) -> web.Response:
    body = orjson.loads(await request.read())
    row = await conn.fetchrow(s.POST_MESSAGE_SQL, int(request.match_info["id"]), user["id"], body["text"])
    if row is None:
        return answer({"code": "forbidden"}, 403)
    data = s.message(row)
    await publish(request, [s.event(f"chat:{row['chat_id']}", "message.created", data),
                            *(s.event(f"user:{member}", "message.created", data) for member in row["members"])])
    return answer(data, 201)


@authenticated
async def reserve(request: web.Request, conn: asyncpg.Connection, user: Any) -> web.Response:
    body = orjson.loads(await request.read())
    if not (user["is_admin"] or user["can_book_cars"]) or user["client_status"] != "approved":
        return answer({"detail": "forbidden"}, 403)
    try:
        row = await conn.fetchrow(s.RESERVE_SQL, int(body["car"]), user["id"])
    except asyncpg.UniqueViolationError:
        row = None
    if row is None:
        return answer({"code": "car_not_available"}, 409)
    data = s.booking(row)
    await publish(request, [s.event("dashboard", "booking.created", data),
                            s.event(f"user:{user['id']}", "booking.created", data),
                            s.event("cars", "car.unavailable", {"id": row["car_id"]})])
    return answer(data, 201)


@authenticated
async def cancel(request: web.Request, conn: asyncpg.Connection, user: Any) -> web.Response:
    async with conn.transaction():
        row = await conn.fetchrow(s.CANCEL_SQL, int(request.match_info["id"]), user["id"])
        if row is None:
            return answer({"detail": "not found"}, 404)
        car = await conn.fetchrow(s.FREE_CAR_SQL, row["car_id"])
    data = s.booking(row)
    await publish(request, [s.event("dashboard", "booking.cancelled", data),
                            s.event(f"user:{user['id']}", "booking.cancelled", data),
                            s.event("cars", "car.available", s.public_car(car))])
    return answer(data)


@authenticated
async def add_record(request: web.Request, conn: asyncpg.Connection, user: Any) -> web.Response:
    body = orjson.loads(await request.read())
    async with conn.transaction():
        start = await conn.fetchrow(s.RECORD_START_SQL, int(body["passenger_car_waybill"]), user["id"])
        if start is None:
            return answer({"detail": "not found"}, 404)
        values, args = s.record_values(start, user["id"], body)
        args[2] = await conn.fetchval(s.SNAPSHOT_SQL, start["car_id"], values["odometer_after"],
                                      values["fuel_on_return"], start["date"], start["id"])
        row = await conn.fetchrow(s.RECORD_SQL, *args)
        await conn.execute(s.WAYBILL_SUM_SQL, start["id"])
    return answer(s.record(row), 201)


async def resources(app: web.Application) -> AsyncIterator[None]:
    url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    app[POOL] = await asyncpg.create_pool(url, min_size=4, max_size=20)
    app[REDIS] = Redis(connection_pool=BlockingConnectionPool.from_url(os.environ["REDIS_URL"], max_connections=200))
    yield
    await app[REDIS].aclose()
    await app[POOL].close()


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(resources)
    app.router.add_get("/health/live", live)
    app.router.add_get("/api/cars", cars)
    app.router.add_get("/api/auth/me/", me)
    app.router.add_get(r"/chats/{id:\d+}/messages", messages)
    app.router.add_post(r"/chats/{id:\d+}/messages", post_message)
    app.router.add_post("/api/bookings", reserve)
    app.router.add_post(r"/api/bookings/{id:\d+}/cancel", cancel)
    app.router.add_post("/api/passenger-car-records/", add_record)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(make_app(), host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=1024)


if __name__ == "__main__":
    main()
