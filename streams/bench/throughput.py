"""``driftline bench throughput``: the worker next to the raw consumer, same topic, same run.

For each message shape (1 event per message, then 100 events per message) and
each round, a fresh one-partition topic on the embedded Tansu broker is filled
with one model's stationary synthetic predictions; a bare confluent-kafka
``consume(5000)`` + ``orjson.loads`` loop and a driftline worker (decode,
validate, columnarise, all detectors, alerts, checkpoints) then read the very
same messages. A second fresh topic holds the same number of events from 20
models (``model-00`` … ``model-19``, each its own stationary stream with its
own reference, keyed by ``model_id``, messages interleaved model by model) and
a second worker reads it: the ratio "20-model / 1-model" shows what spreading
the events over many models costs. That includes what every model pays once:
its first ``reference_size`` events are its reference, and closing it
calibrates its tests (at the default 200,000 events, 10,000 per model, half
of the 20-model stream is reference).

Times run from the first message received to the last, so group joins and
start-up are excluded. Figures are printed per round, then min and median:
the machine is shared, so only same-run ratios mean much.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.bench.summary import Row, print_summary
from streams.runtime.topics import ensure_topics
from streams.runtime.worker import Worker
from streams.settings import Settings, load_settings
from streams.stack.embedded import EmbeddedStack

SHAPES = (1, 100)
"""Events per message measured by default, in this order."""
MODELS = 20
"""Models of the many-model stream."""
ONE_MODEL = "credit-risk"


@dataclass(frozen=True)
class Round:
    """One measurement: events/s of the raw consumer and of the workers."""

    raw_eps: float
    worker_eps: float
    models_eps: float | None = None
    """The worker over the many-model stream (``None``: not measured)."""

    @property
    def ratio(self) -> float:
        """Worker rate as a share of the raw consume+decode rate."""
        return self.worker_eps / self.raw_eps

    @property
    def models_ratio(self) -> float | None:
        """Many-model worker rate as a share of the one-model worker rate."""
        return None if self.models_eps is None else self.models_eps / self.worker_eps


def model_ids(models: int) -> list[str]:
    """The model ids of the many-model stream (``model-00``, ``model-01``, ...)."""
    return [f"model-{k:02d}" for k in range(models)]


def _messages(spec: ScenarioSpec, per_message: int, chunk_size: int) -> Iterator[bytes]:
    """One model's stream as message values of ``per_message`` events (1: a bare event)."""
    for predictions, _ in iter_chunks(spec, chunk_size=chunk_size):
        if per_message == 1:
            yield from map(orjson.dumps, predictions)
        else:
            for i in range(0, len(predictions), per_message):
                yield orjson.dumps(predictions[i:i + per_message])


def model_streams(events: int, per_message: int,
                  models: int = 1) -> list[tuple[str, Iterator[bytes]]]:
    """Per model, its key and its message values; ``models`` > 1 splits ``events`` evenly.

    One model is ``credit-risk``'s stationary stream; several are ``model-00``,
    ``model-01``, ... each with its own seed (so its own reference).

    Examples
    --------
    >>> [(key, len(list(values))) for key, values in model_streams(250, 100, models=2)]
    [('model-00', 2), ('model-01', 2)]
    """
    if models == 1:
        return [(ONE_MODEL, _messages(ScenarioSpec("stationary", events), per_message, 10_000))]
    share, extra = divmod(events, models)
    # Small chunks: every model's generator holds one chunk of dicts at a time.
    chunk = max(per_message, 1000 // per_message * per_message)
    return [(model_id, _messages(ScenarioSpec("stationary", share + (k < extra), seed=k,
                                              model_id=model_id), per_message, chunk))
            for k, model_id in enumerate(model_ids(models)) if share + (k < extra)]


def fill_topic(settings: Settings, events: int, per_message: int, models: int = 1) -> int:
    """Publish ``events`` synthetic predictions of ``models`` models; return the message count.

    With several models, messages are interleaved one model after the other
    (each message holds one model's events), keyed by ``model_id``.
    """
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 20,
                         "batch.num.messages": 10000})
    topic = settings.topics.name("predictions")
    streams = model_streams(events, per_message, models)
    messages = 0
    while streams:
        for key, values in list(streams):
            value = next(values, None)
            if value is None:
                streams.remove((key, values))
                continue
            producer.produce(topic, value, key=key)
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
            value = message.value()
            if message.error() is None and value is not None:
                orjson.loads(value)
                seen += 1
    elapsed = time.perf_counter() - first
    consumer.close()
    if seen < messages:
        raise RuntimeError(f"raw consumer saw {seen} of {messages} messages")
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


