"""A worker paused past its session (SIGSTOP) wakes up as a zombie: its writes are refused.

The zombie had state newer than its last checkpoint when it was stopped; its
partitions went to a new worker, which checkpointed further. Woken up, the
zombie must neither roll the checkpoint back nor publish anything more for
the partitions it lost.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import orjson
import pytest

from streams.runtime.topics import ensure_topics
from streams.settings import Settings

from .conftest import events, wait_for
from .faults import (
    OffsetWatch,
    copies,
    covered,
    drifting_stream,
    model_counts,
    produce_keyed,
    read_all,
    start_worker_process,
    stop_worker,
    tail,
)

pytestmark = pytest.mark.integration

MODELS = ["m1", "m4"]       # partitions 1 and 0 of 2
EVENTS = 3000               # per model, 60 messages of 50; drift from event 1500
NEWCOMERS = 2000            # models of one event each


def test_a_zombie_worker_cannot_roll_back_the_new_owners_checkpoint(
        settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings)
    stream = drifting_stream(MODELS, EVENTS, drift_at=1500)
    # Per model: 1000 events (the reference), 250 more (no window closes), then the rest.
    first, unsaved, middle = stream[:40], stream[40:50], stream[50:90]
    # Many new models make the zombie's step long (a monitor each), so that it is paused
    # mid-step, as a GC pause or a frozen VM would pause it, not waiting in a poll.
    newcomers = [(f"z{n}", orjson.dumps(event)) for n, event in
                 enumerate(e for n in range(NEWCOMERS) for e in events(1, model=f"z{n}"))]
    zombie_log, owner_log = tmp_path / "zombie.log", tmp_path / "owner.log"
    zombie = start_worker_process(settings, zombie_log,
                                  config={"worker": {"checkpoint_interval_s": 4.0}})
    owner = None
    history: list[dict[int, int]] = []
    try:
        produce_keyed(settings, first)
        assert wait_for(lambda: covered(settings) == len(first), 60), tail(zombie_log)
        produce_keyed(settings, newcomers + unsaved)
        time.sleep(0.5)             # mid-step; the next checkpoint is seconds away
        os.kill(zombie.pid, signal.SIGSTOP)
        owner = start_worker_process(settings, owner_log)
        produce_keyed(settings, middle)
        read = len(first) + len(newcomers) + len(unsaved) + len(middle)
        assert wait_for(lambda: covered(settings) == read, 60), tail(owner_log)
        watch = OffsetWatch(settings)
        os.kill(zombie.pid, signal.SIGCONT)
        # The zombie finishes its step and reaches its (long overdue) checkpoint; watch until
        # its Kafka client has told it the partitions are lost (it writes nothing after).
        deadline = time.monotonic() + 45.0
        while time.monotonic() < deadline and "partitions lost" not in zombie_log.read_text():
            history.append(watch.offsets())
            time.sleep(0.01)
        history.append(watch.offsets())
        produce_keyed(settings, stream[90:])
        assert wait_for(lambda: covered(settings) == len(stream) + NEWCOMERS, 60), \
            tail(owner_log) + tail(zombie_log)
        counts, _ = model_counts(settings)
    finally:
        for worker in (zombie, owner):
            if worker is not None:
                stop_worker(worker)
    for partition in (0, 1):
        seen = [offsets[partition] for offsets in history]
        assert seen == sorted(seen), f"partition {partition} rolled back: {seen}"
    assert counts == {(model, "v1"): EVENTS for model in MODELS} | {
        (f"z{n}", "v1"): 1 for n in range(NEWCOMERS)}
    assert "belongs to a newer owner" in zombie_log.read_text(), tail(zombie_log)
    # The windows that alert all close after the zombie's last checkpoint: only the new
    # owner publishes them, once each.
    alerts = read_all(settings, "alerts")
    assert alerts, "the drifted windows raise alerts"
    assert max(copies(alerts).values()) == 1, copies(alerts).most_common(3)
    print(f"zombie: {sum(counts.values())} events counted of {EVENTS * len(MODELS) + NEWCOMERS}"
          f" sent; {len(alerts)} alerts, each once; checkpoint offsets never went back")
