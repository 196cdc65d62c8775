"""The ten fleet collections over HTTP (backend/fleet/resources.py): paths, ids and pagination (SPEC §2.4, §5)."""

from __future__ import annotations

import pytest

from backend.fleet.kinds import KINDS, Kind
from tests.fleet.checks import everything
from tests.fleet.conftest import Crew, World, record_body, seed_car, waybill_body

NOT_FOUND = {"detail": "Не найдено.", "code": "not_found"}
PAST_BIGINT = "99999999999999999999"
COLLECTIONS = [path for kind in KINDS for path in (
    kind.cars_path, kind.path("norms"), kind.path("odometer-fuel"), kind.path("waybills"), kind.path("records"))]


async def test_there_are_ten_collections() -> None:
    assert len(set(COLLECTIONS)) == 10


@pytest.mark.parametrize("path", COLLECTIONS)
async def test_every_list_answers_with_and_without_slash(crew: Crew, path: str) -> None:
    with_slash = await crew.mechanic.ok("GET", path)
    without = await crew.mechanic.ok("GET", path.rstrip("/"))
    assert with_slash == without == {"count": 0, "next": None, "previous": None, "results": []}


async def test_record_ids_past_bigint_are_404(crew: Crew, world: World, kind: Kind) -> None:
    """Regression: PATCH/PUT/DELETE of a record parsed the id with int() and sent it to Postgres (a 500)."""
    car = await seed_car(crew.mechanic, kind)
    waybill = await crew.mechanic.ok("POST", kind.path("waybills"), waybill_body(kind, car, crew.driver.user.id), 201)
    await crew.driver.ok("POST", kind.path("records"), record_body(kind, waybill["id"]), 201)
    before = await everything(world)
    item = f"{kind.path('records')}{PAST_BIGINT}/"
    for method, body in [("GET", None), ("PATCH", {"target": "x"}), ("PUT", record_body(kind, waybill["id"])),
                         ("DELETE", None)]:
        for path in (item, item.rstrip("/")):
            for user in (crew.driver, crew.mechanic):
                assert await user.call(method, path, body) == (404, NOT_FOUND), (method, path)
    assert await everything(world) == before


@pytest.mark.parametrize("path", COLLECTIONS)
async def test_every_item_id_past_bigint_is_404(crew: Crew, path: str) -> None:
    for method, body in [("GET", None), ("PATCH", {}), ("DELETE", None)]:
        assert await crew.mechanic.call(method, f"{path}{PAST_BIGINT}/", body) == (404, NOT_FOUND), method


async def test_waybill_pages_follow_id_order_within_the_drivers_scope(crew: Crew, kind: Kind) -> None:
    car = await seed_car(crew.mechanic, kind)
    path = kind.path("waybills")
    mine = []
    for n in range(7):      # five for the driver, two for someone else, interleaved
        driver = crew.other_driver if n in (1, 4) else crew.driver
        made = await crew.mechanic.ok("POST", path, waybill_body(kind, car, driver.user.id), 201)
        if driver is crew.driver:
            mine.append(made["id"])

    first = await crew.driver.ok("GET", path, limit=2)
    assert (first["count"], [w["id"] for w in first["results"]], first["previous"]) == (5, mine[:2], None)
    assert first["next"] == f"{path}?limit=2&offset=2"
    middle = await crew.driver.ok("GET", path, limit=2, offset=2)
    assert [w["id"] for w in middle["results"]] == mine[2:4]
    assert middle["next"] == f"{path}?limit=2&offset=4"
    assert middle["previous"] == f"{path}?limit=2&offset=0"
    last = await crew.driver.ok("GET", path.rstrip("/"), limit=2, offset=4)
    assert ([w["id"] for w in last["results"]], last["next"]) == (mine[4:], None)
    beyond = await crew.driver.ok("GET", path, limit=2, offset=50)
    assert (beyond["count"], beyond["results"]) == (5, [])

    everyone = await crew.mechanic.ok("GET", path, car=car, limit=500)
    ids = [w["id"] for w in everyone["results"]]
    assert everyone["count"] == 7 and ids == sorted(ids) and set(mine) < set(ids)
    assert (await crew.mechanic.ok("GET", path))["count"] == 7          # default limit 50
    filtered = await crew.mechanic.ok("GET", path, car=car, limit=3, offset=3)
    assert "car=" in filtered["next"] and "car=" in filtered["previous"]  # filters survive in the links


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "501"}, {"limit": "x"}, {"offset": "-1"}])
async def test_bad_page_parameters_are_400(crew: Crew, params: dict) -> None:
    status, body = await crew.mechanic.call("GET", "/api/fire-truck-records/", **params)
    assert status == 400 and set(body) == set(params), body
