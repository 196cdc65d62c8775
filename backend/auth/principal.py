"""Who is making a request: a user (by token or session) or a CallUp app (SPEC §2.1)."""

from __future__ import annotations

from dataclasses import dataclass, field

PERMISSION_FLAGS: tuple[str, ...] = (
    "is_admin",
    "can_use_mobile_booking",
    "can_create_passenger_cars_waybills",
    "view_passenger_cars_waybills",
    "can_create_fire_trucks_waybills",
    "view_fire_trucks_waybills",
    "can_manage_fleet",
    "can_manage_users",
    "can_manage_clients",
    "can_book_cars",
    "can_view_dashboard",
    "can_manage_apps",
)


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
    def is_user(self) -> bool:
        return self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return "is_admin" in self.permissions

    def has(self, flag: str) -> bool:
        """True when the principal holds `flag`; is_admin holds every flag."""
        return self.is_admin or flag in self.permissions

    def has_any(self, *flags: str) -> bool:
        return any(self.has(flag) for flag in flags)
