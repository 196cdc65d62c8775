"""Car availability by area (SPEC §13.3): `cars:{geohash5}` channels, their snapshots and events,
and GET /api/cars?bbox= answering what the tiles covering the box hold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from backend import keys
from backend.realtime.bus import Outbox
from backend.sharing import geohash
from backend.sharing.areas import TILE_PRECISION, tile_channel
from backend.sharing.events import car_changed
from tests.conftest import TestUser
from tests.realtime.conftest import next_event
from tests.sharing.conftest import CarFactory, act, add_car, booked, frames_until, subscribe

HOME = {"lat": "55.030199", "lon": "82.920430"}
NEXT_DOOR = {"lat": "55.030199", "lon": "82.950000"}         # the tile east of HOME's
CORNER = {"lat": "54.843750", "lon": "82.968750"}            # a corner shared by four tiles


def tile(place: dict[str, str]) -> str:
    return geohash.encode(place["lat"], place["lon"], TILE_PRECISION)


async def snapshot(ws: aiohttp.ClientWebSocketResponse, channel: str, frame_id: int) -> list[dict[str, Any]]:
    reply = await subscribe(ws, channel, frame_id)
    assert isinstance(reply["offset"], int) and reply["epoch"]          # a stream, like `cars` (SPEC §12.1)
    return reply["snapshot"]


async def test_a_tile_snapshot_holds_the_free_cars_of_that_tile_only(client: TestClient,
                                                                     make_car: CarFactory) -> None:
    home, next_door, corner = await make_car(**HOME), await make_car(**NEXT_DOOR), await make_car(**CORNER)
    await make_car(shared=False, **HOME)
    nowhere = await make_car(lat=None, lon=None)
    listed = {car["id"]: car for car in await (await client.get("/api/cars")).json()}
    # Just south-west of the corner: the three tiles around it that do not own it.
    below = geohash.encode("54.843749", "82.968749", TILE_PRECISION)
    west = geohash.encode("54.843750", "82.968749", TILE_PRECISION)
    south = geohash.encode("54.843749", "82.968750", TILE_PRECISION)
    async with client.ws_connect("/ws") as ws:                       # anonymous: the tiles are public
        assert await snapshot(ws, tile_channel(tile(HOME)), 1) == [listed[home["id"]]]
        assert await snapshot(ws, tile_channel(tile(NEXT_DOOR)), 2) == [listed[next_door["id"]]]
        assert await snapshot(ws, tile_channel(tile(CORNER)), 3) == [listed[corner["id"]]]
        for n, other in enumerate({below, west, south}, start=4):
            assert await snapshot(ws, tile_channel(other), n) == []
        whole = await snapshot(ws, "cars", 9)
    assert [car["id"] for car in whole] == sorted(listed)
    assert nowhere["id"] in listed           # a free car without coordinates is on `cars`, on no tile


# Too short, too long, a letter outside the alphabet, upper case, empty, a second part, a space.
NOT_TILES = ("cars:vcfc", "cars:vcfcnn", "cars:vcfca", "cars:VCFCN", "cars:", "cars:vcfc:n", "cars:vcfc ")


async def test_a_name_that_is_no_tile_is_an_unknown_channel(client: TestClient, admin: TestUser) -> None:
    async with client.ws_connect("/ws") as ws:
        for n, name in enumerate(NOT_TILES, start=1):
            await ws.send_json({"type": "subscribe", "channel": name, "id": n})
            reply = await ws.receive_json(timeout=5)
            assert (reply["type"], reply["code"], reply["id"]) == ("error", "unknown_channel", n), name
    for name in NOT_TILES:
        # The publish API judges names by the same registry (SPEC §8.5).
        resp = await client.post("/api/realtime/publish", headers=admin.headers,
                                 json={"channel": name, "event": "car.moved", "data": {}})
        assert resp.status == 400 and set(await resp.json()) == {"channel"}, name


async def test_the_publish_api_takes_a_tile(client: TestClient, admin: TestUser) -> None:
    async with client.ws_connect("/ws") as ws:
        await subscribe(ws, "cars:vcfcn")
        resp = await client.post("/api/realtime/publish", headers=admin.headers,
                                 json={"channel": "cars:vcfcn", "event": "car.unavailable", "data": {"id": 1}})
        assert resp.status == 200, await resp.text()
        assert await next_event(ws, "cars:vcfcn", "car.unavailable") == {"id": 1}


async def test_a_booking_is_news_on_its_tile_and_on_the_whole_city(client: TestClient, make_car: CarFactory,
                                                                     customer: TestUser) -> None:
    car = await make_car(**HOME)
    own = tile_channel(tile(HOME))
    async with client.ws_connect("/ws") as ws:
        await subscribe(ws, "cars", 1)
        start = await subscribe(ws, own, 2)
        await subscribe(ws, tile_channel(tile(NEXT_DOOR)), 3)
        booking = await booked(client, customer, car["id"])
        assert (await act(client, customer, booking["id"], "cancel")).status == 200
        await client.app[keys.BUS].publish("cars", "test.marker", {})
        seen = [(f["channel"], f["event"], f["data"]) for f in await frames_until(ws, "test.marker")]
    public = {"id": car["id"], "brand": "Lada", "model": "Vesta", **HOME, "fuel_level": "40.000",
              "tariff_per_minute": "7.500"}
    assert [news for news in seen if news[0] == own] == [
        (own, "car.unavailable", {"id": car["id"]}), (own, "car.available", public)]
    assert [news for news in seen if news[0] == "cars"] == [
        ("cars", "car.unavailable", {"id": car["id"]}), ("cars", "car.available", public)]
    assert {news[0] for news in seen} == {own, "cars"}               # nothing on the tile next door
    # The tile is a stream like any channel (SPEC §12): its history recovers both events.
    history = await (await client.get("/api/realtime/history", params={
        "channel": own, "since": start["offset"], "epoch": start["epoch"]})).json()
    assert history["recovered"] is True
    assert [(e["event"], e["offset"]) for e in history["events"]] == [
        ("car.unavailable", start["offset"] + 1), ("car.available", start["offset"] + 2)]


async def test_a_car_moving_across_tiles_leaves_one_and_enters_the_other(
        two_apps: tuple[TestClient, TestClient], admin: TestUser) -> None:
    a, b = two_apps
    car = await add_car(a, admin, **HOME)
    old, new = tile_channel(tile(HOME)), tile_channel(tile(NEXT_DOOR))
    path = f"/api/passenger-cars/{car['id']}/"
    async with b.ws_connect("/ws") as ws:                              # the subscriber is on the other instance
        for n, channel in enumerate(("cars", old, new), start=1):
            await subscribe(ws, channel, n)
        resp = await a.patch(path, json=NEXT_DOOR, headers=admin.headers)     # fleet's car update path
        assert resp.status == 200, await resp.text()
        # Inside one tile a move stays a move.
        inside = {"lat": "55.031000", "lon": "82.951000"}
        assert tile(inside) == tile(NEXT_DOOR)
        assert (await a.patch(path, json=inside, headers=admin.headers)).status == 200
        await a.app[keys.BUS].publish("cars", "test.marker", {})
        seen = [(f["channel"], f["event"], f["data"]) for f in await frames_until(ws, "test.marker")]
    public = {"id": car["id"], "brand": "Lada", "model": "Vesta", "fuel_level": "40.000",
              "tariff_per_minute": "7.500"}
    assert [news for news in seen if news[0] == old] == [(old, "car.unavailable", {"id": car["id"]})]
    assert [news for news in seen if news[0] == new] == [
        (new, "car.available", {**public, **NEXT_DOOR}), (new, "car.moved", {**public, **inside})]
    assert [news for news in seen if news[0] == "cars"] == [
        ("cars", "car.moved", {**public, **NEXT_DOOR}), ("cars", "car.moved", {**public, **inside})]


async def test_bbox_answers_what_the_covering_tiles_hold_inside_the_box(client: TestClient,
                                                                         make_car: CarFactory) -> None:
    min_lon, min_lat, max_lon, max_lat = Decimal("82.92"), Decimal("55.0"), Decimal("82.97"), Decimal("55.04")
    inside = [HOME, {"lat": "55.020000", "lon": "82.950000"},
              {"lat": "55.040000", "lon": "82.970000"},                 # the box's north-east corner
              {"lat": "55.000000", "lon": "82.920000"}]                 # its south-west corner
    outside = [{"lat": "55.050000", "lon": "82.930000"}, {"lat": "55.010000", "lon": "82.900000"}]
    expected = [(await make_car(**place))["id"] for place in inside]
    for place in outside:
        await make_car(**place)
    await make_car(shared=False, lat="55.02", lon="82.95")
    tiles = geohash.cover(min_lat, min_lon, max_lat, max_lon, TILE_PRECISION, limit=20)
    assert {tile(place) for place in outside} <= set(tiles)           # the tiles hold more than the box
    resp = await client.get("/api/cars", params={"bbox": f"{min_lon},{min_lat},{max_lon},{max_lat}"})
    assert resp.status == 200
    answered = await resp.json()
    assert [car["id"] for car in answered] == expected
    union: dict[int, dict[str, Any]] = {}
    async with client.ws_connect("/ws") as ws:
        for n, cell in enumerate(tiles, start=1):
            for car in await snapshot(ws, tile_channel(cell), n):
                assert car["id"] not in union                           # a car is on one tile only
                union[car["id"]] = car
    in_box = [car for _, car in sorted(union.items())
              if min_lat <= Decimal(car["lat"]) <= max_lat and min_lon <= Decimal(car["lon"]) <= max_lon]
    assert in_box == answered


def test_each_kind_of_car_change_maps_to_tile_news() -> None:
    """What car_changed says on the tiles, for every path a car's change can take."""
    base = {"id": 1, "number": "A1", "brand": "Lada", "model": "Vesta", "shared": True, "state": "available",
            "lat": HOME["lat"], "lon": HOME["lon"], "fuel_level": "40", "tariff_per_minute": "7",
            "deleted_at": None, "state_changed_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    home, next_door = tile_channel(tile(HOME)), tile_channel(tile(NEXT_DOOR))

    def on_tiles(after: dict[str, Any], before: dict[str, Any] | None) -> list[tuple[str, str]]:
        out = Outbox()
        car_changed(out, after, before)
        return [(channel, event) for channel, event, _ in out.events if channel.startswith("cars:")]

    assert on_tiles({**base, **NEXT_DOOR}, base) == [(home, "car.unavailable"), (next_door, "car.available")]
    assert on_tiles({**base, "lat": "55.031000"}, base) == [(home, "car.moved")]
    assert on_tiles({**base, "tariff_per_minute": "8"}, base) == [(home, "car.available")]
    assert on_tiles({**base, "number": "B2"}, base) == []
    assert on_tiles({**base, "state": "reserved"}, base) == [(home, "car.unavailable")]
    # Booked at HOME, left NEXT_DOOR: free again on the tile where the trip ended only.
    assert on_tiles({**base, **NEXT_DOOR}, {**base, "state": "in_trip"}) == [(next_door, "car.available")]
    assert on_tiles({**base, "state": "maintenance"}, {**base, "state": "reserved"}) == []
    assert on_tiles(base, None) == [(home, "car.available")]                        # a new free car
    assert on_tiles({**base, "lat": None, "lon": None}, base) == [(home, "car.unavailable")]   # off the map
    assert on_tiles(base, {**base, "lat": None, "lon": None}) == [(home, "car.available")]     # onto it
    assert on_tiles({**base, "lat": None, "lon": None}, None) == []
