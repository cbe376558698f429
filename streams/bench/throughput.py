"""``driftline bench throughput``: the worker next to the raw consumer, same topic, same run.

Each round fills a fresh topic on the embedded Tansu broker with synthetic
prediction events, then times (1) a bare confluent-kafka ``consume(5000)`` +
``orjson.loads`` loop and (2) a driftline worker (decode, validate,
columnarise, all detectors, alerts, checkpoints) over the very same messages.
Times run from the first message received to the last, so group joins and
start-up are excluded from both. Figures are printed per round, then min and
median: the machine is shared, so only same-run ratios mean much.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import IO

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.runtime.topics import ensure_topics
from streams.runtime.worker import Worker
from streams.settings import Settings, load_settings
from streams.stack.embedded import EmbeddedStack


@dataclass(frozen=True)
class Round:
    """One measurement: events/s of the raw consumer and of the worker."""

    raw_eps: float
    worker_eps: float

    @property
    def ratio(self) -> float:
        """Worker rate as a share of the raw consume+decode rate."""
        return self.worker_eps / self.raw_eps


def fill_topic(settings: Settings, events: int, per_message: int) -> int:
    """Publish ``events`` synthetic predictions; return the number of messages."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20,
                         "batch.num.messages": 10000})
    topic = settings.topics.name("predictions")
    messages = 0
    for predictions, _ in iter_chunks(ScenarioSpec("stationary", events), chunk_size=10_000):
        if per_message == 1:
            values = [orjson.dumps(e) for e in predictions]
        else:
            values = [orjson.dumps(predictions[i:i + per_message])
                      for i in range(0, len(predictions), per_message)]
        for value in values:
            producer.produce(topic, value, key="credit-risk")
            messages += 1
            if messages % 10_000 == 0:
                producer.poll(0)
    producer.flush(60)
    return messages


def raw_rate(settings: Settings, messages: int, events: int,
             roles: tuple[str, ...] = ("predictions",)) -> float:
    """Events/s of a bare consume(5000) + orjson.loads loop over the topics of ``roles``."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": f"bench-raw-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    assignment = []
    for topic in (settings.topics.name(role) for role in roles):
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
    consumer.assign(assignment)
    seen = 0
    first = 0.0
    deadline = time.monotonic() + 120
    while seen < messages and time.monotonic() < deadline:
        batch = consumer.consume(5000, 0.5)
        if batch and not first:
            first = time.perf_counter()
        for message in batch:
            if message.error() is None:
                orjson.loads(message.value())
                seen += 1
    elapsed = time.perf_counter() - first
    consumer.close()
    return events / elapsed


def worker_rate(settings: Settings, messages: int, events: int) -> float:
    """Events/s of a driftline worker over the same topic."""
    worker = Worker(settings)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while worker.stats.messages < messages and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(60)
    stats = worker.stats
    if stats.events != events:
        raise RuntimeError(f"worker saw {stats.events} of {events} events")
    return events / (stats.last_batch_at - stats.first_batch_at)


def run_throughput(events: int, rounds: int, per_message: int,
                   out: IO[str] = sys.stdout) -> list[Round]:
    """Run ``rounds`` measurements on a fresh embedded stack and print the table."""
    results: list[Round] = []
    with EmbeddedStack() as stack:
        print(f"embedded Tansu {stack.bootstrap_servers}; {events:,} events/round, "
              f"{per_message} event(s)/message, 1 partition", file=out)
        print(f"{'round':>5} {'raw consume+orjson':>20} {'driftline worker':>18} {'ratio':>7}",
              file=out)
        for index in range(rounds):
            tag = uuid.uuid4().hex[:6]
            settings = load_settings(environ={
                "DRIFTLINE_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
                "DRIFTLINE_REDIS_URL": stack.redis_url, "DRIFTLINE_GROUP_ID": f"bench-{tag}",
                "DRIFTLINE_TOPIC_PREFIX": f"bench{tag}.", "DRIFTLINE_PARTITIONS": "1",
                "DRIFTLINE_SESSION_TIMEOUT_MS": "6000", "DRIFTLINE_METRICS_PORT": "-1"})
            ensure_topics(settings)
            messages = fill_topic(settings, events, per_message)
            result = Round(raw_rate(settings, messages, events),
                           worker_rate(settings, messages, events))
            results.append(result)
            print(f"{index + 1:>5} {result.raw_eps:>16,.0f} e/s {result.worker_eps:>14,.0f} e/s "
                  f"{result.ratio:>7.2f}", file=out, flush=True)
    _print_summary(results, out)
    return results


def run_replay(events: int, rounds: int, out: IO[str] = sys.stdout) -> list[Round]:
    """Time ``replay`` next to a bare read + orjson.loads of the same file, ``rounds`` times."""
    import tempfile
    from pathlib import Path

    from streams.offline.replay import replay
    from streams.offline.simulate import write_scenario

    results: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="driftline-bench-") as workdir:
        files = write_scenario(ScenarioSpec("stationary", events), Path(workdir))
        settings = load_settings(environ={})
        print(f"{events:,} stationary events, one per line ({files.predictions.stat().st_size:,} "
              "bytes)", file=out)
        print(f"{'round':>5} {'read+orjson':>16} {'driftline replay':>18} {'ratio':>7}", file=out)
        for index in range(rounds):
            started = time.perf_counter()
            with files.predictions.open("rb") as source:
                for line in source:
                    orjson.loads(line)
            raw = events / (time.perf_counter() - started)
            stats = replay(settings, files.predictions, Path(workdir) / "alerts.jsonl",
                           progress=None)
            result = Round(raw, stats.events_per_second)
            results.append(result)
            print(f"{index + 1:>5} {raw:>12,.0f} e/s {result.worker_eps:>14,.0f} e/s "
                  f"{result.ratio:>7.2f}   ({stats.alerts} alerts)", file=out, flush=True)
    _print_summary(results, out)
    return results


def _print_summary(results: list[Round], out: IO[str]) -> None:
    for name, values in (("raw", [r.raw_eps for r in results]),
                         ("driftline", [r.worker_eps for r in results]),
                         ("ratio", [r.ratio for r in results])):
        fmt = ".2f" if name == "ratio" else ",.0f"
        print(f"{name:>9}: min {min(values):{fmt}}  median {statistics.median(values):{fmt}}",
              file=out)
