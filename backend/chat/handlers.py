"""Chat and message handlers (SPEC §7.3): parse, make one domain call, shape the answer."""

from __future__ import annotations

from aiohttp import web

from backend import keys
from backend.api.access import current_user
from backend.api.responses import respond
from backend.api.validation import read_json, read_query
from backend.chat import chats, const, messages
from backend.chat.schemas import ChatIn, MessageIn, MessagesQuery, ReadIn


def chat_id_of(request: web.Request) -> int:
    """The {id} of /chats/{id}/...; past bigint it names no chat (400, not a 500)."""
    chat_id = int(request.match_info["id"])
    if chat_id > const.BIGINT_MAX:
        raise const.chat_not_found()
    return chat_id


def _user_id(request: web.Request) -> int:
    return current_user(request).user_id or 0


async def create_chat(request: web.Request) -> web.Response:
    """POST /chats: the caller's one-to-one chat with `user_id` (201 new, 200 existing)."""
    user_id = _user_id(request)
    data = await read_json(request, ChatIn)
    app = request.app
    chat, created = await chats.open_chat(app[keys.DB], app[keys.BUS], user_id, data.user_id)
    return respond(chat, status=201 if created else 200)


async def list_chats(request: web.Request) -> web.Response:
    """GET /chats: the caller's chats, most recently active first."""
    user_id = _user_id(request)
    app = request.app
    return respond({"chats": await chats.list_chats(app[keys.DB], user_id, online=app.get(keys.ONLINE))})


async def list_messages(request: web.Request) -> web.Response:
    """GET /chats/{id}/messages?before=&after=&limit=: a history page, ascending ids."""
    user_id = _user_id(request)
    chat_id = chat_id_of(request)
    query = read_query(request, MessagesQuery)
    found = await messages.page(request.app[keys.HOT_DB], user_id, chat_id, before=query.before, after=query.after,
                                limit=query.limit)
    return respond({"messages": found})


async def post_message(request: web.Request) -> web.Response:
    """POST /chats/{id}/messages: 201 a new message, 200 the first one for a repeated client_id."""
    user_id = _user_id(request)
    chat_id = chat_id_of(request)
    data = await read_json(request, MessageIn)
    app = request.app
    message, created = await messages.post(app[keys.HOT_DB], app[keys.BUS], user_id, chat_id, data.text,
                                            data.client_id)
    return respond(message, status=201 if created else 200)


async def read_chat(request: web.Request) -> web.Response:
    """POST /chats/{id}/read: the caller has read everything up to `message_id`."""
    user_id = _user_id(request)
    chat_id = chat_id_of(request)
    data = await read_json(request, ReadIn)
    app = request.app
    return respond(await messages.mark_read(app[keys.DB], app[keys.BUS], user_id, chat_id, data.message_id))
