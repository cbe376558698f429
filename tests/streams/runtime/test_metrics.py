"""The worker's Prometheus exposition: counters for counts, gauges for levels, build info."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detectors.base import TestResult
from detectors.monitor import Finding, WindowReport
from streams.runtime.metrics import WorkerMetrics

# Every gauge a worker exports, each a level that can go down as well as up. A new
# gauge has to be added here on purpose: a cumulative count belongs in a counter.
LEVELS = {
    "driftline_checkpoint_size_bytes", "driftline_consumer_lag_messages",
    "driftline_assigned_partitions", "driftline_monitored_models", "driftline_drift_score",
    "driftline_drift_effect_size", "driftline_labels_waiting", "driftline_label_coverage_ratio",
    "driftline_label_delay_seconds", "driftline_model_performance",
    "driftline_segment_performance", "driftline_estimated_accuracy", "driftline_build_info",
    "driftline_redis_up",
}


def summary(predictions: int, labels: int, joined: int, waiting: int) -> dict[str, Any]:
    return {"fraud": {"predictions": predictions, "labels": labels, "joined": joined,
                      "duplicates": 1, "unmatched": 2, "waiting": waiting, "coverage": 0.5,
                      "delay_p50_s": 10.0, "delay_p90_s": 60.0, "version": "v1",
                      "performance": {"window": {"accuracy": 0.9}, "reference": None},
                      "estimate": None, "segments": {}}}


def exposition(metrics: WorkerMetrics) -> tuple[str, dict[str, Any]]:
    text = generate_latest(metrics.registry).decode()
    return text, {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Any], family: str, **labels: str) -> float:
    for item in families[family].samples:
        if item.labels == labels:
            return float(item.value)
    raise AssertionError(f"no {family} sample {labels}")


def test_label_join_counts_are_exported_as_counters() -> None:
    metrics = WorkerMetrics()
    metrics.observe_labels(summary(predictions=100, labels=40, joined=30, waiting=5))
    text, families = exposition(metrics)
    counts = families["driftline_label_events"]
    assert counts.type == "counter"
    assert {s.name for s in counts.samples} == {"driftline_label_events_total"}
    assert {s.labels["status"] for s in counts.samples} == {
        "predictions", "labels", "joined", "duplicates", "unmatched"}
    assert value(families, "driftline_label_events", model_id="fraud", status="joined") == 30
    assert "# TYPE driftline_label_events gauge" not in text
    # How many labels wait for their prediction is a level: it goes down as they join.
    assert families["driftline_labels_waiting"].type == "gauge"
    assert value(families, "driftline_labels_waiting", model_id="fraud") == 5
    metrics.observe_labels(summary(predictions=250, labels=90, joined=85, waiting=0))
    _, families = exposition(metrics)
    assert value(families, "driftline_label_events", model_id="fraud", status="joined") == 85
    assert value(families, "driftline_label_events", model_id="fraud",
                 status="predictions") == 250
    assert value(families, "driftline_labels_waiting", model_id="fraud") == 0


def report(statistic: float, *features: str) -> WindowReport:
    result = TestResult(detector="ks", drift=False, statistic=statistic, threshold=0.5,
                        p_value=0.5, effect_size=statistic / 10, severity="none",
                        window_events=100, explanation="", reference={})
    return WindowReport(index=0, start_ts=0.0, end_ts=1.0, events=100, findings=[
        Finding(kind="data_drift", feature=name, check="distribution", result=result)
        for name in features])


def test_window_reports_set_their_series_each_time_within_the_series_bound() -> None:
    metrics = WorkerMetrics(max_series=2)
    metrics.observe_report("fraud", "v1", report(0.1, "amount", "age"))
    metrics.observe_report("fraud", "v1", report(0.4, "amount", "age", "country"))
    _, families = exposition(metrics)
    series = dict(model_id="fraud", model_version="v1", kind="data_drift",
                  check="distribution")
    # The second report's values, not the first's: each report sets its series again.
    assert value(families, "driftline_drift_score", feature="amount", **series) == 0.8
    assert value(families, "driftline_drift_effect_size", feature="age", **series) == 0.04
    # A third series would pass max_series: dropped, and counted.
    assert {s.labels["feature"] for s in families["driftline_drift_score"].samples} == {
        "amount", "age"}
    assert value(families, "driftline_metric_series_dropped") == 1


def test_build_info_carries_the_installed_version() -> None:
    _, families = exposition(WorkerMetrics())
    info = families["driftline_build_info"]
    assert info.type == "gauge"
    assert [(s.name, s.labels, s.value) for s in info.samples] == [
        ("driftline_build_info", {"version": version("driftline")}, 1.0)]


def test_every_gauge_is_a_level_and_every_counter_ends_in_total() -> None:
    metrics = WorkerMetrics()
    metrics.observe_labels(summary(predictions=1, labels=1, joined=1, waiting=0))
    metrics.lag.labels("t", "0").set(1)
    metrics.checkpoint_bytes.labels("0").set(1)
    _, families = exposition(metrics)
    # prometheus-client adds X_created (a counter's or histogram's creation time) as a gauge.
    gauges = {name for name, family in families.items()
              if family.type == "gauge" and not name.endswith("_created")}
    assert gauges <= LEVELS, f"new gauge(s) {sorted(gauges - LEVELS)}: levels or counts?"
    counters = [family for family in families.values() if family.type == "counter"]
    assert len(counters) >= 8
    for family in counters:
        assert all(s.name == f"{family.name}_total" or s.name == f"{family.name}_created"
                   for s in family.samples), family.name
