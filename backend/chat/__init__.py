"""Messenger (seed 004, SPEC §7): users API, avatars, one-to-one chats, messages, their events."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from backend import keys
from backend.api.routing import USER, Handler, route
from backend.chat import handlers as h
from backend.chat import user_handlers as u
from backend.chat.chats import members_only, user_briefs
from backend.chat.commands import COMMANDS
from backend.chat.schemas import (
    ChatIn,
    ChatOut,
    ChatsOut,
    DoneOut,
    LoginIn,
    MessageIn,
    MessageOut,
    MessagesOut,
    MessagesQuery,
    PhotoOut,
    ReadIn,
    ReadOut,
    SearchQuery,
    UserCreateIn,
    UserOut,
    UserPutIn,
    UsersOut,
)
from backend.realtime import register_command
from backend.realtime.channels import INT_ID, Namespace

ONE_USER = r"/users/{id:\d+}"
CHAT = r"/chats/{id:\d+}"


def setup(app: web.Application) -> None:
    """Declare the `chat` channel, the websocket commands and the routes."""
    app[keys.CHANNELS].add(Namespace("chat", authorize=members_only, rest=INT_ID, ephemeral=frozenset({"typing"}),
                                     presence=True))
    app[keys.USER_BRIEFS] = user_briefs       # the messenger's user card, shown by presence lists
    for frame_type, model, command in COMMANDS:
        register_command(app, frame_type, model, command)

    def add(method: str, path: str, handler: Handler, summary: str, **doc: Any) -> None:
        route(app, method, path, handler, summary=summary, tag="messenger", **doc)

    add("POST", "/users", u.register, "Register a messenger user", body=UserCreateIn, response=UserOut,
        status=201)
    add("GET", "/users", u.me, "The signed-in user", response=UserOut, auth=USER)
    # Before /users/{name}: aiohttp matches resources in the order they were added.
    add("GET", "/users/search", u.search_by_query, "Search users by username (any query)", query=SearchQuery,
        response=UsersOut, auth=USER)
    add("GET", ONE_USER, u.get_user, "One user", response=UserOut, auth=USER, responses=(400,))
    # 405: an id that is not digits is /users/{name}, which only answers GET.
    add("PUT", ONE_USER, u.put_user, "Replace a user's editable fields", body=UserPutIn, response=UserOut,
        auth=USER, responses=(405,))
    add("GET", "/users/{name}", u.search_by_path, "Search users by username", response=UsersOut, auth=USER)
    add("POST", "/login", u.login, "Sign in (sessid cookie session)", body=LoginIn, response=UserOut,
        responses=(429,))
    add("DELETE", "/logout", u.logout, "Sign out (the session stays)", response=DoneOut)
    add("POST", "/photos", u.upload_photo, "Upload the caller's avatar (multipart, field photo)",
        response=PhotoOut, status=201, auth=USER, responses=(400, 413))
    add("GET", r"/photos/{id:\d+}", u.get_photo, "A user's current avatar (image bytes)", auth=USER,
        responses=(304,))
    add("POST", "/chats", h.create_chat, "Open the one-to-one chat with a user", body=ChatIn, response=ChatOut,
        status=201, auth=USER, responses=(200,))
    add("GET", "/chats", h.list_chats, "The caller's chats", response=ChatsOut, auth=USER)
    add("GET", CHAT + "/messages", h.list_messages, "A page of a chat's history", query=MessagesQuery,
        response=MessagesOut, auth=USER, responses=(403,))
    add("POST", CHAT + "/messages", h.post_message, "Send a message (idempotent per client_id)",
        body=MessageIn, response=MessageOut, status=201, auth=USER, responses=(200, 403))
    add("POST", CHAT + "/read", h.read_chat, "Mark the chat read up to a message", body=ReadIn,
        response=ReadOut, auth=USER, responses=(403,))
