"""Core tables of identity (sql/001_identity.sql) and auth (sql/003_auth.sql); `apps` is CallUp's
(backend/callup/tables.py)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP, UUID

from backend.db import metadata
from backend.principal import PERMISSION_FLAGS

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
    Column("username", Text, nullable=False),           # sql/005: = login unless the messenger chose one
)

refresh_tokens = Table(
    "refresh_tokens", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("family_id", UUID(as_uuid=True), nullable=False),
    Column("client", Text, nullable=False, server_default="web"),
    Column("access_jti", Text),
    Column("pwd_fp", Text, nullable=False),
    Column("expires_at", TZ, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
    Column("rotated_at", TZ),
    Column("revoked_at", TZ),
)
