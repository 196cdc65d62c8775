"""Prometheus metrics of one app instance, on a registry of its own (tests run several apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _PoolCollector(Collector):
    """Reads DB pool usage at scrape time instead of tracking it on every checkout."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("db_pool_connections", "Database pool connections by state", labels=["state"])
        for state, value in self._read().items():
            family.add_metric([state], value)
        yield family


class Metrics:
    """Every metric the service exports (SPEC §9)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter("http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.http_latency = Histogram(
            "http_request_duration_seconds", "HTTP request latency", ["method", "route", "status"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.ws_connections = Gauge("ws_connections", "Open websocket connections", registry=r)
        self.ws_subscriptions = Gauge("ws_subscriptions", "Channel subscriptions of open websockets", registry=r)
        self.events_published = Counter("events_published", "Events published to the bus", registry=r)
        self.events_delivered = Counter("events_delivered", "Event frames written to local websockets", registry=r)
        # Per subscriber: one event can be dropped for several sockets (closed or slow peers).
        self.events_dropped = Counter("events_dropped", "Event frames not written to a local subscriber",
                                      registry=r)
        # Per event: the publish never reached Redis, so no instance's subscribers got it.
        self.events_publish_failed = Counter("events_publish_failed", "Events not published, Redis unavailable",
                                             registry=r)
        self.slow_consumer_closes = Counter("ws_slow_consumer_closes", "Websockets closed with 1013", registry=r)
        self.bus_reconnects = Counter("bus_reconnects", "Redis pub/sub reconnections", registry=r)
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one answered request; label children are looked up once per label set
        (prometheus_client's labels() validates and locks on every call)."""
        key = (method, route, status)
        children = self._http_children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = self._http_children[key] = (self.http_requests.labels(*labels),
                                                   self.http_latency.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)

    def watch_pool(self, read: Callable[[], dict[str, int]]) -> None:
        """Export DB pool usage, read from `read()` at every scrape."""
        self.registry.register(_PoolCollector(read))
