"""Malformed HTTP answered like any other bad input (SPEC §2.3; issue 10 item 8, issue 12).

A request aiohttp's parser refuses (a header or URL over 8190 bytes, a control character in a
header, Content-Length together with Transfer-Encoding, a body longer than its Content-Length, so
the rest reads as a broken next request) never reaches the app: aiohttp answers it from
`RequestHandler.handle_error` with a text/plain 400 that echoes the input, without `X-Request-ID`,
and logs it at ERROR with a traceback. aiohttp offers no hook for this (aio-libs/aiohttp#3287,
#9882), so the server side of the connection is subclassed here: `SurfaceRequestHandler` answers
in the error style of the path's surface (431 for oversized headers, 414 for an oversized URL, 400
otherwise), echoes nothing, carries `X-Request-ID` and logs one warning line.

The parser has thrown the request away by then, so the path is looked for in the bytes that were
being parsed (the latest two chunks, kept by reference; copied only when parsing failed). It only
chooses the body style and is never echoed; without a recognisable request line the operations
style (detail) is used.

Every way the service is served goes through `SurfaceAppRunner`: `run_app` below (run.py, its
workers, the demo) and the gunicorn entry point. aiohttp's test server keeps its own runner, so
tests of this module start a real server with `SurfaceAppRunner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.http_parser import RawRequestMessage
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from backend.api.middlewares import SERVER_NAME
from backend.api.surfaces import detail, renderer_for, token_auth
from backend.errors import ApiError
from backend.jsonutil import dumps

log = logging.getLogger("backend.errors")

HEAD_WINDOW = 16 * 1024         # bytes of a failed head searched for its request line
_REQUEST_PATH = re.compile(rb"(?:^|\r\n)[A-Z]{3,10} (/[^\s?#]*)")
_COMPLETE_LINE = re.compile(rb"(?:^|\r\n)[A-Z]{3,10} (\S+) HTTP/\d\.\d\r\n")


def protocol_error(exc: HttpProcessingError, head: bytes, max_line: int = 8190) -> ApiError:
    """The ApiError of a request the parser refused, with none of the input in it: a line too long
    is the URL's (414) unless the head holds a request line of an acceptable length (431)."""
    too_many = str(exc.message).startswith("Too many headers")
    if isinstance(exc, LineTooLong) or too_many:
        line = _COMPLETE_LINE.search(head)
        if too_many or (line is not None and len(line.group(1)) <= max_line):
            return ApiError(431, "request_header_fields_too_large", "Слишком большие заголовки запроса.")
        return ApiError(414, "uri_too_long", "Слишком длинный адрес запроса.")
    return ApiError(400, "bad_request", "Некорректный HTTP-запрос.")


def path_of(head: bytes) -> str:
    """The path of the last request line in `head` ("/" when there is none): it picks the style."""
    matches = _REQUEST_PATH.findall(head)
    return matches[-1].decode("latin-1") if matches else "/"


class SurfaceRequestHandler(RequestHandler):
    """aiohttp's connection handler, except for requests its parser refuses (module docstring)."""

    __slots__ = ("_failed_head", "_latest", "_previous")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._previous = self._latest = b""
        self._failed_head: bytes | None = None

    def data_received(self, data: bytes) -> None:
        """Keep the latest two chunks (references, no copy) until a head fails to parse."""
        if self._failed_head is None:
            self._previous, self._latest = self._latest, data
        super().data_received(data)
        # A parse error is queued as a non-message; freeze the bytes it came from.
        if self._failed_head is None and self._messages and \
                not isinstance(self._messages[-1][0], RawRequestMessage):
            self._failed_head = self._previous[-HEAD_WINDOW:] + self._latest[:HEAD_WINDOW]

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A refused request in its surface's style; anything else is aiohttp's (500, 504)."""
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent on this connection")
        head = self._failed_head or b""
        path = path_of(head)
        err = protocol_error(exc, head, self.max_line_size)
        request_id = uuid.uuid4().hex
        renderer = renderer_for(path)
        # /auth/* answers bad bodies with 422; a request that is not even HTTP keeps its 4xx.
        code, body = (detail if renderer is token_auth else renderer)(err)
        # Bytes that are not HTTP at all on a fresh connection (TLS to the plain port, scanners) are
        # routine on a public address: debug, as aiohttp itself does, not a warning per probe.
        level = logging.DEBUG if isinstance(exc, BadHttpMethod) and self._request_count == 1 else logging.WARNING
        log.log(level, "malformed request", extra={"request_id": request_id, "remote": request.remote,
                                                   "status": code, "error": type(exc).__name__,
                                                   "surface": renderer.__name__})
        response = web.Response(status=code, text=dumps(body), content_type="application/json",
                                headers={"X-Request-ID": request_id, "X-Content-Type-Options": "nosniff",
                                         "Server": SERVER_NAME})
        response.force_close()
        return response


class SurfaceServer(web.Server):
    """aiohttp's low-level server making `SurfaceRequestHandler` connections."""

    def __call__(self) -> RequestHandler:
        return SurfaceRequestHandler(self, loop=self._loop, **self._kwargs)


class SurfaceAppRunner(web.AppRunner):
    """`web.AppRunner` whose connections answer malformed requests in the surface style."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()        # starts the app and builds aiohttp's server
        # The same handler, request factory and connection settings (debug, access log, timeouts,
        # the app's handler_args); only the class of the connections it makes differs.
        return SurfaceServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, **plain._kwargs)


def run_app(app: web.Application, *, host: str, port: int, reuse_port: bool | None = None,
            access_log: logging.Logger | None = None, keepalive_timeout: float = 75.0,
            shutdown_timeout: float = 60.0, print: Callable[[str], None] | None = None) -> None:
    """`web.run_app` with `SurfaceAppRunner`: serve until SIGINT/SIGTERM, then shut down gracefully
    (on_shutdown closes websockets with 1001, requests get `shutdown_timeout` to finish)."""

    async def main() -> None:
        runner = SurfaceAppRunner(app, handle_signals=True, access_log=access_log,
                                  keepalive_timeout=keepalive_timeout, shutdown_timeout=shutdown_timeout)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_port=reuse_port)
            await site.start()
            if print is not None:
                print(f"======== Running on {site.name} ========")
            await asyncio.Event().wait()            # until a signal raises GracefulExit
        finally:
            await runner.cleanup()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    task = loop.create_task(main())
    try:
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, web.GracefulExit, KeyboardInterrupt):
            loop.run_until_complete(task)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
