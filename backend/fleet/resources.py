"""The ten fleet collections of SPEC §5: five generic resources, each built once per vehicle kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend import keys
from backend.api.crud import NULL_MESSAGE, Filter, Resource, Written, live_row
from backend.api.responses import respond
from backend.api.routing import USER, route
from backend.api.validation import read_query
from backend.auth.directory import require_user
from backend.db import read
from backend.errors import field_error, forbidden, invalid, missing_pk, not_found
from backend.fleet import issuance, records, schemas
from backend.fleet.hooks import PassengerCarHooks
from backend.fleet.kinds import MANAGE_FLEET, Kind
from backend.fleet.norms import norm_for
from backend.fleet.snapshots import last_snapshot, lock_car, lock_cars
from backend.principal import Principal

Q = TypeVar("Q", bound=BaseModel)


@dataclass(frozen=True, kw_only=True)
class FleetResource(Resource):
    """A Resource that knows its vehicle kind."""

    kind: Kind

    def lookup(self, app: web.Application, suffix: str, summary: str, query: type[Q],
               find: Callable[[AsyncConnection, Q], Awaitable[Mapping[str, Any] | None]]) -> None:
        """Add GET <path><suffix>/: one row found by `find` from the validated query, or 404."""
        async def view(request: web.Request) -> web.Response:
            self.authorize_read(request)
            params = read_query(request, query)
            async with read(request.app[keys.DB]) as conn:
                row = await find(conn, params)
            if row is None:
                raise not_found()
            return respond(self.to_out(row))

        route(app, "GET", f"{self.path}{suffix}/", view, summary=summary, tag=self.tag, query=query,
              response=self.schema_out, slash_optional=True, auth=USER, responses=(403, 404))


@dataclass(frozen=True, kw_only=True)
class ChainResource(FleetResource):
    """Rows whose writes touch a car's chain: lock the car before the row (records.py lock order)."""

    async def get_object(self, conn: AsyncConnection, principal: Principal, item_id: int, *,
                         include_deleted: bool = False, lock: bool = False) -> Mapping[str, Any]:
        if lock:
            car_id = (await conn.execute(select(self.table.c.car_id).where(self.table.c.id == item_id))
                      ).scalar_one_or_none()
            if car_id is not None:
                await lock_car(conn, self.kind, car_id)
        return await super().get_object(conn, principal, item_id, include_deleted=include_deleted, lock=lock)


@dataclass(frozen=True, kw_only=True)
class CarResource(FleetResource):
    """Passenger cars and fire trucks; car-sharing `state` is read-only here (SPEC §11.12)."""

    unique_messages: ClassVar[Mapping[str, str]] = {"number": "Машина с таким номером уже существует."}
    # Passenger cars only: what car sharing attached to them (a booked car cannot go; edits are news).
    hooks: PassengerCarHooks | None = None

    async def before_delete(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any]) -> None:
        if self.hooks is not None:
            await self.hooks.check_delete(conn, row["id"])

    async def after_write(self, app: web.Application, principal: Principal, row: Mapping[str, Any],
                          action: str, before: Mapping[str, Any] | None = None) -> None:
        if self.hooks is not None:
            await self.hooks.announce(app[keys.BUS], row, before)


@dataclass(frozen=True, kw_only=True)
class NormResource(FleetResource):
    """Fuel norms, plus for-date/ (SPEC §5.2)."""

    unique_messages: ClassVar[Mapping[str, str]] = {
        "non_field_errors": "Норма для этой машины, сезона и даты уже существует."}

    def register(self, app: web.Application) -> None:
        # Before the generic routes; {id:\d+} could not match "for-date" anyway.
        self.lookup(app, "for-date", f"{self.tag} in force on a date", schemas.ForDateQuery,
                    lambda conn, q: norm_for(conn, self.kind, q.car, q.season, q.date))
        super().register(app)

    async def before_create(self, conn: AsyncConnection, principal: Principal,
                            values: dict[str, Any]) -> dict[str, Any]:
        await live_row(conn, self.kind.cars, values["car_id"], field="car")
        return values

    async def before_update(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any],
                            values: dict[str, Any]) -> dict[str, Any]:
        if values.get("car_id", row["car_id"]) != row["car_id"]:
            await live_row(conn, self.kind.cars, values["car_id"], field="car")
        return values


