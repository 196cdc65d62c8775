"""Request and response models of the auth endpoints (seed 001 §1, seed 003, seed 000)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

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


# ---- cookie sessions (seed 000) and /api/users/ (seed 001 §2) ---------------------------------

class SigninIn(BaseModel):
    """POST /profile/signin and /sign-in: login may be a login, an email or a phone."""

    login: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class SignupIn(BaseModel):
    """POST /profile/signup: a car-sharing client registers (client_status pending)."""

    login: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)
    name: str = Field("", max_length=150)
    surname: str = Field("", max_length=150)
    phone: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    driver_license: str | None = Field(None, max_length=64)


class ProfileOut(MeOut):
    """The seed-001 user plus email and client_status (SPEC §11.6)."""

    email: str | None
    client_status: str


# ---- token auth, seed 003 (/auth/*) -------------------------------------------------------------

class TokenLoginIn(BaseModel):
    """POST /auth/login: identifier is an email, a phone or a login."""

    identifier: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class TokenUser(BaseModel):
    """The /auth user (SPEC §11.8): first_name = name, last_name = surname, role by name."""

    id: int
    email: str | None
    role: str
    first_name: str
    last_name: str


class TokenLoginOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: TokenUser


class RefreshIn(BaseModel):
    """POST /auth/refresh."""

    refresh_token: str = Field(min_length=1, max_length=512)


class RefreshOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class LogoutQuery(BaseModel):
    """POST /auth/logout?all=true ends every session of the user."""

    all: bool = False


class DetailOut(BaseModel):
    detail: str


def profile_body(row: Mapping[str, Any]) -> dict[str, Any]:
    """The seed-001 user shape plus email and client_status; never the hash."""
    return ProfileOut.model_validate({**row, "role": row["role_id"]}).model_dump(mode="json")
