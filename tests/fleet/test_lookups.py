"""for-date/ and last/ (SPEC §5.2, §5.4): latest not after the date, per season; deleted rows ignored."""

from __future__ import annotations

import pytest

from tests.fleet.conftest import Crew

NORMS = "/api/passenger-car-norms/"
FOR_DATE = NORMS + "for-date/"
SNAPSHOTS = "/api/passenger-car-odometer-fuel/"


@pytest.fixture
async def car(crew: Crew) -> int:
    return (await crew.mechanic.ok("POST", "/api/passenger-cars/", {"number": "A001AA54"}, 201))["id"]


async def norm(crew: Crew, car: int, season: str, date: str, city: str) -> dict:
    return await crew.mechanic.ok("POST", NORMS, {"car": car, "season": season, "city_norm": city,
                                                  "area_norm": "0.110", "date": date}, 201)


async def test_for_date_picks_the_latest_norm_of_the_season(crew: Crew, car: int) -> None:
    await norm(crew, car, "summer", "2024-06-01", "0.080")
    september = await norm(crew, car, "summer", "2024-09-01", "0.090")
    october = await norm(crew, car, "summer", "2024-10-01", "0.095")
    await norm(crew, car, "winter", "2024-09-10", "0.120")
    found = await crew.driver.ok("GET", FOR_DATE, car=car, season="summer", date="2024-09-15")
    assert found == september
    assert found == {"id": found["id"], "car": car, "season": "summer", "city_norm": "0.090", "area_norm": "0.110",
                     "date": "2024-09-01", "deleted_at": None}
    assert (await crew.driver.ok("GET", FOR_DATE, car=car, season="summer", date="2024-10-01"))["id"] == october["id"]
    assert (await crew.driver.ok("GET", FOR_DATE.rstrip("/"), car=car, season="winter",
                                 date="2024-12-15"))["city_norm"] == "0.120"
    status, body = await crew.driver.call("GET", FOR_DATE, car=car, season="winter", date="2024-09-09")
    assert (status, body["code"]) == (404, "not_found")

    await crew.mechanic.ok("DELETE", f"{NORMS}{october['id']}/", status=204)
    assert (await crew.driver.ok("GET", FOR_DATE, car=car, season="summer", date="2024-12-31"))["id"] == september["id"]
    await crew.mechanic.ok("DELETE", f"{NORMS}{september['id']}/", status=204)
    assert (await crew.driver.ok("GET", FOR_DATE, car=car, season="summer", date="2024-12-31"))["city_norm"] == "0.080"


@pytest.mark.parametrize("params", [
    {"season": "summer", "date": "2024-09-15"},
    {"car": "x", "season": "summer", "date": "2024-09-15"},
    {"car": "1", "season": "spring", "date": "2024-09-15"},
    {"car": "1", "season": "summer"},
    {"car": "1", "season": "summer", "date": "15.09.2024"},
])
async def test_for_date_parameters_are_checked(crew: Crew, car: int, params: dict) -> None:
    status, body = await crew.driver.call("GET", FOR_DATE, **params)
    assert status == 400 and all(isinstance(v, list) for v in body.values()), body


async def test_duplicate_norm_is_a_400(crew: Crew, car: int) -> None:
    await norm(crew, car, "summer", "2024-09-01", "0.090")
    status, body = await crew.mechanic.call("POST", NORMS, {"car": car, "season": "summer", "city_norm": "1",
                                                            "area_norm": "1", "date": "2024-09-01"})
    assert status == 400 and "non_field_errors" in body


async def test_last_snapshot_ignores_deleted_ones(crew: Crew, car: int) -> None:
    status, _ = await crew.driver.call("GET", SNAPSHOTS + "last/", car=car)
    assert status == 404
    status, _ = await crew.driver.call("GET", SNAPSHOTS + "last/")
    assert status == 400
    first = await crew.mechanic.ok("POST", SNAPSHOTS, {"car": car, "odometer": 100000, "fuel": "40",
                                                       "date": "2024-09-01"}, 201)
    second = await crew.mechanic.ok("POST", SNAPSHOTS, {"car": car, "odometer": 100350, "fuel": "35.5",
                                                        "date": "2024-09-15"}, 201)
    last = await crew.driver.ok("GET", SNAPSHOTS + "last", car=car)
    assert last == {"id": second["id"], "car": car, "odometer": 100350, "fuel": "35.500", "date": "2024-09-15",
                    "waybill": None, "deleted_at": None}
    await crew.mechanic.ok("DELETE", f"{SNAPSHOTS}{second['id']}/", status=204)
    assert (await crew.driver.ok("GET", SNAPSHOTS + "last/", car=car))["id"] == first["id"]
    listed = await crew.driver.ok("GET", SNAPSHOTS, car=car)
    assert [s["id"] for s in listed["results"]] == [first["id"]]
