"""Error codes of error frames and close codes of /ws (SPEC §8, §11.25), in one place."""

from __future__ import annotations

from typing import Final

BAD_JSON: Final = "bad_json"
INVALID_FRAME: Final = "invalid_frame"
UNKNOWN_TYPE: Final = "unknown_type"
UNKNOWN_CHANNEL: Final = "unknown_channel"
FORBIDDEN: Final = "forbidden"
RATE_LIMITED: Final = "rate_limited"
TOO_MANY_SUBSCRIPTIONS: Final = "too_many_subscriptions"
UNAUTHORIZED: Final = "unauthorized"
UNAVAILABLE: Final = "service_unavailable"

MESSAGES: Final = {
    BAD_JSON: "Кадр не является корректным JSON.",
    INVALID_FRAME: "Неверный формат кадра.",
    UNKNOWN_TYPE: "Неизвестный тип кадра.",
    UNKNOWN_CHANNEL: "Неизвестный канал.",
    FORBIDDEN: "Нет доступа к каналу.",
    RATE_LIMITED: "Слишком много кадров в секунду.",
    TOO_MANY_SUBSCRIPTIONS: "Слишком много подписок.",
    UNAUTHORIZED: "Недействительный токен.",
    UNAVAILABLE: "Сервис временно недоступен.",
}

CLOSE_GOING_AWAY: Final = 1001          # server shutdown
CLOSE_TOO_BIG: Final = 1009             # inbound frame over MAX_FRAME (aiohttp closes with it)
CLOSE_SLOW_CONSUMER: Final = 1013       # "try again later": the client did not keep up
CLOSE_UNAUTHORIZED: Final = 4001        # token expired or revoked, or a bad auth frame

CLOSE_GRACE: Final = 10.0             # seconds a closed peer gets to read what is queued for it

MAX_FRAME: Final = 64 * 1024
MAX_SUBSCRIPTIONS: Final = 100
REVOKED_EVENT: Final = "session.revoked"

# Streams (SPEC §12.1): an offset/epoch outlives the history it numbers, so a subscriber of a channel
# that stayed quiet past HISTORY_TTL is still told "nothing missed" rather than "something lost".
STREAM_META_TTL: Final = 24 * 3600.0
IDEMPOTENCY_TTL: Final = 300.0          # a repeated idempotency_key within 5 minutes (SPEC §8.5)
HISTORY_LIMIT_MAX: Final = 1000         # the largest page of GET /api/realtime/history

# Presence (SPEC §12.4): announced on the channel itself, never kept in its history (a reconnecting
# client asks with a `presence` frame instead of replaying who came and went).
PRESENCE_JOINED: Final = "presence.joined"
PRESENCE_LEFT: Final = "presence.left"
