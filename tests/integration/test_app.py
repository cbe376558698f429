"""``driftline worker`` runs inside its Faust app: probes, metrics, SIGTERM's last checkpoint."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.stack.embedded import free_port
from streams.state.checkpoint import CheckpointStore

from .conftest import as_arrays, events, produce, wait_for
from .faults import start_worker_process, stop_worker

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def covered(settings: Settings) -> int:
    """Prediction messages the partitions' checkpoints cover."""
    store = CheckpointStore(settings.redis_url, settings.group_id)
    topic = settings.topics.name("predictions")
    checkpoints = [store.load(topic, p) for p in range(settings.topics.partitions)]
    return sum(c.offsets.get(topic, 0) for c in checkpoints if c is not None)


def test_worker_serves_probes_and_metrics_and_checkpoints_on_sigterm(
        settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    settings = settings.with_overrides(web=replace(settings.web, port=port))
    ensure_topics(settings)
    produce(settings, as_arrays(events(2000)))             # 20 messages of 100 events
    log = tmp_path / "worker.log"
    # No periodic checkpoint: only the one SIGTERM's stop writes can cover the messages.
    process = start_worker_process(settings, log, {"worker": {"checkpoint_interval_s": 3600.0}})
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: get(f"{base}/readyz")[0] == 200, 60), log.read_text()
        status, body = get(f"{base}/readyz")
        ready = orjson.loads(body)
        assert ready == {"ready": True, "redis": True, "assigned": True, "partitions": [0, 1],
                         "broker": True, "alive": True}, ready
        assert get(f"{base}/healthz") == (200, b'{"alive":true}')

        def events_counted() -> bool:
            status, text = get(f"{base}/metrics")
            return status == 200 and b'driftline_input_events_total{topic="' + \
                settings.topics.name("predictions").encode() + b'"} 2000.0' in text

        assert wait_for(events_counted, 60), get(f"{base}/metrics")[1].decode()[-2000:]
        assert get(f"{base}/")[0] == 200                  # the dashboard, same port
        assert covered(settings) < 20
    finally:
        code = stop_worker(process)
    text = log.read_text()
    assert code == 0, text
    assert "signal SIGTERM: stopping" in text
    assert covered(settings) == 20, text
    # Faust's own Kafka clients are off: no leader-assignor or changelog topic appeared.
    topics = AdminClient({"bootstrap.servers": settings.bootstrap_servers}).list_topics(
        timeout=10).topics
    assert not [name for name in topics if "__assignor" in name
                or name.startswith(settings.group_id)], sorted(topics)
