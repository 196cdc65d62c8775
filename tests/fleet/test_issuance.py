"""upon_issuance follows the snapshot a waybill was issued against (backend/fleet/issuance.py, sql/006)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import asyncpg

from backend.migrations import SQL_DIR, dsn, migrate
from tests.fleet.conftest import Crew, seed_passenger_car, seed_record
from tests.services import Services

WAYBILLS = "/api/passenger-car-waybills/"
RECORDS = "/api/passenger-car-records/"
SNAPSHOTS = "/api/passenger-car-odometer-fuel/"
DAY = dt.datetime(2024, 9, 1, tzinfo=dt.UTC)


async def _two_waybills(crew: Crew) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """W1 with the seed's record (40 → 42.000), then W2 issued at 42.000 with the same record (→ 44)."""
    m, driver = crew.mechanic, crew.driver
    car = await seed_passenger_car(m)
    body = {"car": car, "driver": driver.user.id, "date": "2024-09-15", "norm_season": "summer"}
    w1 = await m.ok("POST", WAYBILLS, body, 201)
    r1 = await driver.ok("POST", RECORDS, seed_record(w1["id"]), 201)
    assert r1["fuel_on_return"] == "42.000"
    w2 = await m.ok("POST", WAYBILLS, body, 201)
    assert w2["upon_issuance"] == "42.000"
    await driver.ok("POST", RECORDS, seed_record(w2["id"]), 201)
    w2 = await driver.ok("GET", f"{WAYBILLS}{w2['id']}/")
    assert (w2["upon_issuance"], w2["availability_upon_delivery"]) == ("42.000", "44.000")
    return car, r1, w2


async def test_editing_an_earlier_record_moves_a_later_waybills_upon_issuance(crew: Crew) -> None:
    """Regression: upon_issuance was copied once at creation and kept 42.000 after this PATCH."""
    _, r1, w2 = await _two_waybills(crew)
    await crew.driver.ok("PATCH", f"{RECORDS}{r1['id']}/", {"fuel_used": "5"})
    after = await crew.driver.ok("GET", f"{WAYBILLS}{w2['id']}/")
    assert (after["upon_issuance"], after["availability_upon_delivery"]) == ("45.000", "47.000")
    assert (after["total_received"], after["total_spent"]) == ("10.000", "8.000")
    assert "issued_from_snapshot_id" not in after   # an internal pointer, not part of SPEC §5.5


async def test_deleting_the_issuing_record_falls_back_to_the_snapshot_before_it(crew: Crew) -> None:
    _, r1, w2 = await _two_waybills(crew)
    await crew.driver.ok("DELETE", f"{RECORDS}{r1['id']}/", status=204)
    after = await crew.driver.ok("GET", f"{WAYBILLS}{w2['id']}/")
    assert (after["upon_issuance"], after["availability_upon_delivery"]) == ("40.000", "42.000")


async def test_correcting_the_measurement_a_waybill_was_issued_from(crew: Crew) -> None:
    m = crew.mechanic
    car = await seed_passenger_car(m)
    first = await m.ok("GET", f"{SNAPSHOTS}last/", car=car)
    waybill = await m.ok("POST", WAYBILLS, {"car": car, "driver": crew.driver.user.id, "date": "2024-09-15",
                                            "norm_season": "summer"}, 201)
    await m.ok("PATCH", f"{SNAPSHOTS}{first['id']}/", {"fuel": "41.5"})
    after = await m.ok("GET", f"{WAYBILLS}{waybill['id']}/")
    assert (after["upon_issuance"], after["availability_upon_delivery"]) == ("41.500", "41.500")


async def test_migration_backfills_the_issuing_snapshot(services: Services, tmp_path: Path) -> None:
    """sql/006 on data written before it: the latest snapshot live at the waybill's creation and
    older than its first record's snapshot; NULL when there is none."""
    url = await services.empty_database("t_issuance")
    for path in sorted(SQL_DIR.glob("*.sql")):
        if path.name < "006":
            shutil.copy(path, tmp_path / path.name)
    await migrate(url, tmp_path)
    db = await asyncpg.connect(dsn(url))
    try:
        role = await db.fetchval("SELECT id FROM roles WHERE name = 'driver'")
        user = await db.fetchval("INSERT INTO users (login, username, password_hash, role_id)"
                                 " VALUES ('d', 'd', 'x', $1) RETURNING id", role)
        car = await db.fetchval("INSERT INTO passenger_cars (number) VALUES ('A1') RETURNING id")

        async def at(table: str, minute: int, **values: Any) -> int:
            """Insert a row created `minute` minutes into the day (table names are constants here)."""
            values["created_at"] = DAY + dt.timedelta(minutes=minute)
            marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
            return await db.fetchval(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks}) RETURNING id",
                                     *values.values())

        async def snap(minute: int, fuel: int) -> int:
            return await at("passenger_car_odometer_fuel", minute, car_id=car, odometer=1, fuel=fuel,
                            date=DAY.date())

        async def waybill(minute: int) -> int:
            return await at("passenger_car_waybills", minute, car_id=car, driver_id=user, date=DAY.date(),
                            norm_season="summer")

        early = await waybill(10)                 # before any snapshot: NULL
        s1 = await snap(20, 40)
        plain = await waybill(30)                 # no records: the latest snapshot before it
        s2 = await snap(35, 42)
        # with_record's first trip wrote s3 in a transaction that began before the waybill's (now()
        # is the transaction start): the time alone would pick s3, its own trip's snapshot.
        s3 = await snap(38, 44)
        with_record = await waybill(40)
        await db.execute(
            "INSERT INTO passenger_car_records (waybill_id, car_id, snapshot_id, city_norm, area_norm,"
            " departure_time, arrival_time, distance_city_km, distance_area_km, fuel_refueled, fuel_used,"
            " odometer_before, fuel_before_departure, distance_total_km, odometer_after, fuel_used_city,"
            " fuel_used_area, fuel_used_normal, fuel_on_return) VALUES ($1, $2, $3, 0, 0, '08:00', '09:00',"
            " 0, 0, 0, 0, 1, 42, 0, 1, 0, 0, 0, 44)", with_record, car, s3)
        gone = await snap(50, 7)
        await db.execute("UPDATE passenger_car_odometer_fuel SET deleted_at = $2 WHERE id = $1",
                         gone, DAY + dt.timedelta(minutes=55))
        after_gone = await waybill(60)            # gone was already deleted: s3
        was_live = await waybill(52)              # gone was still live then (created "later" for the test)
        await migrate(url)
        issued = dict(await db.fetch("SELECT id, issued_from_snapshot_id FROM passenger_car_waybills"))
    finally:
        await db.close()
    assert issued == {early: None, plain: s1, with_record: s2, after_gone: s3, was_live: gone}
