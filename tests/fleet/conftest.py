"""Fleet fixtures: an engine on the test's database and a `world` that seeds rows directly.

Domain tests call backend.fleet functions with explicit principals; HTTP tests use the auth
fixtures of tests/conftest.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth.tables import roles, users
from backend.config import Config
from backend.db import make_engine, make_hot_pool, transaction
from backend.fleet import issuance
from backend.fleet.kinds import FIRE_TRUCK, KINDS, PASSENGER, Kind
from backend.fleet.snapshots import lock_car
from backend.principal import Principal

DAY = dt.date(2024, 9, 15)
NORMS = {PASSENGER.name: {"city_norm": Decimal("0.090"), "area_norm": Decimal("0.110")},
         FIRE_TRUCK.name: {"with_pump_norm": Decimal("0.250"), "without_pump_norm": Decimal("0.150"),
                           "km_norm": Decimal("0.657")}}


@pytest.fixture
async def engine(config: Config) -> AsyncIterator[AsyncEngine]:
    assert config.database_url
    engine = make_engine(config.database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def pool(config: Config) -> AsyncIterator[asyncpg.Pool]:
    """The raw asyncpg pool records.create_record runs on (the app's HOT_DB)."""
    assert config.database_url
    pool = await make_hot_pool(config.database_url, max_size=5)
    yield pool
    await pool.close()


class World:
    """Seeds users, cars, norms, snapshots and waybills straight into the database."""

    def __init__(self, engine: AsyncEngine, pool: asyncpg.Pool | None = None) -> None:
        self.engine = engine
        self._pool = pool
        self._n = itertools.count(1)

    @property
    def pool(self) -> asyncpg.Pool:
        """The raw pool records.create_record runs on (the `world` fixture's; checks-only worlds have none)."""
        assert self._pool is not None, "World(engine, pool) to create records"
        return self._pool

    async def _insert(self, table: Any, **values: Any) -> int:
        async with transaction(self.engine) as conn:
            return (await conn.execute(insert(table).values(**values).returning(table.c.id))).scalar_one()

    async def driver(self, *flags: str) -> Principal:
        async with transaction(self.engine) as conn:
            role = (await conn.execute(select(roles.c.id).where(roles.c.name == "driver"))).scalar_one()
        login = f"driver{next(self._n)}"
        uid = await self._insert(users, login=login, username=login, password_hash="x", role_id=role)
        return Principal(user_id=uid, login=f"d{uid}", permissions=frozenset(flags))

    async def car(self, kind: Kind, **norms: Any) -> int:
        """A car with a norm for DAY (both seasons) and a first measurement 100000 km / 40 l."""
        car = await self._insert(kind.cars, number=f"A{next(self._n):03d}AA54")
        for season in ("summer", "winter"):
            await self._insert(kind.norms, car_id=car, season=season, date=dt.date(2024, 9, 1),
                               **(NORMS[kind.name] | norms))
        await self.snapshot(kind, car, 100000, Decimal("40.000"))
        return car

    async def snapshot(self, kind: Kind, car: int, odometer: int, fuel: Decimal) -> int:
        return await self._insert(kind.snapshots, car_id=car, odometer=odometer, fuel=fuel, date=DAY)

    async def waybill(self, kind: Kind, car: int, driver: Principal, season: str = "summer") -> int:
        """A waybill issued the way the API issues it (issuance.issue under the car lock)."""
        async with transaction(self.engine) as conn:
            assert await lock_car(conn, kind, car)
            issued = await issuance.issue(conn, kind, car)
            assert issued is not None, "the car has no snapshot"
            return (await conn.execute(insert(kind.waybills).values(
                car_id=car, driver_id=driver.user_id, date=DAY, norm_season=season, fuel_type="petrol", **issued)
                .returning(kind.waybills.c.id))).scalar_one()

    async def rows(self, table: Any, **where: Any) -> list[dict[str, Any]]:
        """Every row of `table` matching `where`, in id order (deleted ones included)."""
        query = select(table).order_by(table.c.id)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        async with self.engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings()]


@pytest.fixture
def world(engine: AsyncEngine, pool: asyncpg.Pool) -> World:
    return World(engine, pool)


def passenger_trip(waybill: int, city: int = 50, area: int = 0, refueled: str = "10", used: str = "8",
                   **extra: Any) -> dict[str, Any]:
    """Inputs of a passenger-car record (column names)."""
    return {"waybill_id": waybill, "target": "Поездка", "departure_time": dt.time(8, 10),
            "arrival_time": dt.time(10, 0), "distance_city_km": city, "distance_area_km": area,
            "fuel_refueled": Decimal(refueled), "fuel_used": Decimal(used), **extra}


class Api:
    """A signed-in user's view of the fleet API: JSON in, (status, JSON) out."""

    def __init__(self, client: Any, user: Any) -> None:
        self.client, self.user = client, user

    async def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        resp = await self.client.request(method, path, json=body, params=params or None, headers=self.user.headers)
        data = await resp.json() if resp.status != 204 else None
        return resp.status, data

    async def ok(self, method: str, path: str, body: Any = None, status: int = 200, **params: Any) -> Any:
        got, data = await self.call(method, path, body, **params)
        assert got == status, (method, path, got, data)
        return data


