"""Kill -9 a worker mid-stream: the restarted worker counts every event exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.core.engine import MonitorEngine
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.state.checkpoint import CheckpointStore
from streams.ui.demo import worker_env

from .conftest import as_arrays, events, produce, wait_for

pytestmark = pytest.mark.integration

TOTAL = 20_000


def start_worker_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streams.ui.cli", "worker"],
                            env=worker_env(settings), stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def checkpointed_events(settings: Settings) -> tuple[int, int]:
    """(events counted by the checkpointed monitors, offsets covered) over all partitions."""
    store = CheckpointStore(settings.redis_url, settings.group_id)
    counted = covered = 0
    for partition in range(settings.topics.partitions):
        checkpoint = store.load(settings.topics.name("predictions"), partition)
        if checkpoint is None:
            continue
        engine = MonitorEngine.from_state(settings, checkpoint.engine)
        counted += sum(engine.monitor(*key).events for key in engine.models)  # type: ignore[union-attr]
        covered += checkpoint.offsets[settings.topics.name("predictions")]
    return counted, covered


def test_sigkill_then_restart_counts_each_event_once(settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings)
    messages = as_arrays(events(TOTAL), size=50)     # 400 messages, all on one partition
    log = tmp_path / "worker.log"
    first = start_worker_process(settings, log)
    try:
        # Publish in slices so the kill lands mid-stream, after at least one checkpoint.
        produce(settings, messages[:150])
        assert wait_for(lambda: checkpointed_events(settings)[0] > 0, 60), log.read_text()[-3000:]
        produce(settings, messages[150:300])
        time.sleep(0.3)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_at = checkpointed_events(settings)
        assert 0 < killed_at[0] < TOTAL
        produce(settings, messages[300:])
        second = start_worker_process(settings, log)
        try:
            assert wait_for(lambda: checkpointed_events(settings)[1] == len(messages), 90), \
                log.read_text()[-3000:]
            counted, covered = checkpointed_events(settings)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    assert covered == len(messages)
    assert counted == TOTAL, f"detectors counted {counted} events, {TOTAL} were published"




def test_a_checkpoint_this_version_cannot_restore_stops_the_worker_with_a_clear_error(
        settings: Settings, tmp_path: Path) -> None:
    """E.g. after an upgrade that changed detector state: refused by name, never half-restored."""
    ensure_topics(settings)
    store = CheckpointStore(settings.redis_url, settings.group_id)
    topic = settings.topics.name("predictions")
    old_monitor = {"type": "model_monitor", "version": 1}   # a state this version refuses
    engine = {"models": [{"model_id": "m1", "model_version": "v1", "monitor": old_monitor,
                          "policy": {}}]}
    for partition in range(settings.topics.partitions):
        store.save(topic, partition, {topic: 0}, engine)
    log = tmp_path / "worker.log"
    worker = start_worker_process(settings, log)
    try:
        code = worker.wait(60)
    finally:
        if worker.poll() is None:
            worker.kill()
    output = log.read_text()
    assert code == 2, output[-3000:]
    assert "driftline: error: checkpoint" in output, output[-3000:]
    assert "expected model_monitor version" in output
    assert f"delete Redis key '{store.key(topic, 0)}'" in output or \
        f"delete Redis key '{store.key(topic, 1)}'" in output
    assert "Traceback" not in output
