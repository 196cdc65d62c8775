"""Which events a change of a car or a booking publishes (SPEC §4.5).

Callers collect them in the Outbox of `Bus.deferred()`, so nothing leaves before the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.realtime.bus import Bus, Outbox
from backend.realtime.names import DASHBOARD, user_channel
from backend.sharing.areas import area_news
from backend.sharing.const import CARS
from backend.sharing.schemas import car_view, public_view

PUBLIC_FIELDS = ("brand", "model", "fuel_level", "tariff_per_minute")


def bookable(car: Mapping[str, Any]) -> bool:
    """A free car: shared, available and not deleted (the public list's rule)."""
    return bool(car["shared"]) and car["state"] == "available" and car["deleted_at"] is None


def car_changed(out: Outbox, after: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> None:
    """Queue the events of one car's change; without `before`, `cars` gets an upsert or a removal.

    The news of `cars` is also said on the car's tile channels (SPEC §13.3, areas.py).
    """
    out.add(DASHBOARD, "car.updated", car_view(after))
    now_free = bookable(after)
    was_free = bookable(before) if before is not None else None
    city = city_news(after, before, now_free, was_free)
    if city is not None:
        out.add(CARS, *city)
    for channel, event, data in area_news(after, before, now_free, was_free, city):
        out.add(channel, event, data)


def city_news(after: Mapping[str, Any], before: Mapping[str, Any] | None, now_free: bool,
              was_free: bool | None) -> tuple[str, Any] | None:
    """The event and data of one car's change on the whole city's `cars`, or None."""
    if now_free and was_free and before is not None:
        if (before["lat"], before["lon"]) != (after["lat"], after["lon"]):
            return "car.moved", public_view(after)
        if any(before[name] != after[name] for name in PUBLIC_FIELDS):
            return "car.available", public_view(after)     # same car, new details: an upsert
        return None
    if now_free:
        return "car.available", public_view(after)
    if was_free is not False:
        return "car.unavailable", {"id": after["id"]}
    return None


def booking_changed(out: Outbox, event: str, booking: dict[str, Any]) -> None:
    """Queue booking.<event> for operators and for the booking's user (SPEC §4.5)."""
    out.add(DASHBOARD, f"booking.{event}", booking)
    out.add(user_channel(booking['user']), f"booking.{event}", booking)


async def publish_car_change(bus: Bus, after: Mapping[str, Any],
                             before: Mapping[str, Any] | None = None) -> None:
    """For other domains (fleet's /api/passenger-cars/), after their commit: publish a car's change."""
    async with bus.deferred() as out:
        car_changed(out, after, before)
