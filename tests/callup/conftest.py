"""CallUp fixtures: apps with real tokens, order helpers, bounded waits on order state."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from backend import keys
from backend.callup import apps
from backend.callup.calls import sign
from backend.callup.tables import orders, transitions
from backend.config import Config
from backend.db import make_engine, read
from tests.realtime.conftest import event_of
from tests.support import eventually


@dataclass(frozen=True)
class TestApp:
    """A CallUp app row and the headers its requests carry."""

    __test__ = False

    id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Application-Token": self.token}


AppFactory = Callable[..., Awaitable[TestApp]]


@pytest.fixture
async def make_app(config: Config) -> AsyncIterator[AppFactory]:
    """Create apps through the domain function `run.py create-app` uses."""
    assert config.database_url
    engine = make_engine(config.database_url, pool_size=1, max_overflow=1)

    async def make(name: str = "test app") -> TestApp:
        row = await apps.create(engine, name)
        return TestApp(id=int(row["id"]), token=str(row["token"]))

    yield make
    await engine.dispose()


@pytest.fixture
async def app_a(make_app: AppFactory) -> TestApp:
    return await make_app("app A")


async def create_order(client: TestClient, app: TestApp, phone: str = "79001234567", *, code: str | None = None,
                       query: str = "") -> dict[str, Any]:
    """POST /v1/orders and return its data (fails the test on anything but 200)."""
    body: dict[str, Any] = {"phone": phone}
    if code is not None:
        body["code"] = code
    resp = await client.post(f"/v1/orders{query}", json=body, headers=app.headers)
    payload = await resp.json()
    assert resp.status == 200, payload
    assert payload["errors"] is None
    return payload["data"]


async def order_code(client: TestClient, order_id: str) -> str:
    """The stored code of an order (what the user reads off the caller's number)."""
    async with read(client.app[keys.DB]) as conn:
        return (await conn.execute(select(orders.c.code).where(orders.c.id == order_id))).scalar_one()


async def order_row(client: TestClient, order_id: str) -> Any:
    async with read(client.app[keys.DB]) as conn:
        return (await conn.execute(select(orders).where(orders.c.id == order_id))).mappings().one()


async def statuses(client: TestClient, order_id: str) -> list[str]:
    """The order's transitions, oldest first, as their target statuses."""
    async with read(client.app[keys.DB]) as conn:
        return list((await conn.execute(select(transitions.c.to_status).where(transitions.c.order_id == order_id)
                                        .order_by(transitions.c.id))).scalars())


async def seconds_to_expiry(client: TestClient, order_id: str) -> float:
    """How long the order has left by the database's clock (the one every instance uses)."""
    async with read(client.app[keys.DB]) as conn:
        left = (await conn.execute(select(func.extract("epoch", orders.c.expires_at - func.now()))
                                   .where(orders.c.id == order_id))).scalar_one()
    return max(0.0, float(left))


async def count_orders(client: TestClient) -> int:
    async with read(client.app[keys.DB]) as conn:
        return (await conn.execute(select(func.count()).select_from(orders))).scalar_one()


async def wait_for_status(client: TestClient, order_id: str, status: str) -> None:
    """Poll the order until it reaches `status`: a wait for a condition (bounded, ~5 s), never a fixed sleep."""
    async def reached() -> None:
        last = (await order_row(client, order_id))["status"]
        assert last == status, f"order {order_id} stayed {last}, expected {status}"

    await eventually(reached)


def error_of(payload: dict[str, Any]) -> tuple[str, str]:
    """(code, message) of a one-error envelope."""
    assert payload["data"] is None, payload
    assert isinstance(payload["errors"], list) and payload["errors"], payload
    first = payload["errors"][0]
    return first["code"], first["message"]


async def signed_event(client: TestClient, body: Any, *, signature: str | None = None,
                       content_type: str = "application/json") -> Any:
    """POST /v1/provider/events as the provider does: the raw body signed with CALLUP_PROVIDER_SECRET."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    if signature is None:
        signature = sign(client.app[keys.CONFIG].callup_provider_secret, raw)
    return await client.post("/v1/provider/events", data=raw,
                             headers={"Content-Type": content_type, "X-Signature": signature})


async def status_events(ws: Any, count: int, order_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The next `count` order.status events (of `order_id` if given) as (channel, data); each receive is
    bounded, so a missing event fails the test instead of hanging it."""
    seen: list[tuple[str, dict[str, Any]]] = []
    while len(seen) < count:
        channel, event, data = event_of(await ws.receive_json(timeout=5))
        if event == "order.status" and order_id in (None, data["id"]):
            seen.append((channel, data))
    return seen
