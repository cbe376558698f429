"""``driftline bench join``: the label join's throughput and the memory of pending predictions.

**Throughput.** Each round fills fresh ``predictions`` and ``labels`` topics
(one partition each) on the embedded Tansu broker with a synthetic stream —
70 % of predictions labelled, 500 events late, 100 events per message — then
times a driftline worker (drift detectors, the Redis join, performance,
concept and label-free monitors, checkpoints) over both topics, and a bare
confluent-kafka ``consume(5000)`` + ``orjson.loads`` loop over the same messages
just before and just after it (the reference: both runs as one rate, see
:func:`~streams.bench.summary.bracketed`). Rates
count predictions and labels together, from the first message to the last.

**Memory.** One million predictions (13 features each) are written to the
pending store of the embedded Redis as the worker writes them (columnar blobs
of 5,000), three times: with every row's features, with the default sample
(what the challengers read) and without features. Redis's own account of the
store's keys (``MEMORY USAGE``, which other keys of the same Redis do not move)
is reported per million pending predictions.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from typing import IO, Any

import numpy as np
import orjson
from confluent_kafka import Producer

from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.bench.summary import bracketed, print_summary
from streams.bench.throughput import bench_settings, raw_rate
from streams.core.label_columns import pending_rows
from streams.runtime.connections import client_config
from streams.runtime.worker import Worker
from streams.settings import Settings, load_settings
from streams.stack.embedded import EmbeddedStack
from streams.state.pending_redis import RedisPendingStore

PER_MESSAGE = 100


def fill_topics(settings: Settings, events: int, label_fraction: float = 0.7,
                delay: int = 500) -> tuple[int, int]:
    """Publish predictions and their labels in stream order; return (messages, labels)."""
    producer = Producer(client_config(settings.bootstrap_servers, settings.kafka,
                                      **{"linger.ms": 20}))
    messages = labels = 0
    spec = ScenarioSpec("stationary", events, label_fraction=label_fraction,
                        label_delay_events=delay)
    for predictions, due in iter_chunks(spec, chunk_size=10_000):
        for role, items in (("predictions", predictions), ("labels", due)):
            for i in range(0, len(items), PER_MESSAGE):
                producer.produce(settings.topics.name(role),
                                 orjson.dumps(items[i:i + PER_MESSAGE]), key=spec.model_id)
                messages += 1
            producer.poll(0)
        labels += len(due)
    producer.flush(60)
    return messages, labels


def worker_rate(settings: Settings, events: int, labels: int) -> tuple[float, dict[str, int]]:
    """Events/s (predictions + labels) of a worker over the same topics, and its join counts."""
    worker = Worker(settings)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 600
    while (worker.stats.events < events or worker.stats.labels < labels) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    keys = ("joined", "duplicates", "unmatched", "waiting")

    def join_counts() -> dict[str, int]:
        return {key: sum(summary[key] for engine in worker.label_engines().values()
                         for summary in engine.summary().values()) for key in keys}

    # The last step may still be joining when the label count is reached.
    while sum(join_counts().values()) < labels and time.monotonic() < deadline:
        time.sleep(0.05)
    counts = join_counts()
    stop.set()
    thread.join(60)
    stats = worker.stats
    if stats.events != events or stats.labels != labels:
        raise RuntimeError(f"worker saw {stats.events}/{events} predictions and "
                           f"{stats.labels}/{labels} labels")
    return (events + labels) / (stats.last_batch_at - stats.first_batch_at), counts


def pending_memory(stack: EmbeddedStack, entries: int = 1_000_000,
                   step: int = 5000) -> dict[str, float]:
    """Redis bytes per million pending predictions: every row's features, the default, none.

    Predictions are stored as the worker stores them: one columnar blob per
    ``step`` predictions of a model (a partition step of one-event messages).
    "with_features" keeps every row's features (as with ``labels.joined_topic``),
    "default" every ``challenger_every``-th (what the challengers read),
    "without_features" none (``labels.store_features: false``, or no challengers).
    """
    spec = ScenarioSpec("stationary", min(entries, 10_000))
    sample = next(iter_chunks(spec, chunk_size=10_000))[0]
    result = {}
    every = load_settings(environ={}).performance.challenger_every
    for name, feature_every in (("with_features", 1), ("default", every),
                                ("without_features", 0)):
        store = RedisPendingStore(stack.redis_url, f"bench-mem-{uuid.uuid4().hex[:6]}")
        for start in range(0, entries, step):
            stop = min(start + step, entries)
            events = [{**sample[i % len(sample)], "event_id": f"credit-risk-{i:09d}"}
                      for i in range(start, stop)]
            store.put(0, "credit-risk", pending_rows(events, np.arange(start, stop),
                                                     feature_every))
            store.flush()
        result[name] = store.stored_bytes(0) / entries * 1e6
    return result


def run_join_bench(events: int = 200_000, rounds: int = 3, out: IO[str] = sys.stdout,
                   memory_entries: int = 1_000_000) -> dict[str, Any]:
    """Run the throughput rounds and the memory measurement on one embedded stack; print both."""
    ratios: list[float] = []
    raws: list[float] = []
    workers: list[float] = []
    joins: list[dict[str, int]] = []
    label_counts: list[int] = []
    with EmbeddedStack() as stack:
        print(f"embedded Tansu {stack.bootstrap_servers}; {events:,} predictions/round + 70 % "
              f"labelled 500 events late, {PER_MESSAGE} events/message, 1 partition", file=out)
        print(f"{'round':>5} {'raw consume+orjson':>20} {'driftline worker':>18} {'ratio':>7}  "
              "join", file=out)
        for index in range(rounds):
            settings = bench_settings(stack)
            messages, labels = fill_topics(settings, events)
            before = raw_rate(settings, messages, events + labels, ("predictions", "labels"))
            rate, counts = worker_rate(settings, events, labels)
            after = raw_rate(settings, messages, events + labels, ("predictions", "labels"))
            raw = bracketed(before, after)
            raws.append(raw)
            joins.append(counts)
            label_counts.append(labels)
            workers.append(rate)
            ratios.append(rate / raw)
            print(f"{index + 1:>5} {raw:>16,.0f} e/s {rate:>14,.0f} e/s {rate / raw:>7.2f}  "
                  f"{counts['joined']:,}/{labels:,} joined, {counts['waiting']:,} waiting, "
                  f"{counts['unmatched']:,} unmatched; raw before / after: {before:,.0f} / "
                  f"{after:,.0f}", file=out, flush=True)
        print_summary([("raw", raws, ",.0f"), ("driftline", workers, ",.0f"),
                       ("ratio", ratios, ".2f")], out)
        memory = pending_memory(stack, memory_entries)
    every = load_settings(environ={}).performance.challenger_every
    print(f"pending predictions in Redis: {memory['default'] / 1e6:,.0f} MB per million by "
          f"default (features of every {every}th kept, for the challengers), "
          f"{memory['with_features'] / 1e6:,.0f} MB per million with every row's features "
          f"(13), {memory['without_features'] / 1e6:,.0f} MB per million without features",
          file=out)
    return {"raw": raws, "worker": workers, "ratio": ratios, "joins": joins,
            "labels": label_counts, "memory": memory}


if __name__ == "__main__":
    run_join_bench()
