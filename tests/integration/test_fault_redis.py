"""Redis outages: a worker process pauses while Redis is away and resumes exactly.

Each test runs a Redis of its own (the session's Redis serves the other tests).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from tests.contract import validate

from .conftest import wait_for
from .faults import (
    committed_offsets,
    copies,
    covered,
    drifting_stream,
    events_after,
    label_counts,
    labels_of,
    model_counts,
    own_redis,
    produce_keyed,
    read_all,
    scrape_metrics,
    start_worker_process,
    stop_worker,
    tail,
)

pytestmark = pytest.mark.integration

MODELS = ["m1", "m4", "m5"]        # partitions 1, 0, 0 (CRC32 of the key, 2 partitions)
EVENTS = 3000                         # per model: a reference, then drifted windows


def test_redis_paused_20s_pauses_the_worker_which_then_resumes_exactly(
        settings: Settings, tmp_path: Path) -> None:
    with own_redis(settings, tmp_path) as (settings, server):
        ensure_topics(settings)
        stream = drifting_stream(MODELS, EVENTS, drift_at=1500)
        labels = labels_of(stream)
        third = len(stream) // 3
        log = tmp_path / "worker.log"
        worker = start_worker_process(settings, log)
        try:
            produce_keyed(settings, stream[:third])
            produce_keyed(settings, labels[:third], "labels")
            assert wait_for(lambda: covered(settings) == third, 60), tail(log)
            produce_keyed(settings, stream[third:2 * third])
            time.sleep(0.2)                  # the worker is busy with the second third
            server.pause()
            paused_at = time.monotonic()
            produce_keyed(settings, labels[third:2 * third], "labels")
            produce_keyed(settings, stream[2 * third:])
            produce_keyed(settings, labels[2 * third:], "labels")
            time.sleep(max(20.0 - (time.monotonic() - paused_at), 0.0))
            assert worker.poll() is None, tail(log)
            server.resume()
            assert wait_for(lambda: covered(settings) == len(stream), 90), tail(log)
            # The last labels follow the last predictions: a later checkpoint covers them.
            everything = {model: (EVENTS, EVENTS, 0) for model in MODELS}
            wait_for(lambda: label_counts(settings) == everything, 60)
            assert worker.poll() is None, tail(log)
            counts, _ = model_counts(settings)
            joined = label_counts(settings)
        finally:
            code = stop_worker(worker)
        output = log.read_text()
        assert code == 0, tail(log)
        assert counts == {(model, "v1"): EVENTS for model in MODELS}
        # Every label found its prediction once: none lost while Redis was away, none twice.
        assert joined == everything, joined
        assert "Redis unreachable" in output and "Redis reachable again" in output, tail(log)
        alerts = read_all(settings, "alerts")
        assert alerts, "the drifted windows raise alerts"
        assert max(copies(alerts).values()) == 1, copies(alerts).most_common(3)
        print(f"Redis paused 20 s: {sum(counts.values())} events counted of "
              f"{EVENTS * len(MODELS)} sent, all labels joined once; {len(alerts)} alerts, "
              "each once")


def test_redis_restarted_empty_under_a_running_worker_and_before_a_new_one(
        settings: Settings, tmp_path: Path) -> None:
    with own_redis(settings, tmp_path) as (settings, server):
        ensure_topics(settings)
        # No labels: the predictions waiting for them are lost with Redis, and said to be.
        stream = drifting_stream(MODELS, EVENTS, drift_at=1500)
        third = len(stream) // 3
        log = tmp_path / "worker.log"
        worker = start_worker_process(settings, log)
        try:
            produce_keyed(settings, stream[:third])
            assert wait_for(lambda: covered(settings) == third, 60), tail(log)
            server.restart_empty(down_s=2.0)
            produce_keyed(settings, stream[third:2 * third])
            # The running worker still holds every model's state: it writes it again whole.
            assert wait_for(lambda: covered(settings) == 2 * third, 60), tail(log)
            running = model_counts(settings)[0]
        finally:
            assert stop_worker(worker) == 0, tail(log)
        assert running == {(model, "v1"): 2 * EVENTS // 3 for model in MODELS}
        assert "its checkpoint is gone from Redis while this worker owns it" in log.read_text()

        # Lost while no worker ran: a new worker finds committed offsets but no checkpoint.
        server.restart_empty()
        produce_keyed(settings, stream[2 * third:])
        committed = committed_offsets(settings)
        assert set(committed) == {0, 1}, committed
        worker = start_worker_process(settings, log)
        try:
            assert wait_for(lambda: covered(settings) == len(stream), 60), tail(log)
            resumed = model_counts(settings)[0]
            metrics = scrape_metrics(log)
        finally:
            assert stop_worker(worker) == 0, tail(log)
        # Policy "resume": fresh monitors count exactly what follows the committed offsets.
        assert resumed == events_after(stream, committed)
        assert 'driftline_monitor_resets_total{policy="resume"} 2.0' in metrics
        assert "no checkpoint in Redis, but group" in log.read_text()

        # Policy "rewind": lost again, then everything the topic holds is counted once.
        server.restart_empty()
        worker = start_worker_process(settings, log,
                                      config={"worker": {"missing_checkpoint": "rewind"}})
        try:
            assert wait_for(lambda: covered(settings) == len(stream), 60), tail(log)
            rewound = model_counts(settings)[0]
        finally:
            assert stop_worker(worker) == 0, tail(log)
        assert rewound == {(model, "v1"): EVENTS for model in MODELS}

    resets = [a for a in read_all(settings, "alerts") if a["kind"] == "monitor_reset"]
    for alert in resets:
        validate(alert, "alert")
    assert sorted((a["partition"], a["policy"]) for a in resets) == [
        (0, "resume"), (0, "rewind"), (1, "resume"), (1, "rewind")]
    # The control topic's offset too when the lost state had read ticks (streams.runtime.ticks).
    [offsets] = [a["offsets"] for a in resets if a["policy"] == "resume" and a["partition"] == 1]
    assert offsets.pop(settings.topics.name("predictions")) == committed[1]
    assert set(offsets) <= {settings.topics.name("control")}