async def seed_passenger_car(mechanic: Api, number: str = "A001AA54") -> int:
    """The seed's car with its summer norm and first snapshot (SPEC §5.6 worked example)."""
    car = await mechanic.ok("POST", "/api/passenger-cars/", {"number": number, "brand": "Toyota", "model": "Camry"},
                            201)
    await mechanic.ok("POST", "/api/passenger-car-norms/", {"car": car["id"], "season": "summer", "city_norm": "0.090",
                                                           "area_norm": "0.110", "date": "2024-09-01"}, 201)
    await mechanic.ok("POST", "/api/passenger-car-odometer-fuel/", {"car": car["id"], "odometer": 100000,
                                                                   "fuel": "40.000", "date": "2024-09-01",
                                                                   "waybill": None}, 201)
    return car["id"]


def seed_record(waybill: int, **changes: Any) -> dict[str, Any]:
    """The seed's passenger-car record body."""
    return {"passenger_car_waybill": waybill, "target": "Поездка в город", "departure_time": "08:10:00",
            "arrival_time": "10:00:00", "distance_city_km": 50, "distance_area_km": 0, "fuel_refueled": "10.000",
            "fuel_used": "8.000", **changes}


async def seed_fire_truck(mechanic: Api, number: str = "A101AA54") -> int:
    """The seed's fire truck with its winter norm and first snapshot 20000 km / 150 l (SPEC §5.6)."""
    car = await mechanic.ok("POST", "/api/fire-trucks/", {"number": number, "brand": "КАМАЗ", "model": "43118",
                                                          "type": "АЦ-3,2-40"}, 201)
    await mechanic.ok("POST", "/api/fire-truck-norms/", {"car": car["id"], "season": "winter",
                                                        "with_pump_norm": "0.250", "without_pump_norm": "0.150",
                                                        "km_norm": "0.657", "date": "2024-09-01"}, 201)
    await mechanic.ok("POST", "/api/fire-truck-odometer-fuel/", {"car": car["id"], "odometer": 20000,
                                                                "fuel": "150.000", "date": "2024-09-01"}, 201)
    return car["id"]


def fire_record(waybill: int, nth: int = 1, **changes: Any) -> dict[str, Any]:
    """The seed's fire-truck record body, as the `nth` 90 km trip of a truck seeded by seed_fire_truck."""
    return {"fire_truck_waybill": waybill, "target": "Выезд на пожар", "departure_time": "14:00:00",
            "arrival_time": "15:30:00", "odometer_after": 20000 + 90 * nth, "time_with_pump": 30,
            "time_without_pump": 15, "fuel_refueled": "20.000", "fuel_used": "25.000", **changes}


# The season each seeded car has a norm for.
SEASONS = {PASSENGER.name: "summer", FIRE_TRUCK.name: "winter"}


async def seed_car(mechanic: Api, kind: Kind) -> int:
    """A car of `kind` seeded like the worked example of its kind."""
    return await (seed_passenger_car if kind is PASSENGER else seed_fire_truck)(mechanic)


def waybill_body(kind: Kind, car: int, driver: int | None = None, **changes: Any) -> dict[str, Any]:
    """A waybill of `car` on DAY in the season its norm covers; without `driver` the caller drives."""
    body = {"car": car, "date": DAY.isoformat(), "norm_season": SEASONS[kind.name], "fuel_type": "diesel"}
    return body | ({"driver": driver} if driver is not None else {}) | changes


def record_body(kind: Kind, waybill: int, nth: int = 1, **changes: Any) -> dict[str, Any]:
    """A valid record of `kind`; `nth` matters only to fire trucks, whose body names the odometer."""
    if kind is PASSENGER:
        return seed_record(waybill, **changes)
    return fire_record(waybill, nth, **changes)


@dataclass
class Crew:
    """Signed-in users of each fleet role on one app instance."""

    mechanic: Api
    driver: Api
    other_driver: Api
    operator: Api
    client: Api


@pytest.fixture(params=KINDS, ids=lambda kind: kind.name)
def kind(request: pytest.FixtureRequest) -> Kind:
    """Run the test once per vehicle kind."""
    return request.param


RoleUser = Callable[..., Awaitable[Api]]


@pytest.fixture
async def role_user(client: Any, make_user: Any) -> RoleUser:
    """A factory of users whose new role holds exactly the given flags, made through the admin API."""
    admin = Api(client, await make_user(role="admin"))
    numbers = itertools.count(1)

    async def make(*flags: str) -> Api:
        role = await admin.ok("POST", "/api/roles/", {"name": f"fleet-role-{next(numbers)}"}, 201)
        await admin.ok("POST", "/api/permissions/", {"role": role["id"], **dict.fromkeys(flags, True)}, 201)
        return Api(client, await make_user(role=role["name"]))
    return make


@pytest.fixture
async def crew(client: Any, make_user: Any) -> Crew:
    async def api(role: str) -> Api:
        return Api(client, await make_user(role=role))
    return Crew(mechanic=await api("mechanic"), driver=await api("driver"), other_driver=await api("driver"),
                operator=await api("operator"), client=await api("client"))
