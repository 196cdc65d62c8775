"""What both REST peers of scripts/bench/rest.py share: SQL, JWT checks and the wire formats.

The peers answer the project's endpoints with the project's bodies on the project's database, so a
request costs them what it must cost any correct server: verify the bearer JWT (HS256, kid `k1`,
the password fingerprint), one MGET of the two deny-list keys, the statements of the operation,
the events a change must publish (one PUBLISH each, pipelined), and the JSON encoding.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import jwt
import orjson

SECRET = os.environ["JWT_SECRET"]
PREFIX = os.environ.get("REDIS_PREFIX", "")
THOUSANDTH = Decimal("0.001")

IDENTITY_SQL = """
SELECT u.id, u.name, u.surname, u.last_name, u.login, u.phone, u.driver_license, u.role_id, u.deleted_at,
       u.password_hash, u.client_status, coalesce(p.is_admin, false) AS is_admin,
       coalesce(p.can_book_cars, false) AS can_book_cars
FROM users u LEFT JOIN permissions p ON p.role_id = u.role_id AND p.deleted_at IS NULL
WHERE u.id = $1"""

FREE_CARS_SQL = """
SELECT id, brand, model, lat, lon, fuel_level, tariff_per_minute FROM passenger_cars
WHERE shared AND state = 'available' AND deleted_at IS NULL ORDER BY id"""

MESSAGES_SQL = """
SELECT m.id, m.chat_id, m.sender_id, m.text, m.client_id, m.created_at
FROM messages m JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = $2
WHERE m.chat_id = $1 ORDER BY m.id DESC LIMIT $3"""

# The claim: one conditional UPDATE of the car and the insert, in one statement.
RESERVE_SQL = """
WITH car AS (
    UPDATE passenger_cars SET state = 'reserved', state_changed_at = now(), updated_at = now()
    WHERE id = $1 AND shared AND state = 'available' AND deleted_at IS NULL
    RETURNING id, tariff_per_minute)
INSERT INTO bookings (car_id, user_id, status, tariff_per_minute, reserved_until)
SELECT car.id, $2, 'reserved', coalesce(car.tariff_per_minute, 0), now() + interval '900 seconds' FROM car
RETURNING *"""

CANCEL_SQL = """
UPDATE bookings SET status = 'cancelled', updated_at = now()
WHERE id = $1 AND user_id = $2 AND status = 'reserved' RETURNING *"""

FREE_CAR_SQL = """
UPDATE passenger_cars SET state = 'available', state_changed_at = now(), updated_at = now() WHERE id = $1
RETURNING id, brand, model, lat, lon, fuel_level, tariff_per_minute"""

POST_MESSAGE_SQL = """
WITH chat AS (SELECT c.id FROM chats c JOIN chat_members cm ON cm.chat_id = c.id AND cm.user_id = $2
              WHERE c.id = $1 FOR UPDATE OF c),
     msg AS (INSERT INTO messages (chat_id, sender_id, text) SELECT chat.id, $2, $3 FROM chat RETURNING *),
     touched AS (UPDATE chats SET last_message_id = msg.id, updated_at = msg.created_at FROM msg
                 WHERE chats.id = msg.chat_id)
SELECT msg.*, (SELECT array_agg(user_id) FROM chat_members WHERE chat_id = $1) AS members FROM msg"""

# A waybill record (SPEC §5.6): lock the car, read the waybill's norm and the car's last snapshot,
# write the next snapshot and the record, re-sum the waybill. The maths is the plain formula.
RECORD_START_SQL = """
SELECT w.id, w.car_id, w.date, n.city_norm, n.area_norm, s.odometer, s.fuel
FROM passenger_car_waybills w
JOIN passenger_cars c ON c.id = w.car_id
JOIN LATERAL (SELECT city_norm, area_norm FROM passenger_car_norms
              WHERE car_id = w.car_id AND season = w.norm_season AND date <= w.date AND deleted_at IS NULL
              ORDER BY date DESC, id DESC LIMIT 1) n ON true
JOIN LATERAL (SELECT odometer, fuel FROM passenger_car_odometer_fuel
              WHERE car_id = w.car_id AND deleted_at IS NULL ORDER BY id DESC LIMIT 1) s ON true
WHERE w.id = $1 AND w.driver_id = $2 AND w.deleted_at IS NULL
FOR UPDATE OF c"""

SNAPSHOT_SQL = """
INSERT INTO passenger_car_odometer_fuel (car_id, odometer, fuel, date, waybill_id)
VALUES ($1, $2, $3, $4, $5) RETURNING id"""

RECORD_SQL = """
INSERT INTO passenger_car_records (waybill_id, car_id, snapshot_id, city_norm, area_norm, target, departure_time,
    arrival_time, distance_city_km, distance_area_km, fuel_refueled, fuel_used, odometer_before,
    fuel_before_departure, distance_total_km, odometer_after, fuel_used_city, fuel_used_area, fuel_used_normal,
    fuel_on_return)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
