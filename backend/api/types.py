"""Wire types shared by the surfaces: row ids, 3-decimal amounts as strings, phones (SPEC §2.4, §11.10)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

THOUSANDTH = Decimal("0.001")
BIGINT_MAX = 2**63 - 1          # PostgreSQL bigint, the type of every id column


_DIGITS = re.compile(r"-?[0-9]+")


def _integer(value: object) -> object:
    # pydantic's lax int also takes true, "2.0", " 2 ", "+2" and "2_000"; an integer here is a JSON
    # number or a plain string of ASCII digits, nothing else.
    if isinstance(value, bool) or (isinstance(value, str) and not _DIGITS.fullmatch(value)):
        raise ValueError("Требуется целочисленное значение.")
    return value


# Every body field (and websocket frame field) that names a row, on every surface: the one integer
# rule is a JSON integer or a string of decimal digits ("8": seed 004 writes its fields as
# strings, and the other seeds' clients send form values), never true, 8.5, "8.5" or "8.0". A
# number past bigint is a 400 on its field here, at the edge, instead of a driver error (500) in the
# query that looks the row up.
Id = Annotated[int, BeforeValidator(_integer), Field(ge=1, le=BIGINT_MAX)]


def q3(value: Decimal | int | str) -> Decimal:
    """Round to 3 decimals, half up (never floats)."""
    return Decimal(value).quantize(THOUSANDTH, rounding=ROUND_HALF_UP)


def _reject_float_noise(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("Требуется численное значение.")
    return value


# Accepts "10", "10.5", 10, 10.5 (parsed by pydantic straight to Decimal), answers "10.000".
Amount = Annotated[
    Decimal,
    Field(max_digits=15, decimal_places=3),
    AfterValidator(_reject_float_noise),
    PlainSerializer(lambda d: f"{q3(d):.3f}", return_type=str, when_used="json"),
]
NonNegativeAmount = Annotated[Amount, Field(ge=0)]

_PHONE = re.compile(r"^(?:\+7|7|8)(\d{10})$")


def normalize_phone(raw: str) -> str:
    """+79001234567, 79001234567 and 89001234567 all become +79001234567 (SPEC §11.10)."""
    digits = re.sub(r"[\s()-]", "", raw)
    match = _PHONE.match(digits)
    if match is None:
        raise ValueError("Телефон должен быть в формате +79001234567.")
    return "+7" + match.group(1)


Phone = Annotated[str, AfterValidator(normalize_phone)]
