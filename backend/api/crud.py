"""One generic DRF-style resource for every /api/* collection (STYLE 2.10, SPEC §2.4).

A Resource is configured by a table, pydantic schemas and permissions. Domains subclass it and
override its public hooks, never its views or private helpers:

- reading: `scope` (row-level rules), `filter_queryset` (query-string filters), `get_queryset`,
  `get_object` (one row, optionally locked; `get_writable` adds `can_write`), `can_read`, `can_write`;
- writing, inside the default transaction: `before_create`, `before_update`, `before_delete`;
- the whole write, for a domain that owns its own transaction: `perform_create`,
  `perform_update`, `perform_destroy` (given the app, so they choose the engine or the hot pool),
  and `refuse_nulls` for its rule on null values;
- after the commit: `after_write`; the answer: `to_out`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, get_args, get_origin

from aiohttp import web
from pydantic import BaseModel, Field, create_model
from sqlalchemy import Select, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend import keys
from backend.api.access import current_user
from backend.api.pagination import ListQuery, fetch_page, list_query, page_body, page_of
from backend.api.responses import respond
from backend.api.routing import USER, route
from backend.api.types import BIGINT_MAX
from backend.api.validation import read_json, read_query
from backend.db import read, transaction
from backend.errors import ApiError, forbidden, invalid, missing_pk, not_found
from backend.principal import Principal

Access = str | Callable[[Principal], bool] | None
Row = Mapping[str, Any]

NULL_MESSAGE = "Это поле не может быть null."


@dataclass(frozen=True, slots=True)
class Filter:
    """A query parameter narrowing a list: `column op value` with the value parsed as `kind`."""

    column: str
    kind: type = int
    op: str = "eq"          # eq | icontains | gte | lte


@dataclass(frozen=True, slots=True)
class Written:
    """A committed write: the row as it is now and as it was before (None for a created row)."""

    row: Row
    before: Row | None = None


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


async def live_row(conn: AsyncConnection, table: Table, row_id: int, *, field: str) -> Row:
    """The live row `row_id` of `table`, or a 400 on `field` (the API name of the reference)."""
    query = select(table).where(table.c.id == row_id, table.c.deleted_at.is_(None))
    row = (await conn.execute(query)).mappings().one_or_none()
    if row is None:
        raise missing_pk(field, row_id)
    return row


def escape_like(value: str) -> str:
    """`value` matched literally inside a LIKE pattern (with escape="\\")."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
    schema_patch: type[BaseModel] = field(init=False)          # PATCH body: built once, here
    api_names: Mapping[str, str] = field(init=False, repr=False)   # column name -> API name

    unique_messages: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        # Frozen: the derived fields are set once, the way dataclasses' own __init__ sets fields.
        object.__setattr__(self, "schema_patch", partial_model(self.schema_in))
        object.__setattr__(self, "api_names", {column: name for name, column in self.columns.items()})

    # ---- hooks: reading -----------------------------------------------------------------------
    def scope(self, query: Select[Any], principal: Principal) -> Select[Any]:
        """Narrow what `principal` may see (row-level rules); default: everything."""
        return query

    def filter_queryset(self, query: Select[Any], params: Mapping[str, str]) -> Select[Any]:
        """Narrow a list by its query string; default: the declared `filters` (400 on a bad value)."""
        errors: dict[str, list[str]] = {}
        for name, spec in self.filters.items():
            raw = params.get(name)
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
                query = query.where(column.ilike(f"%{escape_like(str(value))}%", escape="\\"))
            elif spec.op == "gte":
                query = query.where(column >= value)
            elif spec.op == "lte":
                query = query.where(column <= value)
            else:
                query = query.where(column == value)
        if errors:
            raise invalid(errors)
        return query

    def get_queryset(self, principal: Principal, include_deleted: bool = False) -> Select[Any]:
        """Every row `principal` may see: live ones (all with include_deleted), narrowed by `scope`."""
        query = select(self.table)
        if self.soft_delete and not include_deleted:
            query = query.where(self.table.c.deleted_at.is_(None))
        return self.scope(query, principal)

    async def get_object(self, conn: AsyncConnection, principal: Principal, item_id: int, *,
                         include_deleted: bool = False, lock: bool = False) -> Row:
        """Row `item_id` if `principal` may see it (404 otherwise), locked FOR UPDATE with `lock`."""
        query = self.get_queryset(principal, include_deleted).where(self.table.c.id == item_id)
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).mappings().one_or_none()
        if row is None:
            raise not_found()
        return row

    async def get_writable(self, conn: AsyncConnection, principal: Principal, item_id: int) -> Row:
        """Row `item_id` locked for a write `principal` may make (404 unseen, 403 not theirs)."""
        row = await self.get_object(conn, principal, item_id, lock=True)
        if not self.can_write(principal, row):
            raise forbidden()
        return row

    def can_read(self, principal: Principal) -> bool:
        return _allowed(self.read, principal)

    def can_write(self, principal: Principal, row: Row | None) -> bool:
        """May `principal` create (row None), update or delete `row`?"""
        return _allowed(self.write, principal)

    # ---- hooks: writing inside the default transaction ----------------------------------------
    async def before_create(self, conn: AsyncConnection, principal: Principal,
                            values: dict[str, Any]) -> dict[str, Any]:
        """Check and complete the column values of a new row (inside the transaction)."""
        return values

    async def before_update(self, conn: AsyncConnection, principal: Principal, row: Row,
                            values: dict[str, Any]) -> dict[str, Any]:
        """Check and complete the changed column values of `row` (inside the transaction)."""
        return values

    async def before_delete(self, conn: AsyncConnection, principal: Principal, row: Row) -> None:
        """Check that `row` may go, or clean up after it (inside the transaction)."""

    async def lock_related(self, conn: AsyncConnection, item_id: int, values: Mapping[str, Any]) -> None:
        """First thing in an update's transaction, before row `item_id` is locked: take the locks the
        update of it with `values` will need, in a global order (default none; see fleet waybills)."""

    # ---- hooks: the whole write ---------------------------------------------------------------
    def refuse_nulls(self, model: BaseModel, partial: bool) -> None:
        """400 for nulls an updated row cannot hold (PUT and PATCH). Default: PATCH makes every
        field optional, so an explicit null is refused where PUT's schema forbids it."""
        if not partial:
            return
        errors = {name: [NULL_MESSAGE] for name in model.model_fields_set
                  if getattr(model, name) is None and not _nullable(self.schema_in.model_fields[name].annotation)}
        if errors:
            raise invalid(errors)

    async def perform_create(self, app: web.Application, principal: Principal, values: dict[str, Any]) -> Written:
        """Insert a row of `values` (column names) after `before_create`, in one transaction."""
        try:
            async with transaction(app[keys.DB]) as conn:
                values = await self.before_create(conn, principal, values)
                row = (await conn.execute(insert(self.table).values(**values).returning(*self.table.c))
                       ).mappings().one()
        except IntegrityError as exc:
            raise self.integrity_error(exc) from None
        return Written(row)

    async def perform_update(self, app: web.Application, principal: Principal, item_id: int,
                             values: dict[str, Any]) -> Written:
        """Lock row `item_id`, check `can_write`, run `before_update` and write, in one transaction."""
        try:
            async with transaction(app[keys.DB]) as conn:
                await self.lock_related(conn, item_id, values)
                current = await self.get_writable(conn, principal, item_id)
                values = await self.before_update(conn, principal, current, values)
                if "updated_at" in self.table.c:
                    values.setdefault("updated_at", func.now())
                row = current
                if values:
                    row = (await conn.execute(update(self.table).where(self.table.c.id == item_id)
                                              .values(**values).returning(*self.table.c))).mappings().one()
        except IntegrityError as exc:
            raise self.integrity_error(exc) from None
        return Written(row, before=current)

    async def perform_destroy(self, app: web.Application, principal: Principal, item_id: int) -> Written | None:
        """Soft-delete row `item_id` after `can_write` and `before_delete`, in one transaction.

        An override may return None when there is nothing for `after_write` to announce.
        """
        async with transaction(app[keys.DB]) as conn:
            current = await self.get_writable(conn, principal, item_id)
            await self.before_delete(conn, principal, current)
            row = (await conn.execute(update(self.table).where(self.table.c.id == item_id)
                                      .values(deleted_at=func.now()).returning(*self.table.c))).mappings().one()
        return Written(row, before=current)

    async def after_write(self, app: web.Application, principal: Principal, row: Row,
                          action: str, before: Row | None = None) -> None:
        """Runs after the transaction committed (publish events here); `before` is the row as it
        was (None for a created one)."""

    def to_out(self, row: Row, principal: Principal | None = None) -> dict[str, Any]:
        """A row as the API shows it to `principal` (columns renamed back to API names)."""
        data = {self.api_name(key): value for key, value in row.items()}
        return self.schema_out.model_validate(data).model_dump(mode="json")

    # ---- helpers for hooks --------------------------------------------------------------------
    def api_name(self, column: str) -> str:
        """The API field name of `column`."""
        return self.api_names.get(column, column)

    def authorize_read(self, request: web.Request) -> Principal:
        """The signed-in caller, if this resource lets them read (403 otherwise)."""
        principal = current_user(request)
        if not self.can_read(principal):
            raise forbidden()
        return principal

    def integrity_error(self, exc: IntegrityError) -> ApiError:
        """A unique, foreign-key or check violation as the DRF field error of its API field."""
        orig = getattr(exc.orig, "__cause__", None) or exc.orig
        sqlstate = getattr(orig, "sqlstate", None)
        match = _KEY_DETAIL.search(str(getattr(orig, "detail", "") or ""))
        name = self.api_name(match.group(1) if match else "non_field_errors")
        if sqlstate == "23505":
            message = self.unique_messages.get(name, "Объект с таким значением поля уже существует.")
            return invalid({name: [message]})
        if sqlstate == "23503":
            return invalid({name: ["Недопустимый первичный ключ - объект не существует."]})
        if sqlstate == "23514":
            return invalid({"non_field_errors": ["Значение нарушает ограничение целостности."]})
        return invalid({"non_field_errors": ["Данные нарушают целостность."]})

    # ---- routes and views ---------------------------------------------------------------------
    @property
    def item_path(self) -> str:
        return self.path + r"{id:\d+}/"

    def register(self, app: web.Application) -> None:
        """Add the six routes of this collection (trailing slash optional)."""
        name = self.tag
        out, body = self.schema_out, self.schema_in
        # Any signed-in user reaches the views; can_read/can_write and scope() decide per resource and row.
        common = {"tag": name, "slash_optional": True, "auth": USER}
        # responses: 403 of can_read/can_write, 400 of ?include_deleted=, 409 of a delete guard (a booked car).
        query = list_query(f"{out.__name__}ListQuery", {key: spec.kind for key, spec in self.filters.items()})
        route(app, "GET", self.path, self.list_view, summary=f"List {name}", query=query,
              response=page_of(out), responses=(403,), **common)
        route(app, "POST", self.path, self.create_view, summary=f"Create {name}", body=body, response=out,
              status=201, responses=(403,), **common)
        route(app, "GET", self.item_path, self.retrieve_view, summary=f"Retrieve {name}", response=out,
              responses=(400, 403), **common)
        route(app, "PUT", self.item_path, self.update_view, summary=f"Replace {name}", body=body,
              response=out, responses=(403,), **common)
        route(app, "PATCH", self.item_path, self.patch_view, summary=f"Update {name}",
              body=self.schema_patch, response=out, responses=(403,), **common)
        route(app, "DELETE", self.item_path, self.delete_view, summary=f"Delete {name}", status=204,
              responses=(400, 403, 409), **common)

    def _values(self, model: BaseModel, only_set: bool) -> dict[str, Any]:
        data = model.model_dump(exclude_unset=only_set)
        return {self.columns.get(name, name): value for name, value in data.items()}

    async def list_view(self, request: web.Request) -> web.Response:
        principal = self.authorize_read(request)
        page = read_query(request, ListQuery)
        include_deleted = _include_deleted(request, principal)
        query = self.filter_queryset(self.get_queryset(principal, include_deleted), request.query)
        async with read(request.app[keys.DB], lag_ok=True) as conn:
            count, rows = await fetch_page(conn, query, self.table.c.id, limit=page.limit, offset=page.offset)
        return respond(page_body(request, count, page, [self.to_out(row, principal) for row in rows]))

    async def retrieve_view(self, request: web.Request) -> web.Response:
        principal = self.authorize_read(request)
        include_deleted = _include_deleted(request, principal)
        async with read(request.app[keys.DB]) as conn:
            row = await self.get_object(conn, principal, item_id_of(request), include_deleted=include_deleted)
        return respond(self.to_out(row, principal))

    async def create_view(self, request: web.Request) -> web.Response:
        principal = current_user(request)
        if not self.can_write(principal, None):
            raise forbidden()
        model = await read_json(request, self.schema_in)
        written = await self.perform_create(request.app, principal, self._values(model, only_set=False))
        await self.after_write(request.app, principal, written.row, "created")
        return respond(self.to_out(written.row, principal), status=201)

    async def update_view(self, request: web.Request) -> web.Response:
        return await self._update(request, partial=False)

    async def patch_view(self, request: web.Request) -> web.Response:
        return await self._update(request, partial=True)

    async def _update(self, request: web.Request, partial: bool) -> web.Response:
        principal = current_user(request)
        model = await read_json(request, self.schema_patch if partial else self.schema_in)
        self.refuse_nulls(model, partial)
        values = self._values(model, only_set=partial)
        written = await self.perform_update(request.app, principal, item_id_of(request), values)
        await self.after_write(request.app, principal, written.row, "updated", before=written.before)
        return respond(self.to_out(written.row, principal))

    async def delete_view(self, request: web.Request) -> web.Response:
        principal = current_user(request)
        written = await self.perform_destroy(request.app, principal, item_id_of(request))
        if written is not None:
            await self.after_write(request.app, principal, written.row, "deleted", before=written.before)
        return web.Response(status=204)


def _include_deleted(request: web.Request, principal: Principal) -> bool:
    raw = request.query.get("include_deleted", "").lower()
    if raw in ("", "false", "0"):
        return False
    if raw not in ("true", "1"):
        raise invalid({"include_deleted": ["Требуется логическое значение."]})
    if not principal.is_admin:     # SPEC §11.9
        raise forbidden()
    return True


def item_id_of(request: web.Request) -> int:
    """The {id} of an item path; past bigint it can name no row (404, not a driver error)."""
    item_id = int(request.match_info["id"])
    if item_id > BIGINT_MAX:
        raise not_found()
    return item_id
