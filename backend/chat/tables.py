"""Core tables of the messenger (sql/009_chat.sql); only backend.chat queries them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, LargeBinary, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP

from backend.db import metadata

TZ = TIMESTAMP(timezone=True)

photos = Table(
    "photos", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
)

chats = Table(
    "chats", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_low", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("user_high", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("last_message_id", BigInteger),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
    Column("updated_at", TZ, nullable=False, server_default=text("now()")),
)

chat_members = Table(
    "chat_members", metadata,
    Column("chat_id", BigInteger, ForeignKey("chats.id"), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), primary_key=True),
    Column("last_read_id", BigInteger, nullable=False, server_default=text("0")),
    Column("joined_at", TZ, nullable=False, server_default=text("now()")),
)

messages = Table(
    "messages", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("chat_id", BigInteger, ForeignKey("chats.id"), nullable=False),
    Column("sender_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("text", Text, nullable=False),
    Column("client_id", Text),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
)
