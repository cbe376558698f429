"""The stream step shared by the Kafka worker and offline replay.

``MonitorEngine.process(events)`` groups validated prediction events by model
version, columnarises them, feeds each :class:`detectors.monitor.ModelMonitor`
and runs the alert policy: ``(state, batch) -> (state, outputs)``. It does no
I/O; callers decide where events come from and where outputs go.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from detectors.batch import ColumnBatch
from detectors.monitor import CATEGORICAL, ModelMonitor, WindowReport
from streams.core.alerts import AlertPolicy, AlertRateLimit
from streams.core.bounds import (
    IDLE,
    TOO_MANY_MODELS,
    VERSIONS_PER_MODEL,
    Retired,
    VersionClock,
)
from streams.core.rows import group_rows, take_rows, uniform_models
from streams.core.segment_drift import DRIFT_SEGMENTS, SegmentDrift
from streams.core.silence import Silence
from streams.ingest.columnar import RowProblem, build_batch, infer_schema, output_schema
from streams.ingest.typed import TypedModels
from streams.settings import Settings

STATE_VERSION = 1
FEATURES_PER_MODEL = "features_per_model"
SHORT_WINDOWS = "min_window_events"   # idle windows dropped untested, counted as a limit
CATEGORIES = "categories_per_feature"

log = logging.getLogger(__name__)


@dataclass
class MonitorOutput:
    """What one call of :meth:`MonitorEngine.process` produced."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[tuple[str, str], Any, RowProblem]] = field(default_factory=list)
    """Rows dropped: (model_id, model_version), the event, and why (``row`` is in its group)."""
    windows: int = 0
    reports: list[tuple[str, str, WindowReport]] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)   # held-back firings by reason
    refused: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    """Groups not monitored: (model_id, model_version) -> (dead-letter error, reason)."""
    retired: list[Retired] = field(default_factory=list)
    """Model versions no longer monitored (their label side is to be forgotten too)."""
    limited: dict[str, int] = field(default_factory=dict)
    """What a limit left out without refusing events, by limit (features_per_model)."""
    references: list[tuple[str, str, dict[str, Any], dict[str, float], str | None]] = field(
        default_factory=list)
    """References set: model, version, source, events and span, learned digest (for audit)."""


