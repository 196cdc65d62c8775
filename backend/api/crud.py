"""One generic DRF-style resource for every /api/* collection (STYLE 2.10, SPEC §2.4).

A Resource is configured by a table, pydantic schemas and permissions; domains subclass it and
override the hooks (`scope`, `before_create`, `before_update`, `before_delete`, `to_out`) for
their rules instead of writing the list/retrieve/create/update/delete handlers again.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, get_args, get_origin

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from sqlalchemy import Select, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend import keys
from backend.api.access import check, current_user
from backend.api.routing import route
from backend.api.validation import invalid_input, read_json_object, read_query
from backend.db import read, transaction
from backend.errors import ApiError, forbidden, invalid, not_found
from backend.jsonutil import dumps
from backend.principal import Principal

Access = str | Callable[[Principal], bool] | None

# Ids and integer filters beyond Postgres bigint would fail in the driver (a 500): they name nothing.
BIGINT_MAX = 2**63 - 1
NULL_MESSAGE = "Это поле не может быть null."


class ListQuery(BaseModel):
    """Pagination shared by every list (SPEC §2.4)."""

    model_config = ConfigDict(extra="allow")
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=BIGINT_MAX)
    include_deleted: bool = False


@dataclass(frozen=True, slots=True)
class Filter:
    """A query parameter narrowing a list: `column op value` with the value parsed as `kind`."""

    column: str
    kind: type = int
    op: str = "eq"          # eq | icontains | gte | lte


def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """The PATCH twin of `model`: every field optional; only the fields sent are applied."""
    fields: dict[str, Any] = {
        # Keep the field's constraints (ge, max_length, ...): they live in `metadata`, not in the annotation.
        name: (Annotated[(info.annotation, *info.metadata)] | None if info.metadata else info.annotation | None,
               Field(None, alias=info.alias))
        for name, info in model.model_fields.items()
    }
    return create_model(f"{model.__name__}Patch", __base__=model.__base__, **fields)  # type: ignore[call-overload]


def _nullable(annotation: Any) -> bool:
    """True when None is a valid value of `annotation` (X | None, Optional[X], Any)."""
    if annotation is None or annotation is type(None) or annotation is Any:
        return True
    return any(_nullable(arg) for arg in get_args(annotation)) if get_origin(annotation) else False


def _allowed(access: Access, principal: Principal) -> bool:
    if access is None:
        return True
    if isinstance(access, str):
        return principal.has(access)
    return access(principal)


_KEY_DETAIL = re.compile(r"Key \((?:lower\()?(\w+)\)?\)=")


@dataclass(frozen=True, kw_only=True)
class Resource:
    """One collection: its table, schemas, field names, filters and who may read or write it."""

    path: str                                   # "/api/roles/"
    table: Table
    schema_in: type[BaseModel]                  # POST/PUT body (API field names)
    schema_out: type[BaseModel]                 # one row as the API shows it
    tag: str
    read: Access = None
    write: Access = None
    columns: Mapping[str, str] = field(default_factory=dict)   # API name -> column name
    filters: Mapping[str, Filter] = field(default_factory=dict)
    soft_delete: bool = True

    unique_messages: ClassVar[Mapping[str, str]] = {}

    # ---- hooks (override in a subclass) -------------------------------------------------------
    def scope(self, query: Select[Any], principal: Principal) -> Select[Any]:
        """Narrow what `principal` may see (row-level rules); default: everything."""
        return query

    def can_read(self, principal: Principal) -> bool:
        return _allowed(self.read, principal)

    def can_write(self, principal: Principal, row: Mapping[str, Any] | None) -> bool:
        """May `principal` create (row None), update or delete `row`?"""
        return _allowed(self.write, principal)

    async def before_create(self, conn: AsyncConnection, principal: Principal,
                            values: dict[str, Any]) -> dict[str, Any]:
        """Check and complete the column values of a new row (inside the transaction)."""
        return values

    async def before_update(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any],
                            values: dict[str, Any]) -> dict[str, Any]:
        """Check and complete the changed column values of `row` (inside the transaction)."""
        return values

    async def before_delete(self, conn: AsyncConnection, principal: Principal, row: Mapping[str, Any]) -> None:
        """Check that `row` may go, or clean up after it (inside the transaction)."""

    async def after_write(self, app: web.Application, principal: Principal, row: Mapping[str, Any],
                          action: str, before: Mapping[str, Any] | None = None) -> None:
        """Runs after the transaction committed (publish events here); `before` is the row as it
        was (None for a created one)."""

    def to_out(self, row: Mapping[str, Any], principal: Principal | None = None) -> dict[str, Any]:
        """A row as the API shows it to `principal` (columns renamed back to API names)."""
        reverse = {column: name for name, column in self.columns.items()}
        data = {reverse.get(key, key): value for key, value in row.items()}
        return self.schema_out.model_validate(data).model_dump(mode="json")

    # ---- machinery ----------------------------------------------------------------------------
    @property
    def item_path(self) -> str:
        return self.path + r"{id:\d+}/"

    def register(self, app: web.Application) -> None:
        """Add the six routes of this collection (trailing slash optional)."""
        name = self.tag
        out, body = self.schema_out, self.schema_in
        common = {"tag": name, "slash_optional": True}
        route(app, "GET", self.path, self.list_view, summary=f"List {name}", response=out, **common)
        route(app, "POST", self.path, self.create_view, summary=f"Create {name}", body=body, response=out,
              status=201, **common)
        route(app, "GET", self.item_path, self.retrieve_view, summary=f"Retrieve {name}", response=out, **common)
        route(app, "PUT", self.item_path, self.update_view, summary=f"Replace {name}", body=body,
              response=out, **common)
        route(app, "PATCH", self.item_path, self.patch_view, summary=f"Update {name}",
              body=partial_model(body), response=out, **common)
        route(app, "DELETE", self.item_path, self.delete_view, summary=f"Delete {name}", status=204, **common)

    def _column(self, name: str) -> str:
        return self.columns.get(name, name)

    def _values(self, model: BaseModel, only_set: bool) -> dict[str, Any]:
        data = model.model_dump(exclude_unset=only_set)
        return {self._column(name): value for name, value in data.items()}

    def _base_query(self, principal: Principal, include_deleted: bool) -> Select[Any]:
        query = select(self.table)
        if self.soft_delete and not include_deleted:
            query = query.where(self.table.c.deleted_at.is_(None))
        return self.scope(query, principal)

    def _reader(self, request: web.Request) -> Principal:
        principal = current_user(request)
        if not self.can_read(principal):
            raise forbidden()
        return principal

    @staticmethod
    def _include_deleted(request: web.Request, principal: Principal) -> bool:
        raw = request.query.get("include_deleted", "").lower()
        if raw in ("", "false", "0"):
            return False
        if raw not in ("true", "1"):
            raise invalid({"include_deleted": ["Требуется логическое значение."]})
        if not principal.is_admin:     # SPEC §11.9
            raise forbidden()
        return True

    def _apply_filters(self, query: Select[Any], request: web.Request) -> Select[Any]:
        errors: dict[str, list[str]] = {}
        for name, spec in self.filters.items():
            raw = request.query.get(name)
            if raw is None or raw == "":
                continue
            column = self.table.c[spec.column]
            try:
                value = spec.kind(raw) if spec.kind is not dt.date else dt.date.fromisoformat(raw)
                if isinstance(value, int) and not -BIGINT_MAX <= value <= BIGINT_MAX:
                    raise ValueError(raw)
            except ValueError:
                errors.setdefault(name, []).append("Неверное значение фильтра.")
                continue
            if spec.op == "icontains":
                query = query.where(column.ilike(f"%{_escape_like(str(value))}%", escape="\\"))
            elif spec.op == "gte":
                query = query.where(column >= value)
            elif spec.op == "lte":
                query = query.where(column <= value)
            else:
                query = query.where(column == value)
        if errors:
            raise invalid(errors)
        return query

    async def _load(self, conn: AsyncConnection, principal: Principal, item_id: int,
                    include_deleted: bool = False, lock: bool = False) -> Mapping[str, Any]:
        query = self._base_query(principal, include_deleted).where(self.table.c.id == item_id)
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).mappings().one_or_none()
        if row is None:
            raise not_found()
        return row

    def _integrity(self, exc: IntegrityError) -> ApiError:
        orig = getattr(exc.orig, "__cause__", None) or exc.orig
        sqlstate = getattr(orig, "sqlstate", None)
        detail = str(getattr(orig, "detail", "") or "")
        match = _KEY_DETAIL.search(detail)
        column = match.group(1) if match else "non_field_errors"
        reverse = {col: name for name, col in self.columns.items()}
        name = reverse.get(column, column)
        if sqlstate == "23505":
            message = self.unique_messages.get(name, "Объект с таким значением поля уже существует.")
            return invalid({name: [message]})
        if sqlstate == "23503":
            return invalid({name: ["Недопустимый первичный ключ - объект не существует."]})
        if sqlstate == "23514":
            return invalid({"non_field_errors": ["Значение нарушает ограничение целостности."]})
        return invalid({"non_field_errors": ["Данные нарушают целостность."]})

    # ---- views --------------------------------------------------------------------------------
    async def list_view(self, request: web.Request) -> web.Response:
        principal = self._reader(request)
        page = read_query(request, ListQuery)
        include_deleted = self._include_deleted(request, principal)
        query = self._apply_filters(self._base_query(principal, include_deleted), request)
        async with read(request.app[keys.DB]) as conn:
            count = (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
            rows = (await conn.execute(query.order_by(self.table.c.id).limit(page.limit).offset(page.offset)
                                       )).mappings().all()
        results = [self.to_out(r, principal) for r in rows]
        return web.json_response(paginated(request, count, page.limit, page.offset, results), dumps=dumps)

    async def retrieve_view(self, request: web.Request) -> web.Response:
        principal = self._reader(request)
        include_deleted = self._include_deleted(request, principal)
        async with read(request.app[keys.DB]) as conn:
            row = await self._load(conn, principal, item_id_of(request), include_deleted)
        return web.json_response(self.to_out(row, principal), dumps=dumps)

    async def create_view(self, request: web.Request) -> web.Response:
        principal = current_user(request)
        if not self.can_write(principal, None):
            raise forbidden()
        model = self._parse(self.schema_in, await read_json_object(request))
        try:
            async with transaction(request.app[keys.DB]) as conn:
                values = await self.before_create(conn, principal, self._values(model, only_set=False))
                row = (await conn.execute(insert(self.table).values(**values).returning(*self.table.c))
                       ).mappings().one()
        except IntegrityError as exc:
            raise self._integrity(exc) from None
        await self.after_write(request.app, principal, row, "created")
        return web.json_response(self.to_out(row, principal), status=201, dumps=dumps)

    async def update_view(self, request: web.Request) -> web.Response:
        return await self._update(request, self.schema_in, partial=False)

    async def patch_view(self, request: web.Request) -> web.Response:
        return await self._update(request, partial_model(self.schema_in), partial=True)

    async def _update(self, request: web.Request, schema: type[BaseModel], partial: bool) -> web.Response:
        principal = current_user(request)
        body = await read_json_object(request)
        model = self._parse(schema, body)
        if partial:
            self._refuse_nulls(model)
        item_id = item_id_of(request)
        try:
            async with transaction(request.app[keys.DB]) as conn:
                current = await self._load(conn, principal, item_id, lock=True)
                if not self.can_write(principal, current):
                    raise forbidden()
                values = await self.before_update(conn, principal, current, self._values(model, only_set=partial))
                if "updated_at" in self.table.c:
                    values.setdefault("updated_at", func.now())
                row = current
                if values:
                    row = (await conn.execute(update(self.table).where(self.table.c.id == item_id)
                                              .values(**values).returning(*self.table.c))).mappings().one()
        except IntegrityError as exc:
            raise self._integrity(exc) from None
        await self.after_write(request.app, principal, row, "updated", before=current)
        return web.json_response(self.to_out(row, principal), dumps=dumps)

    async def delete_view(self, request: web.Request) -> web.Response:
        principal = current_user(request)
        item_id = item_id_of(request)
        async with transaction(request.app[keys.DB]) as conn:
            current = await self._load(conn, principal, item_id, lock=True)
            if not self.can_write(principal, current):
                raise forbidden()
            await self.before_delete(conn, principal, current)
            row = (await conn.execute(update(self.table).where(self.table.c.id == item_id)
                                      .values(deleted_at=func.now()).returning(*self.table.c))).mappings().one()
        await self.after_write(request.app, principal, row, "deleted", before=current)
        return web.Response(status=204)

    def _refuse_nulls(self, model: BaseModel) -> None:
        """PATCH makes every field optional; an explicit null is still an error where PUT forbids it."""
        errors = {name: [NULL_MESSAGE] for name in model.model_fields_set
                  if getattr(model, name) is None and not _nullable(self.schema_in.model_fields[name].annotation)}
        if errors:
            raise invalid(errors)

    @staticmethod
    def _parse(schema: type[BaseModel], body: dict[str, Any]) -> BaseModel:
        try:
            return schema.model_validate(body)
        except ValidationError as exc:
            raise invalid_input(exc) from None


def item_id_of(request: web.Request) -> int:
    """The {id} of an item path; past bigint it can name no row (404, not a driver error)."""
    item_id = int(request.match_info["id"])
    if item_id > BIGINT_MAX:
        raise not_found()
    return item_id


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def paginated(request: web.Request, count: int, limit: int, offset: int, results: list[Any]) -> dict[str, Any]:
    """The DRF list body {"count", "next", "previous", "results"} with absolute page links."""
    def link(new_offset: int) -> str:
        return str(request.url.update_query(limit=limit, offset=new_offset))

    return {
        "count": count,
        "next": link(offset + limit) if offset + limit < count else None,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
        "results": results,
    }


def check_flag(principal: Principal, flag: str) -> None:
    """Re-export for domains that check a flag inside a hook."""
    check(principal, flag)
