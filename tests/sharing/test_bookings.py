"""Bookings over HTTP (SPEC §4.3, §11.14): rules, the trip's life, billing, who sees what."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from aiohttp.test_utils import TestClient

from backend.sharing.bookings import elapsed_seconds, minutes_billed, trip_cost
from tests.conftest import AppFactory, TestUser, UserFactory
from tests.sharing.conftest import CarFactory, act, add_car, book, booked, car_row, run_sql

BOOKING_FIELDS = {"id", "car", "user", "status", "tariff_per_minute", "reserved_until", "started_at",
                  "finished_at", "duration_s", "cost", "start_lat", "start_lon", "start_fuel_level", "end_lat",
                  "end_lon", "end_fuel_level", "created_at", "updated_at"}
END = {"lat": "55.040000", "lon": "82.930000", "fuel_level": "31.5"}


def test_billing_rounds_up_to_whole_minutes_and_bills_at_least_one() -> None:
    assert [minutes_billed(s) for s in (0, 1, 59, 60, 61, 120, 121)] == [1, 1, 1, 1, 2, 2, 3]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert elapsed_seconds(start, start + dt.timedelta(seconds=60)) == 60
    assert elapsed_seconds(start, start + dt.timedelta(seconds=60, microseconds=1)) == 61
    assert trip_cost(61, Decimal("7.5")) == Decimal("15.000")


async def test_reserve_answers_201_with_the_booking(client: TestClient, make_car: CarFactory,
                                                    customer: TestUser) -> None:
    car = await make_car()
    resp = await book(client, customer, car["id"])
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert set(body) == BOOKING_FIELDS
    assert (body["car"], body["user"], body["status"], body["tariff_per_minute"]) == (
        car["id"], customer.id, "reserved", "7.500")
    reserved_until = dt.datetime.fromisoformat(body["reserved_until"])
    created = dt.datetime.fromisoformat(body["created_at"])
    assert reserved_until.tzinfo is not None
    assert abs((reserved_until - created).total_seconds() - 900) < 1        # RESERVATION_TTL default
    row = await car_row(client, car["id"])
    assert row["state"] == "reserved" and row["state_changed_at"] >= created
    assert (await client.get("/api/cars")).status == 200
    assert car["id"] not in [c["id"] for c in await (await client.get("/api/cars")).json()]


async def test_full_trip_bills_whole_minutes_and_frees_the_car_where_it_was_left(
        client: TestClient, make_car: CarFactory, customer: TestUser) -> None:
    car = await make_car(tariff_per_minute="7.5")
    booking = await booked(client, customer, car["id"])
    started = await act(client, customer, booking["id"], "start")
    assert started.status == 200
    body = await started.json()
    assert body["status"] == "in_trip" and body["started_at"] is not None
    assert (body["start_lat"], body["start_fuel_level"]) == ("55.030199", "40.000")
    assert (await car_row(client, car["id"]))["state"] == "in_trip"
    # A trip of 120.5 s (+ the test's own milliseconds) is 121 s: three minutes billed.
    await run_sql(client, "UPDATE bookings SET started_at = now() - interval '120.5 seconds' WHERE id = :id",
                  id=booking["id"])
    finished = await act(client, customer, booking["id"], "finish", END)
    assert finished.status == 200, await finished.text()
    body = await finished.json()
    assert body["status"] == "finished" and body["finished_at"] is not None
    assert 121 <= body["duration_s"] <= 125
    assert body["cost"] == "22.500"
    assert (body["end_lat"], body["end_lon"], body["end_fuel_level"]) == ("55.040000", "82.930000", "31.500")
    row = await car_row(client, car["id"])
    assert (row["state"], str(row["lat"]), str(row["lon"]), row["fuel_level"]) == (
        "available", "55.040000", "82.930000", Decimal("31.500"))
    public = {c["id"]: c for c in await (await client.get("/api/cars")).json()}
    assert public[car["id"]]["lat"] == "55.040000"


async def test_an_instant_trip_costs_one_minute(client: TestClient, make_car: CarFactory,
                                                customer: TestUser) -> None:
    booking = await booked(client, customer, (await make_car(tariff_per_minute="9"))["id"])
    await act(client, customer, booking["id"], "start")
    body = await (await act(client, customer, booking["id"], "finish", END)).json()
    assert body["cost"] == "9.000" and body["duration_s"] <= 2


async def test_tariff_is_fixed_at_reservation(client: TestClient, make_car: CarFactory, customer: TestUser,
                                              admin: TestUser) -> None:
    car = await make_car(tariff_per_minute="5")
    booking = await booked(client, customer, car["id"])
    resp = await client.patch(f"/api/passenger-cars/{car['id']}/", json={"tariff_per_minute": "50"},
                              headers=admin.headers)
    assert resp.status == 200
    await act(client, customer, booking["id"], "start")
    assert (await (await act(client, customer, booking["id"], "finish", END)).json())["cost"] == "5.000"


async def test_cancel_frees_the_car_and_owner_or_operator_may_cancel(
        client: TestClient, make_car: CarFactory, customer: TestUser, operator: TestUser,
        make_user: UserFactory) -> None:
    car = await make_car()
    mine = await booked(client, customer, car["id"])
    resp = await act(client, customer, mine["id"], "cancel")
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    assert (await car_row(client, car["id"]))["state"] == "available"
    other = await make_user(role="client")
    theirs = await booked(client, other, car["id"])
    assert (await act(client, customer, theirs["id"], "cancel")).status == 404      # not theirs to see
    resp = await act(client, operator, theirs["id"], "cancel")
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"


async def test_illegal_transitions_are_409(client: TestClient, make_car: CarFactory, customer: TestUser) -> None:
    booking = await booked(client, customer, (await make_car())["id"])
    resp = await act(client, customer, booking["id"], "finish", END)
    assert resp.status == 409 and (await resp.json())["code"] == "invalid_transition"
    assert (await act(client, customer, booking["id"], "start")).status == 200
    for action, body in (("start", None), ("cancel", None)):
        resp = await act(client, customer, booking["id"], action, body)
        assert resp.status == 409, action
        assert (await resp.json())["code"] == "invalid_transition"
    assert (await act(client, customer, booking["id"], "finish", END)).status == 200
    for action, body in (("start", None), ("cancel", None), ("finish", END)):
        resp = await act(client, customer, booking["id"], action, body)
        assert resp.status == 409, action


async def test_only_the_owner_starts_a_trip(client: TestClient, make_car: CarFactory, customer: TestUser,
                                            operator: TestUser, make_user: UserFactory) -> None:
    booking = await booked(client, customer, (await make_car())["id"])
    assert (await act(client, operator, booking["id"], "start")).status == 403
    assert (await act(client, await make_user(role="client"), booking["id"], "start")).status == 404
    assert (await act(client, customer, booking["id"], "start")).status == 200
    # An operator may close the trip (a client blocked mid-trip cannot).
    assert (await act(client, operator, booking["id"], "finish", END)).status == 200


async def test_a_lapsed_reservation_cannot_start(make_client: AppFactory, admin: TestUser, make_user: UserFactory) -> None:
    # TTL 0: the reservation is over as soon as it is made; the sweeper sleeps for an hour.
    client = await make_client(reservation_ttl=0.0, sweep_interval=3600.0)
    car = await add_car(client, admin)
    user = await make_user(role="client")
    booking = await booked(client, user, car["id"])
    resp = await act(client, user, booking["id"], "start")
    assert resp.status == 409 and (await resp.json())["code"] == "reservation_expired"
    assert (await car_row(client, car["id"]))["state"] == "reserved"


async def test_refusals(client: TestClient, make_car: CarFactory, customer: TestUser, admin: TestUser,
                        make_user: UserFactory) -> None:
    car = await make_car()
    assert (await client.post("/api/bookings", json={"car": car["id"]})).status == 401
    driver = await make_user(role="driver")                          # no can_book_cars
    resp = await book(client, driver, car["id"])
    assert resp.status == 403 and (await resp.json())["code"] == "permission_denied"
    pending = await make_user(role="client", client_status="pending")
    resp = await book(client, pending, car["id"])
    assert resp.status == 403 and (await resp.json())["code"] == "client_not_approved"
    private = await make_car(shared=False)
    repair = await make_car()
    await run_sql(client, "UPDATE passenger_cars SET state = 'maintenance' WHERE id = :id", id=repair["id"])
    gone = await make_car()
    assert (await client.delete(f"/api/passenger-cars/{gone['id']}/", headers=admin.headers)).status == 204
    for unavailable in (private, repair, gone):
        resp = await book(client, customer, unavailable["id"])
        assert resp.status == 409 and (await resp.json())["code"] == "car_not_available", unavailable
    assert (await book(client, customer, car["id"])).status == 201
    second = await make_car()
    resp = await book(client, customer, second["id"])
    assert resp.status == 409 and (await resp.json())["code"] == "active_booking_exists"
    resp = await book(client, await make_user(role="client"), car["id"])
    assert resp.status == 409 and (await resp.json())["code"] == "car_not_available"


async def test_mobile_tokens_need_mobile_booking(client: TestClient, make_car: CarFactory, admin: TestUser,
                                                 make_user: UserFactory) -> None:
    role = await (await client.post("/api/roles/", json={"name": "tourist"}, headers=admin.headers)).json()
    resp = await client.post("/api/permissions/", json={"role": role["id"], "can_book_cars": True},
                             headers=admin.headers)
    assert resp.status == 201, await resp.text()
    car = await make_car()
    on_phone = await make_user(role="tourist", client="mobile")
    resp = await book(client, on_phone, car["id"])
    assert resp.status == 403
    on_web = await make_user(role="tourist", client="web")
    assert (await book(client, on_web, car["id"])).status == 201
    mobile_client = await make_user(role="client", client="mobile")     # the client role has both flags
    assert (await book(client, mobile_client, (await make_car())["id"])).status == 201


async def test_lists_show_own_bookings_and_operators_see_all(
        client: TestClient, make_car: CarFactory, customer: TestUser, operator: TestUser,
        make_user: UserFactory) -> None:
    other = await make_user(role="client")
    car_a, car_b = await make_car(), await make_car()
    first = await booked(client, customer, car_a["id"])
    await act(client, customer, first["id"], "cancel")
    second = await booked(client, customer, car_a["id"])
    theirs = await booked(client, other, car_b["id"])

    mine = await (await client.get("/api/bookings", headers=customer.headers)).json()
    assert set(mine) == {"count", "next", "previous", "results"}
    assert [b["id"] for b in mine["results"]] == [first["id"], second["id"]]
    # A client's `user` filter cannot widen the view.
    widened = await client.get("/api/bookings", params={"user": other.id}, headers=customer.headers)
    assert (await widened.json())["count"] == 0

    every = await (await client.get("/api/bookings/", headers=operator.headers)).json()
    assert every["count"] == 3
    by_user = await client.get("/api/bookings", params={"user": other.id}, headers=operator.headers)
    assert [b["id"] for b in (await by_user.json())["results"]] == [theirs["id"]]
    by_status = await client.get("/api/bookings", params={"status": "cancelled"}, headers=operator.headers)
    assert [b["id"] for b in (await by_status.json())["results"]] == [first["id"]]
    by_car = await client.get("/api/bookings", params={"car": car_a["id"], "limit": 1}, headers=operator.headers)
    page = await by_car.json()
    assert page["count"] == 2 and len(page["results"]) == 1
    assert page["next"] == f"/api/bookings?car={car_a['id']}&limit=1&offset=1"     # relative, filters kept

    assert (await client.get(f"/api/bookings/{theirs['id']}", headers=customer.headers)).status == 404
    assert (await client.get(f"/api/bookings/{theirs['id']}/", headers=other.headers)).status == 200
    got = await client.get(f"/api/bookings/{theirs['id']}", headers=operator.headers)
    assert (await got.json())["id"] == theirs["id"]
    assert (await client.get("/api/bookings")).status == 401


async def test_a_cookie_session_books_like_the_web_client(client: TestClient, make_car: CarFactory,
                                                          customer: TestUser) -> None:
    """Seed 000's own surface: sign in by `sessid`, then book, start and finish with the cookie."""
    resp = await client.post("/profile/signin", json={"login": customer.login, "password": customer.password})
    assert resp.status == 200
    car = await make_car()
    booking = await (await client.post("/api/bookings", json={"car": car["id"]})).json()
    assert booking["user"] == customer.id
    assert (await client.post(f"/api/bookings/{booking['id']}/start", json={})).status == 200
    finished = await client.post(f"/api/bookings/{booking['id']}/finish", json=END)
    assert (await finished.json())["status"] == "finished"
