"""The Faust app factory: what it serves, what it leaves out, how it stops.

No broker here: the app's Kafka clients are off (the worker's own clients connect
lazily), and the worker in these tests fails or is never started.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace

import pytest

from streams.errors import DriftlineError
from streams.runtime.app import app_paths, make_app, run_app
from streams.runtime.outputs import WorkerStats
from streams.runtime.worker import Worker
from streams.settings import Settings, load_settings
from streams.settings_service import WebSettings


def settings(port: int = 0) -> Settings:
    base = load_settings(environ={"DRIFTLINE_REDIS_URL": "redis://127.0.0.1:9/0",
                                  "DRIFTLINE_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
    return replace(base, web=WebSettings(port=port))


def test_one_port_serves_the_dashboard_metrics_and_probes() -> None:
    app = make_app(settings())
    assert app_paths(app) == ["/", "/api/alerts", "/api/audit", "/api/drilldown", "/api/labels",
                              "/api/models", "/api/series", "/api/throughput", "/events",
                              "/healthz", "/metrics", "/readyz"]
    assert app.conf.web_bind == "127.0.0.1" and app.conf.web_port > 0
    assert "/metrics" not in app_paths(make_app(settings(), worker=False))


def test_faust_starts_no_kafka_client_of_its_own() -> None:
    boot = make_app(settings()).boot_strategy
    # No consumer group join, leader-assignor topic, reply consumer, tables or producer.
    assert list(boot.kafka_consumer()) == [] and list(boot.kafka_producer()) == []
    assert list(boot.kafka_conductor()) == [] and list(boot.tables()) == []


def test_port_minus_one_means_no_web_server() -> None:
    app = make_app(settings(port=-1))
    assert app.web_url is None and list(app.boot_strategy.web_server()) == []


class FailingWorker(Worker):
    def run(self, stop: threading.Event) -> WorkerStats:
        raise DriftlineError("redis_url: cannot reach redis://127.0.0.1:9/0")


def test_a_batch_loop_that_fails_stops_the_app_with_its_error() -> None:
    app = make_app(settings(port=-1), worker_factory=FailingWorker)
    started = time.monotonic()
    with pytest.raises(DriftlineError, match="cannot reach"):
        run_app(app, threading.Event())
    assert time.monotonic() - started < 30
    assert app.health is not None and app.health.alive() == {
        "alive": False, "reason": "the worker's batch loop failed: DriftlineError('redis_url: "
        "cannot reach redis://127.0.0.1:9/0')"}


def test_a_busy_web_port_is_an_error_naming_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = make_app(settings(port=taken.getsockname()[1]), worker=False)
        with pytest.raises(DriftlineError, match=r"web.port: cannot serve on 127.0.0.1:\d+ "):
            run_app(app, threading.Event())