RETURNING *"""

WAYBILL_SUM_SQL = """
UPDATE passenger_car_waybills w SET updated_at = now()
FROM (SELECT count(*) FROM passenger_car_records WHERE waybill_id = $1 AND deleted_at IS NULL) r
WHERE w.id = $1"""


class Unauthorized(Exception):
    """401: no, a bad, a revoked or an outdated token."""


def claims_of(header: str | None, *, by_hand: bool = False) -> dict[str, Any]:
    """The verified claims of a `Bearer` header (one signature check): PyJWT, or (the bare ceiling)
    the few lines of HS256 the project itself runs, since PyJWT alone costs ~0.1 ms per call."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized
    if by_hand:
        return _claims_by_hand(header[7:])
    try:
        claims = jwt.decode(header[7:], SECRET, algorithms=["HS256"], leeway=30,
                            options={"verify_sub": False, "require": ["sub", "exp", "iat", "jti"]})
    except jwt.PyJWTError:
        raise Unauthorized from None
    if claims.get("typ") != "access":
        raise Unauthorized
    return claims


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _claims_by_hand(token: str) -> dict[str, Any]:
    try:
        head, body, signature = token.split(".")
        header = orjson.loads(_b64(head))
        mac = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        if header.get("alg") != "HS256" or not hmac.compare_digest(mac, _b64(signature)):
            raise Unauthorized
        claims = orjson.loads(_b64(body))
    except (ValueError, binascii.Error, AttributeError):
        raise Unauthorized from None
    now = time.time()
    if claims.get("typ") != "access" or now > claims["exp"] + 30 or claims["iat"] > now + 30:
        raise Unauthorized
    return claims


def deny_keys(claims: dict[str, Any]) -> list[str]:
    return [f"{PREFIX}auth:deny:{claims['jti']}", f"{PREFIX}auth:revoked-before:{claims['sub']}"]


def check_identity(claims: dict[str, Any], denied: list[Any], row: Any) -> None:
    """Deny-list, user state, password fingerprint and logout-all, as the project checks them."""
    if denied[0] is not None or row is None or row["deleted_at"] is not None or row["client_status"] == "blocked":
        raise Unauthorized
    fp = hmac.new(SECRET.encode(), row["password_hash"].encode(), hashlib.sha256).hexdigest()[:16]
    if fp != claims["pwd_fp"] or (denied[1] is not None and claims["iat"] <= float(denied[1])):
        raise Unauthorized


def amount(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.quantize(THOUSANDTH, rounding=ROUND_HALF_UP):.3f}"


def iso(value: dt.datetime | None) -> str | None:
    # The project's wire format (pydantic and orjson): UTC with a "Z".
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def coordinate(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def public_car(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "brand": row["brand"], "model": row["model"], "lat": coordinate(row["lat"]),
            "lon": coordinate(row["lon"]), "fuel_level": amount(row["fuel_level"]),
            "tariff_per_minute": amount(row["tariff_per_minute"])}


def me(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "surname": row["surname"], "last_name": row["last_name"],
            "login": row["login"], "phone": row["phone"], "driver_license": row["driver_license"],
            "role": row["role_id"], "deleted_at": iso(row["deleted_at"])}


def message(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "chat_id": row["chat_id"], "sender_id": row["sender_id"], "text": row["text"],
            "client_id": row["client_id"], "created_at": iso(row["created_at"])}


def booking(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "car": row["car_id"], "user": row["user_id"], "status": row["status"],
            "tariff_per_minute": amount(row["tariff_per_minute"]), "reserved_until": iso(row["reserved_until"]),
            "started_at": iso(row["started_at"]), "finished_at": iso(row["finished_at"]),
            "duration_s": row["duration_s"], "cost": amount(row["cost"]),
            "start_lat": coordinate(row["start_lat"]), "start_lon": coordinate(row["start_lon"]),
            "start_fuel_level": amount(row["start_fuel_level"]), "end_lat": coordinate(row["end_lat"]),
            "end_lon": coordinate(row["end_lon"]), "end_fuel_level": amount(row["end_fuel_level"]),
            "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"])}


def record_values(start: Any, user_id: int, body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The computed record of one trip, and the RECORD_SQL arguments (snapshot id filled in later)."""
    city, area = int(body["distance_city_km"]), int(body["distance_area_km"])
    refueled, used = Decimal(str(body["fuel_refueled"])), Decimal(str(body["fuel_used"]))
    used_city = (start["city_norm"] * city).quantize(THOUSANDTH)
    used_area = (start["area_norm"] * area).quantize(THOUSANDTH)
    values = {"odometer_before": start["odometer"], "fuel_before_departure": start["fuel"],
              "distance_total_km": city + area, "odometer_after": start["odometer"] + city + area,
              "fuel_used_city": used_city, "fuel_used_area": used_area, "fuel_used_normal": used_city + used_area,
              "fuel_on_return": start["fuel"] + refueled - used}
    args = [start["id"], start["car_id"], None, start["city_norm"], start["area_norm"], body.get("target", ""),
            dt.time.fromisoformat(body["departure_time"]), dt.time.fromisoformat(body["arrival_time"]),
            city, area, refueled, used, *values.values()]
    return values, args


def record(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if isinstance(value, Decimal):
            out[key] = amount(value)
        elif isinstance(value, dt.datetime):
            out[key] = iso(value)
        elif isinstance(value, dt.time):
            out[key] = value.isoformat()
        else:
            out[key] = value
    out["passenger_car_waybill"] = out.pop("waybill_id")
    return out


def event(channel: str, name: str, data: Any) -> tuple[str, dict[str, Any]]:
    """(Redis channel, frame) of one event, named the way the project names its channels."""
    return "{" + PREFIX + "rt:" + channel + "}", {"type": "event", "channel": channel, "event": name, "data": data}
