"""Helpers of the fault tests: worker processes, a Redis of their own, what the checkpoints hold."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import redis
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from streams.runtime.reader import TopicReader
from streams.settings import Settings
from streams.stack.embedded import free_port, redis_binary, stop_process, wait_for_port
from streams.state.checkpoint import CheckpointStore
from streams.ui.demo import worker_env

from .conftest import events


def start_worker_process(settings: Settings, log: Path,
                         config: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
    """A ``driftline worker`` process on ``settings``' stack; ``config`` is its YAML file."""
    path = None
    if config is not None:
        path = log.with_suffix(f".{time.monotonic_ns()}.yaml")
        path.write_text(yaml.safe_dump(config))
    return subprocess.Popen([sys.executable, "-m", "streams.ui.cli", "worker"],
                            env=worker_env(settings, path), stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def stop_worker(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM (a clean stop checkpoints); SIGCONT first in case it was stopped."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


class OwnRedis:
    """A redis-server of one test: paused, resumed or restarted empty without harming others."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)], stdout=log,
            stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, "redis-server")

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def restart_empty(self, down_s: float = 0.0) -> None:
        """Stop it (no persistence: everything is lost) and start an empty one on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            stop_process(self.process)
            self.process = None


@contextmanager
def own_redis(settings: Settings, workdir: Path) -> Iterator[tuple[Settings, OwnRedis]]:
    """``settings`` pointed at a Redis of the test's own."""
    server = OwnRedis(workdir)
    try:
        yield replace(settings, redis_url=server.url), server
    finally:
        server.stop()


def model_counts(settings: Settings) -> tuple[dict[tuple[str, str], int], int]:
    """Events counted per model version by the checkpointed monitors, and input offsets covered."""
    store = CheckpointStore(settings.redis_url, settings.group_id)
    topic = settings.topics.name("predictions")
    counts: dict[tuple[str, str], int] = {}
    covered = 0
    for partition in range(settings.topics.partitions):
        checkpoint = store.load(topic, partition)
        if checkpoint is None:
            continue
        # Read from the state, not rebuilt monitors: thousands of models stay cheap to count.
        for entry in checkpoint.engine["models"]:
            assert entry["monitor"]["type"] == "model_monitor"
            key = (entry["model_id"], entry["model_version"])
            # A monitor's first events wait staged (no tests yet): they count too.
            staged = entry["monitor"].get("staged")
            seen = int(entry["monitor"]["state"]["events"]) + (len(staged["ts"]) if staged else 0)
            counts[key] = counts.get(key, 0) + seen
        covered += checkpoint.offsets.get(topic, 0)
    return counts, covered


def covered(settings: Settings) -> int:
    """Input messages of the predictions topic the checkpoints cover (cheap: heads only)."""
    return sum(OffsetWatch(settings).offsets().values())


class OffsetWatch:
    """Reads only the offsets of the checkpoints, quickly enough to catch a short rollback.

    Reads this version's checkpoints (a hash with a ``head``) and the previous
    version's (one document), so that the old worker can be watched too.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = CheckpointStore(settings.redis_url, settings.group_id)
        self.client = redis.Redis.from_url(settings.redis_url)
        self.topic = settings.topics.name("predictions")

    def offsets(self) -> dict[int, int]:
        found = {}
        for partition in range(self.settings.topics.partitions):
            key = self.store.key(self.topic, partition)
            kind = self.client.type(key)
            raw = (self.client.hget(key, "head") if kind == b"hash"
                   else self.client.get(key) if kind == b"string" else None)
            if raw is not None:
                found[partition] = int(orjson.loads(raw)["offsets"].get(self.topic, 0))
        return found


def read_all(settings: Settings, role: str, idle_s: float = 2.0,
             timeout_s: float = 30.0) -> list[Any]:
    """Every record of an output topic, read until nothing new arrives for ``idle_s``."""
    reader = TopicReader(settings.bootstrap_servers, [settings.topics.name(role)])
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline and time.monotonic() - quiet_since < idle_s:
            batch = reader.poll(0.3)
            if batch:
                records += [record for _, record in batch]
                quiet_since = time.monotonic()
    finally:
        reader.close()
    return records


def copies(alerts: list[dict[str, Any]]) -> Counter[str]:
    """How often each alert id was published."""
    return Counter(alert["alert_id"] for alert in alerts)


def redis_ping(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1.0).ping())
    except redis.RedisError:
        return False


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def drifting_stream(models: list[str], n: int, drift_at: int,
                    size: int = 50) -> list[tuple[str, bytes]]:
    """``n`` events per model (feature ``x`` shifts at ``drift_at``) as keyed array messages.

    Messages of the models alternate, so every slice of the list feeds each model.
    """
    per_model = []
    for number, model in enumerate(models):
        items = (events(drift_at, model=model, seed=number)
                 + events(n - drift_at, start=drift_at, shift=1.5, model=model, seed=number))
        per_model.append([(model, orjson.dumps(items[i:i + size]))
                          for i in range(0, n, size)])
    return [message for group in zip(*per_model, strict=True) for message in group]


def labels_of(messages: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """One label message per prediction message: a label for every event in it."""
    out = []
    for key, value in messages:
        out.append((key, orjson.dumps([
            {"model_id": e["model_id"], "event_id": e["event_id"], "ts": e["ts"] + 5.0,
             "label": e["prediction"] if i % 4 else 1 - e["prediction"]}
            for i, e in enumerate(orjson.loads(value))])))
    return out


def produce_keyed(settings: Settings, messages: list[tuple[str, bytes]],
                  role: str = "predictions") -> None:
    """Publish ``(key, value)`` messages to a role's topic and wait until all are delivered."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})
    failures: list[Any] = []
    for key, value in messages:
        producer.produce(settings.topics.name(role), value, key=key,
                         on_delivery=lambda err, _msg: failures.append(err) if err else None)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not failures, failures


def label_counts(settings: Settings) -> dict[str, tuple[int, int, int]]:
    """Per model: (labels read, joined, duplicates) in the checkpointed label state."""
    store = CheckpointStore(settings.redis_url, settings.group_id)
    topic = settings.topics.name("predictions")
    out: dict[str, tuple[int, int, int]] = {}
    for partition in range(settings.topics.partitions):
        checkpoint = store.load(topic, partition)
        if checkpoint is None or not checkpoint.engine.get("labels"):
            continue
        for model_id, counts in checkpoint.engine["labels"]["counts"].items():
            out[model_id] = (counts["labels"], counts["joined"], counts["duplicates"])
    return out


def partition_of(key: str, partitions: int) -> int:
    """The partition librdkafka's default partitioner (CRC32 of the key) picks."""
    return zlib.crc32(key.encode()) % partitions


def committed_offsets(settings: Settings) -> dict[int, int]:
    """The group's committed offsets of the predictions topic, per partition that has one."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": settings.group_id, "enable.auto.commit": False})
    try:
        topic = settings.topics.name("predictions")
        found = consumer.committed([TopicPartition(topic, p)
                                    for p in range(settings.topics.partitions)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


def events_after(messages: list[tuple[str, bytes]],
                 committed: dict[int, int], partitions: int = 2) -> dict[tuple[str, str], int]:
    """Events per model version in the messages at or after each partition's committed offset."""
    positions: dict[int, int] = {}
    counts: dict[tuple[str, str], int] = {}
    for key, value in messages:
        partition = partition_of(key, partitions)
        offset = positions.get(partition, 0)
        positions[partition] = offset + 1
        if offset >= committed.get(partition, 0):
            for event in orjson.loads(value):
                version = (event["model_id"], event["model_version"])
                counts[version] = counts.get(version, 0) + 1
    return counts


def scrape_metrics(log: Path) -> str:
    """The /metrics page of the worker that wrote ``log`` (its last start)."""
    port = re.findall(r"metrics on http://[^:]+:(\d+)/metrics", log.read_text())[-1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        return str(page.read().decode())
