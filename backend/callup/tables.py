"""Core tables of CallUp: apps (sql/003_auth.sql), call orders and their transitions (sql/008_callup.sql)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP, UUID

from backend.db import metadata

TZ = TIMESTAMP(timezone=True)

apps = Table(
    "apps", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("token", UUID(as_uuid=True), nullable=False, unique=True),
    Column("owner_id", BigInteger, ForeignKey("users.id")),
    Column("blocked_at", TZ),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
    Column("deleted_at", TZ),
)

orders = Table(
    "call_orders", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("app_id", BigInteger, ForeignKey("apps.id"), nullable=False),
    Column("phone", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("caller_prefix", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="created"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("provider_call_id", Text),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
    Column("expires_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False, server_default=text("now()")),   # last status change
)

transitions = Table(
    "call_order_transitions", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", UUID(as_uuid=True), ForeignKey("call_orders.id"), nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("reason", Text),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
)
