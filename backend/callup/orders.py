"""Call orders: creation, the status machine with its history, code checks and expiry (SPEC §6.2–6.5).

Every status change goes through one of two writers here (`_change` for one locked row,
`_bulk_change` for the sweeper), which also store the transition row and queue the
`order.status` events; callers publish them with `Bus.deferred()` only after the commit.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.callup import const
from backend.callup.tables import orders, transitions
from backend.db import constant, constants, read, transaction
from backend.errors import ApiError
from backend.jsonutil import utc_iso
from backend.realtime.bus import Bus, Outbox
from backend.realtime.names import DASHBOARD


@dataclass(frozen=True, slots=True)
class Call:
    """What a call provider needs to place one call: never more than the number to dial and show."""

    order_id: uuid.UUID
    phone: str
    caller: str                 # caller prefix + code: the user reads the code off the caller's number


def call_of(order: Mapping[str, Any]) -> Call:
    return Call(order_id=order["id"], phone=order["phone"], caller=order["caller_prefix"] + order["code"])


def app_channel(app_id: int) -> str:
    return f"callup:app:{app_id}"


def status_event(order: Mapping[str, Any]) -> dict[str, Any]:
    """The `order.status` payload (SPEC §6.5): never the code."""
    return {"id": str(order["id"]), "status": order["status"], "updated_at": utc_iso(order["updated_at"])}


def _announce(out: Outbox, order: Mapping[str, Any]) -> None:
    event = status_event(order)
    out.add(app_channel(int(order["app_id"])), const.ORDER_EVENT, event)
    out.add(DASHBOARD, const.ORDER_EVENT, event)


def may_enter(current: str, target: str) -> bool:
    """True when `target` is a newer state reachable from `current` (older ones are replays)."""
    return current in const.ALLOWED_FROM.get(target, ()) and const.RANK[target] > const.RANK[current]


def new_code() -> str:
    """A 4-digit code from the cryptographic RNG."""
    return f"{secrets.randbelow(10 ** const.CODE_LEN):0{const.CODE_LEN}d}"


async def create(db: AsyncEngine, bus: Bus, *, app_id: int, phone: str, code: str | None,
                 prefixes: Sequence[str], ttl: float) -> RowMapping:
    """Store a new order (status created) for `app_id` and announce it; the call is placed later."""
    values = {"id": uuid.uuid4(), "app_id": app_id, "phone": phone, "code": code or new_code(),
              # Picked at random, not round-robin: no instance-local counter to share (SPEC §11.19).
              "caller_prefix": secrets.choice(tuple(prefixes)),
              "expires_at": func.now() + dt.timedelta(seconds=ttl)}
    async with bus.deferred() as out, transaction(db) as conn:
        order = (await conn.execute(insert(orders).values(**values).returning(*orders.c))).mappings().one()
        await conn.execute(insert(transitions).values(order_id=order["id"], to_status=const.CREATED,
                                                      reason="order created", created_at=order["created_at"]))
        _announce(out, order)
    return order


async def find(db: AsyncEngine, app_id: int, order_id: uuid.UUID) -> RowMapping:
    """One of `app_id`'s orders; another app's order is as unknown as a missing one (404)."""
    async with read(db) as conn:
        order = (await conn.execute(select(orders).where(orders.c.id == order_id, orders.c.app_id == app_id))
                 ).mappings().one_or_none()
    if order is None:
        raise const.order_not_found()
    return order


async def history(db: AsyncEngine, order_id: uuid.UUID) -> list[RowMapping]:
    """Every status change of an order, oldest first."""
    async with read(db) as conn:
        return list((await conn.execute(select(transitions).where(transitions.c.order_id == order_id)
                                        .order_by(transitions.c.id))).mappings())


async def _change(conn: AsyncConnection, out: Outbox, order: Mapping[str, Any], status: str, reason: str,
                  **values: Any) -> RowMapping:
    """Move one locked order to `status`, record the transition and queue its events."""
    changed = (await conn.execute(update(orders).where(orders.c.id == order["id"])
                                  .values(status=status, updated_at=func.now(), **values)
                                  .returning(*orders.c))).mappings().one()
    await conn.execute(insert(transitions).values(order_id=order["id"], from_status=order["status"],
                                                  to_status=status, reason=reason,
                                                  created_at=changed["updated_at"]))
    _announce(out, changed)
    return changed


async def _locked(conn: AsyncConnection, order_id: uuid.UUID, app_id: int | None = None) -> RowMapping | None:
    """The order with its row lock and the database's clock (one clock for every instance)."""
    query = select(orders, func.now().label("now")).where(orders.c.id == order_id)
    if app_id is not None:
        query = query.where(orders.c.app_id == app_id)
    return (await conn.execute(query.with_for_update(of=orders))).mappings().one_or_none()


