"""With no stack running, every command that needs one says so in two lines and exits.

Before: ``status`` printed a redis ConnectionError traceback, ``tail --limit 1`` about
200 librdkafka ``Connection refused`` lines in 10 s and then a KafkaException
traceback, ``rebaseline`` 125 such lines before its error. The commands run here as
a user runs them, against ports where nothing listens.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from streams.stack.embedded import free_port

# Generous for a loaded two-core machine; the old tail waited its 10 s timeout out.
BOUND_S = 9.0


def run_without_stack(*command: str) -> tuple[subprocess.CompletedProcess[str], float, int,
                                              int]:
    kafka_port, redis_port = free_port(), free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("DRIFTLINE_")}
    env |= {"DRIFTLINE_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
            "DRIFTLINE_REDIS_URL": f"redis://:s3cret@127.0.0.1:{redis_port}/0"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "streams.ui.cli", *command], env=env,
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started, kafka_port, redis_port


@pytest.mark.parametrize(("command", "needs"), [
    (("status",), "redis"),
    (("dashboard", "--port", "0"), "redis"),
    (("worker",), "redis"),  # Redis is checked first
    (("tail", "--limit", "1"), "kafka"),
    (("rebaseline", "--model", "credit-risk"), "kafka"),
    (("audit", "--model", "credit-risk"), "kafka"),
])
def test_a_command_without_its_stack_fails_in_two_lines(command: tuple[str, ...],
                                                        needs: str) -> None:
    done, seconds, kafka_port, redis_port = run_without_stack(*command)
    err = done.stderr
    assert done.returncode == 2, err
    assert "Traceback" not in err and "%3|" not in err and "librdkafka" not in err, err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("driftline: error: cannot reach "), err
    if needs == "redis":
        assert f"Redis at redis://:***@127.0.0.1:{redis_port}/0 " in lines[0], err
        assert "DRIFTLINE_REDIS_URL" in lines[1], err
    else:
        assert f"Kafka at 127.0.0.1:{kafka_port} " in lines[0], err
        assert "Connection refused" in lines[0], err
        assert "DRIFTLINE_BOOTSTRAP_SERVERS" in lines[1], err
    assert "`driftline up`" in lines[1], err
    assert "s3cret" not in err
    assert done.stdout == ""
    assert seconds < BOUND_S, f"{command} took {seconds:.1f} s"
