"""Helpers of the delivery tests: recording HTTP receivers and a `driftline deliver` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.stack.embedded import free_port, spawn, stop_process
from tests.integration.conftest import produce
from tests.streams.delivery.receivers import RecordingReceiver, Request, make_alert

__all__ = ["DeliveryProcess", "RecordingReceiver", "Request", "deliver", "make_alert",
           "publish_alerts", "receivers", "wait_until"]


class DeliveryProcess:
    """`driftline deliver` as a child process against the test's stack."""

    def __init__(self, settings: Settings, webhooks: list[dict[str, Any]], log_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.web_port = free_port()
        self.environ = {
            **os.environ, **(env or {}),
            "DRIFTLINE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "DRIFTLINE_REDIS_URL": settings.redis_url,
            "DRIFTLINE_GROUP_ID": settings.group_id,
            "DRIFTLINE_TOPIC_PREFIX": settings.topics.prefix,
            "DRIFTLINE_PARTITIONS": str(settings.topics.partitions),
            "DRIFTLINE_SINKS_WEBHOOKS": json.dumps(webhooks),
            "DRIFTLINE_DELIVERY_SESSION_TIMEOUT_MS": "6000",
            "DRIFTLINE_DELIVERY_COMMIT_INTERVAL_S": "0.5",
            "DRIFTLINE_DELIVERY_WEB_PORT": str(self.web_port),
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DeliveryProcess:
        self.process = spawn([sys.executable, "-m", "streams.ui.cli", "deliver"],
                             self.log_path, env=self.environ)
        return self

    def healthz(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/healthz",
                                        timeout=2) as response:
                return dict(json.loads(response.read()))
        except OSError:
            return None

    def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log()
            figures = self.healthz()
            if figures is not None:
                return figures
            time.sleep(0.3)
        raise AssertionError(f"no /healthz within {timeout_s} s:\n{self.log()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def publish_alerts(settings: Settings, alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        produce(settings, [orjson.dumps(alert)], key=alert["model_id"], topic_role="alerts")


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture()
def receivers() -> Iterator[Callable[..., RecordingReceiver]]:
    started: list[RecordingReceiver] = []

    def start(**options: Any) -> RecordingReceiver:
        receiver = RecordingReceiver(**options)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture()
def deliver(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., DeliveryProcess]]:
    ensure_topics(settings)
    processes: list[DeliveryProcess] = []

    def start(webhooks: list[dict[str, Any]], **env: str) -> DeliveryProcess:
        process = DeliveryProcess(settings, webhooks, tmp_path / f"deliver-{len(processes)}.log",
                                  env).start()
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()