class MonitorEngine:
    """Monitors and alert policies of every model version seen in one stream scope."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._monitors: dict[tuple[str, str], ModelMonitor] = {}
        # Versions of each model being monitored, in the order they were first seen.
        self._versions: dict[str, dict[str, None]] = {}
        self._clock = VersionClock(settings.limits.idle_expiry_s)
        self._policies: dict[tuple[str, str], AlertPolicy] = {}
        self._rate_limits: dict[str, AlertRateLimit] = {}   # per model, shared by its versions
        self._unattributed: dict[str, dict[str, int]] = {}
        # Models re-baselined by an operator learn from live events, not from their file.
        self._rebaselined: set[tuple[str, str | None]] = set()
        self._references = _load_references(settings)
        self.typed = TypedModels()
        """Models whose events the step decodes straight into typed structs."""
        # Models whose state changed since the last take_changed(): what a checkpoint writes.
        self._changed: set[str] = set()
        self.segments = SegmentDrift(settings.limits.max_drift_segments, self.alert_policy)
        """Drift monitors per segment value of the versions whose first events name segments."""
        self._silence = Silence(settings.ticks)

    def note_rejected(self, model_id: str, field: str) -> None:
        """Count a value refused before its event could be read (e.g. ``1e400``).

        The count joins the next window of the model's next batch, whatever its
        version, so the data-quality check reports it.
        """
        if (model_id not in self._unattributed and model_id not in self._versions
                and len(self._unattributed) >= self.settings.limits.max_models_per_partition):
            return      # a flood of unknown keys: the dead letters still say it all
        counts = self._unattributed.setdefault(model_id, {})
        counts[field] = counts.get(field, 0) + 1

    def __len__(self) -> int:
        """Model versions being monitored."""
        return len(self._monitors)

    @property
    def models(self) -> list[tuple[str, str]]:
        """(model_id, model_version) pairs being monitored."""
        return list(self._monitors)

    def monitor(self, model_id: str, model_version: str) -> ModelMonitor | None:
        """The monitor of a model version, if it has seen events."""
        return self._monitors.get((model_id, model_version))

    def has_model(self, model_id: str) -> bool:
        """Whether any version of ``model_id`` is monitored."""
        return model_id in self._versions

    def rebaseline(self, model_id: str, model_version: str | None, reason: str,
                   at_ts: float) -> list[dict[str, Any]]:
        """Forget the reference of a model (one version, or all): "accept the new normal".

        Open alerts of the affected versions are resolved; the next events of each
        version start a new reference. Returns the resolution alert events.
        """
        alerts: list[dict[str, Any]] = []
        self._rebaselined.add((model_id, model_version))
        self._changed.add(model_id)
        for version in [v for v in self._versions.get(model_id, ())
                        if model_version in (None, v)]:
            alerts += self._drop((model_id, version), reason, at_ts)
        return alerts

    def _drop(self, key: tuple[str, str], reason: str, at_ts: float,
              retire: bool = False) -> list[dict[str, Any]]:
        """Stop monitoring a version: resolve its open alerts, forget all it learned.

        A ``retire``d model's last version takes the model's rate limit with it (the
        label side forgets the model too; a re-baselined one keeps it, shared with
        the label side's policies).
        """
        del self._monitors[key]
        self._changed.add(key[0])
        self.typed.forget(*key)
        self._clock.forget(key)
        alerts = self.segments.drop(key, reason, at_ts)
        versions = self._versions[key[0]]
        del versions[key[1]]
        if not versions:
            del self._versions[key[0]]
            if retire:
                self._rate_limits.pop(key[0], None)
                self._unattributed.pop(key[0], None)
        return (self._policies.pop(key).resolve_all(reason, at_ts) + alerts
                + self._silence.forget(key, not versions, reason, at_ts))

    def heard(self, last_offsets: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
        """Note the offset of each monitored version's last prediction read; resolutions.

        A model's first prediction after a ``no_data`` alert resolves it.
        """
        alerts: list[dict[str, Any]] = []
        for key, offset in last_offsets.items():
            if key in self._monitors:
                alerts += self._silence.heard(key, offset, self._clock.last(key))
        return alerts

    def tick(self, ts: float, predictions_offset: int) -> MonitorOutput:
        """Apply a tick (:mod:`streams.core.silence`): close idle windows, raise ``no_data``."""
        output = MonitorOutput()
        result = self._silence.tick(ts, predictions_offset, self._clock.last)
        self._changed |= result.changed
        output.alerts += result.alerts
        for key in result.idle:
            monitor = self._monitors[key]
            events = monitor.window_events
            report = monitor.close_window(self.settings.ticks.min_window_events)
            if report is None:
                if events:
                    output.limited[SHORT_WINDOWS] = output.limited.get(SHORT_WINDOWS, 0) + 1
                continue
            output.windows += 1
            output.reports.append((key[0], key[1], report))
            output.alerts.extend(self._policies[key].apply(report))
            self._count_full_categories(monitor, report, output)
        return output

    def process(self, events: list[dict[str, Any]]) -> MonitorOutput:
        """Feed validated prediction events (in stream order), dicts or typed structs."""
        groups = group_rows(events)
        uniform_models(events, groups)
        return self.process_groups({key: take_rows(events, rows) for key, rows in groups.items()})

    def process_groups(self, groups: dict[tuple[str, str], list[Any]],
                       fields: dict[tuple[str, str], dict[str, tuple[Any, ...]]] | None = None,
                       ) -> MonitorOutput:
        """Feed events already grouped per (model_id, model_version), each in stream order.

        A group holds event dicts, or typed structs of the version's schema
        (:mod:`streams.ingest.typed`): never both (see :func:`uniform_models`).
        ``fields`` may give a typed group's ``struct_columns``, transposed already.
        """
        fields = fields or {}
        output = MonitorOutput()
        for key, group in groups.items():
            monitor = self._monitors.get(key)
            if monitor is None:
                refusal = self._admit(key, output)
                if refusal is not None:
                    output.refused[key] = refusal
                    continue
                monitor = self._create(key, group, output)
            self._changed.add(key[0])
            batch, problems = build_batch(group, monitor.schema, monitor.outputs, fields.get(key))
            output.problems.extend((key, group[p.row], p) for p in problems)
            for name, count in self._unattributed.pop(key[0], {}).items():
                batch.rejected[name] = batch.rejected.get(name, 0) + count
            if len(batch) == 0:
                continue
            self._clock.seen(key, float(batch.ts.max()))
            policy = self._policies[key]
            staged, complete = monitor.staged, monitor.reference_complete
            reports = monitor.update_many(batch)
            if not complete and monitor.reference_complete:
                output.references.append((*key, {"type": "first_events",
                                                 "events": monitor.config.reference_size},
                                          monitor.reference_window, monitor.reference_digest))
            if staged and not monitor.staged:
                # A version with a few events decodes as dicts; one that keeps sending, typed.
                self.typed.register(*key, monitor.schema)
            for report in reports:
                # A partial report carries a prompt mid-window alarm; only closed windows count.
                output.windows += not report.partial
                output.reports.append((key[0], key[1], report))
                output.alerts.extend(policy.apply(report))
                if not report.partial:
                    self._count_full_categories(monitor, report, output)
            for reason, count in policy.take_suppressed().items():
                output.suppressed[reason] = output.suppressed.get(reason, 0) + count
            if self.segments.max_segments:
                self._feed_segments(key, group, batch, problems, output)
        expiry_s = self.settings.limits.idle_expiry_s
        for key in self._clock.idle():
            self._retire(output, Retired(*key, IDLE, f"expired: no predictions for {expiry_s:g} "
                                         "s of event time (limits.idle_expiry_s)",
                                         self._clock.last(key) + expiry_s))
        return output

    def _feed_segments(self, key: tuple[str, str], group: list[Any], batch: ColumnBatch,
                       problems: list[RowProblem], output: MonitorOutput) -> None:
        alerts, overflow = self.segments.feed(key, group, batch, {p.row for p in problems},
                                              output.suppressed)
        output.alerts += alerts
        if overflow:
            output.limited[DRIFT_SEGMENTS] = output.limited.get(DRIFT_SEGMENTS, 0) + overflow

    def _retire(self, output: MonitorOutput, retired: Retired) -> None:
        output.retired.append(retired)
        output.alerts += self._drop(retired[:2], retired.explanation, retired.at_ts,
                                    retire=True)

    def _count_full_categories(self, monitor: ModelMonitor, report: WindowReport,
                               output: MonitorOutput) -> None:
        """Count the window's categorical tests whose reference tally is full.

        It holds ``monitor.max_tracked_categories`` categories: others went unremembered.
        """
        cap = monitor.config.max_tracked_categories
        for finding in report.findings:
            if (finding.check == "distribution" and finding.result.reference.get(
                    "categories", 0) >= cap and CATEGORICAL in (
                    monitor.schema.get(finding.feature), monitor.outputs.get(finding.feature))):
                output.limited[CATEGORIES] = output.limited.get(CATEGORIES, 0) + 1

    def _admit(self, key: tuple[str, str], output: MonitorOutput) -> tuple[str, str] | None:
        """Make room for a new version; or why its events are refused (error, reason).

        Checked once per new model version, never per event.
        """
        limits = self.settings.limits
        model_id, model_version = key
        versions = self._versions.get(model_id)
        if versions is None:
            if len(self._versions) >= limits.max_models_per_partition:
                return TOO_MANY_MODELS, (
                    f"model_id {model_id!r} not monitored: this partition already monitors "
                    f"{len(self._versions)} models (limits.max_models_per_partition); idle "
                    f"ones expire after {limits.idle_expiry_s:g} s (limits.idle_expiry_s)")
            return None
        if len(versions) >= limits.max_versions_per_model:
            keys = [(model_id, v) for v in versions]
            idlest, newest = self._clock.idlest(keys), max(map(self._clock.last, keys))
            log.info("model %s: version %s retired for version %s (limits.max_versions_per_model"
                     " = %d)", model_id, idlest[1], model_version, limits.max_versions_per_model)
            self._retire(output, Retired(
                *idlest, VERSIONS_PER_MODEL, f"retired: version {model_version!r} is one more "
                f"than limits.max_versions_per_model ({limits.max_versions_per_model})", newest))
        return None

    def _create(self, key: tuple[str, str], events: list[dict[str, Any]],
                output: MonitorOutput) -> ModelMonitor:
        model_id, model_version = key
        reference = self._references.get(model_id)
        if (reference is not None and reference["model_version"] in (None, model_version)
                and not {(model_id, None), key} & self._rebaselined):
            monitor = ModelMonitor.from_state(reference["monitor"])
            output.references.append((model_id, model_version, reference["audit_source"],
                                      monitor.reference_window, monitor.reference_digest))
        else:
            declared = self.settings.models.get(model_id)
            if declared and declared.features:
                schema = dict(declared.features)
            else:
                schema = self._inferred_schema(model_id, events, output)
            outputs, config = output_schema(events), self.settings.monitor
            if self.segments.wanted(events):
                config, each = config.split_budget(self.segments.max_segments)
                self.segments.start(key, schema, outputs, each)
            monitor = ModelMonitor(schema, outputs, config)
        self._add(key, monitor, self.alert_policy(model_id, model_version))
        return monitor

    def _add(self, key: tuple[str, str], monitor: ModelMonitor, policy: AlertPolicy) -> None:
        self._monitors[key] = monitor
        self._versions.setdefault(key[0], {})[key[1]] = None
        self._policies[key] = policy
        if not monitor.staged:
            self.typed.register(*key, monitor.schema)

    def _inferred_schema(self, model_id: str, events: list[dict[str, Any]],
                         output: MonitorOutput) -> dict[str, str]:
        cap = min(self.settings.limits.max_features_per_model, self.settings.limits.max_features)
        schema = infer_schema(events, cap)
        if len(schema) == cap:
            # Only a model at the limit pays for listing the names it left out.
            left_out = {name for event in events for name in event["features"]} - set(schema)
            if left_out:
                output.limited[FEATURES_PER_MODEL] = (
                    output.limited.get(FEATURES_PER_MODEL, 0) + len(left_out))
                log.warning("model %s: %d features monitored, %d more not (e.g. %s; "
                            "limits.max_features_per_model)", model_id, cap, len(left_out),
                            ", ".join(sorted(left_out)[:3]))
        return schema

    def alert_policy(self, model_id: str, model_version: str,
                     state: dict[str, Any] | None = None) -> AlertPolicy:
        """A model version's alert policy, configured by ``settings.alerts``.

        Policies of one model share its rate limit, also those the label engine
        builds for performance alerts (it is given this method).
        """
        alerts = self.settings.alerts
        limit = self._rate_limits.get(model_id)
        if limit is None and alerts.max_alerts_per_hour:
            limit = self._rate_limits[model_id] = AlertRateLimit(model_id,
                                                                 alerts.max_alerts_per_hour)
        if state is not None:
            return AlertPolicy.from_state(state, alerts, limit)
        return AlertPolicy(model_id, model_version, alerts.resolve_after_windows,
                           cooldown_windows=alerts.cooldown_windows, group=alerts.group,
                           rate_limit=limit)

    def take_changed(self) -> set[str]:
        """Ids of the models whose state changed since the last call (or since built).

        A removed model counts as changed: it is absent from :meth:`to_state`.
        """
        changed, self._changed = self._changed, set()
        return changed

    def to_state(self, models: Collection[str] | None = None) -> dict[str, Any]:
        """Plain-dict state of every monitor and policy, or of those of ``models`` only."""
        return {
            "version": STATE_VERSION,
            "rebaselined": sorted([list(k) for k in self._rebaselined], key=str),
            "models": [
                {"model_id": mid, "model_version": ver, "monitor": monitor.to_state(),
                 "policy": self._policies[(mid, ver)].to_state(),
                 "last_ts": _finite(self._clock.last((mid, ver))),
                 **self.segments.to_state((mid, ver)),
                 **self._silence.version_state((mid, ver))}
                for (mid, ver), monitor in self._monitors.items()
                if models is None or mid in models
            ],
            "rate_limits": [limit.to_state() for model_id, limit in self._rate_limits.items()
                            if models is None or model_id in models],
            # The partition's clock; each version's own time is in its model's entry.
            "clock": self._clock.to_state(),
            "ticks": self._silence.to_state(),
        }

    @classmethod
    def from_state(cls, settings: Settings, state: dict[str, Any]) -> MonitorEngine:
        """Rebuild from :meth:`to_state` output."""
        engine = cls(settings)
        engine._rebaselined = {(k[0], k[1]) for k in state.get("rebaselined", [])}
        if settings.alerts.max_alerts_per_hour:
            engine._rate_limits = {
                limit["model_id"]: AlertRateLimit.from_state(
                    limit, settings.alerts.max_alerts_per_hour)
                for limit in state.get("rate_limits", [])}
        engine._clock = VersionClock.from_state(settings.limits.idle_expiry_s, state.get("clock"))
        for entry in state["models"]:
            key = (entry["model_id"], entry["model_version"])
            engine._add(key, ModelMonitor.from_state(entry["monitor"]),
                        engine.alert_policy(*key, state=entry["policy"]))
            engine.segments.restore(key, entry)
            # None: saved before expiry existed, idle from the first event after the restore.
            engine._clock.restore(key, entry.get("last_ts"))
            engine._silence.restore(key, entry)
        engine._silence.restore_head(state.get("ticks"))
        return engine


def _finite(ts: float) -> float | None:
    return ts if math.isfinite(ts) else None


def _load_references(settings: Settings) -> dict[str, dict[str, Any]]:
    """Reference files named in the settings (:func:`streams.offline.reference.load_references`)."""
    from streams.offline.reference import load_references

    return load_references(settings)
