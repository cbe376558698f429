"""A failure at any stage of a partition step: after a restart every event counts exactly once.

Each case runs a worker until it has checkpointed a first part of the stream,
arms a one-shot fault at one stage of the step, sends the second part (more
predictions and the labels of the first part), lets the worker die on the
fault, then starts a fresh worker in the same group. The restored monitors
and label counters must equal those of a stream read once: nothing
half-applied was checkpointed, nothing was counted twice or lost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from streams.core.engine import MonitorEngine
from streams.core.labels import LabelEngine
from streams.ingest.batch import BatchDecoder
from streams.runtime.outputs import OutputRouter
from streams.runtime.topics import ensure_topics
from streams.runtime.worker import Worker
from streams.settings import Settings
from streams.state.checkpoint import CheckpointStore
from streams.state.pending import ColumnarPendingStore
from tests.integration.conftest import as_arrays, events, produce, wait_for

pytestmark = pytest.mark.integration

FIRST, SECOND = 1500, 1500
STAGES: dict[str, tuple[type, str]] = {
    "decode": (BatchDecoder, "add"),
    "monitors": (MonitorEngine, "process_groups"),
    "label predictions": (LabelEngine, "on_predictions"),
    "store pending": (ColumnarPendingStore, "put"),
    "claim": (ColumnarPendingStore, "claim"),
    "join": (LabelEngine, "on_claims"),
    "publish": (OutputRouter, "route"),
    "checkpoint": (CheckpointStore, "write"),
}


class Fault:
    """Raise once, from the first call after :meth:`arm`, once the stage has done its work.

    Raising after the stage ran leaves the most behind: state changed, rows stored,
    claims made.
    """

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.fired = threading.Event()

    def arm(self) -> None:
        self.armed.set()

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def patched(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if self.armed.is_set() and not self.fired.is_set():
                self.fired.set()
                raise RuntimeError("injected fault")
            return result
        return patched


class Run:
    """A worker on a thread; remembers whether ``run`` raised."""

    def __init__(self, settings: Settings) -> None:
        self.worker = Worker(settings)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run(self.stop)
        except BaseException as exc:   # noqa: BLE001 - the test inspects it
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture()
def fast_settings(settings: Settings) -> Iterator[Settings]:
    from dataclasses import replace

    yield replace(settings, worker=replace(settings.worker, checkpoint_interval_s=0.2))


def _counts(worker: Worker) -> tuple[int, int, int, int]:
    """Monitor events of m1, and the label join's joined, duplicate and label counts."""
    monitor_events = sum(m.events for engine in worker.engines().values()
                         for (model, _), m in ((k, engine.monitor(*k)) for k in engine.models)
                         if model == "m1" and m is not None)
    summaries = [engine.summary().get("m1") for engine in worker.label_engines().values()]
    summary = next((s for s in summaries if s), {"joined": 0, "duplicates": 0, "labels": 0})
    return monitor_events, summary["joined"], summary["duplicates"], summary["labels"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_failed_step_is_never_checkpointed_and_a_restart_counts_once(
        stage: str, fast_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fast_settings
    stream = events(FIRST + SECOND)
    labels = [{"model_id": "m1", "event_id": e["event_id"], "ts": e["ts"] + 30.0,
               "label": e["prediction"]} for e in stream[:FIRST:2]]
    fault = Fault()
    owner, name = STAGES[stage]
    monkeypatch.setattr(owner, name, fault.wrap(getattr(owner, name)))

    ensure_topics(settings)
    first = Run(settings)
    try:
        produce(settings, as_arrays(stream[:FIRST]))
        assert wait_for(lambda: first.worker.stats.events == FIRST
                        and first.worker.stats.checkpoints >= 1
                        and not first.worker._dirty, 60), (first.worker.stats, first.error)
        fault.arm()
        produce(settings, as_arrays(stream[FIRST:]))
        produce(settings, [orjson.dumps(label) for label in labels], topic_role="labels")
        assert wait_for(lambda: not first.thread.is_alive(), 60), "the fault did not stop it"
    finally:
        first.close()
    assert fault.fired.is_set() and isinstance(first.error, RuntimeError)

    monkeypatch.undo()
    second = Run(settings)
    try:
        expected = (FIRST + SECOND, len(labels), 0, len(labels))
        assert wait_for(lambda: _counts(second.worker) == expected, 90), _counts(second.worker)
        assert second.error is None
    finally:
        second.close()
    # Read once more from its own checkpoint: still exactly once.
    third = Run(settings)
    try:
        assert wait_for(lambda: bool(third.worker.engines()), 60)
        assert wait_for(lambda: _counts(third.worker) == expected, 30), _counts(third.worker)
    finally:
        third.close()
