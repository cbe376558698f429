"""/metrics on a running worker parses with prometheus-client's own text parser."""

from __future__ import annotations

import urllib.request
from importlib.metadata import version
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
    assert wait_for(lambda: running.web_port > 0)

    def settled() -> bool:
        # The worker counts a message before its step runs: wait for the step's metrics.
        try:
            families = scrape(running.web_port)
            return (sample(families, "driftline_windows_total") == 2 and
                    sample(families, "driftline_dead_letters_total", error="invalid_json") == 1)
        except AssertionError:
            return False

    assert wait_for(settled), running.worker.stats
    families = scrape(running.web_port)
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
    assert families["driftline_build_info"].type == "gauge"
    assert sample(families, "driftline_build_info", version=version("driftline")) == 1


def test_label_join_counts_are_counters_that_keep_counting(settings: Settings,
                                                           start_worker: Any) -> None:
    # driftline_label_events was a gauge: cumulative counts that rate() could not read.
    ensure_topics(settings)
    running = start_worker(settings)
    produce(settings, as_arrays(events(600)))

    def label(i: int, model: str = "m1") -> dict[str, Any]:
        return {"model_id": model, "event_id": f"{model}-{i}", "ts": 1_700_000_000.0 + i + 5,
                "label": i % 2}

    # 300 labels, one of them twice, and one for a prediction that never came.
    first = [label(i) for i in range(300)] + [label(7), label(10_000)]
    produce(settings, as_arrays(first), topic_role="labels")
    assert wait_for(lambda: running.web_port > 0)

    def counted(status: str, expected: float) -> bool:
        try:
            return sample(scrape(running.web_port), "driftline_label_events_total",
                          model_id="m1", status=status) == expected
        except AssertionError:
            return False

    assert wait_for(lambda: counted("joined", 300)), scrape(running.web_port)[
        "__text__"]
    families = scrape(running.web_port)
    assert families["driftline_label_events"].type == "counter"
    assert "driftline_label_events{" not in families["__text__"]
    assert sample(families, "driftline_label_events_total", model_id="m1",
                  status="labels") == 302
    assert sample(families, "driftline_label_events_total", model_id="m1",
                  status="duplicates") == 1
    assert families["driftline_labels_waiting"].type == "gauge"
    produce(settings, as_arrays([label(i) for i in range(300, 600)]), topic_role="labels")
    assert wait_for(lambda: counted("joined", 600)), scrape(running.web_port)[
        "__text__"]