@dataclass(frozen=True, kw_only=True)
class SnapshotResource(ChainResource):
    """Odometer/fuel snapshots, plus last/ (SPEC §5.4). Only measurements (not made by a record)
    may be edited or deleted here; doing so recomputes the records that follow."""

    def register(self, app: web.Application) -> None:
        self.lookup(app, "last", f"Latest {self.tag} of a car", schemas.CarQuery,
                    lambda conn, q: last_snapshot(conn, self.kind, q.car))
        super().register(app)

    async def _check_waybill(self, conn: AsyncConnection, car_id: int, waybill_id: int | None) -> None:
        if waybill_id is None:
            return
        waybill = await live_row(conn, self.kind.waybills, waybill_id, field="waybill")
        if waybill["car_id"] != car_id:
            raise field_error("waybill", "Путевой лист выписан на другую машину.")

    async def _made_by_record(self, conn: AsyncConnection, snapshot_id: int) -> None:
        r = self.kind.records
        if (await conn.execute(select(r.c.id).where(r.c.snapshot_id == snapshot_id))).first() is not None:
            raise invalid({"non_field_errors": [
                "Снимок создан строкой путевого листа: измените или удалите эту строку."]})

    async def before_create(self, conn: AsyncConnection, principal: Principal,
                            values: dict[str, Any]) -> dict[str, Any]:
        # Under the car lock, so the new snapshot's id and the chain order agree (records.py).
        await lock_car(conn, self.kind, values["car_id"])
        await live_row(conn, self.kind.cars, values["car_id"], field="car")
        await self._check_waybill(conn, values["car_id"], values.get("waybill_id"))
        return values

    async def before_update(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any],
                            values: dict[str, Any]) -> dict[str, Any]:
        await self._made_by_record(conn, row["id"])
        if values.get("car_id", row["car_id"]) != row["car_id"]:
            raise field_error("car", "Нельзя перенести снимок на другую машину.")
        await self._check_waybill(conn, row["car_id"], values.get("waybill_id", row["waybill_id"]))
        # The chain after this snapshot must see its new values, so write them before recomputing.
        if values:
            s = self.table
            await conn.execute(update(s).where(s.c.id == row["id"]).values(**values))
            await self._mend(conn, row)
        return values

    async def before_delete(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any]) -> None:
        await self._made_by_record(conn, row["id"])
        s = self.table
        await conn.execute(update(s).where(s.c.id == row["id"]).values(deleted_at=func.now()))
        await self._mend(conn, row)

    async def _mend(self, conn: AsyncConnection, row: Mapping[str, Any]) -> None:
        await records.mend_after_measurement(conn, self.kind, row)


@dataclass(frozen=True, kw_only=True)
class WaybillResource(ChainResource):
    """Waybill headers (SPEC §5.5): aggregates are the server's; drivers see their own."""

    def scope(self, query: Select[Any], principal: Principal) -> Select[Any]:
        return self.kind.scope_waybills(query, principal)

    def can_write(self, principal: Principal, row: Mapping[str, Any] | None) -> bool:
        if not principal.has(self.kind.create_flag):
            return False
        return row is None or self.kind.sees_all(principal) or row["driver_id"] == principal.user_id

    async def lock_related(self, conn: AsyncConnection, item_id: int, values: Mapping[str, Any]) -> None:
        """A move to another car locks both cars in id order before anything else: get_object would
        lock the current car, then _issue the new one, and two opposite moves would deadlock."""
        target = values.get("car_id")
        if target is None:
            return
        current = (await conn.execute(select(self.table.c.car_id).where(self.table.c.id == item_id))
                   ).scalar_one_or_none()
        await lock_cars(conn, self.kind, {target} | ({current} if current is not None else set()))

    async def _issue(self, conn: AsyncConnection, car_id: int) -> dict[str, Any]:
        """upon_issuance from the car's latest snapshot; every other aggregate starts from it."""
        # Under the car lock, like every chain write: a recompute must not miss this waybill (issuance.py).
        if not await lock_car(conn, self.kind, car_id):
            raise missing_pk("car", car_id)
        issued = await issuance.issue(conn, self.kind, car_id)
        if issued is None:
            raise field_error("car", records.NO_START)
        return issued

    async def _check_driver(self, conn: AsyncConnection, principal: Principal, driver_id: int) -> None:
        if driver_id != principal.user_id and not self.kind.sees_all(principal):
            raise forbidden("Выписывать путевые листы другим водителям нельзя.")
        await require_user(conn, driver_id, field="driver")

    async def before_create(self, conn: AsyncConnection, principal: Principal,
                            values: dict[str, Any]) -> dict[str, Any]:
        if values.get("driver_id") is None:
            values["driver_id"] = principal.user_id
        await self._check_driver(conn, principal, values["driver_id"])
        return {**values, **await self._issue(conn, values["car_id"])}

    async def before_update(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any],
                            values: dict[str, Any]) -> dict[str, Any]:
        if values.get("driver_id") is None:
            values.pop("driver_id", None)      # PUT without a driver keeps the current one
        elif values["driver_id"] != row["driver_id"]:
            await self._check_driver(conn, principal, values["driver_id"])
        moved = [name for name in ("car_id", "date", "norm_season") if values.get(name, row[name]) != row[name]]
        if moved and await self._has_records(conn, row["id"]):
            api = {"car_id": "car"}
            raise invalid({api.get(name, name): ["Нельзя изменить: в путевом листе уже есть строки."]
                           for name in moved})
        if "car_id" in moved:
            values.update(await self._issue(conn, values["car_id"]))
        return values

    async def _has_records(self, conn: AsyncConnection, waybill_id: int) -> bool:
        r = self.kind.records
        query = select(r.c.id).where(r.c.waybill_id == waybill_id, r.c.deleted_at.is_(None)).limit(1)
        return (await conn.execute(query)).first() is not None

    async def before_delete(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any]) -> None:
        await records.drop_waybill_records(conn, self.kind, row)


