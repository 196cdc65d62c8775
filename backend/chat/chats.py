"""One-to-one chats: opening the chat of a pair (race-free), membership, the caller's chat list."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth import directory
from backend.chat import const
from backend.chat.tables import chat_members, chats, messages
from backend.db import read, transaction
from backend.principal import Principal
from backend.realtime.bus import Bus
from backend.realtime.names import user_channel

_CHAT_ID = re.compile(r"^[1-9][0-9]{0,18}$")


def message_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The wire shape of a message (SPEC §7.3)."""
    return {"id": row["id"], "chat_id": row["chat_id"], "sender_id": row["sender_id"], "text": row["text"],
            "client_id": row["client_id"], "created_at": row["created_at"]}


def members_of(chat: Mapping[str, Any]) -> tuple[int, int]:
    """A one-to-one chat's members are its pair."""
    return chat["user_low"], chat["user_high"]


async def _members_view(conn: AsyncConnection, chats_rows: list[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    ids = [member for chat in chats_rows for member in members_of(chat)]
    return await directory.brief_users(conn, ids)


async def _live(conn: AsyncConnection, chats_rows: list[Mapping[str, Any]]) -> set[int]:
    """The members of these chats who are still visible users (the others close their chats)."""
    return await directory.live_ids(conn, [member for chat in chats_rows for member in members_of(chat)])


def _missing(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "username": "", "name": ""}


def chat_view(chat: Mapping[str, Any], people: Mapping[int, dict[str, Any]], live: Collection[int], *,
              last_message: dict[str, Any] | None = None, unread_count: int = 0) -> dict[str, Any]:
    """The wire shape of a chat, the same in POST /chats, GET /chats and chat.created.

    `closed`: a member (of `live`, the visible users) was deleted or blocked, so the chat takes no
    more messages; its history stays readable.
    """
    return {"id": chat["id"], "members": [people.get(uid) or _missing(uid) for uid in members_of(chat)],
            "closed": not all(uid in live for uid in members_of(chat)),
            "last_message": last_message, "unread_count": unread_count,
            "created_at": chat["created_at"], "updated_at": chat["updated_at"]}


def member_check(chat: Mapping[str, Any] | None, user_id: int) -> Mapping[str, Any]:
    """`chat` (a row with user_low, user_high) when `user_id` belongs to it: 400 chat_not_found
    when there is no such chat, 403 forbidden when the user is not in it."""
    if chat is None:
        raise const.chat_not_found()
    if user_id not in members_of(chat):
        raise const.not_a_member()
    return chat


async def require_member(conn: AsyncConnection, chat_id: int, user_id: int) -> Mapping[str, Any]:
    """The chat row when `user_id` belongs to it (member_check)."""
    chat = (await conn.execute(select(chats).where(chats.c.id == chat_id))).mappings().one_or_none()
    return member_check(chat, user_id)


async def members_only(db: AsyncEngine, principal: Principal | None, rest: str) -> bool:
    """chat:{id} is readable by the chat's members only (SPEC §8.3)."""
    if principal is None or principal.user_id is None or not _CHAT_ID.match(rest) or int(rest) > const.BIGINT_MAX:
        return False
    async with read(db) as conn:
        found = (await conn.execute(select(chat_members.c.chat_id).where(
            chat_members.c.chat_id == int(rest), chat_members.c.user_id == principal.user_id))).first()
    return found is not None


async def open_chat(db: AsyncEngine, bus: Bus, user_id: int, other_id: int) -> tuple[dict[str, Any], bool]:
    """The chat of `user_id` and `other_id`, created if missing; True when this call created it."""
    if other_id == user_id:
        raise const.chat_with_self()
    low, high = sorted((user_id, other_id))
    async with bus.deferred() as out, transaction(db) as conn:
        if await directory.live_user(conn, other_id) is None:
            raise const.user_not_found()
        # The pair's unique index decides between concurrent openers on any instance: the loser
        # waits for the winner's commit, inserts nothing, and reads the winner's row below.
        created = (await conn.execute(insert(chats).values(user_low=low, user_high=high)
                                      .on_conflict_do_nothing(index_elements=["user_low", "user_high"])
                                      .returning(*chats.c))).mappings().one_or_none()
        if created is not None:
            await conn.execute(insert(chat_members), [{"chat_id": created["id"], "user_id": low},
                                                      {"chat_id": created["id"], "user_id": high}])
            chat = created
        else:
            chat = (await conn.execute(select(chats).where(chats.c.user_low == low, chats.c.user_high == high))
                    ).mappings().one()
        people = await _members_view(conn, [chat])
        live = await _live(conn, [chat])
        if created is not None:
            view = chat_view(chat, people, live)
            for member in (low, high):
                out.add(user_channel(member), const.CHAT_CREATED, view)
            return view, True
        last, unread = await _summary(conn, chat, user_id)
    return chat_view(chat, people, live, last_message=last, unread_count=unread), False


async def _summary(conn: AsyncConnection, chat: Mapping[str, Any], user_id: int) -> tuple[dict[str, Any] | None, int]:
    """The last message and the caller's unread count of one chat."""
    row = (await conn.execute(_summary_query(user_id).where(chats.c.id == chat["id"]))).mappings().one()
    return _last_of(row), int(row["unread_count"])


def _summary_query(user_id: int) -> Any:
    """Chats of `user_id` with their last message (m_* columns) and the caller's unread count."""
    last = messages.alias("last")
    # Unread: the other member's messages past the caller's read position (index chat_id, id).
    unread = (select(func.count()).select_from(messages)
              .where(messages.c.chat_id == chats.c.id, messages.c.id > chat_members.c.last_read_id,
                     messages.c.sender_id != user_id)
              .scalar_subquery())
    member = chats.join(chat_members, and_(chat_members.c.chat_id == chats.c.id, chat_members.c.user_id == user_id))
    return (select(chats, unread.label("unread_count"), last.c.id.label("m_id"),
                   last.c.chat_id.label("m_chat_id"), last.c.sender_id.label("m_sender_id"),
                   last.c.text.label("m_text"), last.c.client_id.label("m_client_id"),
                   last.c.created_at.label("m_created_at"))
            .select_from(member.outerjoin(last, last.c.id == chats.c.last_message_id)))


def _last_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    if row["m_id"] is None:
        return None
    return message_view({name: row[f"m_{name}"] for name in ("id", "chat_id", "sender_id", "text", "client_id",
                                                              "created_at")})


async def list_chats(db: AsyncEngine, user_id: int,
                     online: Callable[[Collection[int]], Awaitable[set[int]]] | None = None) -> list[dict[str, Any]]:
    """The caller's chats, most recently active first, each with its last message and unread count.

    With `online` (realtime's presence, SPEC §12.4) every member carries `online`: a live socket on
    any instance.
    """
    query = _summary_query(user_id).order_by(chats.c.updated_at.desc(), chats.c.id.desc()).limit(const.CHATS_MAX)
    async with read(db) as conn:
        rows = list((await conn.execute(query)).mappings())
        people = await _members_view(conn, rows)
        live = await _live(conn, rows)
    if online is not None:
        connected = await online(people.keys())
        people = {uid: {**person, "online": uid in connected} for uid, person in people.items()}
    return [chat_view(row, people, live, last_message=_last_of(row), unread_count=int(row["unread_count"]))
            for row in rows]


async def user_briefs(db: AsyncEngine, user_ids: Collection[int]) -> dict[int, dict[str, Any]]:
    """{id, username, name} of users, as chat member lists show them (presence lists them too)."""
    async with read(db) as conn:
        return await directory.brief_users(conn, user_ids)
