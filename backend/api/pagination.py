"""Limit/offset pagination of every /api/* list (SPEC §2.4): the query, the page read, the body."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import ColumnElement, RowMapping, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.api.types import BIGINT_MAX

T = TypeVar("T")


class ListQuery(BaseModel):
    """Pagination shared by every list; lists with filters subclass it."""

    model_config = ConfigDict(extra="allow")
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=BIGINT_MAX)
    include_deleted: bool = False


class Page(BaseModel, Generic[T]):
    """The DRF list body (for /openapi.json; subclass it with a name, components cannot hold brackets)."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


def page_of(item: type[BaseModel]) -> type[Page[Any]]:
    """Page[item] under a name of its own (OpenAPI component names cannot hold brackets)."""
    return create_model(f"{item.__name__}Page", __base__=Page[item])  # type: ignore[valid-type]


def list_query(name: str, filters: Mapping[str, type]) -> type[ListQuery]:
    """A list's query string as /openapi.json shows it: pagination plus its filters (int, str or date)."""
    kinds: dict[type, Any] = {int: Annotated[int, Field(ge=-BIGINT_MAX, le=BIGINT_MAX)], str: str,
                              dt.date: dt.date}
    fields: dict[str, Any] = {key: (kinds[kind] | None, None) for key, kind in filters.items()}
    return create_model(name, __base__=ListQuery, **fields)  # type: ignore[call-overload,no-any-return]


async def fetch_page(conn: AsyncConnection, query: Select[Any], order_by: ColumnElement[Any], *,
                     limit: int, offset: int) -> tuple[int, Sequence[RowMapping]]:
    """How many rows `query` matches in all, and `limit` of them from `offset` in `order_by` order."""
    count = (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await conn.execute(query.order_by(order_by).limit(limit).offset(offset))).mappings().all()
    return int(count), rows


def page_body(request: web.Request, count: int, page: ListQuery, results: list[Any]) -> dict[str, Any]:
    """The DRF list body {"count", "next", "previous", "results"}.

    The links are relative (path and query, the request's filters kept): built from the Host
    header they would hand a hostile host to every client that follows them.
    """
    limit, offset = page.limit, page.offset

    def link(new_offset: int) -> str:
        return str(request.rel_url.update_query(limit=limit, offset=new_offset))

    return {
        "count": count,
        "next": link(offset + limit) if offset + limit < count else None,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
        "results": results,
    }
