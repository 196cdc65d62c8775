#!/usr/bin/env python3
"""The FastAPI + SQLAlchemy-async peer of scripts/bench/rest.py: the same endpoints and bodies,
written the way most FastAPI services are (a session per request through Depends, the current user
as a dependency, pydantic response models), served by uvicorn (uvloop, httptools, access log on).

    DATABASE_URL=... REDIS_URL=... JWT_SECRET=... python scripts/bench/peers/fastapi_rest.py --port 8301

Install for the bench only: `.venv/bin/pip install -e '.[bench]'` (fastapi, uvicorn[standard]).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
import shared_rest as s
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import ORJSONResponse
from pydantic import BaseModel
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine


def sql(statement: str) -> Any:
    """The shared asyncpg-style SQL ($1) as a SQLAlchemy text() (:p1)."""
    return text(re.sub(r"\$(\d+)", r":p\1", statement))


def params(*values: Any) -> dict[str, Any]:
    return {f"p{i}": value for i, value in enumerate(values, 1)}


IDENTITY, CARS, MESSAGES = sql(s.IDENTITY_SQL), sql(s.FREE_CARS_SQL), sql(s.MESSAGES_SQL)
RESERVE, CANCEL, FREE_CAR = sql(s.RESERVE_SQL), sql(s.CANCEL_SQL), sql(s.FREE_CAR_SQL)
POST_MESSAGE, RECORD_START, SNAPSHOT = sql(s.POST_MESSAGE_SQL), sql(s.RECORD_START_SQL), sql(s.SNAPSHOT_SQL)
RECORD, WAYBILL_SUM = sql(s.RECORD_SQL), sql(s.WAYBILL_SUM_SQL)

engine = create_async_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://", 1),
                             pool_size=10, max_overflow=10)
Session = async_sessionmaker(engine, expire_on_commit=False)
redis = Redis(connection_pool=BlockingConnectionPool.from_url(os.environ["REDIS_URL"], max_connections=200))


class PublicCar(BaseModel):
    id: int
    brand: str
    model: str
    lat: str | None
    lon: str | None
    fuel_level: str | None
    tariff_per_minute: str | None


class Me(BaseModel):
    id: int
    name: str
    surname: str
    last_name: str
    login: str
    phone: str | None
    driver_license: str | None
    role: int
    deleted_at: str | None


class Message(BaseModel):
    id: int
    chat_id: int
    sender_id: int
    text: str
    client_id: str | None
    created_at: str


class Messages(BaseModel):
    messages: list[Message]


class Booking(BaseModel):
    id: int
    car: int
    user: int
    status: str
    tariff_per_minute: str
    reserved_until: str
    started_at: str | None
    finished_at: str | None
    duration_s: int | None
    cost: str | None
    start_lat: str | None
    start_lon: str | None
    start_fuel_level: str | None
    end_lat: str | None
    end_lon: str | None
    end_fuel_level: str | None
    created_at: str
    updated_at: str


class BookingIn(BaseModel):
    car: int


class MessageIn(BaseModel):
    text: str
    client_id: str | None = None


class RecordIn(BaseModel):
    passenger_car_waybill: int
    target: str = ""
    departure_time: str
    arrival_time: str
    distance_city_km: int
    distance_area_km: int
    fuel_refueled: str
    fuel_used: str


async def session() -> AsyncIterator[AsyncSession]:
    async with Session() as db:
        yield db


DB = Annotated[AsyncSession, Depends(session)]


async def current_user(request: Request, db: DB) -> Any:
    try:
        claims = s.claims_of(request.headers.get("Authorization"))
        denied = await redis.mget(s.deny_keys(claims))
        row = (await db.execute(IDENTITY, params(claims["sub"]))).mappings().one_or_none()
        s.check_identity(claims, denied, row)
    except s.Unauthorized:
        raise HTTPException(401, "unauthorized") from None
    return row


User = Annotated[Any, Depends(current_user)]


async def publish(events: list[tuple[str, dict[str, Any]]]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for channel, frame in events:
            pipe.publish(channel, orjson.dumps(frame))
        await pipe.execute()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await redis.aclose()
    await engine.dispose()


app = FastAPI(lifespan=lifespan, default_response_class=ORJSONResponse)


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok", "instance": "fastapi"}


@app.get("/api/cars", response_model=list[PublicCar])
async def cars(db: DB) -> Any:
    rows = (await db.execute(CARS)).mappings().all()
    return [s.public_car(row) for row in rows]


@app.get("/api/auth/me/", response_model=Me)
async def me(user: User) -> Any:
    return s.me(user)


@app.get("/chats/{chat_id}/messages", response_model=Messages)
async def messages(chat_id: int, user: User, db: DB, limit: int = 50) -> Any:
    rows = (await db.execute(MESSAGES, params(chat_id, user["id"], limit))).mappings().all()
    return {"messages": [s.message(row) for row in reversed(rows)]}


@app.post("/chats/{chat_id}/messages", response_model=Message, status_code=201)
async def post_message(chat_id: int, body: MessageIn, user: User, db: DB) -> Any:
    row = (await db.execute(POST_MESSAGE, params(chat_id, user["id"], body.text))).mappings().one_or_none()
    if row is None:
        raise HTTPException(403, "forbidden")
    await db.commit()
    data = s.message(row)
    await publish([s.event(f"chat:{chat_id}", "message.created", data),
                   *(s.event(f"user:{member}", "message.created", data) for member in row["members"])])
    return data


@app.post("/api/bookings", response_model=Booking, status_code=201)
async def reserve(body: BookingIn, user: User, db: DB) -> Any:
    if not (user["is_admin"] or user["can_book_cars"]) or user["client_status"] != "approved":
        raise HTTPException(403, "forbidden")
    try:
        row = (await db.execute(RESERVE, params(body.car, user["id"]))).mappings().one_or_none()
        await db.commit()
    except IntegrityError:
        row = None
    if row is None:
        raise HTTPException(409, "car_not_available")
    data = s.booking(row)
    await publish([s.event("dashboard", "booking.created", data),
                   s.event(f"user:{user['id']}", "booking.created", data),
                   s.event("cars", "car.unavailable", {"id": row["car_id"]})])
    return data


@app.post("/api/bookings/{booking_id}/cancel", response_model=Booking)
async def cancel(booking_id: int, user: User, db: DB) -> Any:
    row = (await db.execute(CANCEL, params(booking_id, user["id"]))).mappings().one_or_none()
    if row is None:
        raise HTTPException(404, "not found")
    car = (await db.execute(FREE_CAR, params(row["car_id"]))).mappings().one()
    await db.commit()
    data = s.booking(row)
    await publish([s.event("dashboard", "booking.cancelled", data),
                   s.event(f"user:{user['id']}", "booking.cancelled", data),
                   s.event("cars", "car.available", s.public_car(car))])
    return data


@app.post("/api/passenger-car-records/", status_code=201)
async def add_record(body: RecordIn, user: User, db: DB) -> Any:
    start = (await db.execute(RECORD_START, params(body.passenger_car_waybill, user["id"]))).mappings().one_or_none()
    if start is None:
        raise HTTPException(404, "not found")
    values, args = s.record_values(start, user["id"], body.model_dump())
    args[2] = (await db.execute(SNAPSHOT, params(start["car_id"], values["odometer_after"], values["fuel_on_return"],
                                                 start["date"], start["id"]))).scalar_one()
    row = (await db.execute(RECORD, params(*args))).mappings().one()
    await db.execute(WAYBILL_SUM, params(start["id"]))
    await db.commit()
    return s.record(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", log_level="info",
                access_log=True, backlog=1024)


if __name__ == "__main__":
    main()
