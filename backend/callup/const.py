"""CallUp's statuses, their order, and its error codes and messages (SPEC §6, §11.18), in one place."""

from __future__ import annotations

from typing import Final

from backend.errors import ApiError
from backend.principal import Permission

CREATED: Final = "created"
CALLING: Final = "calling"
CALLED: Final = "called"
FAILED: Final = "failed"
VERIFIED: Final = "verified"
EXPIRED: Final = "expired"
LOCKED: Final = "locked"

STATUSES: Final = (CREATED, CALLING, CALLED, FAILED, VERIFIED, EXPIRED, LOCKED)
# How far along an order is. A change to a rank not above the current one is an older or a
# sibling state (a replayed or late provider callback) and is ignored (SPEC §6.4 idempotent).
RANK: Final = {CREATED: 0, CALLING: 1, CALLED: 2, FAILED: 2, VERIFIED: 3, EXPIRED: 3, LOCKED: 3}
FINAL: Final = frozenset({FAILED, VERIFIED, EXPIRED, LOCKED})
LIVE: Final = (CREATED, CALLING, CALLED)           # may still be verified, locked or expire
# Which states each status may be entered from (SPEC §6.4; §11.18: the code may be checked as
# soon as the order exists, so verified/locked are reachable before the call is reported).
ALLOWED_FROM: Final = {
    CALLING: frozenset({CREATED}),
    CALLED: frozenset({CREATED, CALLING}),
    FAILED: frozenset({CREATED, CALLING}),
    VERIFIED: frozenset(LIVE),
    LOCKED: frozenset(LIVE),
    EXPIRED: frozenset(LIVE),
}

CODE_LEN: Final = 4
FIELD_CODE_VALUE: Final = "code.value"
ORDER_EVENT: Final = "order.status"
MANAGE_APPS: Final = Permission.MANAGE_APPS


def access_denied() -> ApiError:
    """403 for a missing, unknown, blocked or deleted app token (the seed's phrase)."""
    return ApiError(403, "access_denied", "access denied")


def order_not_found() -> ApiError:
    return ApiError(404, "order_not_found", "order not found")


def invalid_code() -> ApiError:
    return ApiError(400, "invalid_code", "invalid code")


def order_expired() -> ApiError:
    return ApiError(410, "order_expired", "order expired")


def order_already_verified() -> ApiError:
    return ApiError(409, "order_already_verified", "order already verified")


def order_locked() -> ApiError:
    return ApiError(423, "order_locked", "order locked")


def order_failed() -> ApiError:
    """The call could not be placed, so the user never received a code to enter."""
    return ApiError(409, "order_failed", "call failed")


def invalid_signature() -> ApiError:
    return ApiError(403, "invalid_signature", "invalid signature")
