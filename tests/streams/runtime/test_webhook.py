from __future__ import annotations

import hashlib
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.errors import SettingsError
from streams.runtime.sinks import WebhookSettings, WebhookSink, sign, verify_signature

SECRET = b"test-secret"


def make_alert(key: str, status: str = "firing", severity: str = "warning") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "alert_id": hashlib.sha256(f"{key}|{status}".encode()).hexdigest()[:32],
        "dedup_key": key, "model_id": "churn", "model_version": "v3", "kind": "data_drift",
        "status": status, "severity": severity, "feature": "age", "segment": None,
        "detector": "ks", "statistic": 0.31, "threshold": 0.1,
        "window": {"start_ts": 1.7e9, "end_ts": 1.7e9 + 60, "events": 500},
        "reference": {"events": 1000}, "explanation": f"age moved ({key}, {status})",
        "ts": 1.7e9 + 61.0,
    }


@dataclass
class Received:
    alert_id: str
    body: bytes
    headers: dict[str, str]
    status: int
    at: float
    index: int = 0


# What the receiver answers: (status, extra headers, body).
Response = tuple[int, dict[str, str], bytes]


class Receiver:
    """A real HTTP server on 127.0.0.1 recording every request and what it answered."""

    def __init__(self, respond: Callable[[Received], Response] | None = None,
                 port: int = 0) -> None:
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.respond = respond or (lambda _: (200, {}, b""))
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = Received(self.headers.get("X-Driftline-Alert-Id", ""), body,
                                   dict(self.headers.items()), 0, time.monotonic())
                with receiver.lock:  # in arrival order, before the (maybe slow) answer
                    request.index = len(receiver.requests)
                    receiver.requests.append(request)
                status, headers, answer = receiver.respond(request)
                request.status = status
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def ok(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def sink_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("driftline-webhook")]


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(receivers: list[Receiver]) -> Callable[..., Receiver]:
    def start(respond: Callable[[Received], Response] | None = None, port: int = 0) -> Receiver:
        receivers.append(Receiver(respond, port))
        return receivers[-1]
    return start


class Parked(list[tuple[dict[str, Any], str]]):
    def __call__(self, alert: dict[str, Any], reason: str) -> None:
        self.append((alert, reason))


@pytest.fixture
def sinks() -> Iterator[Callable[..., tuple[WebhookSink, Parked]]]:
    made: list[WebhookSink] = []

    def make(url: str, **options: Any) -> tuple[WebhookSink, Parked]:
        options = {"secret": SECRET, "backoff_initial_s": 0.01, "backoff_max_s": 0.05,
                   "timeout_s": 2.0, **options}
        parked = Parked()
        made.append(WebhookSink(WebhookSettings(url, **options), parked).start())
        return made[-1], parked

    yield make
    for sink in made:
        sink.close(timeout_s=1.0)
    assert not sink_threads(), "a webhook thread outlived close()"


def test_delivers_the_alert_as_signed_json(receiver: Any, sinks: Any) -> None:
    server = receiver()
    sink, parked = sinks(server.url, headers={"Authorization": "Bearer t0k"})
    alert = make_alert("k1")
    sink.submit(alert)
    assert sink.flush(timeout_s=5)
    [request] = server.requests
    assert request.body == orjson.dumps(alert)
    assert verify_signature(request.body, request.headers["X-Driftline-Signature"], SECRET)
    assert not verify_signature(request.body, request.headers["X-Driftline-Signature"], b"x")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t0k"
    assert request.alert_id == alert["alert_id"]
    assert abs(int(request.headers["X-Driftline-Timestamp"]) - time.time()) < 60
    assert (sink.delivered, sink.retried, sink.parked, parked) == (1, 0, 0, [])


def test_no_secret_sends_unsigned_requests(receiver: Any, sinks: Any) -> None:
    server = receiver()
    sink, _ = sinks(server.url, secret="")
    sink.submit(make_alert("k1"))
    assert sink.flush(timeout_s=5)
    assert "X-Driftline-Signature" not in server.requests[0].headers


