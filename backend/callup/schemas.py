"""Wire shapes of the CallUp surface (seed 002): request bodies, queries and response data."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, create_model, field_validator

from backend.callup import const
from backend.jsonutil import utc_iso

# The same ISO 8601 form as every surface and event (backend.jsonutil.utc_iso, "Z").
UtcTime = Annotated[dt.datetime, PlainSerializer(utc_iso, return_type=str, when_used="json")]

_PHONE = re.compile(r"^[0-9]{11}$")      # [0-9], not \d: \d also matches non-ASCII digits
_CODE = re.compile(r"^[0-9]{4}$")
PREFIX = re.compile(r"^[0-9]{7}$")
PHONE_MESSAGE = "Телефон должен быть строкой из 11 цифр."
CODE_MESSAGE = "Код должен быть строкой из 4 цифр."
KNOWN_FIELDS = frozenset({const.FIELD_CODE_VALUE})


def check_code(value: str) -> str:
    """A 4-digit code, or ValueError with the message the client sees."""
    if not _CODE.match(value):
        raise ValueError(CODE_MESSAGE)
    return value


def envelope(model: type[BaseModel]) -> type[BaseModel]:
    """The documented shape of a /v1 success: {"data": <model>, "errors": null} (seed 002)."""
    return create_model(f"{model.__name__}Envelope", data=(model, ...), errors=(None, None))


class OrderIn(BaseModel):
    """POST /v1/orders: schemes 1 and 2 send the phone, scheme 3 also its own code."""

    # A misspelt key (say "cod") must not silently become a random code.
    model_config = ConfigDict(extra="forbid")
    phone: str
    code: str | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        if not _PHONE.match(value):
            raise ValueError(PHONE_MESSAGE)
        return value

    @field_validator("code")
    @classmethod
    def _code(cls, value: str | None) -> str | None:
        return None if value is None else check_code(value)


class OrderQuery(BaseModel):
    """?fields=code.value (scheme 2); other query parameters are ignored."""

    fields: str | None = None

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: str | None) -> str | None:
        unknown = {item.strip() for item in (value or "").split(",") if item.strip()} - KNOWN_FIELDS
        if unknown:
            raise ValueError(f"Неизвестное значение: {', '.join(sorted(unknown))}. Допустимо: code.value.")
        return value

    @property
    def wants_code(self) -> bool:
        return const.FIELD_CODE_VALUE in {item.strip() for item in (self.fields or "").split(",")}


class CallerId(BaseModel):
    prefix: str
    mask: str


class CodeInfo(BaseModel):
    len: int = const.CODE_LEN
    value: str | None = Field(None, description="only with ?fields=code.value or an app-supplied code")


class OrderCreated(BaseModel):
    id: uuid.UUID
    cid: CallerId
    code: CodeInfo


class OrderOut(BaseModel):
    id: uuid.UUID
    status: Literal[const.STATUSES]  # type: ignore[valid-type]
    phone: str = Field(description="every digit but the last two masked")
    created_at: UtcTime
    expires_at: UtcTime
    attempts: int


class VerifyOut(BaseModel):
    success: bool


class AppMe(BaseModel):
    id: int
    name: str


class ProviderEventIn(BaseModel):
    """POST /v1/provider/events, signed with X-Signature."""

    model_config = ConfigDict(extra="ignore")
    order_id: uuid.UUID
    status: Literal["called", "failed"]
    reason: str | None = Field(None, max_length=500)


class ProviderEventOut(BaseModel):
    applied: bool = Field(description="false for a replay or an older state, which is ignored")
    status: str


def mask_phone(phone: str) -> str:
    """Every digit but the last two replaced by * (SPEC §11.19: *********67)."""
    return "*" * (len(phone) - 2) + phone[-2:]
