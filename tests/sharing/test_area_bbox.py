"""GET /api/cars?bbox=min_lon,min_lat,max_lon,max_lat: each class of bad box is a DRF field error (SPEC §2.3)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.sharing.conftest import CarFactory

# One app answers every class (a fresh app per case would cost a second each).
BAD = {
    "empty": "",
    "three-numbers": "82.9,55.0,83.0",
    "five-numbers": "82.9,55.0,83.0,55.1,1",
    "wrong-separator": "82.9;55.0;83.0;55.1",
    "blank-number": "82.9,,83.0,55.1",
    "not-a-number": "east,55.0,83.0,55.1",
    "hex": "0x10,55.0,83.0,55.1",
    "nan": "nan,55.0,83.0,55.1",
    "infinity": "82.9,55.0,inf,55.1",
    "longitude-out-of-range": "-180.5,55.0,83.0,55.1",
    "latitude-out-of-range": "82.9,55.0,83.0,90.5",
    "min-lon-above-max": "83.0,55.0,82.9,55.1",
    "min-lat-above-max": "82.9,55.1,83.0,55.0",
    "across-the-antimeridian": "179.9,55.0,-179.9,55.1",   # two boxes, one each side
}


async def test_each_class_of_bad_bbox_is_a_field_error(client: TestClient) -> None:
    for case, raw in BAD.items():
        resp = await client.get("/api/cars", params={"bbox": raw})
        assert resp.status == 400, case
        body = await resp.json()
        assert set(body) == {"bbox"} and isinstance(body["bbox"], list) and body["bbox"][0], (case, body)


async def test_the_bbox_edges_belong_to_the_box(client: TestClient, make_car: CarFactory) -> None:
    car = await make_car(lat="55.000000", lon="83.000000")
    for raw in ("83,55,83.1,55.1", "82.9,54.9,83,55", "83,55,83,55", " 82.9 , 54.9 , 83.0 , 55.0 "):
        resp = await client.get("/api/cars", params={"bbox": raw})
        assert [found["id"] for found in await resp.json()] == [car["id"]], raw


async def test_the_whole_world_is_a_valid_box(client: TestClient, make_car: CarFactory) -> None:
    car = await make_car()
    resp = await client.get("/api/cars", params={"bbox": "-180,-90,180,90"})
    assert [found["id"] for found in await resp.json()] == [car["id"]]
