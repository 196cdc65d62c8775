"""An unexpected error under a websocket command (a bug, not a lost server).

Raised out of the /ws handler it reached render_errors, whose HTTP error response was written
into the upgraded socket: the client read it as a broken frame ("non-zero reserved bits", close
1002) instead of a close it can act on. Found with a PostgreSQL restart (test_postgres_restart.py).
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from pydantic import BaseModel

from backend.realtime import register_command
from backend.realtime.connection import Connection, Reply
from tests.conftest import AppFactory, UserFactory


class Boom(BaseModel):
    type: str
    id: int


async def boom(conn: Connection, frame: Boom) -> Reply:
    raise RuntimeError("a bug in a command")


def with_boom(app: web.Application) -> None:
    register_command(app, "boom", Boom, boom)


async def test_a_failing_command_closes_the_socket_with_1011_not_an_http_page(make_client: AppFactory,
                                                                             make_user: UserFactory) -> None:
    client = await make_client(setup=with_boom)
    user = await make_user(role="client")
    async with client.ws_connect("/ws", headers=user.headers) as ws:
        await ws.send_json({"type": "ping", "id": 1})
        assert await ws.receive_json(timeout=5) == {"type": "pong", "id": 1}
        await ws.send_json({"type": "boom", "id": 2})
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.CLOSE, message
        assert message.data == aiohttp.WSCloseCode.INTERNAL_ERROR
    # The instance itself is fine.
    assert (await client.get("/health/live")).status == 200
