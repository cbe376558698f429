"""`driftline deliver` refuses to start without receivers or without its stack, in two lines."""

from __future__ import annotations

import os
import subprocess
import sys

from streams.stack.embedded import free_port


def deliver_without_stack(**environ: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("DRIFTLINE_")}
    env |= {"DRIFTLINE_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "DRIFTLINE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", **environ}
    return subprocess.run([sys.executable, "-m", "streams.ui.cli", "deliver"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_without_webhooks_it_says_what_to_configure() -> None:
    done = deliver_without_stack()
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("driftline: error: no receivers configured: add webhooks "
                                  "under sinks.webhooks"), done.stderr


def test_without_its_stack_it_names_what_it_cannot_reach() -> None:
    done = deliver_without_stack(DRIFTLINE_SINKS_WEBHOOKS="[{url: 'http://127.0.0.1:9/hook'}]")
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 2, done.stderr
    assert lines[0].startswith("driftline: error: cannot reach Redis at "), done.stderr
    assert "Traceback" not in done.stderr
