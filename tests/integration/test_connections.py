"""The reachability checks pass against the real stack and name the half that is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from streams.runtime.connections import cluster_metadata, require_redis
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.stack.embedded import EmbeddedStack, free_port

pytestmark = pytest.mark.integration


def driftline(settings: Settings, *command: str, **overrides: str
              ) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("DRIFTLINE_")}
    env |= {"DRIFTLINE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "DRIFTLINE_REDIS_URL": settings.redis_url, "DRIFTLINE_GROUP_ID": settings.group_id,
            "DRIFTLINE_TOPIC_PREFIX": settings.topics.prefix, **overrides}
    return subprocess.run([sys.executable, "-m", "streams.ui.cli", *command], env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_checks_pass_against_the_running_stack(stack: EmbeddedStack,
                                                   settings: Settings) -> None:
    ensure_topics(settings)
    started = time.monotonic()
    metadata = cluster_metadata(stack.bootstrap_servers)
    require_redis(stack.redis_url)
    assert time.monotonic() - started < 5.0
    assert settings.topics.name("alerts") in metadata.topics


def test_status_against_a_live_redis_prints_its_summary(settings: Settings) -> None:
    done = driftline(settings, "status")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no model has closed a window yet"), done.stdout


def test_tail_before_any_worker_names_the_missing_topic(settings: Settings) -> None:
    done = driftline(settings, "tail", "--limit", "1")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"driftline: error: topic {settings.topics.name('alerts')} does not "
                           "exist (is a worker running?)\n")


def test_a_worker_with_redis_but_no_kafka_names_kafka(settings: Settings) -> None:
    port = free_port()
    done = driftline(settings, "worker", DRIFTLINE_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"driftline: error: cannot reach Kafka at 127.0.0.1:{port} ")
