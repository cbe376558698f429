"""A receiver's delivery against real local HTTP servers: signing, retries, parking, formats."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.delivery import Receiver, WebhookSettings, sign, verify_signature
from streams.errors import SettingsError
from streams.settings import load_settings
from tests.streams.delivery import shapes
from tests.streams.delivery.receivers import RecordingReceiver, make_alert

SECRET = b"test-secret"


@pytest.fixture()
def server() -> Iterator[RecordingReceiver]:
    receiver = RecordingReceiver().start()
    yield receiver
    receiver.close()


def deliver(settings: WebhookSettings, *alerts: dict[str, Any]) -> tuple[Receiver, list[Any]]:
    """Deliver ``alerts`` one after the other as the agent does; the receiver and the verdicts."""
    receiver = Receiver(settings, seed=7)

    async def run() -> list[Any]:
        async with aiohttp.ClientSession() as session:
            return [await receiver.deliver(session, alert) for alert in alerts]

    return receiver, asyncio.run(run())


def hook(url: str, **options: Any) -> WebhookSettings:
    options.setdefault("backoff_initial_s", 0.05)
    options.setdefault("backoff_max_s", 0.2)
    options.setdefault("timeout_s", 2.0)
    return WebhookSettings(url, **options)


def test_delivers_the_alert_as_signed_json(server: RecordingReceiver) -> None:
    alert = make_alert("churn|v3|data_drift|age|ks")
    receiver, verdicts = deliver(hook(server.url, secret=SECRET), alert)
    assert verdicts == [None] and receiver.delivered == 1 and receiver.parked == 0
    (request,) = server.requests
    assert request.json() == alert
    assert request.headers["X-Driftline-Alert-Id"] == alert["alert_id"]
    assert request.headers["X-Driftline-Attempt"] == "1"
    assert request.headers["Content-Type"] == "application/json"
    assert verify_signature(request.body, request.headers["X-Driftline-Signature"], SECRET)


def test_no_secret_sends_unsigned_requests(server: RecordingReceiver) -> None:
    deliver(hook(server.url), make_alert("churn|v3|data_drift|age|ks"))
    assert "X-Driftline-Signature" not in server.requests[0].headers


@pytest.mark.parametrize("status", [400, 404, 301])
def test_a_permanent_answer_parks_at_once_and_a_redirect_is_not_followed(
        server: RecordingReceiver, status: int) -> None:
    server.respond = lambda _r: (status, {"Location": "http://127.0.0.1:9/elsewhere"})
    receiver, (reason,) = deliver(hook(server.url), make_alert("churn|v3|data_drift|age|ks"))
    assert len(server.requests) == 1 and receiver.parked == 1
    assert reason.startswith(f"http://127.0.0.1:{server.port}: HTTP {status}")


def test_exhausting_the_attempts_parks_with_the_last_answer(server: RecordingReceiver) -> None:
    server.respond = lambda _r: (503, {})
    receiver, (reason,) = deliver(hook(server.url, max_attempts=3),
                                  make_alert("churn|v3|data_drift|age|ks"))
    assert [r.headers["X-Driftline-Attempt"] for r in server.requests] == ["1", "2", "3"]
    assert "gave up after 3 attempts: HTTP 503" in reason
    assert receiver.retried == 2 and receiver.parked == 1 and receiver.delivered == 0
    assert len({r.body for r in server.requests}) == 1, "every attempt sends the same bytes"


def test_the_retry_window_bounds_how_long_an_alert_is_retried(server: RecordingReceiver) -> None:
    server.respond = lambda _r: (500, {})
    _receiver, (reason,) = deliver(hook(server.url, max_attempts=1000, backoff_initial_s=0.2,
                                        backoff_max_s=0.2, max_retry_window_s=0.5),
                                   make_alert("churn|v3|data_drift|age|ks"))
    assert "(retry window)" in reason and 2 <= len(server.requests) <= 4


def test_429_is_retried_no_sooner_than_retry_after(server: RecordingReceiver) -> None:
    server.respond = lambda r: (429, {"Retry-After": "1"}) if len(server.requests) == 1 \
        else (200, {})
    receiver, verdicts = deliver(hook(server.url), make_alert("churn|v3|data_drift|age|ks"))
    assert verdicts == [None] and receiver.retried == 1
    first, second = server.requests
    assert second.at - first.at >= 1.0
    assert second.headers["X-Driftline-Attempt"] == "2"


def test_a_receiver_that_is_down_is_retried_until_it_answers() -> None:
    receiver_server = RecordingReceiver()  # not started: connections are refused

    async def run() -> Any:
        receiver = Receiver(hook(receiver_server.url, max_attempts=100), seed=1)
        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(receiver.deliver(session, make_alert("k|v|d|f|c")))
            await asyncio.sleep(0.8)
            receiver_server.start()
            return await task, receiver

    try:
        verdict, receiver = asyncio.run(run())
        assert verdict is None and receiver.retried >= 2 and len(receiver_server.ok()) == 1
    finally:
        receiver_server.close()


def test_slack_messages_have_the_documented_shape(server: RecordingReceiver) -> None:
    grouped = {**make_alert("churn|v3|data_drift|age|ks", severity="critical"),
               "explanation": "age <b> & more", "group_key": "g1",
               "features": [{"feature": "age", "dedup_key": "churn|v3|data_drift|age|ks",
                             "detector": "ks", "statistic": 0.4, "threshold": 0.1},
                            {"feature": "income", "dedup_key": "churn|v3|data_drift|income|ks",
                             "detector": "ks", "statistic": 0.2, "threshold": 0.1}]}
    long = {**make_alert("churn|v3|data_drift|" + "x" * 400 + "|ks", status="resolved"),
            "explanation": "y" * 5000}
    _receiver, verdicts = deliver(hook(server.url, format="slack"), grouped, long)
    assert verdicts == [None, None]
    first, second = (r.json() for r in server.requests)
    for message in (first, second):
        shapes.validate(message, shapes.SLACK)
    assert "&lt;b&gt; &amp; more" in first["blocks"][1]["text"]["text"]
    assert "income" in first["blocks"][1]["text"]["text"]
    assert first["text"].startswith(":red_circle:") and second["text"].startswith(
        ":white_check_mark:")


def test_pagerduty_events_trigger_and_resolve_one_incident_per_condition(
        server: RecordingReceiver) -> None:
    key = "R" * 32
    firing = {**make_alert("churn|v3|data_drift|age|ks", severity="critical"),
              "features": [{"feature": "age", "dedup_key": "churn|v3|data_drift|age|ks"},
                           {"feature": "income", "dedup_key": "churn|v3|data_drift|income|ks"}]}
    resolved = make_alert("churn|v3|data_drift|age|ks", status="resolved", severity="info")
    long_key = make_alert("churn|v3|data_drift|" + "z" * 300 + "|ks", severity="fatal")
    _receiver, verdicts = deliver(hook(server.url, format="pagerduty", routing_key=key),
                                  firing, resolved, long_key)
    assert verdicts == [None, None, None]
    events = [r.json() for r in server.requests]
    for event in events:
        shapes.validate(event, shapes.PAGERDUTY)
    assert [(e["event_action"], e["dedup_key"]) for e in events[:3]] == [
        ("trigger", "churn|v3|data_drift|age|ks"), ("trigger", "churn|v3|data_drift|income|ks"),
        ("resolve", "churn|v3|data_drift|age|ks")]
    assert all(e["routing_key"] == key for e in events)
    assert events[0]["payload"]["severity"] == "critical"
    assert len(events[3]["dedup_key"]) == 64 and events[3]["payload"]["severity"] == "warning"


def test_a_pagerduty_receiver_needs_its_routing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="routing_key: the pagerduty format needs"):
        WebhookSettings("https://events.pagerduty.com/v2/enqueue", format="pagerduty")
    settings = load_settings(environ={
        "DRIFTLINE_SINKS_WEBHOOKS": "[{url: 'https://events.pagerduty.com/v2/enqueue', "
                                    "format: pagerduty, routing_key_env: PD_KEY}]",
        "PD_KEY": "abc"})
    assert settings.sinks.webhooks[0].routing_key == "abc"
    assert "abc" not in repr(settings.sinks.webhooks[0])


def test_queue_max_of_older_files_is_accepted_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="driftline.settings")
    settings = load_settings(environ={
        "DRIFTLINE_SINKS_WEBHOOKS": "[{url: 'http://127.0.0.1:9/hook', queue_max: 5}]"})
    assert settings.sinks.webhooks[0].url == "http://127.0.0.1:9/hook"
    assert "queue_max is no longer used" in caplog.text


@pytest.mark.parametrize(("options", "message"), [
    ({"url": "ftp://h/x"}, "url: expected an http"),
    ({"url": "http://h/x", "format": "teams"}, "format: expected one of"),
    ({"url": "http://h/x", "max_attempts": 0}, "max_attempts: expected a number > 0"),
    ({"url": "http://h/x", "resend_interval_s": -1.0}, "resend_interval_s: expected"),
    ({"url": "http://h/x", "backoff_initial_s": 2.0, "backoff_max_s": 1.0}, "backoff_max_s"),
    ({"url": "http://h/x", "headers": {"X-Driftline-Signature": "x"}}, "set by driftline"),
])
def test_settings_name_the_bad_parameter(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        WebhookSettings(**options)


def test_the_secret_stays_out_of_repr() -> None:
    assert "s3cret" not in repr(WebhookSettings("http://h/x", secret="s3cret"))


@given(body=st.binary(), secret=st.binary(min_size=1), header=st.text())
def test_verify_signature_accepts_only_the_exact_signature(body: bytes, secret: bytes,
                                                           header: str) -> None:
    assert verify_signature(body, sign(body, secret), secret)
    assert verify_signature(body, header, secret) == (header.strip() == sign(body, secret))


def test_credentials_in_the_url_become_basic_auth_and_stay_out_of_reasons(
        server: RecordingReceiver) -> None:
    answers = iter([(503, {}), (400, {})])
    server.respond = lambda _r: next(answers)
    url = server.url.replace("http://", "http://ops%40corp:p%3Ass@")
    _receiver, (reason,) = deliver(hook(url), make_alert("k|v|d|f|c"))
    expected = "Basic " + base64.b64encode(b"ops@corp:p:ss").decode()
    assert [r.headers["Authorization"] for r in server.requests] == [expected, expected]
    assert "p%3Ass" not in reason and "p:ss" not in reason and "ops" not in reason
    with pytest.raises(SettingsError, match="'Authorization' and credentials in url"):
        WebhookSettings(url, headers={"Authorization": "Bearer x"})
    with pytest.raises(SettingsError) as caught:
        WebhookSettings("ftp://ops:pw@example.com/hook")
    assert "pw" not in str(caught.value)


def test_an_alert_that_is_not_json_is_parked(server: RecordingReceiver) -> None:
    receiver, (reason,) = deliver(hook(server.url), {"alert_id": "a1", "bad": {1, 2}})
    assert "cannot encode the alert as JSON" in reason and server.requests == []
    assert receiver.parked == 1

