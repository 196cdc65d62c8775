"""Car-sharing client status of users (SPEC §4.4, §11.13): the `users` queries sharing needs.

The users table belongs to auth; sharing reads and changes a user's client status only through
these functions, inside the caller's transaction, so a booking and a status change can share one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import CTE, BindParameter, RowMapping, Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.api.pagination import fetch_page
from backend.auth.tables import roles, users

CLIENT_COLUMNS = (users.c.id, users.c.login, users.c.name, users.c.surname, users.c.last_name, users.c.email,
                  users.c.phone, users.c.driver_license, users.c.role_id.label("role"), users.c.client_status,
                  users.c.blocked_reason, users.c.deleted_at)


def locked_client_status(user_id: BindParameter[Any]) -> CTE:
    """The client status of a user not deleted, its row share-locked, as a CTE `client` for the
    caller's one statement (a reservation): a concurrent block waits for it, or it for the block."""
    return (select(users.c.client_status).where(users.c.id == user_id, users.c.deleted_at.is_(None))
            .with_for_update(read=True).cte("client"))


async def contacts(conn: AsyncConnection, user_ids: Iterable[int]) -> dict[int, RowMapping]:
    """id, login, name, surname, last_name and phone of each user, deleted ones included."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    query = select(users.c.id, users.c.login, users.c.name, users.c.surname, users.c.last_name,
                   users.c.phone).where(users.c.id.in_(wanted))
    return {row["id"]: row for row in (await conn.execute(query)).mappings()}


async def role_id(conn: AsyncConnection, role: str) -> int | None:
    """The live role named `role` (case-insensitive) or with that id."""
    condition = roles.c.id == int(role) if role.isdigit() else func.lower(roles.c.name) == role.lower()
    found = (await conn.execute(select(roles.c.id).where(condition, roles.c.deleted_at.is_(None)))
             ).scalar_one_or_none()
    return int(found) if found is not None else None


def clients_query(role: int, status: str | None) -> Select[Any]:
    """Live users of role `role`, of client status `status` when given."""
    query = select(*CLIENT_COLUMNS).where(users.c.deleted_at.is_(None), users.c.role_id == role)
    if status is not None:
        query = query.where(users.c.client_status == status)
    return query


async def list_clients(conn: AsyncConnection, *, role: int, status: str | None, limit: int,
                       offset: int) -> tuple[int, list[RowMapping]]:
    """One page of clients in id order and how many there are in all."""
    count, rows = await fetch_page(conn, clients_query(role, status), users.c.id, limit=limit, offset=offset)
    return count, list(rows)


async def lock_client(conn: AsyncConnection, user_id: int) -> RowMapping | None:
    """The live user as a client row, locked FOR UPDATE until the caller's transaction ends."""
    query = select(*CLIENT_COLUMNS).where(users.c.id == user_id, users.c.deleted_at.is_(None)).with_for_update()
    return (await conn.execute(query)).mappings().one_or_none()


async def set_client_status(conn: AsyncConnection, user_id: int, status: str,
                            reason: str | None = None) -> RowMapping:
    """Write client_status (and blocked_reason, cleared unless blocking) of a locked user."""
    query = (update(users).where(users.c.id == user_id)
             .values(client_status=status, blocked_reason=reason if status == "blocked" else None,
                     updated_at=func.now())
             .returning(*CLIENT_COLUMNS))
    return (await conn.execute(query)).mappings().one()


async def soft_delete_client(conn: AsyncConnection, user_id: int) -> RowMapping:
    """Mark a locked user deleted (SPEC §2.4); the login and email become free again (sql/005)."""
    query = (update(users).where(users.c.id == user_id).values(deleted_at=func.now(), updated_at=func.now())
             .returning(*CLIENT_COLUMNS))
    return (await conn.execute(query)).mappings().one()