async def advance(db: AsyncEngine, bus: Bus, order_id: uuid.UUID, status: str, reason: str,
                  **values: Any) -> tuple[bool, str] | None:
    """Apply a status change unless the order already is as far or further; None if unknown.

    Returns (applied, status now). Provider callbacks and the background call task both come
    here, so a replayed, late or duplicated report is ignored instead of moving an order back.
    """
    async with bus.deferred() as out, transaction(db) as conn:
        order = await _locked(conn, order_id)
        if order is None:
            return None
        if not may_enter(order["status"], status):
            return False, order["status"]
        await _change(conn, out, order, status, reason, **values)
        return True, status


async def set_provider_call_id(db: AsyncEngine, order_id: uuid.UUID, call_id: str) -> None:
    """Remember the provider's id of the call (not a status change: updated_at stays)."""
    async with transaction(db) as conn:
        await conn.execute(update(orders).where(orders.c.id == order_id).values(provider_call_id=call_id))


# Why an order in a final state can no longer be checked (SPEC §11.18).
REFUSALS = {const.VERIFIED: const.order_already_verified, const.LOCKED: const.order_locked,
            const.EXPIRED: const.order_expired, const.FAILED: const.order_failed}


async def verify(db: AsyncEngine, bus: Bus, *, app_id: int, order_id: uuid.UUID, code: str,
                 max_attempts: int) -> None:
    """Check `code` against the order (SPEC §6.3); returns on success, raises the refusal otherwise.

    The row lock serializes concurrent checks on any instance: of two right codes one verifies
    and the other sees `verified`; N wrong codes can never count past `max_attempts`. Refusals
    that change the order (attempts, locked, expired) are committed before they are raised.
    """
    error: ApiError | None = None
    async with bus.deferred() as out, transaction(db) as conn:
        order = await _locked(conn, order_id, app_id)
        if order is None:
            raise const.order_not_found()
        refusal = REFUSALS.get(order["status"])
        if refusal is not None:
            error = refusal()
        elif order["expires_at"] <= order["now"]:
            # The sweeper has not come by yet; the deadline holds all the same.
            await _change(conn, out, order, const.EXPIRED, "code ttl passed")
            error = const.order_expired()
        elif hmac.compare_digest(order["code"].encode(), code.encode()):
            await _change(conn, out, order, const.VERIFIED, "code matched")
        else:
            attempts = order["attempts"] + 1
            if attempts >= max_attempts:
                await _change(conn, out, order, const.LOCKED, "too many wrong codes", attempts=attempts)
            else:
                await conn.execute(update(orders).where(orders.c.id == order_id).values(attempts=attempts))
            error = const.invalid_code()
    if error is not None:
        raise error


async def _bulk_change(db: AsyncEngine, bus: Bus, due: ColumnElement[bool], status: str, reason: str,
                       batch: int) -> int:
    """Move up to `batch` orders matching `due` to `status`; returns how many moved.

    FOR UPDATE SKIP LOCKED: concurrent sweepers on several instances take disjoint rows, and a
    row another transaction holds (a code check) is left for the next pass, so each order
    changes, and is announced, exactly once.
    """
    picked = (select(orders.c.id, orders.c.status).where(due).order_by(orders.c.updated_at).limit(batch)
              .with_for_update(skip_locked=True).cte("picked"))
    async with bus.deferred() as out, transaction(db) as conn:
        moved = (await conn.execute(
            update(orders).where(orders.c.id == picked.c.id).values(status=status, updated_at=func.now())
            .returning(*orders.c, picked.c.status.label("from_status")))).mappings().all()
        if moved:
            await conn.execute(insert(transitions), [
                {"order_id": row["id"], "from_status": row["from_status"], "to_status": status,
                 "reason": reason, "created_at": row["updated_at"]} for row in moved])
        for row in moved:
            _announce(out, row)
    return len(moved)


# The sweepers' predicates name their statuses as constants, so they read the partial indexes
# call_orders_expiry_idx and call_orders_calling_idx instead of the whole table.
def expired() -> ColumnElement[bool]:
    """Live orders (created, calling, called) past their expires_at."""
    return orders.c.status.in_(constants(const.LIVE)) & (orders.c.expires_at <= func.now())


def stuck(call_timeout: float) -> ColumnElement[bool]:
    """Orders calling for `call_timeout` seconds without a result."""
    return (orders.c.status == constant(const.CALLING)) & (
        orders.c.updated_at <= func.now() - dt.timedelta(seconds=call_timeout))


async def expire_due(db: AsyncEngine, bus: Bus, batch: int) -> int:
    """Expire live orders past their expires_at (created, calling, called)."""
    return await _bulk_change(db, bus, expired(), const.EXPIRED, "code ttl passed", batch)


async def fail_stuck(db: AsyncEngine, bus: Bus, call_timeout: float, batch: int) -> int:
    """Fail orders whose call has had no result for `call_timeout` seconds (no provider callback)."""
    return await _bulk_change(db, bus, stuck(call_timeout), const.FAILED, "no call result within CALLUP_CALL_TIMEOUT",
                              batch)
