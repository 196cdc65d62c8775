"""Who may subscribe to `callup:app:{app_id}` (SPEC §8.3)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from backend.callup.const import MANAGE_APPS
from backend.principal import Principal


async def app_feed_readers(db: AsyncEngine, principal: Principal | None, rest: str) -> bool:
    """`app:{id}`: that app's own token connection, or a user holding can_manage_apps."""
    kind, _, app_id = rest.partition(":")
    if kind != "app" or not app_id.isascii() or not app_id.isdigit():
        return False
    if principal is None:
        return False
    return principal.app_id == int(app_id) or (principal.is_user and principal.has(MANAGE_APPS))
