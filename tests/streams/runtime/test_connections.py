"""Quiet Kafka clients and the reachability checks, against ports where nothing listens."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Producer

from streams.errors import SettingsError
from streams.runtime.connections import (
    LibrdkafkaLog,
    UnreachableError,
    client_config,
    cluster_metadata,
    require_redis,
)
from streams.runtime.worker import FETCH_QUEUE_BACKOFF_MS, consumer_config
from streams.settings import load_settings
from streams.stack.embedded import free_port


def test_cluster_metadata_gives_up_at_once_when_every_broker_refuses() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(UnreachableError) as caught:
        cluster_metadata(f"127.0.0.1:{port}", timeout_s=30.0)
    # librdkafka reports all brokers down after the first refused connection.
    assert time.monotonic() - started < 5.0
    first, hint = str(caught.value).splitlines()
    assert first == (f"cannot reach Kafka at 127.0.0.1:{port} (Connect to ipv4#127.0.0.1:{port} "
                     "failed: Connection refused)")
    assert "driftline up" in hint and "DRIFTLINE_BOOTSTRAP_SERVERS" in hint


def test_a_name_that_does_not_resolve_is_named() -> None:
    with pytest.raises(UnreachableError, match=r"Kafka at no-such-host\.invalid:9092 "
                                               r"\(Failed to resolve"):
        cluster_metadata("no-such-host.invalid:9092", timeout_s=30.0)


def test_require_redis_names_the_url_without_its_password() -> None:
    port = free_port()
    with pytest.raises(UnreachableError) as caught:
        require_redis(f"redis://admin:hunter2@127.0.0.1:{port}/3", timeout_s=2.0)
    text = str(caught.value)
    assert text.startswith(f"cannot reach Redis at redis://admin:***@127.0.0.1:{port}/3 (")
    assert "hunter2" not in text and "DRIFTLINE_REDIS_URL" in text


def test_require_redis_refuses_a_url_that_is_not_one() -> None:
    with pytest.raises(SettingsError, match="redis_url: expected a redis:// URL"):
        require_redis("localhost:6379")


def test_a_client_against_a_closed_port_logs_one_line_not_a_flood(
        caplog: pytest.LogCaptureFixture) -> None:
    # The old rebaseline: a producer flushing for seconds against a closed port wrote
    # ~20 librdkafka lines a second to stderr.
    sink = LibrdkafkaLog()
    producer = Producer(client_config(f"127.0.0.1:{free_port()}", logger=sink))
    producer.produce("t", b"x")
    with caplog.at_level(logging.DEBUG, logger="streams.runtime.connections"):
        # librdkafka's reconnect backoff sets how many lines come: wait for a few repeats
        # (a loaded machine gives fewer per second), never for a count of them.
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline and sink.suppressed < 5:
            producer.poll(0.1)
    refused = [r for r in caplog.records if "Connection refused" in r.getMessage()]
    assert sink.suppressed >= 5, (sink.forwarded, sink.suppressed)
    assert len(refused) == 1, [r.getMessage() for r in caplog.records]
    assert refused[0].levelno == logging.ERROR
    producer.purge()
    producer.flush(0)


def test_the_workers_consumer_fetches_again_soon_unless_the_kafka_map_says_otherwise() -> None:
    config = consumer_config(load_settings(environ={}), "w")
    assert config["fetch.queue.backoff.ms"] == FETCH_QUEUE_BACKOFF_MS < 1000
    assert config["group.id"] and config["enable.auto.commit"] is False
    mine = load_settings(environ={"DRIFTLINE_KAFKA": "{fetch.queue.backoff.ms: '500'}"})
    assert consumer_config(mine, "w")["fetch.queue.backoff.ms"] == "500"
