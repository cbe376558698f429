"""Webhook sink: POST each alert as signed JSON, retry with backoff, park what cannot be delivered.

Every alert is one ``POST`` of JSON bytes, either the contract-v1 alert itself
(``format="driftline"``) or a list in Alertmanager's ``/api/v2/alerts`` shape
(``format="alertmanager"``): one Alertmanager alert per condition, so a grouped
event (``features``) becomes one alert per member, all sharing the
``group_key`` label for Alertmanager's ``group_by``. Each request carries

- ``X-Driftline-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``
  when a secret is configured;
- ``X-Driftline-Alert-Id``: the alert's deterministic id. Delivery is
  at-least-once (a receiver that processed a request but failed to answer 2xx
  gets it again), so receivers de-duplicate on this id;
- ``X-Driftline-Timestamp``: Unix seconds when the attempt was sent (not signed);
- ``X-Driftline-Attempt``: 1 for the first attempt, 2 for the first retry, ...

Connection errors, timeouts, 408, 429 and 5xx are retried with exponential
backoff and jitter (``Retry-After`` is honoured); any other answer outside 2xx
parks the alert at once. Alerts with the same ``group_key`` (else ``dedup_key``)
are delivered in the order they were submitted, so a ``resolved`` never
overtakes its ``firing``, even when one was grouped and the other not; other
groups are not held up behind a failing one. An alert that is
not delivered within ``max_attempts`` attempts or ``max_retry_window_s``
seconds, that finds the queue full, or that is still pending when the sink
closes is handed to the ``park(alert, reason)`` callback: nothing is dropped.

A receiver checks the signature before trusting the body::

    from http.server import BaseHTTPRequestHandler
    from streams.runtime.sinks import verify_signature

    class Receiver(BaseHTTPRequestHandler):
        seen: set[str] = set()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if not verify_signature(body, self.headers.get("X-Driftline-Signature", ""),
                                    SECRET):
                self.send_response(401)
            else:
                alert_id = self.headers["X-Driftline-Alert-Id"]
                if alert_id not in self.seen:  # a repeat is answered 2xx, not re-processed
                    self.seen.add(alert_id)
                    handle(json.loads(body))
                self.send_response(204)
            self.end_headers()
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import http.client
import itertools
import logging
import math
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson

from streams.errors import SettingsError

log = logging.getLogger(__name__)

FORMATS = ("driftline", "alertmanager")
SIGNATURE_HEADER = "X-Driftline-Signature"
TIMESTAMP_HEADER = "X-Driftline-Timestamp"
ALERT_ID_HEADER = "X-Driftline-Alert-Id"
ATTEMPT_HEADER = "X-Driftline-Attempt"
_OWN_HEADERS = {h.lower() for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, ALERT_ID_HEADER,
                                    ATTEMPT_HEADER, "Content-Type", "Content-Length")}
_RETRY_STATUSES = frozenset({408, 429})
_MAX_RESPONSE_READ = 65_536
_MAX_REMEMBERED_FIRINGS = 100_000

Park = Callable[[dict[str, Any], str], None]
"""Receives an undeliverable alert and why, e.g. to publish it on the dead-letter topic."""


@dataclass(frozen=True)
class WebhookSettings:
    """Where and how one webhook receives alerts.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` endpoint that accepts ``POST``.
    secret
        HMAC-SHA256 key; empty sends unsigned requests. Never shown in ``repr``.
    format
        ``"driftline"`` (the contract-v1 alert) or ``"alertmanager"`` (API v2 list).
    timeout_s
        Per-request timeout.
    max_attempts, max_retry_window_s
        An alert is parked after this many attempts or this long after its first one.
    backoff_initial_s, backoff_max_s
        The delay before retry ``n`` is ``min(max, initial * 2**(n-1))``, jittered down
        by up to half, and never shorter than the receiver's ``Retry-After``.
    queue_max
        Alerts waiting for delivery; beyond it new alerts are parked at once.
    headers
        Extra request headers (e.g. ``Authorization``); driftline's own cannot be overridden.
    generator_url
        Optional back-link sent as Alertmanager's ``generatorURL``.

    Examples
    --------
    >>> WebhookSettings("http://127.0.0.1:9/hook", secret="s3cret").format
    'driftline'
    >>> WebhookSettings("ftp://example.com/hook")
    Traceback (most recent call last):
    ...
    streams.errors.SettingsError: url: expected an http:// or https:// URL, got 'ftp://example.com/hook'
    """

    url: str = field(repr=False)  # may hold user:password@: never in a repr or a log
    secret: bytes | str = field(default=b"", repr=False)
    format: str = "driftline"
    timeout_s: float = 5.0
    max_attempts: int = 8
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_window_s: float = 600.0
    queue_max: int = 10_000
    headers: Mapping[str, str] = field(default_factory=dict)
    generator_url: str | None = None

    def __post_init__(self) -> None:
        """Refuse settings that could never deliver, naming the parameter."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(f"url: expected an http:// or https:// URL, got "
                                f"{without_credentials(self.url)!r}")
        if parts.username is not None and any(h.lower() == "authorization" for h in self.headers):
            raise SettingsError("headers: 'Authorization' and credentials in url "
                                "(user:password@) both authenticate: keep one")
        if self.format not in FORMATS:
            raise SettingsError(f"format: expected one of {list(FORMATS)}, got {self.format!r}")
        positive = {"timeout_s": self.timeout_s, "max_attempts": self.max_attempts,
                    "backoff_initial_s": self.backoff_initial_s,
                    "max_retry_window_s": self.max_retry_window_s, "queue_max": self.queue_max}
        for name, value in positive.items():
            if not value > 0:
                raise SettingsError(f"{name}: expected a number > 0, got {value!r}")
        if self.backoff_max_s < self.backoff_initial_s:
            raise SettingsError(f"backoff_max_s: expected >= backoff_initial_s "
                                f"({self.backoff_initial_s}), got {self.backoff_max_s!r}")
        reserved = sorted(h for h in self.headers if h.lower() in _OWN_HEADERS)
        if reserved:
            raise SettingsError(f"headers: {reserved[0]!r} is set by driftline itself")


def sign(body: bytes, secret: bytes | str) -> str:
    """Return the signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str, secret: bytes | str) -> bool:
    """Check an ``X-Driftline-Signature`` header against the exact received body bytes.

    The comparison takes constant time. An empty secret verifies nothing: a
    receiver without a secret cannot tell a forged request from a real one.

    Examples
    --------
    >>> body = b'{"alert_id":"3f2a"}'
    >>> header = sign(body, "s3cret")
    >>> verify_signature(body, header, "s3cret"), verify_signature(body + b" ", header, "s3cret")
    (True, False)
    >>> verify_signature(body, header, "other"), verify_signature(body, "", "s3cret")
    (False, False)
    """
    if not secret or not header:
        return False
    expected = sign(body, secret).encode()
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


def rfc3339(ts: float) -> str:
    """Format Unix seconds as an RFC 3339 UTC time, e.g. ``2024-01-01T00:00:00.000Z``."""
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def alertmanager_alert(alert: Mapping[str, Any], *, severity: str | None = None,
                       starts_at: float | None = None,
                       generator_url: str | None = None) -> dict[str, Any]:
    """Translate one driftline alert into Alertmanager's API v2 ``postableAlert`` shape.

    Labels identify an alert in Alertmanager, so a ``resolved`` must carry the
    same labels as its ``firing``: pass the firing's ``severity`` (and its start
    time as ``starts_at``) when translating a resolution.

    Examples
    --------
    >>> am = alertmanager_alert({"dedup_key": "m|v1|data_drift|age|ks", "model_id": "m",
    ...     "model_version": "v1", "kind": "data_drift", "status": "resolved",
    ...     "severity": "info", "feature": "age", "explanation": "age is back to normal",
    ...     "ts": 0.0}, severity="critical", starts_at=0.0)
    >>> am["labels"]["alertname"], am["labels"]["severity"], am["endsAt"]
    ('DriftlineDataDrift', 'critical', '1970-01-01T00:00:00.000Z')
    """
    kind = str(alert.get("kind", "unknown"))
    ts = _number(alert.get("ts"), time.time())
    labels = {"alertname": "Driftline" + "".join(p.capitalize() for p in kind.split("_")),
              "model_id": str(alert.get("model_id")),
              "model_version": str(alert.get("model_version")), "kind": kind,
              "severity": severity or str(alert.get("severity")),
              "dedup_key": str(alert.get("dedup_key"))}
    if alert.get("group_key"):
        labels["group_key"] = str(alert["group_key"])
    # Alertmanager treats an empty label as an absent one; omit rather than send "None".
    for name in ("feature", "segment"):
        if alert.get(name):
            labels[name] = str(alert[name])
    summary = f"{kind.replace('_', ' ')} on model {labels['model_id']} {labels['model_version']}"
    if "feature" in labels:
        summary += f", feature {labels['feature']}"
    annotations = {"summary": summary, "description": str(alert.get("explanation", "")),
                   "alert_id": str(alert.get("alert_id")), "detector": str(alert.get("detector")),
                   "statistic": str(alert.get("statistic")),
                   "threshold": str(alert.get("threshold"))}
    payload: dict[str, Any] = {"labels": labels, "annotations": annotations,
                               "startsAt": rfc3339(ts if starts_at is None else starts_at)}
    if alert.get("status") == "resolved":
        payload["endsAt"] = rfc3339(max(ts, starts_at or ts))
    if generator_url:
        payload["generatorURL"] = generator_url
    return payload


class _Outcome(NamedTuple):
    verdict: str  # "delivered", "retry" or "park"
    detail: str = ""
    retry_after_s: float = 0.0


@dataclass
class _Delivery:
    alert: dict[str, Any]
    body: bytes | None = None  # built once, so every retry sends (and signs) the same bytes
    attempts: int = 0
    first_attempt_at: float = 0.0


def without_credentials(url: str, mask: str = "***@") -> str:
    """``url`` without its ``user:password@`` (replaced by ``mask``), fit for a message.

    >>> without_credentials("https://ops:pw@hooks.example.com/x")
    'https://***@hooks.example.com/x'
    >>> without_credentials("https://ops:pw@hooks.example.com/x", mask="")
    'https://hooks.example.com/x'
    """
    parts = urlsplit(url)
    if parts.username is None:
        return url
    return urlunsplit(parts._replace(netloc=mask + parts.netloc.rpartition("@")[2]))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a bodiless GET and call it delivered.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookSink:
    """Deliver alerts to one webhook from a background thread; never block the caller.

    Examples
    --------
    >>> parked = []
    >>> sink = WebhookSink(WebhookSettings("http://127.0.0.1:9/hook", queue_max=1),
    ...                    park=lambda alert, reason: parked.append(reason))
    >>> sink.submit({"alert_id": "a1", "dedup_key": "k"})  # not started: it waits in the queue
    >>> sink.submit({"alert_id": "a2", "dedup_key": "k"})
    >>> parked
    ['queue full (1 alerts waiting for http://127.0.0.1:9)']
    >>> sink.close(timeout_s=0)
    >>> sink.parked, sink.pending
    (2, 0)
    """

    def __init__(self, settings: WebhookSettings, park: Park) -> None:
        self.settings = settings
        self.park = park
        self.delivered = 0
        self.retried = 0
        self.parked = 0
        self._pending = 0
        self._lanes: dict[str, deque[_Delivery]] = {}
        self._due: list[tuple[float, int, str]] = []  # one entry per lane not in flight
        self._sequence = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._close_deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._random = random.Random()
        self._fired: dict[str, tuple[str, float]] = {}  # dedup_key -> severity, ts of its firing
        # Webhook URLs often carry a token in their path or user info (Slack, Teams): logs,
        # thread names and park reasons (which reach the dead-letter topic) name only the host.
        parts = urlsplit(settings.url)
        self.endpoint = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port
                                                                 else "")
        # urllib cannot send a URL's user info: it becomes HTTP basic authentication.
        self._request_url = without_credentials(settings.url, mask="")
        self._authorization: dict[str, str] = {}
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._authorization["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    @property
    def pending(self) -> int:
        """Alerts submitted and neither delivered nor parked yet."""
        return self._pending

    def start(self) -> WebhookSink:
        """Start the delivery thread; return the sink."""
        with self._cond:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"driftline-webhook:{self.endpoint}")
                self._thread.start()
        return self

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(self, alert: dict[str, Any]) -> None:
        """Queue one alert for delivery; if the queue is full or closed, park it at once."""
        with self._cond:
            if self._closing:
                reason = f"webhook sink for {self.endpoint} is closed"
            elif self._pending >= self.settings.queue_max:
                reason = f"queue full ({self._pending} alerts waiting for {self.endpoint})"
            else:
                key = str(alert.get("group_key") or alert.get("dedup_key")
                          or alert.get("alert_id"))
                lane = self._lanes.get(key)
                if lane is None:
                    lane = self._lanes[key] = deque()
                    heapq.heappush(self._due, (time.monotonic(), next(self._sequence), key))
                lane.append(_Delivery(dict(alert)))
                self._pending += 1
                self._cond.notify_all()
                return
            self._pending += 1
        self._hand_to_park(alert, reason)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every submitted alert is delivered or parked; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop accepting alerts, keep delivering for up to ``timeout_s``, park the rest.

        A request already in flight is allowed to finish (at most ``settings.timeout_s``).
        """
        with self._cond:
            self._closing = True
            self._close_deadline = min(self._close_deadline, time.monotonic() + timeout_s)
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._park_remaining(f"webhook sink for {self.endpoint} closed before delivery")

    def _run(self) -> None:
        while (due := self._next_due()) is not None:
            key, delivery = due
            try:
                outcome = self._attempt(delivery)
            except Exception as exc:  # a dead thread would strand every queued alert
                log.exception("webhook delivery to %s failed unexpectedly", self.endpoint)
                outcome = _Outcome("park", f"unexpected error: {exc!r}")
            self._settle(key, delivery, outcome)
        self._park_remaining(f"webhook sink for {self.endpoint} closed before delivery")

    def _next_due(self) -> tuple[str, _Delivery] | None:
        with self._cond:
            while True:
                now = time.monotonic()
                if self._closing and (self._pending == 0 or now >= self._close_deadline
                                      or (self._due and self._due[0][0] > self._close_deadline)):
                    return None
                if not self._due:
                    self._cond.wait(self._close_deadline - now if self._closing else None)
                    continue
                wait_s = self._due[0][0] - now
                if wait_s > 0:
                    self._cond.wait(wait_s)
                    continue
                key = heapq.heappop(self._due)[2]
                return key, self._lanes[key][0]

    def _attempt(self, delivery: _Delivery) -> _Outcome:
        if delivery.body is None:
            try:
                delivery.body = self._encode(delivery.alert)
            except (TypeError, ValueError) as exc:
                return _Outcome("park", f"cannot encode the alert as JSON: {exc}")
            delivery.first_attempt_at = time.monotonic()
        delivery.attempts += 1
        headers = {**self.settings.headers, "Content-Type": "application/json",
                   "User-Agent": "driftline-webhook/1",
                   TIMESTAMP_HEADER: str(int(time.time())),
                   ALERT_ID_HEADER: str(delivery.alert.get("alert_id")),
                   ATTEMPT_HEADER: str(delivery.attempts), **self._authorization}
        if self.settings.secret:
            headers[SIGNATURE_HEADER] = sign(delivery.body, self.settings.secret)
        request = urllib.request.Request(self._request_url, data=delivery.body, headers=headers,
                                         method="POST")
        try:
            with self._opener.open(request, timeout=self.settings.timeout_s) as response:
                response.read(_MAX_RESPONSE_READ)
            return _Outcome("delivered")
        except urllib.error.HTTPError as exc:
            with exc:
                detail = f"HTTP {exc.code} {exc.reason}: {_snippet(exc)}".rstrip(": ")
                if exc.code in _RETRY_STATUSES or exc.code >= 500:
                    return _Outcome("retry", detail, _retry_after_s(exc.headers.get("Retry-After")))
                return _Outcome("park", detail)
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, DNS, timeout
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            return _Outcome("retry", f"cannot reach the receiver: {reason!r}")

    def _encode(self, alert: dict[str, Any]) -> bytes:
        if self.settings.format == "driftline":
            return orjson.dumps(alert)
        return orjson.dumps([self._alertmanager_member(member)
                             for member in _members(alert)])

    def _alertmanager_member(self, alert: dict[str, Any]) -> dict[str, Any]:
        key = str(alert.get("dedup_key"))
        severity, starts_at = str(alert.get("severity")), _number(alert.get("ts"), time.time())
        if alert.get("status") == "resolved":
            fired = self._fired.pop(key, None)
            if fired is not None:
                severity, starts_at = fired
            severity = str(alert.get("fired_severity") or severity)
        else:
            self._fired.pop(key, None)
            self._fired[key] = (severity, starts_at)
            if len(self._fired) > _MAX_REMEMBERED_FIRINGS:
                del self._fired[next(iter(self._fired))]
        return alertmanager_alert(alert, severity=severity, starts_at=starts_at,
                                  generator_url=self.settings.generator_url)

    def _settle(self, key: str, delivery: _Delivery, outcome: _Outcome) -> None:
        verdict, detail = outcome.verdict, outcome.detail
        if verdict == "retry":
            delay_s = self._backoff_s(delivery.attempts, outcome.retry_after_s)
            elapsed_s = time.monotonic() - delivery.first_attempt_at
            if delivery.attempts >= self.settings.max_attempts:
                verdict, detail = "park", f"gave up after {delivery.attempts} attempts: {detail}"
            elif elapsed_s + delay_s > self.settings.max_retry_window_s:
                verdict, detail = "park", (f"gave up after {delivery.attempts} attempts in "
                                           f"{elapsed_s:.1f} s (retry window): {detail}")
            else:
                log.debug("webhook %s: retry %d in %.2f s: %s", self.endpoint,
                          delivery.attempts, delay_s, detail)
                with self._cond:
                    self.retried += 1
                    heapq.heappush(self._due, (time.monotonic() + delay_s,
                                               next(self._sequence), key))
                    self._cond.notify_all()
                return
        with self._cond:
            lane = self._lanes[key]
            lane.popleft()
            if lane:
                heapq.heappush(self._due, (time.monotonic(), next(self._sequence), key))
            else:
                del self._lanes[key]
            if verdict == "delivered":
                self.delivered += 1
                self._pending -= 1
                self._cond.notify_all()
                return
        self._hand_to_park(delivery.alert, f"{self.endpoint}: {detail}")

    def _backoff_s(self, attempts: int, retry_after_s: float) -> float:
        ceiling = min(self.settings.backoff_max_s,
                      self.settings.backoff_initial_s * 2.0 ** min(attempts - 1, 62))
        return max(self._random.uniform(ceiling / 2, ceiling), retry_after_s)

    def _park_remaining(self, reason: str) -> None:
        with self._cond:
            stranded = [d for lane in self._lanes.values() for d in lane]
            self._lanes.clear()
            self._due.clear()
        for delivery in stranded:
            self._hand_to_park(delivery.alert, reason)

    def _hand_to_park(self, alert: dict[str, Any], reason: str) -> None:
        """Give one alert to ``park``; the caller has already counted it as pending."""
        log.warning("webhook alert %s parked: %s", alert.get("alert_id"), reason)
        try:
            self.park(alert, reason)
        except Exception:  # the sink must keep going; the log is the last trace of the alert
            log.exception("park callback failed for alert %s (%s)", alert.get("alert_id"),
                          reason)
        with self._cond:
            self.parked += 1
            self._pending -= 1
            self._cond.notify_all()


def _members(alert: dict[str, Any]) -> list[dict[str, Any]]:
    """One alert per condition: a grouped event's members, each with the event's context.

    >>> [m["feature"] for m in _members({"feature": "a", "features": [
    ...     {"feature": "a"}, {"feature": "b"}]})]
    ['a', 'b']
    """
    features = alert.get("features")
    if not isinstance(features, list) or not features:
        return [alert]
    shared = {k: v for k, v in alert.items() if k != "features"}
    return [{**shared, **member} for member in features if isinstance(member, dict)]


def _snippet(response: urllib.error.HTTPError) -> str:
    try:
        return response.read(200).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException):
        return ""


def _retry_after_s(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); 0 if absent."""
    if not value:
        return 0.0
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds > 0 else 0.0
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _number(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default
