"""http_requests_total and http_request_duration_seconds as Prometheus reads them (backend.metrics.HttpStats)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from backend.metrics import HttpStats


def samples(text: str, family: str) -> list[tuple[str, dict[str, str], float]]:
    return [(sample.name, sample.labels, sample.value) for metrics in text_string_to_metric_families(text)
            if metrics.name == family for sample in metrics.samples]


async def test_scraped_request_series_are_consistent(client: TestClient) -> None:
    for _ in range(3):
        assert (await client.get("/health/live")).status == 200
    assert (await client.get("/no/such/page")).status == 404
    text = await (await client.get("/metrics")).text()
    counts = {(labels["route"], labels["status"]): value
              for name, labels, value in samples(text, "http_requests") if name == "http_requests_total"}
    assert counts[("/health/live", "200")] == 3 and counts[("unmatched", "404")] == 1
    latency = [(name, labels, value) for name, labels, value in samples(text, "http_request_duration_seconds")
               if labels.get("route") == "/health/live"]
    buckets = [value for name, labels, value in latency if name.endswith("_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == 3           # cumulative, +Inf holds them all
    count = next(value for name, _, value in latency if name.endswith("_count"))
    total = next(value for name, _, value in latency if name.endswith("_sum"))
    assert count == 3 and 0 < total < 10


def test_a_duration_on_a_bound_falls_in_that_bucket() -> None:
    """`le` is inclusive: exactly 5 ms counts as ≤ 0.005, a hair more does not."""
    stats = HttpStats()
    stats.observe("GET", "/x", 200, 0.005)
    stats.observe("GET", "/x", 200, 0.0050001)
    stats.observe("GET", "/x", 200, 99.0)                          # past the last bound: +Inf only
    (latency,) = [family for family in stats.collect() if family.name == "http_request_duration_seconds"]
    cumulative = {sample.labels["le"]: sample.value for sample in latency.samples if sample.name.endswith("_bucket")}
    assert (cumulative["0.0025"], cumulative["0.005"], cumulative["0.01"], cumulative["10.0"]) == (0, 1, 2, 2)
    assert cumulative["+Inf"] == 3
    assert stats.count("GET", {"/x", "/y"}, 200) == 3 and stats.count("POST", {"/x"}, 200) == 0
