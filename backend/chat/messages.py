"""Messages: idempotent posting, history pages, read positions and typing (SPEC §7.3, §7.4, §11.24).

Every event is published after its transaction committed (Bus.deferred): a client that hears
of a message can always read it back from history.

Posting and history pages run on the raw asyncpg pool (issue 11) with Core statements compiled
once: a post is one statement (lock the chat, check the pair, insert, move the chat's last message),
a page one (membership and rows; a second only when it is empty, to tell why). Through SQLAlchemy a
post took six round trips (BEGIN … COMMIT) and ~2.1 ms of server CPU, a page ~1.3 ms (bench
scripts/bench/rest.py); read marks and typing, rarer, stay there.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import BigInteger, Integer, Text, bindparam, exists, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth.directory import live_count
from backend.chat import const
from backend.chat.chats import member_check, members_of, message_view, require_member
from backend.chat.tables import chat_members, chats, messages
from backend.db import Statement, compiled, hot_read, read, transaction, wrote
from backend.realtime.bus import Bus, Outbox
from backend.realtime.names import user_channel

PAIR = 2            # a chat's members: its two distinct users (sql/009: CHECK user_low < user_high)


def _fan_out(out: Outbox, chat_id: int, members: tuple[int, int], event: str, data: dict[str, Any],
             skip: int | None = None, key: str | None = None) -> None:
    """`event` to chat:{id} and to user:{id} of every member (but `skip`), at most once per `key`."""
    out.add(const.chat_channel(chat_id), event, data, key)
    for member in members:
        if member != skip:
            out.add(user_channel(member), event, data, key)


def _post() -> Statement:
    """Lock the chat row, count its visible members, insert the message when the sender is one of
    them and both are visible, and make it the chat's last message: one statement.

    The lock (FOR UPDATE) is taken before the insert reads the chat's row from it, so writers of one
    chat commit one after another: message ids grow in commit order and an `after=` page never skips
    a late commit. The members' visibility is read in the statement's snapshot, taken before the
    lock wait: a member blocked or deleted meanwhile is seen by the next send (as it would be if the
    block had committed a moment later).
    """
    chat_id, user_id = bindparam("chat_id", type_=BigInteger), bindparam("user_id", type_=BigInteger)
    live = live_count(chats.c.user_low, chats.c.user_high)
    chat = (select(chats.c.id, chats.c.user_low, chats.c.user_high, live.label("live"))
            .where(chats.c.id == chat_id).with_for_update(of=chats).cte("chat"))
    allowed = select(chat.c.id, user_id, bindparam("text", type_=Text), bindparam("client_id", type_=Text)).where(
        or_(chat.c.user_low == user_id, chat.c.user_high == user_id), chat.c.live == PAIR)
    stored = (insert(messages).from_select(["chat_id", "sender_id", "text", "client_id"], allowed)
              .on_conflict_do_nothing(index_elements=["chat_id", "sender_id", "client_id"],
                                      index_where=messages.c.client_id.is_not(None))
              .returning(*messages.c).cte("stored"))
    touched = (update(chats).where(chats.c.id == stored.c.chat_id)
               .values(last_message_id=stored.c.id, updated_at=stored.c.created_at).cte("touched"))
    # A row whenever the chat exists; the message columns are NULL when nothing was inserted.
    return compiled(select(chat.c.user_low, chat.c.user_high, chat.c.live, *stored.c)
                    .select_from(chat.outerjoin(stored, true())).add_cte(touched))


POST = _post()
FIRST = compiled(select(messages).where(messages.c.chat_id == bindparam("chat_id"),
                                        messages.c.sender_id == bindparam("user_id"),
                                        messages.c.client_id == bindparam("client_id")))


async def post(pool: asyncpg.Pool, bus: Bus, user_id: int, chat_id: int, text: str,
               client_id: str | None) -> tuple[dict[str, Any], bool]:
    """Store a message of `user_id`; True when new. A retry with the same client_id returns the
    first message and publishes nothing twice (idempotent per chat, sender and client_id)."""
    async with bus.deferred() as out:
        async with pool.acquire() as conn:
            wrote()
            row = member_check(await conn.fetchrow(POST.sql, *POST.args(
                chat_id=chat_id, user_id=user_id, text=text, client_id=client_id)), user_id)
            members = members_of(row)
            if row["id"] is None:
                if row["live"] < PAIR:
                    raise const.chat_closed()       # a member was deleted or blocked (SPEC §11.22)
                # The unique index said this client_id was already sent. The chat lock the statement
                # took waited for the first send's commit, so this next statement (a new snapshot)
                # sees its message.
                assert client_id is not None
                first = message_view(await conn.fetchrow(FIRST.sql, *FIRST.args(
                    chat_id=chat_id, user_id=user_id, client_id=client_id)))
                # Sent again under the first send's key: nothing if that send published it, and the
                # event it never published if its instance died between commit and publish (a retry on
                # another instance is how such a client recovers; tests/faults/test_instance_loss.py).
                _fan_out(out, chat_id, members, const.MESSAGE_CREATED, first, key=f"message:{first['id']}")
                return first, False
        message = message_view(row)
        _fan_out(out, chat_id, members, const.MESSAGE_CREATED, message,
                 key=f"message:{row['id']}" if client_id else None)
    return message, True


def _page(*, before: bool, after: bool) -> Statement:
    """The rows of one page, when the caller is a member of the chat (else none)."""
    chat_id, user_id = bindparam("chat_id", type_=BigInteger), bindparam("user_id", type_=BigInteger)
    member = exists().where(chats.c.id == chat_id, or_(chats.c.user_low == user_id, chats.c.user_high == user_id))
    query = select(messages).where(messages.c.chat_id == chat_id, member)
    if before:
        query = query.where(messages.c.id < bindparam("before", type_=BigInteger))
    if after:
        query = query.where(messages.c.id > bindparam("after", type_=BigInteger)).order_by(messages.c.id)
    else:
        query = query.order_by(messages.c.id.desc())
    return compiled(query.limit(bindparam("limit", type_=Integer)))


PAGES = {(before, after): _page(before=before, after=after) for before in (False, True) for after in (False, True)}
CHAT = compiled(select(chats.c.user_low, chats.c.user_high).where(chats.c.id == bindparam("chat_id")))


async def page(pool: asyncpg.Pool, user_id: int, chat_id: int, *, before: int | None, after: int | None,
               limit: int) -> list[dict[str, Any]]:
    """A page of history in ascending id order (SPEC §11.24): the latest `limit`, the `limit` just
    before `before`, or the `limit` just after `after` (and below `before` when both are given).
    Lag-tolerant: from the read replica when there is one (SPEC §13.2)."""
    statement = PAGES[before is not None, after is not None]
    async with hot_read(pool, lag_ok=True) as conn:
        rows = await conn.fetch(statement.sql, *statement.args(chat_id=chat_id, user_id=user_id, before=before,
                                                               after=after, limit=limit))
        if not rows:                # an empty page, or no page for this caller: which one
            member_check(await conn.fetchrow(CHAT.sql, *CHAT.args(chat_id=chat_id)), user_id)
    if after is None:
        rows.reverse()              # the latest `limit`, fetched newest first
    return [message_view(row) for row in rows]


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
            _fan_out(out, chat_id, members_of(chat), const.MESSAGE_READ, receipt)
        unread = await _unread(conn, chat_id, user_id, position)
    return {**receipt, "unread_count": unread}


async def typing(db: AsyncEngine, bus: Bus, user_id: int, chat_id: int) -> None:
    """Tell the chat and the other member that `user_id` is typing (ephemeral: nothing is stored)."""
    async with read(db) as conn:
        chat = await require_member(conn, chat_id, user_id)
    out = Outbox()
    _fan_out(out, chat_id, members_of(chat), const.TYPING, {"chat_id": chat_id, "user_id": user_id}, skip=user_id)
    for channel, event, data in out.events:
        await bus.publish(channel, event, data)
