"""Bad input on the car-sharing routes: a clear DRF-style 4xx, never a 500, the database unchanged."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import TestUser
from tests.sharing.conftest import CarFactory, act, booked, booking_count, car_row

BIG = "9" * 30          # far past bigint


async def test_bad_booking_bodies(client: TestClient, make_car: CarFactory, customer: TestUser) -> None:
    car = await make_car()
    cases = [
        ({}, {"car": ["Обязательное поле."]}),
        ({"car": "abc"}, {"car": ["Требуется целочисленное значение."]}),
        ({"car": 1.5}, {"car": ["Требуется целочисленное значение."]}),
        ({"car": True}, {"car": ["Требуется целочисленное значение."]}),
        ({"car": None}, {"car": ["Требуется целочисленное значение."]}),
        ({"car": 0}, {"car": ["Убедитесь, что значение больше либо равно 1."]}),
        ({"car": int(BIG)}, {"car": ["Убедитесь, что значение меньше либо равно 9223372036854775807."]}),
        ({"car": car["id"] + 1000}, {"car": [f'Недопустимый первичный ключ "{car["id"] + 1000}" - объект не существует.']}),
    ]
    for body, expected in cases:
        resp = await client.post("/api/bookings", json=body, headers=customer.headers)
        assert resp.status == 400, body
        assert await resp.json() == expected, body
    for raw, content_type, status in ((b"{", "application/json", 400), (b"[1]", "application/json", 400),
                                      (b"", "application/json", 400), (b"car=1", "text/plain", 415),
                                      (b"car=1", "application/x-www-form-urlencoded", 415)):
        resp = await client.post("/api/bookings", data=raw, headers={**customer.headers, "Content-Type": content_type})
        assert resp.status == status, (raw, content_type)
        body = await resp.json()
        assert "detail" in body or "non_field_errors" in body, body
    assert await booking_count(client) == 0
    assert (await car_row(client, car["id"]))["state"] == "available"


async def test_ids_in_urls(client: TestClient, customer: TestUser, operator: TestUser) -> None:
    for path in (f"/api/bookings/{BIG}", f"/api/bookings/{BIG}/start", "/api/bookings/abc",
                 "/api/bookings/-1/cancel", "/api/bookings/999999/finish", f"/api/operator/cars/{BIG}/state",
                 f"/api/clients/{BIG}/approve"):
        method = client.get if path.count("/") == 3 else client.post
        resp = await method(path, json={"lat": 1, "lon": 1, "fuel_level": 1, "state": "available"},
                            headers=operator.headers)
        assert resp.status == 404, path
        assert (await resp.json())["code"] == "not_found", path


async def test_bad_finish_bodies_leave_the_trip_running(client: TestClient, make_car: CarFactory,
                                                        customer: TestUser) -> None:
    car = await make_car()
    booking = await booked(client, customer, car["id"])
    assert (await act(client, customer, booking["id"], "start")).status == 200
    good = {"lat": "55.1", "lon": "82.9", "fuel_level": "10"}
    for change, field in (({"lat": "90.5"}, "lat"), ({"lat": -91}, "lat"), ({"lon": "180.01"}, "lon"),
                          ({"lon": "abc"}, "lon"), ({"fuel_level": "-1"}, "fuel_level"),
                          ({"fuel_level": "1e9"}, "fuel_level"), ({"lat": "55.1234567"}, "lat"),
                          ({"lat": None}, "lat")):
        resp = await act(client, customer, booking["id"], "finish", {**good, **change})
        assert resp.status == 400, change
        assert set(await resp.json()) == {field}, change
    missing = await act(client, customer, booking["id"], "finish", {"lat": "55"})
    assert set(await missing.json()) == {"lon", "fuel_level"}
    row = await car_row(client, car["id"])
    assert row["state"] == "in_trip" and str(row["lat"]) == "55.030199"
    got = await (await client.get(f"/api/bookings/{booking['id']}", headers=customer.headers)).json()
    assert got["status"] == "in_trip" and got["end_lat"] is None


async def test_bad_list_queries(client: TestClient, operator: TestUser) -> None:
    for path, params, field in (("/api/bookings", {"status": "lost"}, "status"),
                                ("/api/bookings", {"user": "x"}, "user"),
                                ("/api/bookings", {"car": BIG}, "car"),
                                ("/api/bookings", {"limit": "0"}, "limit"),
                                ("/api/operator/cars", {"state": "flying"}, "state"),
                                ("/api/operator/cars", {"offset": "-1"}, "offset"),
                                ("/api/clients", {"status": "vip"}, "status"),
                                ("/api/clients", {"role": "nobody"}, "role")):
        resp = await client.get(path, params=params, headers=operator.headers)
        assert resp.status == 400, (path, params)
        assert set(await resp.json()) == {field}, (path, params)
