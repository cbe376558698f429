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
the events over many models costs per event.

By default the steady state is measured. Every stream starts with a warm-up
part that is not timed: each model's first ``reference_size`` events (its
reference) and one ``window_size`` window, so that every model has closed its
reference and paid, once, the calibration of its tests. The measured part
(``events``) follows. The worker reads the whole topic and its clock starts
once it has stepped the warm-up's last message (the batch that holds it is
stepped in two parts); the raw consumer is assigned from the first measured
message. With ``warmup=False`` the whole stream is measured from its first
event, one-time costs included (at 200,000 events, half of the 20-model stream
is reference).

The worker runs as ``driftline worker`` runs it: inside its Faust app
(:func:`streams.runtime.app.make_app`, web server on a free port), its batch loop
in the thread of the app's worker service.

The raw consumer reads the measured part twice, just before and just after
the one-model worker; the round's reference is both runs as one rate
(:func:`~streams.bench.summary.bracketed`), so that the machine's speed,
which moves within seconds here, moves the reference and the worker alike.

Times run from the first message received (or the mark) to the last, so group
joins and start-up are excluded; the worker polls with a short timeout
(:data:`POLL_TIMEOUT_S`) so that waiting for a last batch that never fills is
excluded too. Figures are printed per round, then min and
median: the machine is shared, so only same-run ratios mean much.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import IO

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from detectors.monitor import MonitorConfig
from detectors.synthetic import ScenarioSpec, iter_chunks
from streams.bench.summary import Row, bracketed, print_summary
from streams.runtime.connections import client_config
from streams.runtime.topics import ensure_topics
from streams.runtime.worker import Worker
from streams.settings import Settings, load_settings
from streams.stack.embedded import EmbeddedStack

SHAPES = (1, 100)
"""Events per message measured by default, in this order."""
MODELS = 20
"""Models of the many-model stream."""
ONE_MODEL = "credit-risk"
MONITOR_VARIABLES = ("DRIFTLINE_REFERENCE_SIZE", "DRIFTLINE_WINDOW_SIZE")
"""Settings the bench takes from its caller's environment (the rest are its own)."""
RAW_FETCH_BACKOFF_MS = 10
"""The raw consumer's ``fetch.queue.backoff.ms``. librdkafka's default (1,000 ms) postpones
the next fetch once ``queued.min.messages`` (100,000) are queued, and a bare loop drains
100,000 one-event messages in well under a second: it then waited, idle, for most of its
time (measured: 130-145k e/s with the default, 275-380k with 10 ms, on the same topic).
A reference that idles is no measure of what consuming and decoding cost; 100-event
messages were not affected (median 401k against 397k e/s)."""
POLL_TIMEOUT_S = 0.02
"""The bench worker's poll timeout: the default (0.5 s) would add one idle wait,
for a last batch that never fills, to the worker's time."""


@dataclass(frozen=True)
class Round:
    """One measurement: events/s of the raw consumer and of the workers."""

    raw_eps: float
    """The reference: the raw consumer's runs just before and just after the one-model
    worker, as one rate (:func:`~streams.bench.summary.bracketed`)."""
    worker_eps: float
    models_eps: float | None = None
    """The worker over the many-model stream (``None``: not measured)."""
    raw_runs: tuple[float, ...] = ()
    """The raw consumer's rates before and after the worker."""

    @property
    def ratio(self) -> float:
        """Worker rate as a share of the raw consume+decode rate."""
        return self.worker_eps / self.raw_eps

    @property
    def models_ratio(self) -> float | None:
        """Many-model worker rate as a share of the one-model worker rate."""
        return None if self.models_eps is None else self.models_eps / self.worker_eps


@dataclass(frozen=True)
class FilledTopic:
    """What :func:`fill_topic` published: a warm-up part, then the measured part."""

    warmup_messages: int
    warmup_events: int
    messages: int
    """Messages of the measured part."""
    events: int
    """Events of the measured part."""


def model_ids(models: int) -> list[str]:
    """The model ids of the many-model stream (``model-00``, ``model-01``, ...)."""
    return [f"model-{k:02d}" for k in range(models)]


