"""Core table of car-sharing bookings (sql/007_bookings.sql); only backend.sharing queries it."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Numeric, Table, Text, text
from sqlalchemy.dialects.postgresql import TIMESTAMP

from backend.db import metadata

TZ = TIMESTAMP(timezone=True)
COORD = Numeric(9, 6, asdecimal=True)
FUEL = Numeric(12, 3, asdecimal=True)

ACTIVE = ("reserved", "in_trip")       # SPEC §11.14

bookings = Table(
    "bookings", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("car_id", BigInteger, ForeignKey("passenger_cars.id"), nullable=False),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("status", Text, nullable=False, server_default="reserved"),
    Column("tariff_per_minute", Numeric(12, 3, asdecimal=True), nullable=False, server_default=text("0")),
    Column("reserved_until", TZ, nullable=False),
    Column("started_at", TZ),
    Column("finished_at", TZ),
    Column("duration_s", BigInteger),
    Column("cost", Numeric(18, 3, asdecimal=True)),
    Column("start_lat", COORD),
    Column("start_lon", COORD),
    Column("start_fuel_level", FUEL),
    Column("end_lat", COORD),
    Column("end_lon", COORD),
    Column("end_fuel_level", FUEL),
    Column("created_at", TZ, nullable=False, server_default=text("now()")),
    Column("updated_at", TZ, nullable=False, server_default=text("now()")),
)
