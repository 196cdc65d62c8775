"""Wire types shared by the surfaces: 3-decimal amounts as strings, phones (SPEC §2.4, §11.10)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, PlainSerializer

THOUSANDTH = Decimal("0.001")


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
