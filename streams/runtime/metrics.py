"""Prometheus metrics of one worker, on their own registry (nothing global).

Names follow Prometheus conventions (``driftline_`` prefix, base units): whatever
only grows — inputs, dead letters, alerts, windows, label join events — is a
counter named ``…_total``, so ``rate()`` and ``increase()`` apply; gauges hold
values that go up and down. Per-model series are bounded: past ``max_series``
label sets, new ones are dropped and counted instead of growing without limit.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from detectors.monitor import WindowReport
from streams.core.bounds import Retired
from streams.version import driftline_version

# The label join's cumulative counts (LabelEngine.summary); "waiting" is a level, not a count.
LABEL_EVENT_STATUSES = ("predictions", "labels", "joined", "duplicates", "unmatched")


class LabelEventCounts(Collector):
    """``driftline_label_events_total``: the label join's counts, exported as counters.

    The counts live in each partition's checkpointed label state, not in this
    process, so a ``Counter`` that this process increments would restart at zero
    on every restart and rebalance while the state's totals carry on. This
    collector exports the state's own totals with the counter type (Prometheus
    treats a drop, after a restore from an older checkpoint, as a counter reset).

    Examples
    --------
    >>> counts = LabelEventCounts()
    >>> counts.set("fraud", "joined", 7)
    >>> [(s.name, s.labels, s.value) for family in counts.collect() for s in family.samples]
    [('driftline_label_events_total', {'model_id': 'fraud', 'status': 'joined'}, 7.0)]
    """

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str], float] = {}
        # Written by the worker's loop, read by the exporter's HTTP thread.
        self._lock = threading.Lock()

    def set(self, model_id: str, status: str, total: float) -> None:
        """Record the current total of one model's ``status`` count."""
        with self._lock:
            self._totals[(model_id, status)] = float(total)

    def describe(self) -> Iterator[CounterMetricFamily]:
        """The family without samples (for the registry's duplicate-name check)."""
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        """The family with one sample per (model, status) seen."""
        family = self._family()
        with self._lock:
            totals = sorted(self._totals.items())
        for (model_id, status), total in totals:
            family.add_metric([model_id, status], total)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "driftline_label_events", "Label join events per model since its monitoring "
            "began (status: predictions, labels, joined, duplicates, unmatched).",
            labels=["model_id", "status"])


