"""Cross-cutting request handling: request id, access log and metrics, error rendering, common headers."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from backend import keys, logs
from backend.api.surfaces import error_response
from backend.errors import ApiError, database_unavailable, internal_error, redis_unavailable
from backend.jsonutil import dumps

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

error_log = logging.getLogger("backend.errors")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Некорректный запрос."),
    401: ("not_authenticated", "Учетные данные не были предоставлены."),
    403: ("permission_denied", "У вас недостаточно прав для выполнения данного действия."),
    404: ("not_found", "Не найдено."),
    405: ("method_not_allowed", "Метод не разрешён."),
    406: ("not_acceptable", "Неприемлемый формат ответа."),
    408: ("request_timeout", "Время ожидания запроса истекло."),
    411: ("length_required", "Требуется заголовок Content-Length."),
    413: ("request_too_large", "Слишком большой запрос."),
    414: ("uri_too_long", "Слишком длинный адрес запроса."),
    415: ("unsupported_media_type", "Неподдерживаемый тип данных."),
    429: ("rate_limited", "Слишком много запросов. Попробуйте позже."),
}


def from_http(exc: web.HTTPException) -> ApiError:
    """An aiohttp HTTP error (router 404/405, client_max_size 413) as our ApiError."""
    code, message = HTTP_ERRORS.get(exc.status, ("http_error", exc.reason))
    headers = {name: exc.headers[name] for name in ("Allow", "Retry-After") if name in exc.headers}
    return ApiError(exc.status, code, message, headers=headers)


# What the Server header says instead of aiohttp's default "Python/3.x aiohttp/3.y": versions only
# help someone matching the service against a list of known vulnerabilities.
SERVER_NAME = "backend"


async def common_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: `nosniff` and a version-free Server header on every response.

    A signal rather than a middleware: it also reaches responses a handler prepares itself (the
    /ws upgrade, streamed bodies) and static files, and it runs after aiohttp filled in its own
    Server header, so the value set here is the one sent.
    """
    response.headers["Server"] = SERVER_NAME
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def setup(app: web.Application) -> None:
    """Register the headers every response carries."""
    app.on_response_prepare.append(common_headers)


def _route_name(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None:
        return "unmatched"
    resource = info.route.resource
    return resource.canonical if resource is not None else "unmatched"


# Generated request ids: a random per-process prefix and a counter, 32 hex digits like a uuid4
# but without a urandom call per request (the profile of /health/live showed it). Reset in a fork.
_ids = itertools.count()
_id_prefix = secrets.token_hex(8)


def _new_ids() -> None:
    global _ids, _id_prefix
    _ids, _id_prefix = itertools.count(), secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_ids)


def new_request_id() -> str:
    return f"{_id_prefix}{next(_ids):016x}"


Before = Callable[[web.Request], Awaitable[None]]
After = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def pipeline(*, before: Sequence[Before] = (), after: Sequence[After] = ()) -> Handler:
    """The app's one middleware: request id, `before` steps (credentials, the Origin rule), the
    handler, errors rendered in the request's surface style, `after` steps (cookie sessions) on
    every answer not yet sent, then timing, metrics and the access line.

    One coroutine frame instead of a middleware each: a frame per middleware cost ≈ 1–2 µs per
    request (issue 11: /health/live) and ≈ 0.3 KB for every open websocket, which lives inside
    them for its whole life. Steps are plain functions, so each concern keeps its own module.
    """
    before, after = tuple(before), tuple(after)

    @web.middleware
    async def serve(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-ID")
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else new_request_id()
        request[keys.REQUEST_ID] = request_id
        started = time.perf_counter()
        status = 500
        try:
            try:
                for step in before:
                    await step(request)
                response = await handler(request)
            except Exception as exc:
                response = error_response_for(request, exc)
            if not response.prepared:
                for finish in after:
                    await finish(request, response)
                response.headers["X-Request-ID"] = request_id
            status = response.status
            return response
        except web.HTTPException as exc:        # a redirect, re-raised for aiohttp to send
            status = exc.status
            raise
        except asyncio.CancelledError:
            # aiohttp cancels the handler of a client that hung up (handler_cancellation): not a 500.
            status = CLIENT_CLOSED
            raise
        finally:
            elapsed = time.perf_counter() - started
            request.app[keys.METRICS].observe_request(request.method, _route_name(request), status, elapsed)
            if logs.ACCESS.isEnabledFor(logging.INFO):
                logs.access({"request_id": request_id, "method": request.method, "path": request.path,
                             "status": status, "duration_ms": round(elapsed * 1000, 2),
                             "remote": request.remote})

    return serve


def error_response_for(request: web.Request, exc: Exception) -> web.Response:
    """Any error as a response in the body style of the request's surface; never a traceback.

    An aiohttp HTTPException below 400 (a redirect) is no error: it is raised again.
    """
    if isinstance(exc, ApiError):
        return error_response(request, exc, dumps)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return error_response(request, from_http(exc), dumps)
    if isinstance(exc, RedisError):
        # Only what truly needs Redis gets here (sign-in, logout, publish); reads fail open.
        error_log.warning("Redis unavailable", extra={"request_id": request.get(keys.REQUEST_ID, "-"),
                                                     "path": request.path})
        return error_response(request, redis_unavailable(), dumps)
    if client_gone(request):
        # The caller hung up (its body stopped half-way, or it left while we worked): there is
        # nobody to answer and no outage to report. Counted as 499, nginx's "client closed".
        return web.Response(status=CLIENT_CLOSED)
    if not database_lost(exc):
        return _unexpected(request)
    error_log.warning("database unavailable", extra={"request_id": request.get(keys.REQUEST_ID, "-"),
                                                    "path": request.path, "error": str(exc)[:200]})
    return error_response(request, database_unavailable(), dumps)


# What asyncpg raises when the server is gone (down, restarting, or it dropped the connection),
# as opposed to a statement that was wrong.
_LOST_CONNECTION = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                    asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError)


CLIENT_CLOSED = 499


def client_gone(request: web.Request) -> bool:
    """True once the client's connection is closed: a read of its body fails with
    ConnectionResetError then, an OSError that must not pass for a lost database."""
    transport = request.transport
    return transport is None or transport.is_closing()


def database_lost(exc: BaseException) -> bool:
    """True for a lost database, raw asyncpg (hot pool) or wrapped by SQLAlchemy."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or database_lost(exc.orig)
    # DataError is an InterfaceError too, but it means a bad argument: a bug, not an outage.
    return isinstance(exc, _LOST_CONNECTION) and not isinstance(exc, asyncpg.DataError)


def _unexpected(request: web.Request) -> web.Response:
    """500 in the surface's style with the request id; the traceback goes to the log only."""
    request_id = request.get(keys.REQUEST_ID, "-")
    error_log.exception("unhandled error", extra={"request_id": request_id, "path": request.path})
    return error_response(request, internal_error(request_id), dumps)
