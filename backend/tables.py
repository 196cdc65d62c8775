"""Imports every domain's tables so `backend.db.metadata` holds the whole schema (schema test, CRUD)."""

from backend.auth import tables as auth_tables
from backend.callup import tables as callup_tables
from backend.chat import tables as chat_tables
from backend.fleet import tables as fleet_tables
from backend.sharing import tables as sharing_tables

__all__ = ["auth_tables", "callup_tables", "chat_tables", "fleet_tables", "sharing_tables"]
