"""One websocket's state and its frame dispatch (SPEC §8.2): subscriptions, rate, auth, push."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, web
from pydantic import TypeAdapter, ValidationError

from backend import keys
from backend.api.middlewares import database_lost
from backend.api.validation import fields_of
from backend.errors import ApiError
from backend.jsonutil import dumps, loads
from backend.kv import REDIS_ERRORS
from backend.principal import Principal
from backend.realtime import const
from backend.realtime.channels import Channels, FrameError, Namespace, own_channel
from backend.realtime.frames import (
    CLIENT_FRAME,
    CORE_TYPES,
    Auth,
    Ping,
    Presence,
    Subscribe,
    Unsubscribe,
    error_frame,
    text_frame,
    websocket_text_frame,
)
from backend.realtime.hub import Hub
from backend.realtime.streams import Position

log = logging.getLogger("backend.realtime")

Reply = dict[str, Any] | None
# A domain command (chat's send/typing/read): handler(conn, validated frame) -> reply or None.
Command = Callable[["Connection", Any], Awaitable[Reply]]


class Connection:
    """A client socket: who it is, what it listens to, and the non-blocking push of events."""

    # Thousands of these live at once: slots keep each one small (bench: KB per connection).
    __slots__ = ("__weakref__", "_abort", "_expiry", "_rate", "_send_limit", "_window_count", "_window_start", "app",
                 "auth_deadline", "channels", "closing", "commands", "db", "heard", "hub", "opened_at", "pinged",
                 "principal", "subscriptions", "transport", "ws")

    def __init__(self, app: web.Application, ws: web.WebSocketResponse, request: web.Request,
                 principal: Principal | None) -> None:
        self.app = app
        self.ws = ws
        self.transport = request.transport
        self.principal = principal
        self.db = app[keys.DB]
        self.hub: Hub = app[keys.HUB]
        self.channels: Channels = app[keys.CHANNELS]
        self.commands: dict[str, tuple[TypeAdapter[Any], Command]] = app[keys.WS_COMMANDS]
        config = app[keys.CONFIG]
        self._send_limit = config.ws_send_buffer
        self._rate = config.ws_rate
        self._window_start = time.monotonic()
        self._window_count = 0
        self.opened_at = time.monotonic()
        self.auth_deadline = self.opened_at + config.ws_auth_timeout
        self.subscriptions: set[str] = set()
        self.closing = False
        self._expiry: float | None = None        # the token's deadline, watched by hub.deadlines
        self._abort: asyncio.TimerHandle | None = None
        self.heard, self.pinged = True, False    # the heartbeat's marks (heartbeat.py)

    # ---- outbound ---------------------------------------------------------------------------
    def push(self, frame: bytes) -> bool:
        """Write a prebuilt frame; a client over WS_SEND_BUFFER unsent bytes is closed with 1013."""
        transport = self.transport
        if self.closing or transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > self._send_limit:
            self.app[keys.METRICS].slow_consumer_closes.inc()
            self.close_soon(const.CLOSE_SLOW_CONSUMER, "slow consumer")
            return False
        transport.write(frame)
        return True

    async def send(self, frame: dict[str, Any]) -> None:
        """A reply to this client only (not a fan-out event)."""
        if not self.closing and not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(dumps(frame))

    def close_soon(self, code: int, message: str) -> None:
        """Close in a task of its own, so a fan-out loop never waits on this socket."""
        if self.closing:
            return
        self.closing = True
        loop = asyncio.get_running_loop()
        # drain=False: a slow consumer's buffer may never drain; the close frame queues behind
        # the data already written, and the transport is aborted if the peer never reads it.
        task = loop.create_task(self.ws.close(code=code, message=message.encode(), drain=False))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
        transport = self.transport
        if transport is not None:
            self._abort = loop.call_later(const.CLOSE_GRACE, transport.abort)

    # ---- identity ---------------------------------------------------------------------------
    async def become(self, principal: Principal) -> None:
        """Adopt an authenticated principal: watch its token's expiry, join user:{id} / app:{id}."""
        self.principal = principal
        # One timer per deadline instant for all sockets, not one per socket (deadlines.py).
        deadlines = self.hub.deadlines
        deadlines.discard(self, self._expiry)
        self._expiry = principal.token_deadline
        deadlines.add(self, self._expiry)
        own = self._own_channel()
        if own is not None:
            await self._join(own, None)
            # The identity channel's presence answers "online anywhere" (chat's members), unannounced.
            await self._enter_presence(own, announce=False)

    def revoked(self, jti: str | None) -> None:
        """A `session.revoked` event for this identity: close if it names our token (or all tokens)."""
        if self.principal is None:
            return
        if jti is None or jti == self.principal.token_jti:
            self.close_soon(const.CLOSE_UNAUTHORIZED, "session revoked")

    async def recheck(self) -> None:
        """The user's role, permissions or status changed (a `recheck` order, run by the hub one at a
        time per socket): reload the principal from the database and drop every subscription it may
        no longer hold, each with an `unsubscribed` frame carrying the reason."""
        principal = self.principal
        reload = self.app.get(keys.PRINCIPAL_RELOADER)
        if self.closing or principal is None or principal.user_id is None or reload is None:
            return
        try:
            fresh = await reload(self.app, principal)
        except Exception:
            # Rights that cannot be re-checked are not kept: the client reconnects and subscribes anew.
            log.warning("rights not re-checked, socket closed", exc_info=True)
            self.close_soon(WSCloseCode.INTERNAL_ERROR, "rights not re-checked")
            return
        if self.closing:
            return
        if fresh is None:                        # deleted or blocked meanwhile
            self.close_soon(const.CLOSE_UNAUTHORIZED, "user inactive")
            return
        self.principal = fresh
        own = self._own_channel()
        for channel in tuple(self.subscriptions):
            if channel != own and channel in self.subscriptions and not await self._allowed(channel):
                await self._drop(channel)

    async def _allowed(self, channel: str) -> bool:
        """True when the current principal may subscribe to `channel` (the registry's rule)."""
        try:
            namespace, rest = self.channels.lookup(channel)
        except FrameError:
            return False
        return await namespace.authorize(self.db, self.principal, rest)

    async def _drop(self, channel: str) -> None:
        """Leave `channel` on the server's decision and tell the client why."""
        if channel in self.subscriptions and not self.closing:
            await self._leave(channel)
            await self.send({"type": "unsubscribed", "channel": channel, "reason": const.FORBIDDEN})

    # ---- inbound ----------------------------------------------------------------------------
    def _over_rate(self) -> bool:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        return self._window_count > self._rate

    async def handle_text(self, text: str) -> None:
        """Parse and dispatch one client frame; recoverable errors become error frames."""
        frame_id: Any = None
        try:
            over_rate = self._over_rate()
            try:
                raw = loads(text)
            except ValueError:
                raise FrameError(const.RATE_LIMITED if over_rate else const.BAD_JSON) from None
            if isinstance(raw, dict):
                frame_id = raw.get("id") if isinstance(raw.get("id"), (int, str)) else None
            # Counted before parsing, refused after: the refusal names the frame (SPEC §8.2 "id"),
            # and a frame is at most 64 KiB, cheap to parse next to what a served one costs.
            if over_rate:
                raise FrameError(const.RATE_LIMITED)
            frame, handler = self._parse(raw)
            reply = await self._dispatch(frame, handler)
        except FrameError as err:
            reply = error_frame(err.code, frame_id, err.message)
        except ApiError as err:
            reply = error_frame(err.code, frame_id, err.message, err.fields)
        except Exception as exc:
            # A lost database or Redis under a command (chat `send` during a restart): an error frame,
            # the socket stays. Raised on, it reached the middleware's error rendering, whose HTTP 503
            # was written into the upgraded socket and broke its framing (tests/faults/test_postgres_restart.py).
            if not (isinstance(exc, REDIS_ERRORS) or database_lost(exc)):
                raise
            reply = error_frame(const.UNAVAILABLE, frame_id, "Сервис временно недоступен. Повторите запрос позже.")
        if reply is not None:
            await self.send(reply)

    def _parse(self, raw: Any) -> tuple[Any, Command | None]:
        """The validated frame and, for a domain command, its handler."""
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise FrameError(const.INVALID_FRAME)
        kind = raw["type"]
        if kind in CORE_TYPES:
            model, handler = CLIENT_FRAME, None
        elif kind in self.commands:
            model, handler = self.commands[kind]
        else:
            raise FrameError(const.UNKNOWN_TYPE)
        try:
            return model.validate_python(raw), handler
        except ValidationError as exc:
            # The same Russian field messages as REST (backend.api.validation); a core frame's
            # location starts with its union tag, which names no field.
            fields = fields_of(exc, skip=1 if model is CLIENT_FRAME else 0)
            raise ApiError(400, const.INVALID_FRAME, next(iter(fields.values()))[0], fields=fields) from None

    async def _dispatch(self, frame: Any, handler: Command | None) -> Reply:
        if handler is not None:
            return await handler(self, frame)
        if isinstance(frame, Subscribe):
            return await self._subscribe(frame)
        if isinstance(frame, Unsubscribe):
            return await self._unsubscribe(frame)
        if isinstance(frame, Ping):
            return {"type": "pong", "id": frame.id}
        if isinstance(frame, Presence):
            return await self._presence(frame)
        return await self._auth(frame)

    async def _subscribe(self, frame: Subscribe) -> Reply:
        namespace, rest = self.channels.lookup(frame.channel)
        if frame.channel not in self.subscriptions and self._requested_count() >= const.MAX_SUBSCRIPTIONS:
            raise FrameError(const.TOO_MANY_SUBSCRIPTIONS)
        principal = self.principal
        if not await namespace.authorize(self.db, principal, rest):
            raise FrameError(const.FORBIDDEN)
        if namespace.stream:
            await self._subscribe_stream(frame, namespace, rest)
            if self.principal is not principal and not await self._allowed(frame.channel):
                await self._drop(frame.channel)     # a re-check ran meanwhile and refuses it now
            return None
        # Join before reading the snapshot: the other order could lose an event published in
        # between; this order may at worst repeat one, which the event's data makes harmless.
        await self._join(frame.channel, namespace)
        reply: dict[str, Any] = {"type": "subscribed", "channel": frame.channel, "id": frame.id}
        if namespace.snapshot is not None:
            reply["snapshot"] = await self._snapshot(frame.channel, namespace, rest)
        if self.principal is not principal and (frame.channel not in self.subscriptions
                                                or not await self._allowed(frame.channel)):
            # A re-check replaced the principal while this frame was served, and refuses the channel.
            await self._leave(frame.channel)
            raise FrameError(const.FORBIDDEN)
        return reply

    async def _snapshot(self, channel: str, namespace: Namespace, rest: str) -> Any:
        snapshot, snapshots = namespace.snapshot, self.hub.snapshots
        assert snapshot is not None
        ticket = snapshots.ticket()          # taken after the join: any read from now on serves us
        return await snapshots.get(channel, ticket, lambda: snapshot(self.db, rest))

    async def _subscribe_stream(self, frame: Subscribe, namespace: Namespace, rest: str) -> None:
        """Join the live stream first (held), read the position and what was missed, then let go (§12.2)."""
        channel = frame.channel
        first = channel not in self.subscriptions
        if first and namespace.presence:
            # Announced before this socket hears the channel: the others learn of it, it does not
            # hear itself arrive (it asks with a `presence` frame).
            await self._enter_presence(channel, announce=True)
        await self.hub.join_buffered(self, channel)
        self.subscriptions.add(channel)
        try:
            position = await self._position(channel, frame)
            reply: dict[str, Any] = {"type": "subscribed", "channel": channel, "id": frame.id}
            if position is not None:
                reply["offset"], reply["epoch"] = position.top, position.epoch
            if frame.since is not None:
                reply["recovered"] = position is not None and position.recovered
            # The snapshot is read after the position: it shows at least every event up to `offset`.
            if namespace.snapshot is not None:
                reply["snapshot"] = await self._snapshot(channel, namespace, rest)
        except BaseException:
            await self._leave(channel)
            raise
        frames = [text_frame(reply)]
        if position is not None and position.recovered:
            frames += [websocket_text_frame(item) for item in position.frames]
        self.hub.catch_up(self, channel, frames, position.top if position is not None else None,
                          position.epoch if position is not None else None)

    async def _position(self, channel: str, frame: Subscribe) -> Position | None:
        """The channel's epoch and top (and, with `since`, the missed events); None without Redis."""
        streams, positions, tips = self.hub.streams, self.hub.positions, self.hub.tips
        try:
            if frame.since is None:
                # Joined already: the top the live stream has reached is exact for us (tips.py). Else,
                # like snapshots, a read that started after this join serves it, one at a time per channel.
                known = tips.known(channel)
                if known is not None:
                    return known
                ticket = positions.ticket()
                return await positions.get(channel, ticket, lambda: tips.read(channel))
            return await streams.read(channel, frame.since.offset, frame.since.epoch)
        except REDIS_ERRORS as exc:
            log.warning("stream position not read, Redis unavailable", extra={"channel": channel,
                                                                               "error": repr(exc)})
            return None

    async def _presence(self, frame: Presence) -> Reply:
        """`presence`: who is subscribed to a presence channel, each user once (SPEC §12.4)."""
        namespace, rest = self.channels.lookup(frame.channel)
        if not await namespace.authorize(self.db, self.principal, rest):
            raise FrameError(const.FORBIDDEN)
        if not namespace.presence:
            raise FrameError(const.INVALID_FRAME, "Канал не отслеживает присутствие.")
        try:
            users = await self.hub.presence.users(frame.channel)
        except REDIS_ERRORS:
            raise FrameError(const.UNAVAILABLE) from None
        return {"type": "presence", "channel": frame.channel, "id": frame.id, "users": users}

    async def _enter_presence(self, channel: str, *, announce: bool) -> None:
        principal = self.principal
        if principal is not None and principal.user_id is not None:
            await self.hub.presence.enter(channel, principal.user_id, principal.login, announce=announce)

    async def _auth(self, frame: Auth) -> Reply:
        """The first-frame authentication of browsers holding a bearer token (SPEC §8.1)."""
        # Any principal, not only a user: an app-token connection must not turn into a user one.
        if self.principal is not None:
            raise FrameError(const.INVALID_FRAME, "Соединение уже авторизовано.")
        if time.monotonic() > self.auth_deadline:
            raise FrameError(const.UNAUTHORIZED, "Время на авторизацию истекло.")
        try:
            principal = await self.app[keys.TOKEN_RESOLVER](self.app, frame.token)
        except ApiError as err:
            if err.status == 503:
                # Redis could not check the deny-list (an exhausted pool): not a verdict on the
                # token, so the socket stays open and the client may send `auth` again.
                raise FrameError(const.UNAVAILABLE) from None
            await self.send(error_frame(const.UNAUTHORIZED, frame.id))
            self.close_soon(const.CLOSE_UNAUTHORIZED, "unauthorized")
            return None
        await self.become(principal)
        return {"type": "authenticated", "user_id": principal.user_id, "id": frame.id}

    async def _join(self, channel: str, namespace: Namespace | None) -> None:
        if channel in self.subscriptions:
            return
        if namespace is not None and namespace.presence:
            await self._enter_presence(channel, announce=True)     # before: it does not hear itself arrive
        await self.hub.join(self, channel)
        self.subscriptions.add(channel)

    async def _unsubscribe(self, frame: Unsubscribe) -> Reply:
        if self.principal is not None and frame.channel == self._own_channel():
            # The identity channel carries revocations (SPEC §2.1): the socket may not stop hearing them.
            raise FrameError(const.FORBIDDEN, "Канал пользователя подключён автоматически.")
        await self._leave(frame.channel)
        return {"type": "unsubscribed", "channel": frame.channel, "id": frame.id}

    def _requested_count(self) -> int:
        """Subscriptions the client asked for; the automatic user:{id} is not one of them."""
        own = self._own_channel()
        automatic = 1 if own is not None and own in self.subscriptions else 0
        return len(self.subscriptions) - automatic

    def _own_channel(self) -> str | None:
        return own_channel(self.principal)

    async def _leave(self, channel: str) -> None:
        if channel in self.subscriptions:
            self.subscriptions.discard(channel)
            await self.hub.leave(self, channel)
            principal = self.principal
            if principal is not None and principal.user_id is not None:
                namespace = self.channels.find(channel)
                if channel == self._own_channel() or (namespace is not None and namespace.presence):
                    await self.hub.presence.exit(channel, principal.user_id)

    async def release(self) -> None:
        """Leave every channel (the socket is gone)."""
        # A socket that closed by itself needs no abort (a late one would touch a closed loop).
        self.hub.deadlines.discard(self, self._expiry)
        if self._abort is not None:
            self._abort.cancel()
        for channel in tuple(self.subscriptions):
            await self._leave(channel)
