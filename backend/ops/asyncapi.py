"""/asyncapi.json: AsyncAPI 3.0 of the websocket protocol (SPEC §8, §12), built from the app itself.

Channels come from the channel registry (`app[keys.CHANNELS]`): every declared namespace, its name
shape, whether it is a stream (offsets, history), its ephemeral events and presence. Client frames
come from the pydantic models /ws validates them with (core frames and the commands domains
register). Event payloads are the REST models' schemas, taken from /openapi.json's components, so an
event and the resource it carries are documented by the same model; EVENTS below only says which
event carries which (ops may not import the domains that publish them).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from backend import keys
from backend.api.responses import respond
from backend.ops.openapi import build_spec
from backend.realtime import const
from backend.realtime.channels import INT_ID, Namespace
from backend.realtime.frames import Auth, Ping, Presence, Subscribe, Unsubscribe

REF = "#/components/schemas/{model}"
ORDER_STATUSES = ["created", "calling", "called", "failed", "verified", "expired", "locked"]


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


INT = {"type": "integer"}
BOOKING = ("BookingOutOut", "The booking, as GET /api/bookings/{id}/ shows it")
USER_BRIEF = _obj(["id", "username", "name"], id=INT, username={"type": "string"}, name={"type": "string"})

# namespace -> event -> (summary, payload schema: a component name of /openapi.json or an inline schema)
EVENTS: dict[str, dict[str, tuple[str, str | dict[str, Any]]]] = {
    "cars": {
        "car.available": ("A car became bookable (or its public details changed)", "PublicCar"),
        "car.moved": ("An available car moved", "PublicCar"),
        "car.unavailable": ("A car stopped being bookable", _obj(["id"], id=INT)),
    },
    "dashboard": {
        "car.updated": ("Any change of a car (every field)", "PassengerCarOutOut"),
        **{f"booking.{name}": (f"A booking was {name}", BOOKING[0])
           for name in ("created", "started", "finished", "cancelled", "expired")},
        "client.registered": ("A car-sharing client signed up", "ProfileOutOut"),
        **{f"client.{name}": (f"A client was {name}", "ClientOutOut")
           for name in ("approved", "blocked", "unblocked", "deleted")},
        "order.status": ("A CallUp order changed status (never the code)", "order"),
    },
    "user": {
        **{f"booking.{name}": (f"The user's booking was {name}", BOOKING[0])
           for name in ("created", "started", "finished", "cancelled", "expired")},
        "message.created": ("A message in one of the user's chats", "MessageOutOut"),
        "chat.created": ("A chat the user is a member of was created", "ChatOutOut"),
        "message.read": ("A member read a chat up to a message", "read"),
        "typing": ("A member is typing (ephemeral)", "typing"),
    },
    "chat": {
        "message.created": ("A message was posted", "MessageOutOut"),
        "message.read": ("A member read up to a message", "read"),
        "typing": ("A member is typing (ephemeral: no offset, no history)", "typing"),
    },
    "callup": {
        "order.status": ("One of the app's orders changed status (never the code)", "order"),
    },
}
INLINE = {
    "order": _obj(["id", "status", "updated_at"], id={"type": "string", "format": "uuid"},
                  status={"type": "string", "enum": ORDER_STATUSES},
                  updated_at={"type": "string", "format": "date-time"}),
    "read": _obj(["chat_id", "user_id", "message_id"], chat_id=INT, user_id=INT, message_id=INT),
    "typing": _obj(["chat_id", "user_id"], chat_id=INT, user_id=INT),
}


def _address(namespace: Namespace) -> tuple[str, dict[str, Any]]:
    """The channel's address template and its parameters ('chat:{id}', 'callup:app:{id}')."""
    rest = namespace.rest
    if rest is None:
        return namespace.name, {}
    pattern = rest.pattern if isinstance(rest, re.Pattern) else rest
    if pattern.endswith(INT_ID.pattern) and re.fullmatch(r"[a-z_]+:|", pattern[:-len(INT_ID.pattern)]):
        prefix = pattern[:-len(INT_ID.pattern)]
        return f"{namespace.name}:{prefix}{{id}}", {"id": {"description": "A positive integer id"}}
    # A shape that matches nothing also declares the bare name (`cars` beside `cars:{tile}`).
    bare = f"; the bare `{namespace.name}` is a channel too" if re.fullmatch(pattern, "") else ""
    return f"{namespace.name}:{{rest}}", {"rest": {"description": f"Matches the pattern `{pattern}`{bare}"}}