def test_alertmanager_format_posts_v2_alerts_whose_resolution_matches_the_firing(
        receiver: Any, sinks: Any) -> None:
    server = receiver()
    sink, _ = sinks(server.url, format="alertmanager", generator_url="http://driftline:8080/")
    firing = make_alert("churn|v3|data_drift|age|ks", "firing", "critical")
    resolved = {**make_alert("churn|v3|data_drift|age|ks", "resolved", "info"),
                "ts": firing["ts"] + 300}
    sink.submit(firing)
    sink.submit(resolved)
    assert sink.flush(timeout_s=5)
    bodies = [orjson.loads(r.body) for r in server.requests]
    assert all(verify_signature(r.body, r.headers["X-Driftline-Signature"], SECRET)
               for r in server.requests)
    assert [len(b) for b in bodies] == [1, 1]
    (am_firing,), (am_resolved,) = bodies
    for am in (am_firing, am_resolved):
        assert set(am) <= {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
        assert all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) for name in am["labels"])
        assert all(isinstance(v, str) and v for v in am["labels"].values())
        assert all(isinstance(v, str) for v in am["annotations"].values())
        assert am["generatorURL"] == "http://driftline:8080/"
    assert am_firing["labels"] == {
        "alertname": "DriftlineDataDrift", "model_id": "churn", "model_version": "v3",
        "kind": "data_drift", "feature": "age", "severity": "critical",
        "dedup_key": "churn|v3|data_drift|age|ks"}
    # Alertmanager identifies an alert by its labels: the resolution must carry the same.
    assert am_resolved["labels"] == am_firing["labels"]
    assert am_firing["annotations"]["description"] == firing["explanation"]
    assert "endsAt" not in am_firing
    starts = datetime.fromisoformat(am_resolved["startsAt"])
    ends = datetime.fromisoformat(am_resolved["endsAt"])
    assert am_resolved["startsAt"] == am_firing["startsAt"]
    assert am_resolved["endsAt"].endswith("Z") and (ends - starts).total_seconds() == 300


def test_a_permanent_4xx_parks_at_once(receiver: Any, sinks: Any) -> None:
    server = receiver(lambda _: (400, {}, b"unknown field 'statistic'"))
    sink, parked = sinks(server.url)
    alert = make_alert("k1")
    sink.submit(alert)
    assert sink.flush(timeout_s=5)
    assert len(server.requests) == 1 and sink.retried == 0
    [(parked_alert, reason)] = parked
    assert parked_alert == alert
    assert "HTTP 400" in reason and "unknown field" in reason
    assert server.url.removesuffix("/hook") in reason and "/hook" not in reason


def test_a_redirect_is_not_followed_but_parked(receiver: Any, sinks: Any) -> None:
    server = receiver(lambda _: (308, {"Location": "http://127.0.0.1:9/elsewhere"}, b""))
    sink, parked = sinks(server.url)
    sink.submit(make_alert("k1"))
    assert sink.flush(timeout_s=5)
    assert len(server.requests) == 1 and "HTTP 308" in parked[0][1]


def test_exhausting_the_attempts_parks_the_alert(receiver: Any, sinks: Any) -> None:
    server = receiver(lambda _: (503, {}, b"busy"))
    sink, parked = sinks(server.url, max_attempts=3)
    sink.submit(make_alert("k1"))
    assert sink.flush(timeout_s=5)
    assert len(server.requests) == 3
    assert (sink.delivered, sink.retried, sink.parked) == (0, 2, 1)
    assert "gave up after 3 attempts: HTTP 503" in parked[0][1]
    assert len({r.body for r in server.requests}) == 1, "retries must resend the same bytes"


def test_the_retry_window_bounds_how_long_an_alert_is_retried(sinks: Any) -> None:
    sink, parked = sinks(f"http://127.0.0.1:{free_port()}/hook", max_attempts=10_000,
                         max_retry_window_s=0.3)
    sink.submit(make_alert("k1"))
    assert sink.flush(timeout_s=5)
    [(_, reason)] = parked
    assert "retry window" in reason and "cannot reach" in reason


def test_timeouts_and_429_are_retried_honouring_retry_after(receiver: Any, sinks: Any) -> None:
    def respond(request: Received) -> Response:
        if request.index == 0:
            time.sleep(0.6)  # longer than timeout_s: the client gives up and retries
            return 200, {}, b""
        if request.index == 1:
            return 429, {"Retry-After": "1"}, b""
        return 200, {}, b""

    server = receiver(respond)
    sink, parked = sinks(server.url, timeout_s=0.3)
    sink.submit(make_alert("k1"))
    assert sink.flush(timeout_s=10)
    assert [r.status for r in server.requests] == [200, 429, 200]
    assert parked == [] and sink.delivered == 1 and sink.retried == 2
    assert server.requests[2].at - server.requests[1].at >= 0.95


