"""One real Tansu broker and one real Redis for the whole session; unique topics per test."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from streams.runtime.app import make_app, run_app
from streams.runtime.reader import TopicReader
from streams.runtime.worker import Worker
from streams.settings import Settings, load_settings
from streams.stack.embedded import EmbeddedStack


@pytest.fixture(scope="session")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack() as embedded:
        yield embedded


@pytest.fixture()
def settings(stack: EmbeddedStack) -> Settings:
    tag = uuid.uuid4().hex[:8]
    base = load_settings(environ={
        "DRIFTLINE_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "DRIFTLINE_REDIS_URL": stack.redis_url,
        "DRIFTLINE_GROUP_ID": f"test-{tag}",
        "DRIFTLINE_TOPIC_PREFIX": f"t{tag}.",
        "DRIFTLINE_PARTITIONS": "2",
        "DRIFTLINE_SESSION_TIMEOUT_MS": "6000",
        "DRIFTLINE_REFERENCE_SIZE": "1000",
        "DRIFTLINE_WINDOW_SIZE": "500",
        "DRIFTLINE_WEB_PORT": "0",
    })
    return base


class RunningWorker:
    """A worker inside its Faust app (``make_app``) on a thread, stopped (and checkpointed)
    at teardown; its web port serves the dashboard, ``/metrics`` and the probes."""

    def __init__(self, settings: Settings) -> None:
        self.app = make_app(settings)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        service = self.app.worker_service
        assert service is not None
        deadline = time.monotonic() + 30
        while service.worker is None and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if service.worker is None:
            raise RuntimeError(f"the app did not start its worker: {self.error!r}")
        self.worker: Worker = service.worker

    def _run(self) -> None:
        try:
            run_app(self.app, self.stop)
        except BaseException as exc:  # noqa: BLE001 - kept for the test to look at
            self.error = exc

    @property
    def web_port(self) -> int:
        return int(self.app.conf.web_port)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture()
def start_worker() -> Iterator[Callable[[Settings], RunningWorker]]:
    workers: list[RunningWorker] = []

    def start(settings: Settings) -> RunningWorker:
        running = RunningWorker(settings)
        workers.append(running)
        return running

    yield start
    for running in workers:
        running.close()


def produce(settings: Settings, values: list[bytes], key: str = "m1",
            topic_role: str = "predictions") -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers,
                         "message.max.bytes": 10_000_000, "linger.ms": 5})
    failures: list[Any] = []
    for value in values:
        producer.produce(settings.topics.name(topic_role), value, key=key,
                         on_delivery=lambda err, msg: failures.append(err) if err else None)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not failures, failures


def events(n: int, start: int = 0, shift: float = 0.0, model: str = "m1",
           seed: int = 1) -> list[dict[str, Any]]:
    import numpy as np

    rng = np.random.default_rng(seed + start)
    x = rng.normal(shift, 1.0, n)
    cats = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    return [{"model_id": model, "model_version": "v1", "event_id": f"{model}-{start + i}",
             "ts": 1_700_000_000.0 + start + i, "features": {"x": float(x[i]), "c": str(cats[i])},
             "prediction": int(x[i] > 0), "score": float(1 / (1 + np.exp(-x[i])))}
            for i in range(n)]


def as_arrays(items: list[dict[str, Any]], size: int = 100) -> list[bytes]:
    return [orjson.dumps(items[i:i + size]) for i in range(0, len(items), size)]


def read_until(settings: Settings, roles: list[str], done: Callable[[list[tuple[str, Any]]], bool],
               timeout_s: float = 60.0) -> list[tuple[str, Any]]:
    reader = TopicReader(settings.bootstrap_servers, [settings.topics.name(r) for r in roles])
    records: list[tuple[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not done(records):
            records += reader.poll(0.5)
    finally:
        reader.close()
    return records


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()
