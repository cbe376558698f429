"""Redis calls that wait out an outage: retry with backoff, say so in the log, carry on.

A worker that exits when Redis blinks is restarted into the same outage, and a
step cut off half-way has to be redone from its checkpoint, publishing its
outputs again. Instead every Redis call that the worker's state depends on
(checkpoints, pending predictions, claims) goes through one :class:`RedisRetry`:
while Redis cannot be reached (refused, reset or timed out) the call is retried
with exponential backoff, a warning is logged when the outage starts and every
``log_every_s`` while it lasts, and one line when Redis answers again.
Processing pauses meanwhile (the worker waits inside the call; the Kafka
client keeps its group session from its own thread) and resumes where it was.

Only idempotent operations go through here, because a call that timed out may
still have run, and may even run late, when the server wakes up with the
request in its socket buffer: a ``SET`` of the same bytes, a claim that knows
its own claimant, a checkpoint write fenced by epoch and sequence number.

Errors that are not an outage (a wrong password, a script error, a full
memory) are raised at once, as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from streams.errors import DriftlineError
from streams.settings_security import RedisSettings
from streams.state.connect import redis_client

log = logging.getLogger(__name__)

T = TypeVar("T")

# Worth waiting for: the server is away, restarting, loading its data or failing over.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError,
                                               redis.ReadOnlyError)
# ConnectionError subclasses that are configuration, not an outage.
NOT_OUTAGE: tuple[type[Exception], ...] = (redis.exceptions.AuthenticationError,
                                           redis.exceptions.AuthorizationError)


class RedisUnavailable(DriftlineError):
    """Redis stayed unreachable until the worker was asked to stop."""


def state_client(url: str, security: RedisSettings | None = None,
                 timeout_s: float = 10.0) -> redis.Redis:
    """A client of the state stores (see :func:`~streams.state.connect.redis_client`).

    Without redis-py's own retries: :class:`RedisRetry` is the one policy.
    """
    return redis_client(url, security, socket_timeout=timeout_s,
                        socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))


class RedisRetry:
    """Run Redis calls, retrying through outages (see the module docstring).

    Parameters
    ----------
    base_s, cap_s
        First wait and longest wait between attempts (doubling in between).
    log_every_s
        How often a continuing outage is logged again.
    on_change
        Called with ``False`` when an outage starts and ``True`` when it ends
        (the worker's ``driftline_redis_up`` gauge).

    Examples
    --------
    >>> attempts = []
    >>> def flaky() -> str:
    ...     attempts.append(1)
    ...     if len(attempts) < 3:
    ...         raise redis.ConnectionError("refused")
    ...     return "stored"
    >>> RedisRetry(base_s=0.001).call("store", flaky), len(attempts)
    ('stored', 3)
    """

    def __init__(self, base_s: float = 0.1, cap_s: float = 5.0, log_every_s: float = 10.0,
                 on_change: Callable[[bool], None] | None = None) -> None:
        if not 0 < base_s <= cap_s:
            raise ValueError(f"base_s: expected 0 < base_s <= cap_s ({cap_s}), got {base_s}")
        self.base_s, self.cap_s, self.log_every_s = base_s, cap_s, log_every_s
        self.on_change = on_change
        self.cancel = threading.Event()
        """Set to stop waiting: a call still failing raises :class:`RedisUnavailable`."""
        self.outages = 0
        self.outage_s = 0.0

    def call(self, what: str, operation: Callable[[], T]) -> T:
        """Return ``operation()``, retried while Redis is unreachable; ``what`` names it in logs."""
        started = time.monotonic()          # a timeout is noticed socket_timeout after this
        try:
            return operation()
        except NOT_OUTAGE:
            raise
        except OUTAGE_ERRORS as exc:
            return self._wait_out(what, operation, exc, started)

    def _wait_out(self, what: str, operation: Callable[[], T], error: Exception,
                  started: float) -> T:
        last_log = time.monotonic()
        self.outages += 1
        log.warning("Redis unreachable for %.1f s (%s: %s): processing paused, retrying until it "
                    "answers", last_log - started, what, error)
        if self.on_change is not None:
            self.on_change(False)
        delay = self.base_s
        try:
            while True:
                if self.cancel.wait(delay):
                    raise RedisUnavailable(f"Redis unreachable for {time.monotonic() - started:.0f}"
                                           f" s ({what}: {error}); stopped while waiting") \
                        from error
                delay = min(delay * 2, self.cap_s)
                try:
                    result = operation()
                except NOT_OUTAGE:
                    raise
                except OUTAGE_ERRORS as exc:
                    error = exc
                    if time.monotonic() - last_log >= self.log_every_s:
                        last_log = time.monotonic()
                        log.warning("Redis still unreachable after %.0f s (%s: %s); processing "
                                    "stays paused", last_log - started, what, exc)
                    continue
                log.warning("Redis reachable again after %.1f s: processing resumes (%s)",
                            time.monotonic() - started, what)
                if self.on_change is not None:
                    self.on_change(True)
                return result
        finally:
            self.outage_s += time.monotonic() - started


__all__ = ["OUTAGE_ERRORS", "RedisRetry", "RedisUnavailable", "state_client"]
