"""Imports every domain's tables so `backend.db.metadata` holds the whole schema (schema test, CRUD)."""

from backend.auth import tables as auth_tables
from backend.fleet import tables as fleet_tables

__all__ = ["auth_tables", "fleet_tables"]
