"""What a partition step reads, keeps and puts out: messages, partition state, step output.

:class:`PartitionState` is everything one partition number's stream has built
(its engines and the input offsets they cover): what a checkpoint stores and a
rebalance restores. :class:`StepOutput` is what one step
(:class:`~streams.core.step.PartitionStep`) gives its driver to publish and
count. :class:`InputMessage` is what a step reads of a message: a Kafka
``Message``, or a line of a file (:mod:`streams.core.messages`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from detectors.monitor import WindowReport
from streams.core.bounds import Retired
from streams.core.engine import MonitorEngine
from streams.core.labels import LabelEngine
from streams.settings import Settings


class InputMessage(Protocol):
    """What a step reads of a message (confluent-kafka's ``Message`` fits)."""

    def topic(self) -> str | None: ...               # noqa: D102
    def partition(self) -> int | None: ...           # noqa: D102
    def offset(self) -> int | None: ...              # noqa: D102
    def key(self) -> str | bytes | None: ...         # noqa: D102
    def value(self) -> bytes | None: ...             # noqa: D102
    def timestamp(self) -> tuple[int, int]: ...      # noqa: D102


@dataclass
class PartitionState:
    """Everything one partition number's stream has built: engines and the offsets they cover."""

    partition: int
    monitors: MonitorEngine
    labels: LabelEngine
    offsets: dict[str, int] = field(default_factory=dict)
    """Next offset to read, per input topic."""
    config_announced: bool = False
    """Whether this state's steps have published the settings in force (audit, not saved)."""

    @classmethod
    def fresh(cls, settings: Settings, partition: int) -> PartitionState:
        """A partition that has seen nothing yet."""
        monitors = MonitorEngine(settings)
        return cls(partition, monitors, LabelEngine(settings, partition, monitors.alert_policy))

    def to_state(self, models: Collection[str] | None = None) -> dict[str, Any]:
        """The engines' plain-dict state (the offsets are checkpointed beside it).

        With ``models``, only theirs (and what is not per model): an incremental
        checkpoint writes the models that :meth:`take_changed` names.
        """
        state = self.monitors.to_state(models)
        state["labels"] = self.labels.to_state(models)
        return state

    def take_changed(self) -> set[str]:
        """Ids of the models whose state changed since the last call (either engine)."""
        return self.monitors.take_changed() | self.labels.take_changed()

    @classmethod
    def from_state(cls, settings: Settings, partition: int, state: dict[str, Any],
                   offsets: dict[str, int]) -> PartitionState:
        """Rebuild from :meth:`to_state` output and the offsets checkpointed with it."""
        monitors = MonitorEngine.from_state(settings, state)
        saved = state.get("labels")
        labels = (LabelEngine.from_state(settings, saved, partition, monitors.alert_policy)
                  if saved else LabelEngine(settings, partition, monitors.alert_policy))
        return cls(partition, monitors, labels, dict(offsets))


@dataclass
class StepOutput:
    """What one step produced, for the driver to publish and count."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    retrain: list[dict[str, Any]] = field(default_factory=list)
    joined: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, dict[str, Any]]] = field(default_factory=list)
    """Dead-letter records with the key of the message they refuse."""
    reports: list[tuple[str, str, WindowReport, int]] = field(default_factory=list)
    """Monitor window reports: model, version, report, events the monitor has seen."""
    label_reports: list[tuple[str, str, WindowReport]] = field(default_factory=list)
    suppressed: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    """Messages read, per topic."""
    events: int = 0
    labels: int = 0
    windows: int = 0
    ticks: int = 0
    """Ticks applied (see :mod:`streams.core.silence`)."""
    rebaselines: list[tuple[str, str | None, int]] = field(default_factory=list)
    retired: list[Retired] = field(default_factory=list)
    """Model versions no longer monitored (idle, or a limit made room)."""
    limited: Counter[str] = field(default_factory=Counter)
    """Times a limit took effect without refusing events: features_per_model (features
    left out), categories_per_feature (windows tested on a full tally), step_bytes (runs
    cut short)."""
    audit: list[dict[str, Any]] = field(default_factory=list)
    """Audit records (:mod:`streams.core.audit`), in the order the decisions were taken."""
    audited: list[int] = field(default_factory=lambda: [0, 0])
    """Alerts and retrain requests already in ``audit``."""


__all__ = ["InputMessage", "PartitionState", "StepOutput"]