def test_a_resolved_never_overtakes_its_firing_and_other_keys_are_not_held_up(
        receiver: Any, sinks: Any) -> None:
    firing, resolved, other = make_alert("a"), make_alert("a", "resolved"), make_alert("b")
    failures = Counter[str]()

    def respond(request: Received) -> Response:
        if request.alert_id == firing["alert_id"] and failures["a"] < 3:
            failures["a"] += 1
            return 503, {}, b""
        return 200, {}, b""

    server = receiver(respond)
    sink, _ = sinks(server.url, backoff_initial_s=0.1, backoff_max_s=0.1)
    for alert in (firing, resolved, other):
        sink.submit(alert)
    assert sink.flush(timeout_s=5)
    ok = [r.alert_id for r in server.ok()]
    assert ok == [other["alert_id"], firing["alert_id"], resolved["alert_id"]]
    assert [r.alert_id for r in server.requests].index(resolved["alert_id"]) == 5


def test_a_full_queue_parks_new_alerts_and_never_drops_one(sinks: Any) -> None:
    sink, parked = sinks(f"http://127.0.0.1:{free_port()}/hook", queue_max=3,
                         backoff_initial_s=30, backoff_max_s=30)
    alerts = [make_alert(f"k{i}") for i in range(10)]
    started = time.perf_counter()
    for alert in alerts:
        sink.submit(alert)
    assert time.perf_counter() - started < 0.5
    assert [a["alert_id"] for a, _ in parked] == [a["alert_id"] for a in alerts[3:]]
    assert all(reason.startswith("queue full (3 alerts waiting") for _, reason in parked)
    assert not sink.flush(timeout_s=0.1)
    sink.close(timeout_s=0.2)
    assert sorted(a["alert_id"] for a, _ in parked) == sorted(a["alert_id"] for a in alerts)
    assert all("closed before delivery" in reason for _, reason in parked[7:])
    assert (sink.parked, sink.pending) == (10, 0)


def test_close_drains_what_it_can_then_parks_and_joins(receiver: Any, sinks: Any) -> None:
    server = receiver()
    sink, parked = sinks(server.url)
    for i in range(5):
        sink.submit(make_alert(f"k{i}"))
    sink.close(timeout_s=5)
    assert len(server.ok()) == 5 and parked == [] and not sink_threads()
    sink.submit(make_alert("late"))
    assert "closed" in parked[0][1] and sink.pending == 0
    sink.close()  # idempotent
    assert sink.flush(timeout_s=0)


def test_a_failing_park_callback_does_not_stop_delivery(receiver: Any) -> None:
    statuses = iter([400, 200])
    server = receiver(lambda _: (next(statuses), {}, b""))

    def park(alert: dict[str, Any], reason: str) -> None:
        raise RuntimeError("dead-letter topic unavailable")

    with WebhookSink(WebhookSettings(server.url), park) as sink:
        sink.submit(make_alert("k1"))
        sink.submit(make_alert("k2"))
        assert sink.flush(timeout_s=5)
        assert (sink.parked, sink.delivered) == (1, 1)
    assert not sink_threads()


def test_an_alert_that_is_not_json_is_parked() -> None:
    parked = Parked()
    with WebhookSink(WebhookSettings(f"http://127.0.0.1:{free_port()}/h"), parked) as sink:
        sink.submit({"alert_id": "x", "dedup_key": "k", "statistic": {1, 2}})
        assert sink.flush(timeout_s=5)
    assert "cannot encode" in parked[0][1]


