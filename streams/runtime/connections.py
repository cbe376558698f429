"""Reaching Kafka and Redis: quiet Kafka clients, and errors that say what to do.

librdkafka logs every failed connection attempt straight to stderr (about twenty
lines a second per client against a closed port) and retries until the call's
timeout. driftline's own clients route those logs through Python logging with
repeats collapsed (:class:`LibrdkafkaLog`), and commands first ask for the
cluster's metadata (:func:`cluster_metadata`), which gives up as soon as every
bootstrap broker has failed, with a message naming the address and how to start
a stack. :func:`require_redis` does the same for Redis.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# From where it is defined: confluent_kafka.admin re-exports it without marking it public.
from confluent_kafka.admin._metadata import ClusterMetadata

from streams.errors import SettingsError, StackError

log = logging.getLogger(__name__)

KAFKA_HINT = ("`driftline up` starts a local Kafka and Redis and prints their addresses; set "
              "bootstrap_servers (DRIFTLINE_BOOTSTRAP_SERVERS) to it or to your brokers")
REDIS_HINT = ("`driftline up` starts a local Kafka and Redis and prints their addresses; set "
              "redis_url (DRIFTLINE_REDIS_URL) to it or to your Redis")

# librdkafka's reasons start with the broker's name and end with how long the attempt
# took: neither helps the reader, and the duration makes repeats look different.
_BROKER_PREFIX = re.compile(r"^\S+/(?:bootstrap|\d+): ")
_ATTEMPT_SUFFIX = re.compile(r"\s*\(after \d+ms in state \w+(?:, \d+ identical error\(s\) "
                             r"suppressed)?\)$")


class UnreachableError(StackError):
    """Kafka or Redis did not answer; the message names the address and how to start one."""


class LibrdkafkaLog:
    """A librdkafka ``logger``: its lines go to Python logging, each repeat collapsed.

    librdkafka calls ``log(level, format, facility, client, message)``; a message
    already forwarded within ``interval_s`` is dropped, so a broker that stays away
    costs one line a minute instead of twenty a second.

    Parameters
    ----------
    logger
        Where the lines go (default: this module's logger).
    interval_s
        How long an identical message stays silenced.
    level
        Forward every line at this level instead of librdkafka's own (e.g.
        ``logging.DEBUG`` for a probe whose failure is reported otherwise).

    Examples
    --------
    >>> sink = LibrdkafkaLog(interval_s=60.0)
    >>> for attempt in range(3):
    ...     sink.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-1",
    ...              f"b:9092/bootstrap: Connect failed (after {attempt}ms in state CONNECT)")
    >>> sink.forwarded, sink.suppressed
    (1, 2)
    """

    MAX_KEYS = 256

    def __init__(self, logger: logging.Logger | None = None, interval_s: float = 60.0,
                 level: int | None = None) -> None:
        self.logger = logger or log
        self.interval_s = interval_s
        self.level = level
        self.forwarded = 0
        self.suppressed = 0
        self._last_seen: dict[str, float] = {}

    def log(self, level: int, fmt: str, *args: object) -> None:
        """Forward one librdkafka line unless the same line went out recently."""
        text = fmt % args if args else fmt
        key = _ATTEMPT_SUFFIX.sub("", text)
        now = time.monotonic()
        last = self._last_seen.get(key)
        if last is not None and now - last < self.interval_s:
            self.suppressed += 1
            return
        self._last_seen.pop(key, None)
        self._last_seen[key] = now
        if len(self._last_seen) > self.MAX_KEYS:
            del self._last_seen[next(iter(self._last_seen))]
        self.forwarded += 1
        self.logger.log(self.level if self.level is not None else level, "librdkafka: %s",
                        text)


def client_config(bootstrap_servers: str, **overrides: Any) -> dict[str, Any]:
    """A confluent-kafka client configuration whose logs go through :class:`LibrdkafkaLog`.

    Examples
    --------
    >>> config = client_config("127.0.0.1:9092", **{"enable.auto.commit": False})
    >>> config["bootstrap.servers"], config["enable.auto.commit"], type(config["logger"])
    ('127.0.0.1:9092', False, <class 'streams.runtime.connections.LibrdkafkaLog'>)
    """
    return {"bootstrap.servers": bootstrap_servers, "logger": LibrdkafkaLog(), **overrides}


def cluster_metadata(bootstrap_servers: str, timeout_s: float = 10.0) -> ClusterMetadata:
    """The cluster's topics and brokers, or :class:`UnreachableError` naming the address.

    Gives up as soon as librdkafka reports every bootstrap broker down (a refused
    connection, a name that does not resolve: well under a second), else after
    ``timeout_s`` without an answer (a firewall that drops packets).
    """
    errors: list[KafkaError] = []
    admin = AdminClient(client_config(bootstrap_servers, logger=LibrdkafkaLog(level=logging.DEBUG),
                                      error_cb=errors.append))
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            return admin.list_topics(timeout=max(min(remaining, 0.25), 0.01))
        except KafkaException:
            pass  # not yet: the error callback says whether to keep trying
        admin.poll(0)
        if any(error.code() == KafkaError._ALL_BROKERS_DOWN for error in errors):
            raise UnreachableError(kafka_unreachable(bootstrap_servers, _reason(errors)))
        if remaining <= 0:
            raise UnreachableError(kafka_unreachable(
                bootstrap_servers, _reason(errors) or f"no answer within {timeout_s:g} s"))


def require_redis(url: str, timeout_s: float = 5.0) -> None:
    """Return when Redis at ``url`` answers a PING, else raise :class:`UnreachableError`."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s,
                                      socket_timeout=timeout_s)
    except ValueError as exc:
        raise SettingsError(f"redis_url: expected a redis:// URL, got {redacted(url)!r} "
                            f"({exc})") from exc
    try:
        client.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise UnreachableError(f"cannot reach Redis at {redacted(url)} ({exc})\n"
                               f"  {REDIS_HINT}") from exc
    finally:
        client.close()


def kafka_unreachable(bootstrap_servers: str, reason: str) -> str:
    """The two lines a user reads when Kafka does not answer.

    >>> first, hint = kafka_unreachable("localhost:9092", "Connection refused").splitlines()
    >>> first, hint == "  " + KAFKA_HINT
    ('cannot reach Kafka at localhost:9092 (Connection refused)', True)
    """
    return f"cannot reach Kafka at {bootstrap_servers} ({reason})\n  {KAFKA_HINT}"


def redacted(url: str) -> str:
    """``url`` with its password masked, fit for an error message.

    >>> redacted("redis://:s3cret@cache:6379/0"), redacted("redis://localhost:6379/0")
    ('redis://:***@cache:6379/0', 'redis://localhost:6379/0')
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def _reason(errors: list[KafkaError]) -> str:
    """The first connection error librdkafka reported, without the broker name and timing."""
    for error in errors:
        if error.code() != KafkaError._ALL_BROKERS_DOWN:
            return _ATTEMPT_SUFFIX.sub("", _BROKER_PREFIX.sub("", error.str()))
    return ""