def _describe(namespace: Namespace) -> str:
    parts = [f"Channels named `{_address(namespace)[0]}`."]
    if namespace.stream:
        parts.append("A stream (SPEC §12.1): every kept event carries an `offset`; `subscribed` carries `offset` "
                     "and `epoch`; `subscribe` with `since` recovers missed events (`recovered`).")
    else:
        parts.append("A plain fan-out: no offsets, no history.")
    if namespace.ephemeral:
        parts.append("Ephemeral events (no offset, never kept): " + ", ".join(sorted(namespace.ephemeral)) + ".")
    if namespace.presence:
        parts.append("Tracks presence: `presence` frames list who is subscribed; `presence.joined` / "
                     "`presence.left` announce a user's first and last socket.")
    if namespace.snapshot is not None:
        parts.append("The `subscribed` reply carries a `snapshot` of the current state.")
    return " ".join(parts)


def _event_payload(namespace: Namespace, event: str, data: dict[str, Any]) -> dict[str, Any]:
    """The whole event frame (SPEC §8.2) carrying `data`."""
    properties: dict[str, Any] = {
        "type": {"const": "event"}, "channel": {"type": "string"}, "event": {"const": event},
        "data": data, "ts": {"type": "string", "format": "date-time"}}
    required = ["type", "channel", "event", "data", "ts"]
    if namespace.keeps(event):
        properties["offset"] = {"type": "integer", "minimum": 1,
                                "description": "+1 per kept event of the channel (SPEC §12.1)"}
        required.append("offset")
    return {"type": "object", "required": required, "properties": properties}