@dataclass(frozen=True, kw_only=True)
class RecordResource(FleetResource):
    """Waybill records: list and retrieve are generic; writes go through records.py (SPEC §5.6)."""

    writers: records.HotWriters          # shared by the kinds of one instance

    def scope(self, query: Select[Any], principal: Principal) -> Select[Any]:
        return self.kind.scope_records(query, principal)

    def refuse_nulls(self, model: BaseModel, partial: bool) -> None:
        # Every input of a trip takes part in its maths: none may become null, on PUT or PATCH.
        if nulls := {name: [NULL_MESSAGE] for name, value in model.model_dump(exclude_unset=partial).items()
                     if value is None}:
            raise invalid(nulls)

    async def perform_create(self, app: web.Application, principal: Principal, values: dict[str, Any]) -> Written:
        pool = app[keys.HOT_DB]
        async with self.writers.slots(pool):
            return Written(await records.create_record(pool, self.kind, principal, values))

    async def perform_update(self, app: web.Application, principal: Principal, item_id: int,
                             values: dict[str, Any]) -> Written:
        return Written(await records.update_record(app[keys.DB], self.kind, principal, item_id, values))

    async def perform_destroy(self, app: web.Application, principal: Principal, item_id: int) -> Written | None:
        await records.delete_record(app[keys.DB], self.kind, principal, item_id)
        return None                     # records.py recomputed the chain; nothing else to announce


SCHEMAS: Mapping[str, Mapping[str, tuple[type[BaseModel], type[BaseModel]]]] = {
    "passenger_car": {
        "cars": (schemas.PassengerCarIn, schemas.PassengerCarOut),
        "norms": (schemas.PassengerNormIn, schemas.PassengerNormOut),
        "records": (schemas.PassengerRecordIn, schemas.PassengerRecordOut),
    },
    "fire_truck": {
        "cars": (schemas.FireTruckIn, schemas.FireTruckOut),
        "norms": (schemas.FireTruckNormIn, schemas.FireTruckNormOut),
        "records": (schemas.FireTruckRecordIn, schemas.FireTruckRecordOut),
    },
}


def resources(kind: Kind, car_hooks: PassengerCarHooks, writers: records.HotWriters) -> list[Resource]:
    """The five collections of one vehicle kind; `car_hooks` apply to the kind that shares cars,
    `writers` (one per instance) bound the record creates waiting on the hot pool."""
    own = SCHEMAS[kind.name]
    by_car = {"car": Filter("car_id")}

    def common(path: str, topic: str) -> dict[str, Any]:
        schema_in, schema_out = own[topic] if topic in own else {
            "snapshots": (schemas.SnapshotIn, schemas.SnapshotOut),
            "waybills": (schemas.WaybillIn, schemas.WaybillOut)}[topic]
        return {"kind": kind, "path": path, "schema_in": schema_in, "schema_out": schema_out,
                "tag": path.removeprefix("/api/").strip("/")}

    return [
        CarResource(**common(kind.cars_path, "cars"), table=kind.cars, read=kind.is_staff, write=MANAGE_FLEET,
                    filters={"number": Filter("number", str, "icontains")},
                    hooks=car_hooks if kind.shares_cars else None),
        NormResource(**common(kind.path("norms"), "norms"), table=kind.norms, read=kind.is_staff,
                     write=MANAGE_FLEET, columns={"car": "car_id"},
                     filters={**by_car, "season": Filter("season", str), "date": Filter("date", dt.date)}),
        SnapshotResource(**common(kind.path("odometer-fuel"), "snapshots"), table=kind.snapshots,
                         read=kind.is_staff, write=MANAGE_FLEET, columns={"car": "car_id", "waybill": "waybill_id"},
                         filters={**by_car, "waybill": Filter("waybill_id")}),
        WaybillResource(**common(kind.path("waybills"), "waybills"), table=kind.waybills,
                        columns={"car": "car_id", "driver": "driver_id"},
                        filters={**by_car, "driver": Filter("driver_id"), "date_from": Filter("date", dt.date, "gte"),
                                 "date_to": Filter("date", dt.date, "lte")}),
        RecordResource(**common(kind.path("records"), "records"), table=kind.records,
                       columns={kind.waybill_field: "waybill_id"},
                       filters={**by_car, kind.waybill_field: Filter("waybill_id")}, writers=writers),
    ]
