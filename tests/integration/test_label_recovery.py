"""Kill -9 the worker between predictions and their labels: every label joins exactly once."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.core.labels import LabelEngine
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.state.checkpoint import CheckpointStore
from tests.test_schemas import validator

from .conftest import as_arrays, events, produce, read_until, wait_for
from .test_recovery import start_worker_process

pytestmark = pytest.mark.integration

PREDICTIONS = 2000


def label_counts(settings: Settings) -> dict[str, Any]:
    """Join counters of model m1 in the checkpoints (zeros before the first one)."""
    store = CheckpointStore(settings.redis_url, settings.group_id)
    totals = {"predictions": 0, "labels": 0, "joined": 0, "duplicates": 0, "unmatched": 0,
              "waiting": 0, "channel=web": 0, "channel=app": 0}
    for partition in range(settings.topics.partitions):
        checkpoint = store.load(settings.topics.name("predictions"), partition)
        if checkpoint is None or "labels" not in checkpoint.engine:
            continue
        summary = LabelEngine.from_state(settings, checkpoint.engine["labels"],
                                         partition).summary()
        model = summary.get("m1", {})
        segments = model.get("segments") or {}
        for key in totals:
            totals[key] += (segments[key]["labelled_events"] if key in segments
                            else model.get(key, 0))
    return totals


def labels_for(start: int, stop: int) -> list[bytes]:
    return as_arrays([{"model_id": "m1", "event_id": f"m1-{i}", "ts": 1_700_000_000.0 + i + 30,
                       "label": i % 2} for i in range(start, stop)], size=50)


def test_sigkill_between_prediction_and_label_joins_each_label_once(
        settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(
        settings, labels=dataclasses.replace(settings.labels, joined_topic=True))
    ensure_topics(settings)
    log = tmp_path / "worker.log"
    first = start_worker_process(settings, log)
    second = third = None
    try:
        predictions = events(PREDICTIONS)
        for i, event in enumerate(predictions):   # each segment's performance counts once too
            event["segments"] = {"channel": "web" if i % 2 else "app"}
        produce(settings, as_arrays(predictions, size=50))
        assert wait_for(lambda: label_counts(settings)["predictions"] == PREDICTIONS, 60), \
            log.read_text()[-3000:]
        # Killed with every prediction pending; the labels arrive while no worker runs,
        # one of them twice.
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        produce(settings, labels_for(0, 1000), topic_role="labels")
        produce(settings, [orjson.dumps({"model_id": "m1", "event_id": "m1-5",
                                         "ts": 1_700_000_100.0, "label": 0})],
                topic_role="labels")
        second = start_worker_process(settings, log)
        assert wait_for(lambda: label_counts(settings)["labels"] == 1001, 90), \
            log.read_text()[-3000:]
        # Killed again right while it joins the next labels: some may be joined and not yet
        # checkpointed; after the restart they must be joined once, not twice, not never.
        produce(settings, labels_for(1000, PREDICTIONS), topic_role="labels")
        time.sleep(0.3)
        os.kill(second.pid, signal.SIGKILL)
        second.wait(10)
        third = start_worker_process(settings, log)
        assert wait_for(lambda: label_counts(settings)["labels"] == PREDICTIONS + 1, 90), \
            log.read_text()[-3000:]
        counts = label_counts(settings)
    finally:
        for process in (first, second, third):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    assert counts["predictions"] == PREDICTIONS
    assert counts["joined"] == PREDICTIONS, counts
    assert counts["duplicates"] == 1, counts
    assert counts["unmatched"] == 0 and counts["waiting"] == 0, counts
    assert counts["channel=web"] == counts["channel=app"] == PREDICTIONS // 2, counts
    # Every pair was published on the joined topic (at least once: the kills may repeat some).
    joined = read_until(settings, ["joined"], lambda records: len(
        {record["event_id"] for _, record in records}) >= PREDICTIONS, timeout_s=60)
    by_id = {record["event_id"]: record for _, record in joined}
    assert len(by_id) == PREDICTIONS, len(by_id)
    check = validator("joined")
    for event_id, record in by_id.items():
        check.validate(record)
        i = int(event_id.split("-")[1])
        assert record["label"] == i % 2     # m1-5 joined its first label; the copy was a duplicate
        assert record["segments"] == {"channel": "web" if i % 2 else "app"}
        assert record["label_ts"] - record["ts"] == 30.0
