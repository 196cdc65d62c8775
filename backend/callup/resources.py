"""/api/callup/apps/ (SPEC §6.1): apps on the generic Resource, plus rotate-token, block, unblock."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from backend import keys
from backend.api.crud import Filter, Resource, item_id_of
from backend.api.responses import respond
from backend.api.routing import permission, route
from backend.api.types import Id
from backend.auth.directory import require_user
from backend.callup import apps as app_rules
from backend.callup.const import MANAGE_APPS
from backend.callup.tables import apps
from backend.principal import Principal
from backend.realtime.names import app_channel


class AppIn(BaseModel):
    """POST/PUT body; `token` is read-only (made here, changed only by rotate-token)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    owner: Id | None = Field(None, description="a user id; default: the creating user")


class AppOut(BaseModel):
    id: int
    name: str
    token: uuid.UUID
    owner: int | None
    blocked_at: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class AppResource(Resource):
    unique_messages: ClassVar[Mapping[str, str]] = {"token": "Приложение с таким токеном уже существует."}

    async def before_create(self, conn: AsyncConnection, principal: Principal,
                            values: dict[str, Any]) -> dict[str, Any]:
        values["owner_id"] = values.get("owner_id") or principal.user_id
        await require_user(conn, values["owner_id"], field="owner")
        values["token"] = uuid.uuid4()
        return values

    async def after_write(self, app: web.Application, principal: Principal, row: Mapping[str, Any],
                          action: str, before: Mapping[str, Any] | None = None) -> None:
        if action == "deleted":
            await close_app_sockets(app, int(row["id"]))

    async def before_update(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any],
                            values: dict[str, Any]) -> dict[str, Any]:
        owner = values.get("owner_id")
        if owner is not None and owner != row["owner_id"]:
            await require_user(conn, owner, field="owner")
        return values


APPS = AppResource(path="/api/callup/apps/", table=apps, schema_in=AppIn, schema_out=AppOut,
                   tag="callup apps", read=MANAGE_APPS, write=MANAGE_APPS, columns={"owner": "owner_id"},
                   filters={"name": Filter("name", str, "icontains"), "owner": Filter("owner_id")})


ENDS_SOCKETS = frozenset({"rotate-token", "block"})


async def close_app_sockets(app: web.Application, app_id: int) -> None:
    """Sockets opened with the app's old token lose it too, on every instance (4001), like HTTP does."""
    await app[keys.BUS].publish_control(app_channel(app_id), "revoke", jti=None)


def action_view(action: str) -> Any:
    """POST /api/callup/apps/{id}/<action>/: rotate-token, block or unblock; answers the app."""
    async def view(request: web.Request) -> web.Response:
        row = await app_rules.apply_action(request.app[keys.DB], item_id_of(request), action)
        if action in ENDS_SOCKETS:
            await close_app_sockets(request.app, int(row["id"]))
        return respond(APPS.to_out(row))
    view.__name__ = view.__qualname__ = f"app_{action.replace('-', '_')}"
    return view


SUMMARIES = {"rotate-token": "Give an app a new token (the old one stops working at once)",
             "block": "Block an app (its token is refused on /v1)", "unblock": "Unblock an app"}


def setup(app: web.Application) -> None:
    APPS.register(app)
    for action, summary in SUMMARIES.items():
        route(app, "POST", APPS.item_path + action + "/", action_view(action), summary=summary,
              tag="callup apps", response=AppOut, auth=permission(MANAGE_APPS), slash_optional=True)
