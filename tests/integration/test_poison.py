"""Poison messages mid-stream: a `driftline worker` process dead-letters them and goes on.

Each message below stopped the worker of issue #14 on every restart (the
partition stopped for good, and the good events before it were counted again at
each restart). Here they come after good events that are already checkpointed,
twice: once before a `kill -9` mid-stream and once after it, for the restarted
worker. Every good event must be counted exactly once, every poison message be
on the dead-letter topic with its reason, and no worker may exit on its own.
A valid event keyed by another model goes there too (``key_mismatch``), instead
of starting a second monitor of its model in the wrong partition.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.core.engine import MonitorEngine
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.state.checkpoint import CheckpointStore
from streams.ui.demo import worker_env

from .conftest import as_arrays, events, produce, read_until, wait_for

pytestmark = pytest.mark.integration


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def _poisons(tag: str) -> list[tuple[str, bytes, bytes, tuple[str, str]]]:
    """(case, key, value, (error, path) of its dead letter); ``tag`` makes ids unique."""
    good = events(1, start=10_000 + len(tag), model="m1")[0]
    good["event_id"] = f"good-{tag}"
    bad_element = orjson.dumps({"model_id": "m1", "model_version": f"v-{tag}", "ts": 1.0,
                                "features": {"x": 1.0}, "prediction": 1}).replace(
        b'"x":1.0', b'"x":' + nested(300))
    return [
        ("model_id nested 1,000 deep", b"m1",
         b'{"model_id":' + nested(1000) + b',"model_version":"v1","event_id":"p-'
         + tag.encode() + b'","ts":1,"features":{},"prediction":1}', ("wrong_type", "model_id")),
        ("feature nested 300 deep", b"m1",
         orjson.dumps({**good, "event_id": f"deep-{tag}"}).replace(
             b'"c":"', b'"deep":' + nested(300) + b',"c":"'), ("wrong_type", "features.deep")),
        ("bad array element nested 300 deep", b"m1",
         b"[" + orjson.dumps(good) + b"," + bad_element + b"]", ("missing_field", "event_id")),
        ("1.2 MB key", b"k" * 1_200_000,
         orjson.dumps({"model_id": "m1", "event_id": f"key-{tag}"}),
         ("missing_field", "model_version")),
        # Not a poison, but the other way a message split a model silently (item 5).
        ("keyed by another model", b"m1",
         orjson.dumps({**good, "model_id": "m9", "event_id": f"m9-{tag}"}),
         ("key_mismatch", "model_id")),
    ]


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streams.ui.cli", "worker"],
                            env=worker_env(settings), stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def checkpointed(settings: Settings) -> tuple[Counter[str], int]:
    """Events counted per model by the checkpointed monitors, and prediction offsets covered."""
    store = CheckpointStore(settings.redis_url, settings.group_id)
    topic = settings.topics.name("predictions")
    counted: Counter[str] = Counter()
    covered = 0
    for partition in range(settings.topics.partitions):
        checkpoint = store.load(topic, partition)
        if checkpoint is None:
            continue
        engine = MonitorEngine.from_state(settings, checkpoint.engine)
        for model_id, version in engine.models:
            monitor = engine.monitor(model_id, version)
            counted[model_id] += monitor.events if monitor else 0
        covered += checkpoint.offsets.get(topic, 0)
    return counted, covered


def send(settings: Settings, items: list[tuple[bytes, bytes]]) -> None:
    for key, value in items:
        produce(settings, [value], key=key)  # type: ignore[arg-type]


def test_poison_messages_are_dead_lettered_and_every_good_event_counts_once(
        settings: Settings, tmp_path: Path) -> None:
    ensure_topics(settings)
    log = tmp_path / "worker.log"
    first_part = as_arrays(events(1000), size=50)
    second_part = as_arrays(events(1000, start=1000), size=50)
    third_part = as_arrays(events(1000, start=2000), size=50)
    before, after = _poisons("before"), _poisons("after")
    # 20 + 5 + 20 + 5 + 20 messages on m1's partition, the huge keys maybe on the other one.
    messages = len(first_part) + len(second_part) + len(third_part) + 2 * len(before)

    def tail() -> str:
        return log.read_text(errors="replace")[-3000:]

    first = start_worker(settings, log)
    second = None
    try:
        produce(settings, first_part)
        assert wait_for(lambda: checkpointed(settings)[0]["m1"] == 1000, 90), tail()
        # The poison after a checkpoint, between good events: one at a time.
        send(settings, [(key, value) for _, key, value, _ in before])
        produce(settings, second_part)
        assert wait_for(lambda: checkpointed(settings)[0]["m1"] == 2001 or
                        first.poll() is not None, 90), tail()
        assert first.poll() is None, f"the worker exited ({first.returncode}):\n{tail()}"

        # kill -9 mid-stream: the next worker re-reads from the last checkpoint.
        produce(settings, third_part[:10])
        send(settings, [(key, value) for _, key, value, _ in after])
        produce(settings, third_part[10:])
        time.sleep(0.3)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        second = start_worker(settings, log)
        assert wait_for(lambda: checkpointed(settings)[1] >= messages or
                        second.poll() is not None, 120), tail()
        assert second.poll() is None, f"the worker exited ({second.returncode}):\n{tail()}"
        counted, covered = checkpointed(settings)
        # Every good event once: 3,000 in arrays, plus the good element of each bad array.
        assert covered == messages and counted == {"m1": 3002}, (counted, covered, tail())
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, tail()
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.kill()

    expected = {(case, tag): reason for tag, poisons in (("before", before), ("after", after))
                for case, _, _, reason in poisons}
    records = read_until(settings, ["deadletter"], lambda r: len(r) >= len(expected), 30)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for _, record in records:     # at least once: a poison re-read after the kill comes twice
        found[_case(record, before, after)] = record
        assert len(orjson.dumps(record)) < 100_000
    assert set(found) == set(expected), sorted(found)
    for tag in ("before", "after"):
        key_record = found["1.2 MB key", tag]["source"]
        assert (key_record["key_bytes"], key_record["key_truncated"]) == (1_200_000, True)
        element = found["bad array element nested 300 deep", tag]
        assert element["event_index"] == 1 and element["payload_clipped"]


def _case(record: dict[str, Any], *parts: list[tuple[str, bytes, bytes, tuple[str, str]]]
          ) -> tuple[str, str]:
    """Which poison message a dead letter refuses: its reason, and the tag in its payload."""
    payload = base64.b64decode(record["payload_b64"])
    for tag, poisons in zip(("before", "after"), parts, strict=True):
        for case, _, _, (error, path) in poisons:
            if (record["error"], record.get("path")) == (error, path) \
                    and f"-{tag}\"".encode() in payload:
                return case, tag
    raise AssertionError(f"an unexpected dead letter: {record}")
