"""One receiver's settings, the request signature and the Alertmanager alert shape.

Every alert is one ``POST`` of JSON bytes whose shape is the receiver's
``format`` (:mod:`streams.delivery.formats`): the contract-v1 alert itself
(``driftline``), a list in Alertmanager's ``/api/v2/alerts`` shape
(``alertmanager``), a Slack incoming-webhook message (``slack``) or a
PagerDuty Events API v2 event (``pagerduty``). Each request carries

- ``X-Driftline-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes>``
  when a secret is configured;
- ``X-Driftline-Alert-Id``: the alert's deterministic id. Delivery is
  at-least-once (a receiver that processed a request but failed to answer 2xx
  gets it again, and so does one whose alert was sent shortly before a
  ``kill -9``), so receivers de-duplicate on this id;
- ``X-Driftline-Timestamp``: Unix seconds when the attempt was sent (not signed);
- ``X-Driftline-Attempt``: 1 for the first attempt, 2 for the first retry, ...

A receiver checks the signature before trusting the body::

    from http.server import BaseHTTPRequestHandler
    from streams.delivery import verify_signature

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

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from streams.errors import SettingsError

FORMATS = ("driftline", "alertmanager", "slack", "pagerduty")
SIGNATURE_HEADER = "X-Driftline-Signature"
TIMESTAMP_HEADER = "X-Driftline-Timestamp"
ALERT_ID_HEADER = "X-Driftline-Alert-Id"
ATTEMPT_HEADER = "X-Driftline-Attempt"
OWN_HEADERS = frozenset(h.lower() for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, ALERT_ID_HEADER,
                                            ATTEMPT_HEADER, "Content-Type", "Content-Length"))


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
        ``"driftline"`` (the contract-v1 alert), ``"alertmanager"`` (API v2 list),
        ``"slack"`` (incoming-webhook message) or ``"pagerduty"`` (Events API v2).
    timeout_s
        Per-request timeout.
    max_attempts, max_retry_window_s
        An alert is parked after this many attempts or this long after its first one.
    backoff_initial_s, backoff_max_s
        The delay before retry ``n`` is ``min(max, initial * 2**(n-1))``, jittered down
        by up to half, and never shorter than the receiver's ``Retry-After``.
    resend_interval_s
        Alertmanager only: every firing alert is sent again this often until it
        resolves, as Alertmanager's clients must (0 = never re-send).
    routing_key
        PagerDuty only (required there): the integration's routing key, from the
        variable named by ``routing_key_env``. Never shown in ``repr``.
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
    resend_interval_s: float = 60.0
    routing_key: str = field(default="", repr=False)
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
                    "max_retry_window_s": self.max_retry_window_s}
        for name, value in positive.items():
            if not value > 0:
                raise SettingsError(f"{name}: expected a number > 0, got {value!r}")
        if not self.resend_interval_s >= 0:
            raise SettingsError(f"resend_interval_s: expected a number >= 0, got "
                                f"{self.resend_interval_s!r}")
        if self.format == "pagerduty" and not self.routing_key:
            raise SettingsError("routing_key: the pagerduty format needs the integration's "
                                "routing key (routing_key_env names its variable)")
        if self.backoff_max_s < self.backoff_initial_s:
            raise SettingsError(f"backoff_max_s: expected >= backoff_initial_s "
                                f"({self.backoff_initial_s}), got {self.backoff_max_s!r}")
        reserved = sorted(h for h in self.headers if h.lower() in OWN_HEADERS)
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
