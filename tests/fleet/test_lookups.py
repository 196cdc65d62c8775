"""for-date/ and last/ (SPEC §5.2, §5.4): latest not after the date, per season; deleted rows ignored.

Each test runs for both vehicle kinds (the `kind` fixture).
"""

from __future__ import annotations

import pytest

from backend.fleet.kinds import PASSENGER, Kind
from tests.fleet.conftest import Crew


@pytest.fixture
async def car(crew: Crew, kind: Kind) -> int:
    return (await crew.mechanic.ok("POST", kind.cars_path, {"number": "A001AA54"}, 201))["id"]


def norm_body(kind: Kind, car: int, season: str, date: str, value: str) -> dict:
    """A norm whose first norm column (city_norm, with_pump_norm) is `value`; the others are fixed."""
    fixed = {"area_norm": "0.110"} if kind is PASSENGER else {"without_pump_norm": "0.150", "km_norm": "0.657"}
    return {"car": car, "season": season, kind.norm_columns[0]: value, **fixed, "date": date}


async def norm(crew: Crew, kind: Kind, car: int, season: str, date: str, value: str) -> dict:
    return await crew.mechanic.ok("POST", kind.path("norms"), norm_body(kind, car, season, date, value), 201)


async def test_for_date_picks_the_latest_norm_of_the_season(crew: Crew, kind: Kind, car: int) -> None:
    norms, for_date, first = kind.path("norms"), kind.path("norms") + "for-date/", kind.norm_columns[0]
    await norm(crew, kind, car, "summer", "2024-06-01", "0.080")
    september = await norm(crew, kind, car, "summer", "2024-09-01", "0.090")
    october = await norm(crew, kind, car, "summer", "2024-10-01", "0.095")
    await norm(crew, kind, car, "winter", "2024-09-10", "0.120")
    found = await crew.driver.ok("GET", for_date, car=car, season="summer", date="2024-09-15")
    assert found == september
    norm_values = {name: found[name] for name in kind.norm_columns}
    assert found == {"id": found["id"], "car": car, "season": "summer", **norm_values, "date": "2024-09-01",
                     "deleted_at": None}
    assert norm_values[first] == "0.090"
    assert (await crew.driver.ok("GET", for_date, car=car, season="summer", date="2024-10-01"))["id"] == october["id"]
    assert (await crew.driver.ok("GET", for_date.rstrip("/"), car=car, season="winter",
                                 date="2024-12-15"))[first] == "0.120"
    status, body = await crew.driver.call("GET", for_date, car=car, season="winter", date="2024-09-09")
    assert (status, body) == (404, {"detail": "Не найдено.", "code": "not_found"})

    await crew.mechanic.ok("DELETE", f"{norms}{october['id']}/", status=204)
    assert (await crew.driver.ok("GET", for_date, car=car, season="summer", date="2024-12-31"))["id"] == september["id"]
    await crew.mechanic.ok("DELETE", f"{norms}{september['id']}/", status=204)
    assert (await crew.driver.ok("GET", for_date, car=car, season="summer", date="2024-12-31"))[first] == "0.080"


async def test_for_date_is_per_car(crew: Crew, kind: Kind, car: int) -> None:
    other = (await crew.mechanic.ok("POST", kind.cars_path, {"number": "B002BB54"}, 201))["id"]
    await norm(crew, kind, other, "summer", "2024-09-01", "0.090")
    status, _ = await crew.driver.call("GET", kind.path("norms") + "for-date/", car=car, season="summer",
                                       date="2024-09-15")
    assert status == 404


@pytest.mark.parametrize("params", [
    {"season": "summer", "date": "2024-09-15"},
    {"car": "x", "season": "summer", "date": "2024-09-15"},
    {"car": "99999999999999999999", "season": "summer", "date": "2024-09-15"},
    {"car": "1", "season": "spring", "date": "2024-09-15"},
    {"car": "1", "date": "2024-09-15"},
    {"car": "1", "season": "summer"},
    {"car": "1", "season": "summer", "date": "15.09.2024"},
    {"car": "1", "season": "summer", "date": "2024-02-30"},
])
async def test_for_date_parameters_are_checked(crew: Crew, kind: Kind, car: int, params: dict) -> None:
    status, body = await crew.driver.call("GET", kind.path("norms") + "for-date/", **params)
    assert status == 400 and body and all(isinstance(v, list) for v in body.values()), body


async def test_duplicate_norm_is_a_400(crew: Crew, kind: Kind, car: int) -> None:
    await norm(crew, kind, car, "summer", "2024-09-01", "0.090")
    status, body = await crew.mechanic.call("POST", kind.path("norms"),
                                            norm_body(kind, car, "summer", "2024-09-01", "1"))
    assert status == 400 and "non_field_errors" in body


async def test_last_snapshot_ignores_deleted_ones(crew: Crew, kind: Kind, car: int) -> None:
    snapshots = kind.path("odometer-fuel")
    status, _ = await crew.driver.call("GET", snapshots + "last/", car=car)
    assert status == 404
    for params in ({}, {"car": "x"}, {"car": "0"}):
        status, body = await crew.driver.call("GET", snapshots + "last/", **params)
        assert status == 400 and "car" in body, (params, body)
    first = await crew.mechanic.ok("POST", snapshots, {"car": car, "odometer": 100000, "fuel": "40",
                                                       "date": "2024-09-01"}, 201)
    second = await crew.mechanic.ok("POST", snapshots, {"car": car, "odometer": 100350, "fuel": "35.5",
                                                        "date": "2024-09-15"}, 201)
    last = await crew.driver.ok("GET", snapshots + "last", car=car)
    assert last == {"id": second["id"], "car": car, "odometer": 100350, "fuel": "35.500", "date": "2024-09-15",
                    "waybill": None, "deleted_at": None}
    await crew.mechanic.ok("DELETE", f"{snapshots}{second['id']}/", status=204)
    assert (await crew.driver.ok("GET", snapshots + "last/", car=car))["id"] == first["id"]
    listed = await crew.driver.ok("GET", snapshots, car=car)
    assert [s["id"] for s in listed["results"]] == [first["id"]]
    # The greatest id wins, not the latest date (SPEC §5.4); another car's snapshots never count.
    backdated = await crew.mechanic.ok("POST", snapshots, {"car": car, "odometer": 100400, "fuel": "30",
                                                           "date": "2024-08-01"}, 201)
    other = (await crew.mechanic.ok("POST", kind.cars_path, {"number": "B002BB54"}, 201))["id"]
    await crew.mechanic.ok("POST", snapshots, {"car": other, "odometer": 1, "fuel": "1", "date": "2024-12-01"}, 201)
    assert (await crew.driver.ok("GET", snapshots + "last/", car=car))["id"] == backdated["id"]
