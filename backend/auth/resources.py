"""/api/roles/, /api/permissions/, /api/users/ on the generic Resource (SPEC §5.1, seed 001 §2)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend import keys
from backend.api.crud import Filter, Resource, escape_like, live_row
from backend.api.types import Id, Phone
from backend.auth.passwords import check_length, hash_password
from backend.auth.schemas import ProfileOut
from backend.auth.tables import permissions, roles, users
from backend.config import Config
from backend.errors import field_error, forbidden, invalid
from backend.principal import PERMISSION_FLAGS, Permission, Principal

MANAGE_USERS = Permission.MANAGE_USERS
PRIVATE_FIELDS = ("phone", "email", "driver_license")
DIRECTORY_READERS = (MANAGE_USERS, Permission.MANAGE_CLIENTS, Permission.MANAGE_FLEET,
                     Permission.VIEW_PASSENGER_WAYBILLS, Permission.VIEW_FIRE_TRUCK_WAYBILLS)
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


# ---- schemas ---------------------------------------------------------------------------------

class RoleIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=150)


class RoleOut(BaseModel):
    id: int
    name: str


_FLAGS: dict[str, Any] = dict.fromkeys(PERMISSION_FLAGS, (bool, False))
PermissionIn = create_model("PermissionIn", role=(Id, ...), **_FLAGS)  # type: ignore[call-overload]
PermissionOut = create_model("PermissionOut", id=(int, ...), role=(int, ...), **_FLAGS)  # type: ignore[call-overload]


class UserIn(BaseModel):
    """POST/PUT /api/users/ (seed 001 §2.3 + email, client_status); password is write-only."""

    login: str = Field(min_length=1, max_length=150)
    password: str | None = Field(None, max_length=1024)
    name: str = Field("", max_length=150)
    surname: str = Field("", max_length=150)
    last_name: str = Field("", max_length=150)
    phone: Phone | None = None
    email: str | None = Field(None, max_length=254, pattern=EMAIL_PATTERN)
    driver_license: str | None = Field(None, max_length=64)
    role: Id
    client_status: Literal["pending", "approved", "blocked"] | None = None


# ---- resources -------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class RoleResource(Resource):
    unique_messages: ClassVar[Mapping[str, str]] = {"name": "Роль с таким названием уже существует."}

    async def after_write(self, app: web.Application, principal: Principal, row: Mapping[str, Any],
                          action: str, before: Mapping[str, Any] | None = None) -> None:
        if action == "updated":
            # A role's users hold it in their principals: their open sockets re-check (SPEC §8.1).
            await app[keys.REVOCATIONS].role_rights_changed(int(row["id"]))

    async def before_delete(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any]) -> None:
        used = (await conn.execute(select(func.count()).select_from(users).where(
            users.c.role_id == row["id"], users.c.deleted_at.is_(None)))).scalar_one()
        if used:
            raise invalid({"non_field_errors": ["Роль назначена пользователям и не может быть удалена."]})


@dataclass(frozen=True, kw_only=True)
class PermissionResource(Resource):
    unique_messages: ClassVar[Mapping[str, str]] = {"role": "Права для этой роли уже существуют."}

    async def before_create(self, conn: AsyncConnection, principal: Principal,
                            values: dict[str, Any]) -> dict[str, Any]:
        await live_row(conn, roles, values["role_id"], field="role")
        return values

    async def before_update(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any],
                            values: dict[str, Any]) -> dict[str, Any]:
        if values.get("role_id", row["role_id"]) != row["role_id"]:
            await live_row(conn, roles, values["role_id"], field="role")
        return values

    async def after_write(self, app: web.Application, principal: Principal, row: Mapping[str, Any],
                          action: str, before: Mapping[str, Any] | None = None) -> None:
        # Every user of the role (of both roles, when the row moved) holds other rights now: their
        # open sockets re-check every subscription on every instance.
        revocations = app[keys.REVOCATIONS]
        await revocations.role_rights_changed(int(row["role_id"]))
        if before is not None and before["role_id"] != row["role_id"]:
            await revocations.role_rights_changed(int(before["role_id"]))


def _is_manager(principal: Principal) -> bool:
    return principal.has(MANAGE_USERS)


@dataclass(frozen=True, kw_only=True)
class UserResource(Resource):
    """Users: managers do everything; a user may read and PATCH themselves, never their role."""

    config: Config                      # argon2 parameters and PASSWORD_MIN_LENGTH for the hooks
    password_pool: Executor             # where argon2 runs (the app's PASSWORD_POOL)

    unique_messages: ClassVar[Mapping[str, str]] = {
        "login": "Пользователь с таким логином уже существует.",
        "email": "Пользователь с таким email уже существует.",
        "phone": "Пользователь с таким телефоном уже существует.",
    }

    def can_write(self, principal: Principal, row: Mapping[str, Any] | None) -> bool:
        return _is_manager(principal) or (row is not None and row["id"] == principal.user_id)

    def scope(self, query: Select[Any], principal: Principal) -> Select[Any]:
        # Managers, client operators and fleet staff (who pick drivers for waybills) see everyone;
        # anyone else sees only themselves (SPEC §5.1), others are a 404.
        if principal.has_any(*DIRECTORY_READERS):
            return query
        return query.where(users.c.id == principal.user_id)

    def filter_queryset(self, query: Select[Any], params: Mapping[str, str]) -> Select[Any]:
        query = super().filter_queryset(query, params)
        login = params.get("login", "").strip()
        if login:
            query = query.where(func.lower(users.c.login) == login.lower())
        search = params.get("search", "").strip()
        if search:
            pattern = f"%{escape_like(search)}%"
            query = query.where(or_(*(users.c[name].ilike(pattern, escape="\\")
                                      for name in ("login", "name", "surname", "email"))))
        return query

    async def _password(self, values: dict[str, Any], required: bool) -> None:
        password = values.pop("password", None)
        if password is None:
            if required:
                raise field_error("password", "Обязательное поле.")
            return
        check_length(self.config, password)
        values["password_hash"] = await hash_password(self.config, password, self.password_pool)

    async def before_create(self, conn: AsyncConnection, principal: Principal,
                            values: dict[str, Any]) -> dict[str, Any]:
        await live_row(conn, roles, values["role_id"], field="role")
        await self._password(values, required=True)
        values.setdefault("username", values["login"])
        # Created by an administrator: approved unless told otherwise (SPEC §11.13).
        values["client_status"] = values.get("client_status") or "approved"
        return values

    async def before_update(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any],
                            values: dict[str, Any]) -> dict[str, Any]:
        if values.get("client_status") is None:
            values.pop("client_status", None)
        if not _is_manager(principal):
            # Self-service: the user's own role and status are the managers' business (SPEC §11.9).
            for column in ("role_id", "client_status"):
                if column in values and values[column] != row[column]:
                    raise forbidden()
        if values.get("role_id", row["role_id"]) != row["role_id"]:
            await live_row(conn, roles, values["role_id"], field="role")
        await self._password(values, required=False)
        return values

    async def before_delete(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any]) -> None:
        if not _is_manager(principal):
            raise forbidden()

    async def after_write(self, app: web.Application, principal: Principal, row: Mapping[str, Any],
                          action: str, before: Mapping[str, Any] | None = None) -> None:
        user_id = int(row["id"])
        revocations = app[keys.REVOCATIONS]
        if action == "deleted" or row["client_status"] == "blocked":
            # The same consequences as blocking through /api/clients/ (SPEC §4.4): the car of a
            # reservation is freed and every credential and socket of the user ends.
            await app[keys.USER_LIFECYCLE].ended(app[keys.DB], app[keys.BUS], user_id)
            await revocations.revoke_everything(user_id)
            return
        if before is None:
            return
        if row["password_hash"] != before["password_hash"]:
            # Tokens and sessions of the old password are refused by their fingerprint; its open
            # sockets close too, on every instance.
            await revocations.password_changed(user_id)
        elif row["role_id"] != before["role_id"] or row["client_status"] != before["client_status"]:
            await revocations.rights_changed(user_id)

    def to_out(self, row: Mapping[str, Any], principal: Principal | None = None) -> dict[str, Any]:
        data = super().to_out(row, principal)
        sees_private = principal is not None and (
            principal.user_id == row["id"] or principal.has_any(MANAGE_USERS, Permission.MANAGE_CLIENTS))
        if not sees_private:
            for name in PRIVATE_FIELDS:
                data[name] = None
        return data


def any_user(principal: Principal) -> bool:
    return principal.is_user


def setup(app: web.Application) -> None:
    RoleResource(path="/api/roles/", table=roles, schema_in=RoleIn, schema_out=RoleOut, tag="roles",
                 read=MANAGE_USERS, write=MANAGE_USERS).register(app)
    PermissionResource(path="/api/permissions/", table=permissions, schema_in=PermissionIn,
                       schema_out=PermissionOut, tag="permissions", read=MANAGE_USERS, write=MANAGE_USERS,
                       columns={"role": "role_id"}, filters={"role": Filter("role_id")}).register(app)
    UserResource(path="/api/users/", table=users, schema_in=UserIn, schema_out=ProfileOut, tag="users",
                 read=any_user, write=MANAGE_USERS, columns={"role": "role_id"},
                 filters={"role": Filter("role_id")}, config=app[keys.CONFIG],
                 password_pool=app[keys.PASSWORD_POOL]).register(app)
