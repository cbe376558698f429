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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# From where it is defined: confluent_kafka.admin re-exports it without marking it public.
from confluent_kafka.admin._metadata import ClusterMetadata

from streams.errors import SettingsError, StackError

if TYPE_CHECKING:
    from streams.settings_security import RedisSettings

log = logging.getLogger(__name__)

KAFKA_HINT = ("`driftline up` starts a local Kafka and Redis and prints their addresses; set "
              "bootstrap_servers (DRIFTLINE_BOOTSTRAP_SERVERS) to it or to your brokers")
REDIS_HINT = ("`driftline up` starts a local Kafka and Redis and prints their addresses; set "
              "redis_url (DRIFTLINE_REDIS_URL) to it or to your Redis")

REDIS_AUTH_HINT = ("set the ACL user and password in redis.username and redis.password_file "
                   "(DRIFTLINE_REDIS_USERNAME, DRIFTLINE_REDIS_PASSWORD_FILE) or in the URL, "
                   "redis://USER:PASSWORD@host:port/0")
REDIS_TLS_HINT = ("a TLS Redis needs a rediss:// URL; set redis.ca_file "
                  "(DRIFTLINE_REDIS_CA_FILE) to the CA that signed its certificate, and "
                  "redis.cert_file/key_file if it asks for a client certificate")
KAFKA_TLS_HINT = ("check the kafka: map's ssl.ca.location (the CA that signed the brokers' "
                  "certificates) and, for mutual TLS, ssl.certificate.location and "
                  "ssl.key.location (DRIFTLINE_KAFKA_SSL_CA_LOCATION, …): see the README, "
                  "Connecting to your Kafka")

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


def client_config(bootstrap_servers: str, kafka: Mapping[str, str] | None = None,
                  **overrides: Any) -> dict[str, Any]:
    """A confluent-kafka client configuration: the user's ``kafka:`` map on top.

    Every Kafka client driftline creates is configured here, so the ``kafka:``
    map (SASL, TLS, timeouts) reaches all of them unchanged. ``overrides`` are
    the client's own defaults; the map may override those (a ``linger.ms`` of
    the user's), except the keys settings refuse in it (``group.id``,
    ``enable.auto.commit``, ``bootstrap.servers``). Logs go through
    :class:`LibrdkafkaLog`.

    Examples
    --------
    >>> config = client_config("127.0.0.1:9092", {"security.protocol": "SSL"},
    ...                        **{"enable.auto.commit": False})
    >>> config["bootstrap.servers"], config["enable.auto.commit"], config["security.protocol"]
    ('127.0.0.1:9092', False, 'SSL')
    >>> type(config["logger"])
    <class 'streams.runtime.connections.LibrdkafkaLog'>
    """
    return {"bootstrap.servers": bootstrap_servers, "logger": LibrdkafkaLog(), **overrides,
            **(kafka or {})}


def cluster_metadata(bootstrap_servers: str, timeout_s: float = 10.0,
                     kafka: Mapping[str, str] | None = None) -> ClusterMetadata:
    """The cluster's topics and brokers, or :class:`UnreachableError` naming the address.

    Gives up as soon as librdkafka reports every bootstrap broker down (a refused
    connection, a name that does not resolve, a TLS handshake that fails: well
    under a second), else after ``timeout_s`` without an answer (a firewall that
    drops packets). ``kafka`` is the user's client map; a property librdkafka does
    not know is a :class:`SettingsError` naming it.
    """
    errors: list[KafkaError] = []
    try:
        admin = AdminClient(client_config(bootstrap_servers, kafka,
                                          logger=LibrdkafkaLog(level=logging.DEBUG),
                                          error_cb=errors.append))
    except KafkaException as exc:
        raise SettingsError(f"kafka: {exc.args[0].str()} (the kafka: map holds librdkafka "
                            "properties: see the README, Connecting to your Kafka)") from exc
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


def require_redis(url: str, timeout_s: float = 5.0,
                  security: RedisSettings | None = None) -> None:
    """Return when Redis at ``url`` answers a PING, else raise :class:`UnreachableError`.

    ``security`` is the ``redis:`` section (ACL user, password, TLS files). Refused
    credentials and an unverified server certificate each get a message of their own
    naming the settings to check.
    """
    import redis

    from streams.state.connect import redis_client

    try:
        client = redis_client(url, security, socket_connect_timeout=timeout_s,
                              socket_timeout=timeout_s)
    except ValueError as exc:
        raise SettingsError(f"redis_url: expected a redis:// URL, got {redacted(url)!r} "
                            f"({exc})") from exc
    try:
        client.ping()
    except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError) as exc:
        # NOAUTH / WRONGPASS / NOPERM: Redis answered, and refused these credentials.
        raise UnreachableError(f"Redis at {redacted(url)} refused driftline's credentials "
                               f"({exc})\n  {REDIS_AUTH_HINT}") from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        if "certificate" in str(exc) or "SSL" in str(exc):
            raise UnreachableError(f"cannot reach Redis at {redacted(url)}: TLS failed ({exc})"
                                   f"\n  {REDIS_TLS_HINT}") from exc
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
    hint = KAFKA_TLS_HINT if "SSL" in reason or "certificate" in reason else KAFKA_HINT
    return f"cannot reach Kafka at {bootstrap_servers} ({reason})\n  {hint}"


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
            return _handshake(_ATTEMPT_SUFFIX.sub("", _BROKER_PREFIX.sub("", error.str())))
    return ""


def _handshake(reason: str) -> str:
    """Name an OpenSSL error as the failed handshake it is, as librdkafka mostly does.

    librdkafka reports a refused certificate as ``SSL handshake failed: error:…``, but
    on some runs as the bare OpenSSL error: the user reads the same words either way.

    >>> _handshake("error:0A000086:SSL routines::certificate verify failed")
    'SSL handshake failed: error:0A000086:SSL routines::certificate verify failed'
    >>> _handshake("SSL handshake failed: error:0A000086:SSL routines::x")
    'SSL handshake failed: error:0A000086:SSL routines::x'
    >>> _handshake("Connection refused")
    'Connection refused'
    """
    if "SSL routines" in reason and not reason.startswith("SSL handshake failed"):
        return "SSL handshake failed: " + reason
    return reason
