"""Core tables of identity (sql/001_identity.sql)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP

from backend.auth.principal import PERMISSION_FLAGS
from backend.db import metadata

TZ = TIMESTAMP(timezone=True)

roles = Table(
    "roles", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
    Column("deleted_at", TZ),
)

permissions = Table(
    "permissions", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("role_id", BigInteger, ForeignKey("roles.id"), nullable=False),
    *(Column(flag, Boolean, nullable=False, server_default=text("false")) for flag in PERMISSION_FLAGS),
    Column("deleted_at", TZ),
)

users = Table(
    "users", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("login", Text, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("password_hash", Text, nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("surname", Text, nullable=False, server_default=""),
    Column("last_name", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False, server_default=""),
    Column("driver_license", Text),
    Column("role_id", BigInteger, ForeignKey("roles.id"), nullable=False),
    Column("client_status", Text, nullable=False, server_default="approved"),
    Column("blocked_reason", Text),
    Column("avatar_photo_id", BigInteger),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
    Column("updated_at", TZ, nullable=False, server_default=text("now()")),
    Column("deleted_at", TZ),
)
