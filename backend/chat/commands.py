"""The messenger's websocket commands (SPEC §8.2): send, typing, read.

They run the same domain functions as the REST routes; their errors become error frames with
the realtime codes of SPEC §11.25, and the socket stays open.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from backend import keys
from backend.chat import messages
from backend.chat.schemas import ReadFrame, SendFrame, TypingFrame
from backend.errors import ApiError
from backend.realtime import const as rt
from backend.realtime.channels import FrameError
from backend.realtime.connection import Connection, Reply

T = TypeVar("T")


def _user_id(conn: Connection) -> int:
    """Commands act for a user; anonymous and app-token sockets are refused."""
    principal = conn.principal
    if principal is None or principal.user_id is None:
        raise FrameError(rt.UNAUTHORIZED, "Команда доступна только авторизованному пользователю.")
    return principal.user_id


async def _as_frame_error(call: Awaitable[T]) -> T:
    """Run a domain call; its refusals in the realtime vocabulary.

    A chat that does not exist is `forbidden` like one the user is not in: both mean "no such
    chat for you", and the frame codes are a closed list (SPEC §11.25).
    """
    try:
        return await call
    except ApiError as err:
        if err.status == 403 or err.code == "chat_not_found":
            raise FrameError(rt.FORBIDDEN, err.message) from None
        if err.status == 400:
            raise FrameError(rt.INVALID_FRAME, err.message) from None
        raise


async def on_send(conn: Connection, frame: SendFrame) -> Reply:
    """Persist a message like POST /chats/{id}/messages, then acknowledge it with the message."""
    user_id = _user_id(conn)
    message, _ = await _as_frame_error(messages.post(conn.app[keys.HOT_DB], conn.app[keys.BUS], user_id,
                                                     frame.chat_id, frame.text, frame.client_id))
    return {"type": "ack", "id": frame.id, "message": message}


async def on_typing(conn: Connection, frame: TypingFrame) -> Reply:
    """Publish `typing`; answered only on error (SPEC §11.25)."""
    await _as_frame_error(messages.typing(conn.db, conn.app[keys.BUS], _user_id(conn), frame.chat_id))
    return None


async def on_read(conn: Connection, frame: ReadFrame) -> Reply:
    """Move the read position like POST /chats/{id}/read; answered only on error."""
    await _as_frame_error(messages.mark_read(conn.db, conn.app[keys.BUS], _user_id(conn), frame.chat_id,
                                             frame.message_id))
    return None


COMMANDS = (("send", SendFrame, on_send), ("typing", TypingFrame, on_typing), ("read", ReadFrame, on_read))