def warmup_size(monitor: MonitorConfig, per_message: int) -> int:
    """Warm-up events of each model: its reference and one window, in whole messages.

    Examples
    --------
    >>> warmup_size(MonitorConfig(reference_size=5000, window_size=2000), 100)
    7000
    >>> warmup_size(MonitorConfig(reference_size=150, window_size=100), 100)
    300
    """
    return -(-(monitor.reference_size + monitor.window_size) // per_message) * per_message


def _messages(spec: ScenarioSpec, per_message: int, chunk_size: int) -> Iterator[bytes]:
    """One model's stream as message values of ``per_message`` events (1: a bare event)."""
    for predictions, _ in iter_chunks(spec, chunk_size=chunk_size):
        if per_message == 1:
            yield from map(orjson.dumps, predictions)
        else:
            for i in range(0, len(predictions), per_message):
                yield orjson.dumps(predictions[i:i + per_message])


def model_streams(events: int, per_message: int, models: int = 1,
                  warmup: int = 0) -> list[tuple[str, Iterator[bytes]]]:
    """Per model, its key and its message values; ``models`` > 1 splits ``events`` evenly.

    One model is ``credit-risk``'s stationary stream; several are ``model-00``,
    ``model-01``, ... each with its own seed (so its own reference). Each
    model's stream starts with ``warmup`` more events (a multiple of
    ``per_message``); a model with no share of ``events`` is left out.

    Examples
    --------
    >>> [(key, len(list(values))) for key, values in model_streams(250, 100, models=2)]
    [('model-00', 2), ('model-01', 2)]
    >>> [(key, len(list(values))) for key, values in model_streams(250, 100, 2, warmup=300)]
    [('model-00', 5), ('model-01', 5)]
    """
    # Chunks of whole messages: every message but a stream's last holds per_message events.
    if models == 1:
        chunk = max(per_message, 10_000 // per_message * per_message)
        return [(ONE_MODEL, _messages(ScenarioSpec("stationary", warmup + events), per_message,
                                      chunk))]
    share, extra = divmod(events, models)
    # Small chunks: every model's generator holds one chunk of dicts at a time.
    chunk = max(per_message, 1000 // per_message * per_message)
    return [(model_id, _messages(ScenarioSpec("stationary", warmup + share + (k < extra), seed=k,
                                              model_id=model_id), per_message, chunk))
            for k, model_id in enumerate(model_ids(models)) if share + (k < extra)]


def _interleave(producer: Producer, topic: str,
                streams: Iterable[tuple[str, Iterator[bytes]]]) -> int:
    """Publish one message of each stream in turn until all are done; return the count."""
    live = list(streams)
    messages = 0
    while live:
        for key, values in list(live):
            value = next(values, None)
            if value is None:
                live.remove((key, values))
                continue
            while True:
                try:
                    producer.produce(topic, value, key=key)
                    break
                except BufferError:         # the local queue is full: let it drain
                    producer.poll(0.1)
            messages += 1
            if messages % 10_000 == 0:
                producer.poll(0)
    return messages


def fill_topic(settings: Settings, events: int, per_message: int, models: int = 1,
               warmup: int = 0) -> FilledTopic:
    """Publish ``warmup`` events per model, then ``events`` more of ``models`` models.

    Messages are interleaved one model after the other (each message holds one
    model's events), keyed by ``model_id``; every model's warm-up messages come
    before any measured one.
    """
    producer = Producer(client_config(settings.bootstrap_servers, settings.kafka,
                                      **{"linger.ms": 20, "batch.num.messages": 10000}))
    topic = settings.topics.name("predictions")
    streams = model_streams(events, per_message, models, warmup)
    warmup_messages = _interleave(producer, topic, [(key, islice(values, warmup // per_message))
                                                    for key, values in streams])
    messages = _interleave(producer, topic, streams)
    producer.flush(60)
    return FilledTopic(warmup_messages, warmup * len(streams), messages, events)


def raw_rate(settings: Settings, messages: int, events: int,
             roles: tuple[str, ...] = ("predictions",), skip: int = 0) -> float:
    """Events/s of a bare consume(5000) + orjson.loads loop over the topics of ``roles``.

    Its fetches are not postponed while it drains its queue (:data:`RAW_FETCH_BACKOFF_MS`).

    ``skip``: messages at the start of each partition that are not read (its
    reading starts at the partition's low watermark plus ``skip``).
    """
    consumer = Consumer(client_config(settings.bootstrap_servers, settings.kafka,
                                      **{"group.id": f"bench-raw-{uuid.uuid4().hex[:6]}",
                                         "enable.auto.commit": False,
                                         "fetch.queue.backoff.ms": RAW_FETCH_BACKOFF_MS}))
    assignment = []
    for topic in (settings.topics.name(role) for role in roles):
        for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            start = OFFSET_BEGINNING
            if skip:
                low, _ = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                        timeout=10)
                start = low + skip
            assignment.append(TopicPartition(topic, partition, start))
    consumer.assign(assignment)
    seen = 0
    first = 0.0
    first_offset = -1
    deadline = time.monotonic() + 120
    while seen < messages and time.monotonic() < deadline:
        # Never ask for more than is left: the last call would wait out its timeout.
        batch = consumer.consume(min(5000, messages - seen), 0.5)
        if batch and not first:
            first = time.perf_counter()
            first_offset = batch[0].offset() or 0
        for message in batch:
            value = message.value()
            if message.error() is None and value is not None:
                orjson.loads(value)
                seen += 1
    elapsed = time.perf_counter() - first
    consumer.close()
    if seen < messages:
        raise RuntimeError(f"raw consumer saw {seen} of {messages} messages")
    if skip and len(assignment) == 1 and first_offset != assignment[0].offset:
        raise RuntimeError(f"raw consumer started at offset {first_offset}, not "
                           f"{assignment[0].offset}")
    return events / elapsed


class MarkedWorker(Worker):
    """A worker that notes the time and its event count once it has read the warm-up.

    A consumed batch that holds the warm-up's last message is stepped in two
    parts, so that the mark falls right after that message, whatever the batch
    sizes (with 100-event messages one batch may hold a whole topic).
    ``warmup_messages`` counts messages of the predictions topic, the only one
    the bench fills.
    """

    def __init__(self, settings: Settings, warmup_messages: int) -> None:
        super().__init__(settings)
        self.warmup_messages = warmup_messages
        self.mark_at = 0.0
        """``time.perf_counter()`` when the measured part starts (0.0: not yet)."""
        self.mark_events = 0
        """Events read by then."""

    def process(self, messages: list[Message]) -> None:
        """Step the batch, in two parts if the warm-up ends inside it."""
        read = self.stats.messages
        if self.mark_at or read + len(messages) <= self.warmup_messages:
            super().process(messages)
            return
        warmup = self.warmup_messages - read
        if warmup:
            super().process(messages[:warmup])
        self.mark_at, self.mark_events = time.perf_counter(), self.stats.events
        super().process(messages[warmup:])


def worker_rate(settings: Settings, topic: FilledTopic) -> float:
    """Events/s of a driftline worker, inside its Faust app, over the measured part of ``topic``.

    The worker runs as ``driftline worker`` runs it: its batch loop in the thread of
    the app's worker service, next to the app's event loop and web server. It reads
    the whole topic; its clock runs from the moment it has read the warm-up part (or,
    without one, from the start of its first batch) to the end of its last batch.
    """
    from streams.runtime.app import make_app, run_app

    app = make_app(settings, worker_factory=lambda s: MarkedWorker(s, topic.warmup_messages))
    service = app.worker_service
    assert service is not None
    stop = threading.Event()
    thread = threading.Thread(target=run_app, args=(app, stop), daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while service.worker is None and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    worker = service.worker
    if not isinstance(worker, MarkedWorker):
        raise RuntimeError(f"the app did not start its worker: {service.error!r}")
    total_messages = topic.warmup_messages + topic.messages
    while worker.stats.messages < total_messages and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(60)
    # run() froze the heap, this worker with it: thaw it so that it can be collected once
    # dropped (its producer's threads would otherwise outlive the broker).
    gc.unfreeze()
    stats = worker.stats
    total_events = topic.warmup_events + topic.events
    if stats.events != total_events:
        raise RuntimeError(f"worker saw {stats.events} of {total_events} events")
    if worker.mark_events != topic.warmup_events:
        raise RuntimeError(f"worker had read {worker.mark_events} events at the end of the "
                           f"warm-up, not {topic.warmup_events}")
    return topic.events / (stats.last_batch_at - worker.mark_at)


def bench_settings(stack: EmbeddedStack, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for one measurement: fresh topics and group, one partition, a free web port.

    ``environ`` adds settings variables (:data:`MONITOR_VARIABLES`, say).
    """
    tag = uuid.uuid4().hex[:6]
    settings = load_settings(environ={
        **(environ or {}),
        "DRIFTLINE_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "DRIFTLINE_REDIS_URL": stack.redis_url, "DRIFTLINE_GROUP_ID": f"bench-{tag}",
        "DRIFTLINE_TOPIC_PREFIX": f"bench{tag}.", "DRIFTLINE_PARTITIONS": "1",
        "DRIFTLINE_SESSION_TIMEOUT_MS": "6000", "DRIFTLINE_WEB_PORT": "0"})
    settings = settings.with_overrides(worker=replace(settings.worker,
                                                      poll_timeout_s=POLL_TIMEOUT_S))
    ensure_topics(settings)
    return settings


def measure_round(stack: EmbeddedStack, events: int, per_message: int, models: int,
                  warmup: bool = True, environ: Mapping[str, str] | None = None) -> Round:
    """Raw consumer and worker on a one-model topic, then a worker on a ``models``-model one."""
    settings = bench_settings(stack, environ)
    size = warmup_size(settings.monitor, per_message) if warmup else 0
    topic = fill_topic(settings, events, per_message, warmup=size)
    before = raw_rate(settings, topic.messages, topic.events, skip=topic.warmup_messages)
    one_model = worker_rate(settings, topic)
    after = raw_rate(settings, topic.messages, topic.events, skip=topic.warmup_messages)
    raw, runs = bracketed(before, after), (before, after)
    if models < 2:
        return Round(raw, one_model, raw_runs=runs)
    settings = bench_settings(stack, environ)
    topic = fill_topic(settings, events, per_message, models, warmup=size)
    return Round(raw, one_model, worker_rate(settings, topic), runs)


def run_throughput(events: int, rounds: int, shapes: Sequence[int] = SHAPES,
                   models: int = MODELS, warmup: bool = True,
                   environ: Mapping[str, str] | None = None,
                   out: IO[str] = sys.stdout) -> dict[int, list[Round]]:
    """Measure every shape ``rounds`` times on one embedded stack; print a table per shape.

    ``models`` < 2 skips the many-model stream; ``warmup=False`` measures whole
    streams, one-time per-model costs included; ``environ`` adds settings
    variables (the monitor's sizes, say). Returns the rounds per shape.
    """
    monitor = load_settings(environ=dict(environ or {})).monitor
    results: dict[int, list[Round]] = {}
    with EmbeddedStack() as stack:
        print(f"embedded Tansu {stack.bootstrap_servers}; 1 partition; {events:,} measured "
              "events/round and stream", file=out)
        _print_plan(events, models, warmup, monitor, out)
        for per_message in shapes:
            title = f"\n{per_message} event(s)/message"
            if warmup:
                size = warmup_size(monitor, per_message)
                title += f"; warm-up {size:,} events on the 1-model stream"
                if models > 1:
                    title += f", {size * min(models, events):,} on the {models}-model stream"
            print(title, file=out)
            header = f"{'round':>5} {'raw consume+orjson':>20} {'worker 1 model':>18} {'ratio':>7}"
            if models > 1:
                header += f" {f'worker {models} models':>18} {f'{models}-model / 1-model':>20}"
            print(header, file=out, flush=True)
            results[per_message] = []
            for index in range(rounds):
                result = measure_round(stack, events, per_message, models, warmup, environ)
                results[per_message].append(result)
                line = (f"{index + 1:>5} {result.raw_eps:>16,.0f} e/s "
                        f"{result.worker_eps:>14,.0f} e/s {result.ratio:>7.2f}")
                if result.models_eps is not None and result.models_ratio is not None:
                    line += f" {result.models_eps:>14,.0f} e/s {result.models_ratio:>20.2f}"
                line += "   raw before / after: " + " / ".join(f"{eps:,.0f}"
                                                             for eps in result.raw_runs)
                print(line, file=out, flush=True)
            print_summary(summary_rows(results[per_message], models), out)
        # The last workers' producers go before the broker they are connected to.
        gc.collect()
    return results


def _print_plan(events: int, models: int, warmup: bool, monitor: MonitorConfig,
                out: IO[str]) -> None:
    """Say what is measured: the steady state after a warm-up, or whole streams."""
    reference, window = monitor.reference_size, monitor.window_size
    if warmup:
        print("measured: the steady state, after a warm-up that is not timed, in which every "
              f"model collects its reference (reference_size {reference:,}), closes it "
              f"(calibrating its tests, once) and tests one window (window_size {window:,}); "
              "the worker reads the warm-up, the raw consumer starts after it", file=out)
    else:
        print("measured: whole streams from their first event: every model's "
              "reference and calibration included", file=out)
    if models < 2:
        return
    ids = model_ids(models)
    share = events // models
    line = f"{models}-model stream: {ids[0]} … {ids[-1]}, {share:,} measured events each"
    if not warmup:
        line += (f"; the first {reference:,} of each are its reference (closing it calibrates "
                 "its tests once: included)" if share > reference else
                 f"; all of them reference (reference_size {reference:,}): no window is tested")
    print(line, file=out)


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
