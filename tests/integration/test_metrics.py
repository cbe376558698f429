"""/metrics on a running worker parses with prometheus-client's own text parser."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.runtime.topics import ensure_topics
from streams.settings import Settings

from .conftest import as_arrays, events, produce, wait_for

pytestmark = pytest.mark.integration


def scrape(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    families["__text__"] = text
    return families


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    for key, family in families.items():
        if key == "__text__":
            continue
        for item in family.samples:
            if item.name == name and all(item.labels.get(k) == v for k, v in labels.items()):
                return float(item.value)
    raise AssertionError(f"no sample {name} {labels} in:\n{families['__text__']}")


def test_metrics_endpoint_reports_events_dead_letters_and_drift_scores(
        settings: Settings, start_worker: Any) -> None:
    ensure_topics(settings)
    running = start_worker(settings)
    produce(settings, as_arrays(events(1000) + events(1000, start=1000, shift=1.5)) + [b"{bad"])
    assert wait_for(lambda: running.worker.metrics_port is not None)

    def settled() -> bool:
        # The worker counts a message before its step runs: wait for the step's metrics.
        try:
            families = scrape(running.worker.metrics_port)
            return (sample(families, "driftline_windows_total") == 2 and
                    sample(families, "driftline_dead_letters_total", error="invalid_json") == 1)
        except AssertionError:
            return False

    assert wait_for(settled), running.worker.stats
    families = scrape(running.worker.metrics_port)
    text = families["__text__"]
    topic = settings.topics.name("predictions")
    assert sample(families, "driftline_input_events_total", topic=topic) == 2000
    assert sample(families, "driftline_input_messages_total", topic=topic) == 21
    assert sample(families, "driftline_dead_letters_total", error="invalid_json") == 1
    assert sample(families, "driftline_windows_total") == 2
    assert sample(families, "driftline_alerts_total", kind="data_drift", status="firing") >= 1
    assert sample(families, "driftline_drift_score", model_id="m1", model_version="v1",
                  kind="data_drift", feature="x", check="distribution") >= 1.0
    assert sample(families, "driftline_drift_score", model_id="m1", model_version="v1",
                  kind="data_drift", feature="c", check="distribution") < 1.0, text
    assert families["driftline_batch_duration_seconds"].type == "histogram"
