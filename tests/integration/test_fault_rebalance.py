"""Workers that die and join mid-stream reach what one worker reaches alone.

Two worker processes share four partitions; one is killed (-9) mid-stream and
a third joins late. Their checkpoints must hold the same per-model counts as
one worker that read the same topics alone, and they must publish the same
alert ids (a killed worker's alerts since its last checkpoint may be published
again, with the same ids: outputs are at-least-once).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from streams.runtime.topics import ensure_topics
from streams.settings import Settings

from .conftest import wait_for
from .faults import (
    copies,
    covered,
    drifting_stream,
    label_counts,
    labels_of,
    model_counts,
    produce_keyed,
    read_all,
    start_worker_process,
    stop_worker,
    tail,
)

pytestmark = pytest.mark.integration

MODELS = ["m4", "m2", "m5", "m1", "m6", "m3"]    # partitions 0, 1, 2, 3, 0, 3 of 4
EVENTS = 2000                                   # per model; drift from event 1200


def test_killed_and_late_workers_match_a_single_worker(settings: Settings, tmp_path: Path,
                                                      start_worker: Any) -> None:
    settings = replace(settings, topics=replace(settings.topics, partitions=4))
    ensure_topics(settings)
    stream = drifting_stream(MODELS, EVENTS, drift_at=1200, size=40)
    labels = labels_of(stream)
    cut1, cut2 = len(stream) * 2 // 5, len(stream) * 7 // 10
    logs = [tmp_path / f"worker{n}.log" for n in range(3)]
    workers = [start_worker_process(settings, logs[0]), start_worker_process(settings, logs[1])]
    try:
        produce_keyed(settings, stream[:cut1])
        produce_keyed(settings, labels[:cut1], "labels")
        assert wait_for(lambda: covered(settings) == cut1, 90), tail(logs[0])
        produce_keyed(settings, stream[cut1:cut2])
        produce_keyed(settings, labels[cut1:cut2], "labels")
        time.sleep(0.5)                 # mid-stream: processed in part, not checkpointed
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(10)
        produce_keyed(settings, stream[cut2:])
        workers.append(start_worker_process(settings, logs[2]))
        produce_keyed(settings, labels[cut2:], "labels")
        assert wait_for(lambda: covered(settings) == len(stream) and sum(
            read for read, _, _ in label_counts(settings).values()) == EVENTS * len(MODELS),
            120), tail(logs[1]) + tail(logs[2])
        counts, together = model_counts(settings)[0], label_counts(settings)
    finally:
        for worker in workers:
            stop_worker(worker)

    # One worker alone over the same input topics: its own group and output topics.
    outputs = {role: f"{settings.topics.prefix}alone.{role}"
               for role in ("alerts", "retrain", "deadletter", "joined")}
    alone = replace(settings, group_id=settings.group_id + "-alone",
                    topics=replace(settings.topics, names=outputs))
    ensure_topics(alone)
    single = start_worker(alone)
    assert wait_for(lambda: covered(alone) == len(stream), 90)
    assert wait_for(lambda: label_counts(alone) == together, 30), (label_counts(alone), together)
    single.close()

    assert counts == {(model, "v1"): EVENTS for model in MODELS}
    assert counts == model_counts(alone)[0]
    assert together == {model: (EVENTS, EVENTS, 0) for model in MODELS}
    alerts, alerts_alone = read_all(settings, "alerts"), read_all(alone, "alerts")
    assert alerts_alone and max(copies(alerts_alone).values()) == 1
    assert set(copies(alerts)) == set(copies(alerts_alone))
    print(f"kill -9 + late joiner: {sum(counts.values())} events counted of "
          f"{EVENTS * len(MODELS)} sent; {len(copies(alerts))} alert ids, as alone; "
          f"{sum(copies(alerts).values()) - len(copies(alerts))} copies published again")
