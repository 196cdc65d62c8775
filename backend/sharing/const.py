"""Error codes and refusals of the car-sharing surface (SPEC §4.3, §11.14), in one place."""

from __future__ import annotations

from typing import Final

from backend.errors import ApiError, conflict, forbidden, missing_pk
from backend.principal import Permission

CARS: Final = "cars"                   # the public channel of free cars (SPEC §4.5)

CAR_NOT_AVAILABLE: Final = "car_not_available"
ACTIVE_BOOKING_EXISTS: Final = "active_booking_exists"
INVALID_TRANSITION: Final = "invalid_transition"
RESERVATION_EXPIRED: Final = "reservation_expired"
CAR_HAS_ACTIVE_BOOKING: Final = "car_has_active_booking"
CLIENT_NOT_APPROVED: Final = "client_not_approved"

BOOK: Final = Permission.BOOK_CARS
BOOK_MOBILE: Final = Permission.USE_MOBILE_BOOKING
MANAGE_FLEET: Final = Permission.MANAGE_FLEET
MANAGE_CLIENTS: Final = Permission.MANAGE_CLIENTS
DASHBOARD: Final = Permission.VIEW_DASHBOARD
OPERATORS: Final = (MANAGE_CLIENTS, DASHBOARD)       # see every booking, cancel any (SPEC §4.3, §11.15)


def car_not_available() -> ApiError:
    return conflict(CAR_NOT_AVAILABLE, "Автомобиль недоступен для бронирования.")


def active_booking_exists() -> ApiError:
    return conflict(ACTIVE_BOOKING_EXISTS, "У вас уже есть активное бронирование.")


def invalid_transition(status: str, action: str) -> ApiError:
    return conflict(INVALID_TRANSITION, f"Нельзя выполнить «{action}» для бронирования в статусе «{status}».")


def reservation_expired() -> ApiError:
    return conflict(RESERVATION_EXPIRED, "Время бронирования истекло.")


def car_has_active_booking() -> ApiError:
    return conflict(CAR_HAS_ACTIVE_BOOKING, "У автомобиля есть активное бронирование.")


def client_not_approved() -> ApiError:
    return forbidden("Учётная запись клиента не одобрена.", CLIENT_NOT_APPROVED)


def unknown_car(car_id: int) -> ApiError:
    """The DRF answer for a primary key in a body that names no row."""
    return missing_pk("car", car_id)
