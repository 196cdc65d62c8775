"""GET /api/ops/stats: this instance's own counters as a short time series, for the dashboard's plots.

A background task samples the Prometheus counters of `backend.metrics` and the hub's socket count
every SAMPLE_EVERY seconds and keeps the last WINDOW of them in memory, so a reloaded page draws
its plots at once. Figures are per instance (like /metrics): behind a balancer each page sees the
instance that answered it.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from aiohttp import web
from prometheus_client import Counter
from pydantic import BaseModel, Field

from backend import keys
from backend.api.responses import respond
from backend.api.routing import permission, route
from backend.api.validation import read_query
from backend.metrics import Metrics
from backend.principal import Permission
from backend.tasks import periodic

SAMPLE_EVERY = 2.0                    # seconds between samples
WINDOW = 450                          # samples kept: 15 minutes
# A booking is a 201 of the booking route (with or without its trailing slash): the HTTP counter
# already holds it, so no domain has to count for operations.
BOOKING_ROUTES = frozenset({"/api/bookings/", "/api/bookings"})


@dataclass(frozen=True, slots=True)
class Sample:
    t: float                     # unix time, seconds
    events_published: float      # cumulative, this instance
    events_delivered: float      # cumulative, frames written to this instance's sockets
    bookings: float              # cumulative 201s of POST /api/bookings on this instance
    sockets: int                 # open websockets now


def _total(counter: Counter) -> float:
    """The value of an unlabelled counter (its `_total` sample)."""
    return sum(sample.value for metric in counter.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


def _bookings(metrics: Metrics) -> float:
    return float(metrics.http.count("POST", BOOKING_ROUTES, 201))


def take_sample(app: web.Application) -> Sample:
    """Read the counters now (no I/O)."""
    metrics = app[keys.METRICS]
    sockets = 0
    with contextlib.suppress(KeyError):
        sockets = app[keys.CONNECTION_COUNT]()
    return Sample(t=round(time.time(), 3), events_published=_total(metrics.events_published),
                  events_delivered=_total(metrics.events_delivered), bookings=_bookings(metrics),
                  sockets=sockets)


def _bind_sampler(app: web.Application) -> Callable[[], Awaitable[None]]:
    samples: deque[Sample] = app[keys.OPS_SAMPLES]

    async def sample() -> None:
        samples.append(take_sample(app))

    return sample


# Sample every SAMPLE_EVERY seconds for the app's lifetime, like every other periodic task.
sampler_ctx = periodic("ops-sampler", lambda app: SAMPLE_EVERY, _bind_sampler)


class StatsQuery(BaseModel):
    since: float | None = Field(None, ge=0, description="Only samples taken after this unix time")


class SampleOut(BaseModel):
    t: float = Field(description="Unix time of the sample, seconds")
    events_published: float = Field(description="Events this instance published, since it started")
    events_delivered: float = Field(description="Event frames written to this instance's sockets")
    bookings: float = Field(description="Bookings created through this instance (201 of POST /api/bookings)")
    sockets: int = Field(description="Open websockets on this instance")


class StatsOut(BaseModel):
    instance: str
    interval: float = Field(description="Seconds between samples")
    now: SampleOut = Field(description="The counters at the time of this answer")
    samples: list[SampleOut] = Field(description="Older samples, oldest first (at most 15 minutes)")


async def stats(request: web.Request) -> web.Response:
    """GET /api/ops/stats: the counters now and their recent samples."""
    query = read_query(request, StatsQuery)
    app = request.app
    since = query.since or 0.0
    samples = [asdict(sample) for sample in app[keys.OPS_SAMPLES] if sample.t > since]
    body = StatsOut(instance=app[keys.INSTANCE], interval=SAMPLE_EVERY, now=asdict(take_sample(app)),
                    samples=samples)
    return respond(body.model_dump(), headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app[keys.OPS_SAMPLES] = deque(maxlen=WINDOW)
    app.cleanup_ctx.append(sampler_ctx)
    route(app, "GET", "/api/ops/stats", stats, summary="This instance's counters for the dashboard's plots",
          tag="operations", query=StatsQuery, response=StatsOut, auth=permission(Permission.VIEW_DASHBOARD))