@pytest.mark.parametrize(("options", "message"), [
    ({"url": "localhost:8080/hook"}, "url: expected an http:// or https:// URL"),
    ({"format": "slack"}, "format: expected one of ['driftline', 'alertmanager'], got 'slack'"),
    ({"max_attempts": 0}, "max_attempts: expected a number > 0, got 0"),
    ({"backoff_max_s": 0.1}, "backoff_max_s: expected >= backoff_initial_s"),
    ({"headers": {"x-driftline-signature": "forged"}}, "headers: 'x-driftline-signature'"),
])
def test_settings_name_the_bad_parameter(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        WebhookSettings(**{"url": "http://127.0.0.1/hook", **options})


def test_the_secret_stays_out_of_repr() -> None:
    assert "hunter2" not in repr(WebhookSettings("http://127.0.0.1/hook", secret="hunter2"))


@given(body=st.binary(), secret=st.binary(min_size=1), header=st.text())
def test_verify_signature_accepts_only_the_exact_signature(body: bytes, secret: bytes,
                                                           header: str) -> None:
    assert verify_signature(body, sign(body, secret), secret)
    assert verify_signature(body, header, secret) == (header.strip() == sign(body, secret))


def test_receiver_down_for_30_s_loses_no_alert_and_every_signature_verifies(
        receiver: Any, sinks: Any) -> None:
    """The issue's bar: 15 s refused connections, 15 s of 503, then recovery."""
    port = free_port()
    sink, parked = sinks(f"http://127.0.0.1:{port}/hook", timeout_s=1.0, max_attempts=1000,
                         backoff_initial_s=0.1, backoff_max_s=1.0, max_retry_window_s=120)
    phase = {"name": "down"}
    duplicate_of: list[str] = []

    def respond(request: Received) -> Response:
        if phase["name"] == "busy":
            return 503, {"Retry-After": "1"}, b"maintenance"
        if not duplicate_of:
            # Processed, but the answer is lost: the sink must resend the same alert.
            duplicate_of.append(request.alert_id)
            return 502, {}, b""
        return 200, {}, b""

    # 12 conditions fire and resolve, 4 more only fire: 28 alerts, one per second.
    schedule = [make_alert(f"churn|v3|data_drift|f{k}|ks", status)
                for k in range(12) for status in ("firing", "resolved")]
    schedule += [make_alert(f"churn|v3|data_quality|g{k}|missing") for k in range(4)]
    started = time.monotonic()
    slowest_submit = 0.0
    server: Receiver | None = None
    for second, alert in enumerate(schedule):
        if server is None and second >= 15:
            phase["name"] = "busy"
            server = receiver(respond, port=port)
        time.sleep(max(0.0, started + second - time.monotonic()))
        before = time.perf_counter()
        sink.submit(alert)
        slowest_submit = max(slowest_submit, time.perf_counter() - before)
    assert server is not None
    time.sleep(max(0.0, started + 30 - time.monotonic()))
    assert server.ok() == [] and sink.pending == len(schedule)
    phase["name"] = "up"
    back_at = time.monotonic()
    assert sink.flush(timeout_s=30)
    recovered_s = time.monotonic() - back_at

    assert parked == [] and sink.parked == 0
    assert slowest_submit < 0.05, "submit() must never block the worker"
    assert recovered_s < 5, f"took {recovered_s:.1f} s to catch up after the receiver came back"
    assert any(r.status == 503 for r in server.requests)
    assert all(verify_signature(r.body, r.headers["X-Driftline-Signature"], SECRET)
               for r in server.requests)
    # No alert lost; a repeat is the same alert (same id and bytes), never a different one.
    processed = server.ok() + [r for r in server.requests if r.alert_id in duplicate_of
                               and r.status == 502]
    assert Counter(r.alert_id for r in server.ok()) == Counter(a["alert_id"] for a in schedule)
    for alert_id in {r.alert_id for r in processed}:
        copies = [r for r in processed if r.alert_id == alert_id]
        assert len({r.body for r in copies}) == 1
        assert orjson.loads(copies[0].body)["alert_id"] == alert_id
    assert len(processed) == len(schedule) + 1
    # Per condition, the resolved is first sent only after its firing was acknowledged.
    for firing, resolved in zip(schedule[:24:2], schedule[1:24:2], strict=True):
        acked = min(r.at for r in server.ok() if r.alert_id == firing["alert_id"])
        assert min(r.at for r in server.requests if r.alert_id == resolved["alert_id"]) > acked
    assert sink.delivered == len(schedule) and sink.retried > 0


def test_credentials_in_the_url_become_basic_auth_and_stay_out_of_logs(
        receiver: Any, sinks: Any, caplog: pytest.LogCaptureFixture) -> None:
    import base64 as b64

    server = receiver(lambda request: (503, {}, b"") if request.index == 0 else (200, {}, b""))
    url = server.url.replace("http://", "http://ops%40corp:p%3Ass@")
    caplog.set_level(logging.DEBUG, logger="driftline")
    sink, parked = sinks(url)
    sink.submit(make_alert("k1"))
    assert sink.flush(timeout_s=5)
    assert [r.status for r in server.requests] == [503, 200]
    expected = "Basic " + b64.b64encode(b"ops@corp:p:ss").decode()
    assert all(r.headers["Authorization"] == expected for r in server.requests)
    assert parked == [] and "p%3Ass" not in caplog.text and "p:ss" not in caplog.text
    assert "p%3Ass" not in repr(sink.settings)
    with pytest.raises(SettingsError, match="'Authorization' and credentials in url"):
        WebhookSettings(url, headers={"Authorization": "Bearer x"})
    with pytest.raises(SettingsError) as caught:
        WebhookSettings("ftp://ops:pw@example.com/hook")
    assert "pw" not in str(caught.value)
