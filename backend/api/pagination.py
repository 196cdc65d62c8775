"""Limit/offset pagination of every /api/* list (SPEC §2.4): the query, the page read, the body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
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
