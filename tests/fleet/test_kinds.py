"""The per-kind waybill flags of backend/fleet/kinds.py over HTTP (SPEC §5.5, §11.16).

`view_*_waybills` and `can_create_*_waybills` are independent: roles holding only one of them are
made through /api/roles/ and /api/permissions/, as an administrator would.
"""

from __future__ import annotations

from backend.fleet.kinds import KINDS, Kind
from tests.fleet.checks import everything
from tests.fleet.conftest import Crew, RoleUser, World, record_body, seed_car, waybill_body


async def test_view_without_create_sees_all_but_writes_nothing(crew: Crew, world: World, kind: Kind,
                                                               role_user: RoleUser) -> None:
    viewer = await role_user(kind.view_flag)
    car = await seed_car(crew.mechanic, kind)
    waybills, records = kind.path("waybills"), kind.path("records")
    theirs = await crew.mechanic.ok("POST", waybills, waybill_body(kind, car, crew.driver.user.id), 201)
    record = await crew.driver.ok("POST", records, record_body(kind, theirs["id"]), 201)

    assert [w["id"] for w in (await viewer.ok("GET", waybills))["results"]] == [theirs["id"]]
    assert await viewer.ok("GET", f"{waybills}{theirs['id']}/") == await crew.mechanic.ok(
        "GET", f"{waybills}{theirs['id']}/")
    assert [r["id"] for r in (await viewer.ok("GET", records))["results"]] == [record["id"]]
    assert (await viewer.ok("GET", f"{records}{record['id']}/"))["odometer_before"] == record["odometer_before"]
    for path in (kind.cars_path, kind.path("norms"), kind.path("odometer-fuel")):
        assert (await viewer.ok("GET", path))["count"] >= 1, path

    before = await everything(world)
    for body in (waybill_body(kind, car), waybill_body(kind, car, crew.driver.user.id)):
        assert (await viewer.call("POST", waybills, body))[0] == 403
    assert (await viewer.call("PATCH", f"{waybills}{theirs['id']}/", {"fuel_type": "x"}))[0] == 403
    assert (await viewer.call("DELETE", f"{waybills}{theirs['id']}/"))[0] == 403
    # Records need the driver, or create + view together (kinds.py may_write_records).
    assert (await viewer.call("POST", records, record_body(kind, theirs["id"], nth=2)))[0] == 403
    assert (await viewer.call("PATCH", f"{records}{record['id']}/", {"target": "x"}))[0] == 403
    assert (await viewer.call("DELETE", f"{records}{record['id']}/"))[0] == 403
    assert (await viewer.call("POST", kind.cars_path, {"number": "Z999ZZ54"}))[0] == 403
    assert await everything(world) == before


async def test_create_without_view_works_only_on_its_own_waybills(crew: Crew, world: World, kind: Kind,
                                                                  role_user: RoleUser) -> None:
    maker = await role_user(kind.create_flag)
    car = await seed_car(crew.mechanic, kind)
    waybills, records = kind.path("waybills"), kind.path("records")
    theirs = await crew.mechanic.ok("POST", waybills, waybill_body(kind, car, crew.driver.user.id), 201)
    their_record = await crew.driver.ok("POST", records, record_body(kind, theirs["id"]), 201)

    own = await maker.ok("POST", waybills, waybill_body(kind, car), 201)
    assert own["driver"] == maker.user.id
    mine = await maker.ok("POST", records, record_body(kind, own["id"], nth=2), 201)
    assert mine["odometer_before"] == their_record["odometer_after"]        # one chain per car
    assert (await maker.ok("PATCH", f"{waybills}{own['id']}/", {"fuel_type": "АИ-95"}))["fuel_type"] == "АИ-95"
    assert [w["id"] for w in (await maker.ok("GET", waybills))["results"]] == [own["id"]]
    assert [r["id"] for r in (await maker.ok("GET", records))["results"]] == [mine["id"]]

    before = await everything(world)
    assert (await maker.call("POST", waybills, waybill_body(kind, car, crew.driver.user.id)))[0] == 403
    for method, body in [("GET", None), ("PATCH", {"fuel_type": "x"}), ("DELETE", None)]:
        assert (await maker.call(method, f"{waybills}{theirs['id']}/", body))[0] == 404, method
        assert (await maker.call(method, f"{records}{their_record['id']}/", body))[0] == 404, method
    assert (await maker.call("POST", records, record_body(kind, theirs["id"], nth=3)))[0] == 403
    assert await everything(world) == before


async def test_flags_of_one_kind_say_nothing_about_the_other(crew: Crew, role_user: RoleUser) -> None:
    for kind, other in (KINDS, KINDS[::-1]):
        holder = await role_user(kind.view_flag, kind.create_flag)
        car = await seed_car(crew.mechanic, other)
        await crew.mechanic.ok("POST", other.path("waybills"), waybill_body(other, car, crew.driver.user.id), 201)
        assert (await holder.ok("GET", other.path("waybills")))["count"] == 0
        assert (await holder.call("POST", other.path("waybills"), waybill_body(other, car)))[0] == 403
        assert (await holder.call("GET", other.cars_path))[0] == 403
