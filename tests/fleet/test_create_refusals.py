"""Every refusal of a new record, for every kind, through HTTP: the messages and fields the SQLAlchemy
path gave, now from records.create_record on the raw pool (issue 11), and nothing written."""

from __future__ import annotations

from backend.fleet.kinds import PASSENGER, Kind
from backend.fleet.records import NO_START
from tests.fleet.checks import everything
from tests.fleet.conftest import SEASONS, Crew, World, record_body, seed_car, waybill_body


async def new_waybill(crew: Crew, kind: Kind, **changes: str) -> tuple[int, int]:
    """A seeded car of `kind` and a waybill of the crew's driver on it: (car, waybill)."""
    car = await seed_car(crew.mechanic, kind)
    waybill = await crew.mechanic.ok("POST", kind.path("waybills"),
                                     waybill_body(kind, car, crew.driver.user.id, **changes), 201)
    return car, waybill["id"]


async def refused(crew: Crew, world: World, kind: Kind, waybill: int, status: int = 400) -> dict:
    before = await everything(world)
    got, answer = await crew.driver.call("POST", kind.path("records"), record_body(kind, waybill))
    assert got == status, answer
    assert await everything(world) == before
    return answer


async def test_an_unknown_waybill(crew: Crew, world: World, kind: Kind) -> None:
    answer = await refused(crew, world, kind, 987654)
    assert answer == {kind.waybill_field: ['Недопустимый первичный ключ "987654" - объект не существует.']}


async def test_a_deleted_waybill_and_a_deleted_car(crew: Crew, world: World, kind: Kind) -> None:
    car, waybill = await new_waybill(crew, kind)
    await crew.mechanic.ok("DELETE", f"{kind.cars_path}{car}/", status=204)
    answer = await refused(crew, world, kind, waybill)
    assert answer == {kind.waybill_field: ["Машина этого путевого листа удалена."]}
    await crew.mechanic.ok("DELETE", f"{kind.path('waybills')}{waybill}/", status=204)
    answer = await refused(crew, world, kind, waybill)
    assert answer == {kind.waybill_field: ["Путевой лист удалён: добавлять в него строки нельзя."]}


async def test_someone_elses_waybill(crew: Crew, world: World, kind: Kind) -> None:
    _, waybill = await new_waybill(crew, kind)
    before = await everything(world)
    status, answer = await crew.other_driver.call("POST", kind.path("records"), record_body(kind, waybill))
    assert status == 403 and answer["detail"] == "Добавлять строки можно только в свой путевой лист.", answer
    assert await everything(world) == before


async def test_no_norm_for_the_season(crew: Crew, world: World, kind: Kind) -> None:
    other_season = "winter" if SEASONS[kind.name] == "summer" else "summer"
    _, waybill = await new_waybill(crew, kind, norm_season=other_season)
    answer = await refused(crew, world, kind, waybill)
    assert answer == {"non_field_errors": [
        f"Нет нормы расхода для автомобиля на 2024-09-15 (сезон {other_season})."]}


async def test_no_snapshot_left(crew: Crew, world: World, kind: Kind) -> None:
    car, waybill = await new_waybill(crew, kind)
    (snapshot,) = await world.rows(kind.snapshots, car_id=car)
    await crew.mechanic.ok("DELETE", f"{kind.path('odometer-fuel')}{snapshot['id']}/", status=204)
    answer = await refused(crew, world, kind, waybill)
    assert answer == {"non_field_errors": [NO_START]}


async def test_trip_errors(crew: Crew, world: World, kind: Kind) -> None:
    """The errors of computations.trip_errors, several at once, as the SQLAlchemy path gave them."""
    _, waybill = await new_waybill(crew, kind)
    before = await everything(world)
    body = record_body(kind, waybill, arrival_time="07:00:00", fuel_refueled="0", fuel_used="999")
    if kind is not PASSENGER:
        body["odometer_after"] = 19999
    status, answer = await crew.driver.call("POST", kind.path("records"), body)
    assert status == 400
    start = {PASSENGER.name: ("100000", "40.000")}.get(kind.name, ("20000", "150.000"))
    expected = {"arrival_time": ["Время возвращения не может быть раньше времени выезда."],
                "fuel_used": [f"Остаток топлива при возвращении не может быть отрицательным "
                              f"({float(start[1]) - 999:.3f})."]}
    if kind is not PASSENGER:
        expected["odometer_after"] = [
            f"Показание одометра после выезда не может быть меньше, чем до выезда ({start[0]})."]
    assert answer == expected
    assert await everything(world) == before
