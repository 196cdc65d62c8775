"""Who is making a request: a user (by token or session) or a CallUp app (SPEC §2.1).

A core module: every layer (api, realtime, auth, the domains) reads principals, so it lives below
all of them. Permission flags are an enum so a misspelt flag fails at import, not as a silent False.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Permission(enum.StrEnum):
    """The boolean flags of a role's `permissions` row (SPEC §2.1), one column each."""

    IS_ADMIN = "is_admin"
    USE_MOBILE_BOOKING = "can_use_mobile_booking"
    CREATE_PASSENGER_WAYBILLS = "can_create_passenger_cars_waybills"
    VIEW_PASSENGER_WAYBILLS = "view_passenger_cars_waybills"
    CREATE_FIRE_TRUCK_WAYBILLS = "can_create_fire_trucks_waybills"
    VIEW_FIRE_TRUCK_WAYBILLS = "view_fire_trucks_waybills"
    MANAGE_FLEET = "can_manage_fleet"
    MANAGE_USERS = "can_manage_users"
    MANAGE_CLIENTS = "can_manage_clients"
    BOOK_CARS = "can_book_cars"
    VIEW_DASHBOARD = "can_view_dashboard"
    MANAGE_APPS = "can_manage_apps"


PERMISSION_FLAGS: tuple[str, ...] = tuple(flag.value for flag in Permission)

# SPEC §3.1: an access token is honoured this many seconds past its `exp` (clock skew between
# machines). One constant for REST's token check and for the sockets and streams that re-check at
# expiry, so a token never works on one and not on the other.
TOKEN_LEEWAY = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The resolved caller. Exactly one of user_id / app_id is set."""

    user_id: int | None = None
    login: str | None = None
    role_id: int | None = None
    role_name: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)
    client: str = "web"                # "web" | "mobile" for tokens; "session" for cookie sessions
    via: str = "bearer"                # "bearer" | "session" | "app"
    app_id: int | None = None
    token_jti: str | None = None
    token_exp: int | None = None       # unix time the access token expires (websocket re-check)

    @property
    def token_deadline(self) -> float | None:
        """Unix time after which the access token is refused everywhere (exp + TOKEN_LEEWAY)."""
        return None if self.token_exp is None else self.token_exp + TOKEN_LEEWAY

    @property
    def is_user(self) -> bool:
        return self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return Permission.IS_ADMIN in self.permissions

    def has(self, flag: Permission) -> bool:
        """True when the principal holds `flag`; is_admin holds every flag."""
        return self.is_admin or Permission(flag) in self.permissions

    def has_any(self, *flags: Permission) -> bool:
        return any(self.has(flag) for flag in flags)
