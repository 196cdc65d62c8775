"""Messages: idempotent posting, history pages, read positions and typing (SPEC §7.3, §7.4, §11.24).

Every event is published after its transaction committed (Bus.deferred): a client that hears
of a message can always read it back from history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.chat import const
from backend.chat.chats import members_of, message_view, require_member, require_open
from backend.chat.tables import chat_members, chats, messages
from backend.db import read, transaction
from backend.realtime.bus import Bus, Outbox
from backend.realtime.names import user_channel


def _fan_out(out: Outbox, chat: Mapping[str, Any], event: str, data: dict[str, Any],
             skip: int | None = None, key: str | None = None) -> None:
    """`event` to chat:{id} and to user:{id} of every member (but `skip`), at most once per `key`."""
    out.add(const.chat_channel(chat["id"]), event, data, key)
    for member in members_of(chat):
        if member != skip:
            out.add(user_channel(member), event, data, key)


async def post(db: AsyncEngine, bus: Bus, user_id: int, chat_id: int, text: str,
               client_id: str | None) -> tuple[dict[str, Any], bool]:
    """Store a message of `user_id`; True when new. A retry with the same client_id returns the
    first message and publishes nothing twice (idempotent per chat, sender and client_id)."""
    async with bus.deferred() as out, transaction(db) as conn:
        chat = await require_member(conn, chat_id, user_id, lock=True)
        # Under the chat lock: a member blocked or deleted after this check is only seen by the next send.
        await require_open(conn, chat)
        row = (await conn.execute(
            insert(messages).values(chat_id=chat_id, sender_id=user_id, text=text, client_id=client_id)
            .on_conflict_do_nothing(index_elements=["chat_id", "sender_id", "client_id"],
                                    index_where=messages.c.client_id.is_not(None))
            .returning(*messages.c))).mappings().one_or_none()
        if row is None:
            # The unique index said this client_id was already sent; the chat lock above means
            # the first send has committed, so it is visible here.
            first = message_view((await conn.execute(select(messages).where(
                messages.c.chat_id == chat_id, messages.c.sender_id == user_id,
                messages.c.client_id == client_id))).mappings().one())
            # Sent again under the first send's key: nothing if that send published it, and the event
            # it never published if its instance died between commit and publish (a retry on another
            # instance is how such a client recovers; tests/faults/test_instance_loss.py).
            _fan_out(out, chat, const.MESSAGE_CREATED, first, key=f"message:{first['id']}")
            return first, False
        await conn.execute(update(chats).where(chats.c.id == chat_id)
                           .values(last_message_id=row["id"], updated_at=row["created_at"]))
        message = message_view(row)
        _fan_out(out, chat, const.MESSAGE_CREATED, message, key=f"message:{row['id']}" if client_id else None)
    return message, True


async def page(db: AsyncEngine, user_id: int, chat_id: int, *, before: int | None, after: int | None,
               limit: int) -> list[dict[str, Any]]:
    """A page of history in ascending id order (SPEC §11.24): the latest `limit`, the `limit` just
    before `before`, or the `limit` just after `after` (and below `before` when both are given)."""
    query = select(messages).where(messages.c.chat_id == chat_id)
    if before is not None:
        query = query.where(messages.c.id < before)
    async with read(db, lag_ok=True) as conn:
        await require_member(conn, chat_id, user_id)
        if after is not None:
            rows = (await conn.execute(query.where(messages.c.id > after).order_by(messages.c.id).limit(limit))
                    ).mappings()
            return [message_view(row) for row in rows]
        rows = (await conn.execute(query.order_by(messages.c.id.desc()).limit(limit))).mappings()
        return [message_view(row) for row in reversed(list(rows))]


async def _unread(conn: AsyncConnection, chat_id: int, user_id: int, read_up_to: int) -> int:
    return int((await conn.execute(select(func.count()).select_from(messages).where(
        messages.c.chat_id == chat_id, messages.c.id > read_up_to, messages.c.sender_id != user_id))).scalar_one())


async def mark_read(db: AsyncEngine, bus: Bus, user_id: int, chat_id: int, message_id: int) -> dict[str, Any]:
    """Move the caller's read position up to `message_id`; it never moves back, and an unmoved
    position publishes nothing."""
    async with bus.deferred() as out, transaction(db) as conn:
        chat = await require_member(conn, chat_id, user_id)
        known = (await conn.execute(select(messages.c.id).where(
            messages.c.id == message_id, messages.c.chat_id == chat_id))).first()
        if known is None:
            raise const.message_not_found()
        member = (chat_members.c.chat_id == chat_id) & (chat_members.c.user_id == user_id)
        # One conditional UPDATE keeps it monotonic under concurrent reads from several devices.
        moved = (await conn.execute(update(chat_members).where(member, chat_members.c.last_read_id < message_id)
                                    .values(last_read_id=message_id).returning(chat_members.c.last_read_id))
                 ).scalar_one_or_none()
        position = moved if moved is not None else (await conn.execute(
            select(chat_members.c.last_read_id).where(member))).scalar_one()
        receipt = {"chat_id": chat_id, "user_id": user_id, "message_id": position}
        if moved is not None:
            _fan_out(out, chat, const.MESSAGE_READ, receipt)
        unread = await _unread(conn, chat_id, user_id, position)
    return {**receipt, "unread_count": unread}


async def typing(db: AsyncEngine, bus: Bus, user_id: int, chat_id: int) -> None:
    """Tell the chat and the other member that `user_id` is typing (ephemeral: nothing is stored)."""
    async with read(db) as conn:
        chat = await require_member(conn, chat_id, user_id)
    out = Outbox()
    _fan_out(out, chat, const.TYPING, {"chat_id": chat_id, "user_id": user_id}, skip=user_id)
    for channel, event, data in out.events:
        await bus.publish(channel, event, data)