def bench_settings(stack: EmbeddedStack) -> Settings:
    """Settings for one measurement: fresh topics and group, one partition, no metrics port."""
    tag = uuid.uuid4().hex[:6]
    settings = load_settings(environ={
        "DRIFTLINE_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "DRIFTLINE_REDIS_URL": stack.redis_url, "DRIFTLINE_GROUP_ID": f"bench-{tag}",
        "DRIFTLINE_TOPIC_PREFIX": f"bench{tag}.", "DRIFTLINE_PARTITIONS": "1",
        "DRIFTLINE_SESSION_TIMEOUT_MS": "6000", "DRIFTLINE_METRICS_PORT": "-1"})
    ensure_topics(settings)
    return settings


def measure_round(stack: EmbeddedStack, events: int, per_message: int, models: int) -> Round:
    """Raw consumer and worker on a one-model topic, then a worker on a ``models``-model one."""
    settings = bench_settings(stack)
    messages = fill_topic(settings, events, per_message)
    raw = raw_rate(settings, messages, events)
    one_model = worker_rate(settings, messages, events)
    if models < 2:
        return Round(raw, one_model)
    settings = bench_settings(stack)
    messages = fill_topic(settings, events, per_message, models)
    return Round(raw, one_model, worker_rate(settings, messages, events))


def run_throughput(events: int, rounds: int, shapes: Sequence[int] = SHAPES,
                   models: int = MODELS, out: IO[str] = sys.stdout) -> dict[int, list[Round]]:
    """Measure every shape ``rounds`` times on one embedded stack; print a table per shape.

    ``models`` < 2 skips the many-model stream. Returns the rounds per shape.
    """
    results: dict[int, list[Round]] = {}
    with EmbeddedStack() as stack:
        print(f"embedded Tansu {stack.bootstrap_servers}; {events:,} events/round and stream, "
              "1 partition", file=out)
        if models > 1:
            ids = model_ids(models)
            reference = load_settings(environ={}).monitor.reference_size
            share = events // models
            print(f"{models}-model stream: {ids[0]} … {ids[-1]}, {share:,} events each; "
                  + (f"the first {reference:,} of each are its reference (closing it "
                     "calibrates its tests once: included)" if share > reference else
                     f"all of them reference (reference_size {reference:,}): no window is "
                     "tested"), file=out)
        for per_message in shapes:
            print(f"\n{per_message} event(s)/message", file=out)
            header = f"{'round':>5} {'raw consume+orjson':>20} {'worker 1 model':>18} {'ratio':>7}"
            if models > 1:
                header += f" {f'worker {models} models':>18} {f'{models}-model / 1-model':>20}"
            print(header, file=out, flush=True)
            results[per_message] = []
            for index in range(rounds):
                result = measure_round(stack, events, per_message, models)
                results[per_message].append(result)
                line = (f"{index + 1:>5} {result.raw_eps:>16,.0f} e/s "
                        f"{result.worker_eps:>14,.0f} e/s {result.ratio:>7.2f}")
                if result.models_eps is not None and result.models_ratio is not None:
                    line += f" {result.models_eps:>14,.0f} e/s {result.models_ratio:>20.2f}"
                print(line, file=out, flush=True)
            print_summary(summary_rows(results[per_message], models), out)
    return results


def summary_rows(results: list[Round], models: int) -> list[Row]:
    """(name, per-round values, format) of the figures of a throughput table."""
    rows: list[Row] = [("raw", [r.raw_eps for r in results], ",.0f"),
                       ("worker", [r.worker_eps for r in results], ",.0f"),
                       ("ratio", [r.ratio for r in results], ".2f")]
    many = [r.models_eps for r in results if r.models_eps is not None]
    if many and len(many) == len(results):
        rows += [(f"worker {models} models", many, ",.0f"),
                 (f"{models}-model / 1-model",
                  [eps / r.worker_eps for eps, r in zip(many, results, strict=True)], ".2f")]
    return rows