class WorkerMetrics:
    """Counters, gauges and histograms a worker updates as it runs."""

    def __init__(self, max_series: int = 5000) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.max_series = max_series
        self._series: set[tuple[str, ...]] = set()
        # Each report series' drift-score and effect-size gauges, found once: prometheus'
        # ``labels()`` validates and hashes its labels at every call (~2 µs each).
        self._report_gauges: dict[tuple[str, ...], tuple[Gauge, Gauge]] = {}
        r = self.registry
        self.messages = Counter("driftline_input_messages", "Input messages consumed.",
                                ["topic"], registry=r)
        self.events = Counter("driftline_input_events", "Valid input events processed.",
                              ["topic"], registry=r)
        self.dead_letters = Counter("driftline_dead_letters", "Inputs sent to the dead-letter "
                                    "topic.", ["error"], registry=r)
        self.alerts = Counter("driftline_alerts", "Alert events published.", ["kind", "status"],
                              registry=r)
        self.alerts_suppressed = Counter(
            "driftline_alerts_suppressed", "Alert firings held back, by reason: cooldown (the "
            "condition resolved moments ago) or rate_limit (the model's hourly limit).",
            ["reason"], registry=r)
        self.windows = Counter("driftline_windows", "Monitor windows closed.", registry=r)
        self.batch_seconds = Histogram(
            "driftline_batch_duration_seconds", "Time to process one consumed batch.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=r)
        self.checkpoint_seconds = Histogram(
            "driftline_checkpoint_duration_seconds", "Time to flush outputs and write a "
            "checkpoint.", buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0), registry=r)
        self.checkpoint_bytes = Gauge("driftline_checkpoint_size_bytes", "Size of the last "
                                      "checkpoint document.", ["partition"], registry=r)
        self.lag = Gauge("driftline_consumer_lag_messages", "High watermark minus next offset "
                         "(meaningless on Tansu, whose watermark is wrong).",
                         ["topic", "partition"], registry=r)
        self.assigned = Gauge("driftline_assigned_partitions", "Input partitions assigned to "
                              "this worker.", registry=r)
        self.models = Gauge("driftline_monitored_models", "Model versions monitored by this "
                            "worker.", registry=r)
        self.drift_score = Gauge(
            "driftline_drift_score", "Last window's test statistic divided by its alert "
            "threshold (>= 1 means the test fired).",
            ["model_id", "model_version", "kind", "feature", "check"], registry=r)
        self.effect_size = Gauge(
            "driftline_drift_effect_size", "Last window's effect size (PSI, rate increase, …).",
            ["model_id", "model_version", "kind", "feature", "check"], registry=r)
        self.label_events = LabelEventCounts()
        r.register(self.label_events)
        self.labels_waiting = Gauge("driftline_labels_waiting", "Labels that arrived before "
                                    "their prediction and wait for it, per model.",
                                    ["model_id"], registry=r)
        self.label_coverage = Gauge("driftline_label_coverage_ratio", "Joined labels / "
                                    "predictions per model.", ["model_id"], registry=r)
        self.label_delay = Gauge("driftline_label_delay_seconds", "Label delay quantile (upper "
                                 "bound of its bucket).", ["model_id", "quantile"], registry=r)
        self.performance = Gauge(
            "driftline_model_performance", "Realized performance from joined labels (scope: "
            "window or reference).", ["model_id", "model_version", "metric", "scope"],
            registry=r)
        self.segment_performance = Gauge(
            "driftline_segment_performance", "Realized performance of one segment value "
            "(segment: name=value) in its last closed window; at most labels.max_segments "
            "segments per model version.", ["model_id", "model_version", "segment", "metric"],
            registry=r)
        self.estimated_accuracy = Gauge(
            "driftline_estimated_accuracy", "Label-free accuracy estimate of the last window.",
            ["model_id", "model_version"], registry=r)
        self.versions_retired = Counter(
            "driftline_model_versions_retired", "Model versions no longer monitored, by reason: "
            "idle (no predictions for limits.idle_expiry_s of event time) or versions_per_model "
            "(a new version took the place of the idlest, limits.max_versions_per_model).",
            ["reason"], registry=r)
        self.limit_hits = Counter(
            "driftline_limit_hits", "Times a limit took effect without refusing events, by "
            "limit: features_per_model (features of a new model version left unmonitored, "
            "limits.max_features_per_model), categories_per_feature (a window tested against a "
            "full category tally, monitor.max_tracked_categories), step_bytes (a step's run of "
            "messages cut at limits.max_step_bytes). Events refused by a limit are dead letters "
            "(driftline_dead_letters_total{error=\"too_many_models\"}).", ["limit"], registry=r)
        self.series_dropped = Counter("driftline_metric_series_dropped", "Per-model series not "
                                      "created because max_series was reached.", registry=r)
        # Faults the worker survives (streams/runtime/checkpointing.py, state/redis_retry.py).
        self.redis_up = Gauge("driftline_redis_up", "1 while Redis answers; 0 while the worker "
                              "waits for it, processing paused.", registry=r)
        self.redis_up.set(1)
        self.redis_outages = Counter("driftline_redis_outages", "Redis outages waited out "
                                     "(processing paused, then resumed where it was).",
                                     registry=r)
        self.partitions_fenced = Counter(
            "driftline_partitions_fenced", "Partitions dropped because a newer owner claimed "
            "them (this worker was paused past its session): a checkpoint write was refused, "
            "or a check before a batch found the newer claim.", registry=r)
        self.checkpoint_lost = Counter(
            "driftline_checkpoint_lost", "Checkpoints gone from Redis while this worker owned "
            "them (Redis restarted empty): written again whole from memory.", registry=r)
        self.monitor_resets = Counter(
            "driftline_monitor_resets", "Partitions assigned without a checkpoint although the "
            "group had committed offsets: their monitors start afresh (policy: resume from the "
            "committed offsets, or rewind to the earliest).", ["policy"], registry=r)
        self.checkpoint_models = Counter(
            "driftline_checkpoint_models_written", "Model states written by checkpoints (only "
            "those that changed since the partition's previous checkpoint).", registry=r)
        Info("driftline_build", "The driftline version this worker runs (value always 1).",
             registry=r).info({"version": driftline_version()})

    def observe_report(self, model_id: str, model_version: str, report: WindowReport) -> None:
        """Record the statistics of one window report (closed, or a prompt partial one)."""
        if not report.partial:
            self.windows.inc()
        gauges = self._report_gauges
        for finding in report.findings:
            labels = (model_id, model_version, finding.kind, finding.feature, finding.check)
            pair = gauges.get(labels)
            if pair is None:
                if len(self._series) >= self.max_series:
                    self.series_dropped.inc()
                    continue
                self._series.add(labels)
                pair = gauges[labels] = (self.drift_score.labels(*labels),
                                         self.effect_size.labels(*labels))
            result = finding.result
            threshold = result.threshold
            score = result.statistic / threshold if threshold and math.isfinite(threshold) \
                else 0.0
            pair[0].set(score)
            pair[1].set(result.effect_size)

    def observe_bounds(self, retired: Iterable[Retired], limited: Mapping[str, int]) -> None:
        """Count the model versions a step retired and the limits that took effect in it."""
        for version in retired:
            self.versions_retired.labels(version.reason).inc()
        for limit, count in limited.items():
            self.limit_hits.labels(limit).inc(count)

    def observe_labels(self, summary: dict[str, dict[str, Any]]) -> None:
        """Record one partition's label summary (see :meth:`LabelEngine.summary`)."""
        for model_id, entry in summary.items():
            if (model_id,) not in self._series:
                if len(self._series) >= self.max_series:
                    self.series_dropped.inc()
                    continue
                self._series.add((model_id,))
            for status in LABEL_EVENT_STATUSES:
                self.label_events.set(model_id, status, entry[status])
            self.labels_waiting.labels(model_id).set(entry["waiting"])
            if entry["coverage"] is not None:
                self.label_coverage.labels(model_id).set(entry["coverage"])
            for quantile in ("p50", "p90"):
                value = entry.get(f"delay_{quantile}_s")
                if value is not None:
                    self.label_delay.labels(model_id, quantile[1:]).set(value)
            version = entry.get("version") or ""
            performance = entry.get("performance") or {}
            for scope in ("window", "reference"):
                for metric, value in (performance.get(scope) or {}).items():
                    if isinstance(value, int | float) and math.isfinite(value):
                        self.performance.labels(model_id, version, metric, scope).set(value)
            for segment, metrics in (entry.get("segments") or {}).items():
                for metric, value in (metrics.get("window") or {}).items():
                    if isinstance(value, int | float) and math.isfinite(value):
                        self.segment_performance.labels(model_id, version, segment,
                                                        metric).set(value)
            estimate = entry.get("estimate") or {}
            value = estimate.get("estimated_accuracy")
            if isinstance(value, int | float) and math.isfinite(value):
                self.estimated_accuracy.labels(model_id, version).set(value)

    def redis_changed(self, up: bool) -> None:
        """Record that Redis stopped (``False``) or started again (``True``) answering."""
        self.redis_up.set(1 if up else 0)
        if not up:
            self.redis_outages.inc()

    def observe_alert(self, alert: dict[str, Any]) -> None:
        """Count one published alert."""
        self.alerts.labels(alert["kind"], alert["status"]).inc()

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format (what ``/metrics`` answers)."""
        return bytes(generate_latest(self.registry))
