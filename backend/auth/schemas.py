"""Request and response models of the auth endpoints (seed 001 §1, seed 003, seed 000)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ApiLoginIn(BaseModel):
    """POST /api/auth/login/ (seed 001)."""

    login: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    client: Literal["web", "mobile"] = "web"


class ApiLoginUser(BaseModel):
    id: int
    login: str
    role: int
    name: str
    surname: str
    last_name: str


class ApiLoginOut(BaseModel):
    access: str
    user: ApiLoginUser


class MeOut(BaseModel):
    """GET /api/auth/me/ (seed 001 §1.2)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    surname: str
    last_name: str
    login: str
    phone: str | None
    driver_license: str | None
    role: int
    deleted_at: dt.datetime | None