def _frame_schema(adapter: TypeAdapter[Any], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = adapter.json_schema(ref_template=REF)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    return schema


def _protocol(app: web.Application, messages: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The /ws socket's own frames: what a client sends and the replies that are not events."""
    sent: list[str] = []
    core = {"subscribe": Subscribe, "unsubscribe": Unsubscribe, "ping": Ping, "presence": Presence, "auth": Auth}
    commands = {kind: adapter for kind, (adapter, _) in app.get(keys.WS_COMMANDS, {}).items()}
    for kind, adapter in [*((k, TypeAdapter(m)) for k, m in core.items()), *sorted(commands.items())]:
        key = f"client.{kind}"
        messages[key] = {"name": kind, "title": f"`{kind}` frame", "payload": _frame_schema(adapter, schemas)}
        sent.append(key)
    frame_id = {"type": ["integer", "string", "null"]}
    replies = {
        "subscribed": _obj(["type", "channel", "id"], type={"const": "subscribed"}, channel={"type": "string"},
                           id=frame_id, offset=INT, epoch={"type": "string"},
                           recovered={"type": "boolean",
                                      "description": "With `since`: true when every missed event follows"},
                           snapshot={"type": "array", "items": {"type": "object"}}),
        "authenticated": _obj(["type", "id"], type={"const": "authenticated"}, user_id=INT, id=frame_id),
        "pong": _obj(["type"], type={"const": "pong"}, id=frame_id),
        "presence": _obj(["type", "channel", "users"], type={"const": "presence"}, channel={"type": "string"},
                         id=frame_id, users={"type": "array", "items": USER_BRIEF}),
        "error": _obj(["type", "code"], type={"const": "error"}, id=frame_id, message={"type": "string"},
                      code={"type": "string", "enum": sorted(const.MESSAGES)},
                      field={"type": "string", "description": "A field error: the first field at fault"},
                      fields={"type": "object", "additionalProperties": {"type": "array",
                                                                         "items": {"type": "string"}},
                              "description": "A field error: every field at fault and its reasons"}),
    }
    received = []
    for kind, schema in replies.items():
        key = f"server.{kind}"
        messages[key] = {"name": kind, "title": f"`{kind}` reply", "payload": schema}
        received.append(key)
    return {"sent": sent, "received": received}


def _used_refs(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for item in value.values():
            _used_refs(item, found)
    elif isinstance(value, list):
        for item in value:
            _used_refs(item, found)


def servers(host: str, scheme: str = "ws") -> dict[str, Any]:
    """The server entry: the instance that answered (any instance serves every channel)."""
    return {"ws": {"host": host, "protocol": scheme, "pathname": "/ws",
                   "description": "This instance (any instance serves every channel)",
                   "security": [{"$ref": "#/components/securitySchemes/bearer"},
                                {"$ref": "#/components/securitySchemes/session"},
                                {"$ref": "#/components/securitySchemes/appToken"}]}}


def build_asyncapi(app: web.Application, host: str = "localhost:8080", scheme: str = "ws") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of /ws for `app` (channels from its registry)."""
    rest_schemas = build_spec(app)["components"]["schemas"]
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for namespace in app[keys.CHANNELS].namespaces():
        address, parameters = _address(namespace)
        events = dict(EVENTS.get(namespace.name, {}))
        if namespace.presence:
            events[const.PRESENCE_JOINED] = ("A user's first socket joined the channel", "brief")
            events[const.PRESENCE_LEFT] = ("A user's last socket left the channel", "brief")
        channel_messages: dict[str, Any] = {}
        for event, (summary, payload) in events.items():
            if isinstance(payload, dict):
                data = payload
            elif payload == "brief":
                data = USER_BRIEF
            elif payload in INLINE:
                data = INLINE[payload]
            else:
                data = _ref(payload) if payload in rest_schemas else {"type": "object"}
            key = f"{namespace.name}.{event}"
            messages[key] = {"name": event, "title": event, "summary": summary,
                             "payload": _event_payload(namespace, event, data)}
            channel_messages[event] = {"$ref": f"#/components/messages/{key}"}
        if not events:
            key = f"{namespace.name}.event"
            messages[key] = {"name": "event", "title": "Any event", "summary": "Events published to this channel",
                             "payload": _event_payload(namespace, "event", {})}
            channel_messages["event"] = {"$ref": f"#/components/messages/{key}"}
        channel: dict[str, Any] = {"address": address, "title": namespace.name, "description": _describe(namespace),
                                   "messages": channel_messages,
                                   "x-stream": namespace.stream, "x-presence": namespace.presence,
                                   "x-ephemeral": sorted(namespace.ephemeral)}
        if parameters:
            channel["parameters"] = parameters
        channels[namespace.name] = channel
        operations[f"receive.{namespace.name}"] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{namespace.name}"},
            "summary": f"Events of `{address}` after a `subscribe` (or automatically for identity channels)",
            "messages": [{"$ref": f"#/channels/{namespace.name}/messages/{event}"} for event in channel_messages]}
    frames = _protocol(app, messages, schemas)
    channels["ws"] = {"address": None, "title": "/ws frames",
                      "description": "The socket itself: client frames and the replies that are not events.",
                      "messages": {key: {"$ref": f"#/components/messages/{key}"}
                                   for key in (*frames["sent"], *frames["received"])}}
    operations["send.frames"] = {"action": "send", "channel": {"$ref": "#/channels/ws"},
                                 "summary": "Frames a client sends",
                                 "messages": [{"$ref": f"#/channels/ws/messages/{key}"} for key in frames["sent"]]}
    operations["receive.replies"] = {
        "action": "receive", "channel": {"$ref": "#/channels/ws"}, "summary": "Replies to client frames",
        "messages": [{"$ref": f"#/channels/ws/messages/{key}"} for key in frames["received"]]}
    # Only the REST schemas some payload refers to, and whatever those refer to in turn.
    pending: set[str] = set()
    _used_refs(messages, pending)
    _used_refs(schemas, pending)
    while pending:
        name = pending.pop()
        if name in schemas or name not in rest_schemas:
            continue
        schemas[name] = rest_schemas[name]
        _used_refs(schemas[name], pending)
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Realtime backend: websocket protocol", "version": "0.1.0",
                 "description": "GET /ws (SPEC §8, §12). Authenticate at upgrade (cookie, Bearer header, "
                                "X-Application-Token) or with a first `auth` frame within WS_AUTH_TIMEOUT; "
                                "never with a token in the URL. An expired or revoked token closes the "
                                "socket with 4001. REST: /openapi.json."},
        "defaultContentType": "application/json",
        "servers": servers(host, scheme),
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "messages": messages,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "Authorization header at upgrade, or the `auth` frame"},
                "session": {"type": "httpApiKey", "in": "cookie", "name": "sessid"},
                "appToken": {"type": "httpApiKey", "in": "header", "name": "X-Application-Token"}}},
    }


async def asyncapi_json(request: web.Request) -> web.Response:
    """GET /asyncapi.json."""
    cache = request.app[keys.ASYNCAPI_CACHE]
    if not cache:
        cache.update(build_asyncapi(request.app))    # built once: registry and routes are frozen by now
    return respond({**cache, "servers": servers(request.host, "wss" if request.secure else "ws")})


def setup(app: web.Application) -> None:
    app[keys.ASYNCAPI_CACHE] = {}
    app.router.add_get("/asyncapi.json", asyncapi_json)
