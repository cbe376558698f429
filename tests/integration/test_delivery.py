"""`driftline deliver` on the real stack: alerts from the topic reach local HTTP receivers."""

from __future__ import annotations

from typing import Any

import pytest

from streams.delivery import verify_signature
from streams.settings import Settings
from tests.integration import delivery as fixtures
from tests.integration.delivery import make_alert, publish_alerts, wait_until

pytestmark = pytest.mark.integration

SECRET = "s3cret"
receivers, deliver = fixtures.receivers, fixtures.deliver


def test_alerts_reach_a_signed_webhook_in_order(settings: Settings, receivers: Any,
                                                deliver: Any) -> None:
    receiver = receivers().start()
    process = deliver([{"url": receiver.url, "secret_env": "HOOK_SECRET"}], HOOK_SECRET=SECRET)
    figures = process.wait_ready()
    assert figures["status"] == "ok" and figures["group_id"] == f"{settings.group_id}-delivery"
    alerts = [make_alert(f"churn|v3|data_drift|f{k}|ks", status)
              for k in range(3) for status in ("firing", "resolved")]
    publish_alerts(settings, alerts)
    assert wait_until(lambda: len(receiver.ok()) >= len(alerts), 60), process.log()
    got = [r.json()["alert_id"] for r in receiver.ok()]
    assert got == [a["alert_id"] for a in alerts]
    assert all(verify_signature(r.body, r.headers["X-Driftline-Signature"], SECRET)
               for r in receiver.requests)
    assert process.healthz()["receivers"][0]["delivered"] == len(alerts)


def test_alerts_of_a_worker_reach_the_webhook_end_to_end(settings: Settings, start_worker: Any,
                                                         receivers: Any, deliver: Any) -> None:
    """Worker → alerts topic → `driftline deliver` → signed webhook, on the real stack."""
    from tests.contract import validate
    from tests.integration.conftest import as_arrays, events, produce

    receiver = receivers().start()
    process = deliver([{"url": receiver.url, "secret_env": "HOOK_SECRET"}], HOOK_SECRET=SECRET)
    start_worker(settings)
    produce(settings, as_arrays(events(1000) + events(1000, start=1000, shift=1.5)))
    assert wait_until(lambda: any(b'"feature":"x"' in r.body for r in receiver.ok()), 90), \
        process.log()
    for request in receiver.requests:
        assert verify_signature(request.body, request.headers["X-Driftline-Signature"], SECRET)
        validate(request.json(), "alert")


def test_undeliverable_and_invalid_alerts_are_parked_and_delivery_goes_on(
        settings: Settings, receivers: Any, deliver: Any) -> None:
    from tests.contract import validate
    from tests.integration.conftest import produce, read_until

    refused = make_alert("churn|v3|data_drift|refused|ks")
    picky = receivers(respond=lambda r: (400, {}) if r.alert_id == refused["alert_id"]
                      else (200, {})).start()
    other = receivers().start()
    process = deliver([{"url": picky.url}, {"url": other.url}])
    process.wait_ready()
    after = make_alert("churn|v3|data_drift|after|ks")
    publish_alerts(settings, [refused])
    produce(settings, [b"{not json"], key="churn", topic_role="alerts")
    publish_alerts(settings, [after])
    # Both receivers see the bad message; it is parked once. Read on past the two expected.
    records = read_until(settings, ["deadletter"], lambda got: len(got) > 2, 12)
    assert sorted(record["error"] for _topic, record in records) == [
        "invalid_alert", "webhook_failed"], records
    for _topic, record in records:
        validate(record, "deadletter")
    parked = next(record for _topic, record in records if record["error"] == "webhook_failed")
    assert parked["source"]["topic"] == settings.topics.name("alerts")
    assert parked["source"]["offset"] >= 0
    assert f"127.0.0.1:{picky.port}: HTTP 400" in parked["reason"]
    assert wait_until(lambda: any(r.alert_id == after["alert_id"] for r in picky.ok()), 30)
    assert wait_until(lambda: len(other.ok()) == 2, 30)
    assert [r.alert_id for r in other.ok()] == [refused["alert_id"], after["alert_id"]]
    figures = process.healthz()
    assert figures is not None and figures["invalid"] == 1
    assert [(r["delivered"], r["parked"]) for r in figures["receivers"]] == [(1, 1), (2, 0)]


def test_429_with_retry_after_is_honoured_on_the_stack(settings: Settings, receivers: Any,
                                                       deliver: Any) -> None:
    receiver = receivers(respond=lambda r: (429, {"Retry-After": "2"}) if len(receiver.requests)
                         <= 2 else (200, {}))
    receiver.start()
    process = deliver([{"url": receiver.url, "backoff_initial_s": 0.05, "backoff_max_s": 0.1}])
    alert = make_alert("churn|v3|data_drift|age|ks")
    publish_alerts(settings, [alert])
    assert wait_until(lambda: len(receiver.ok()) == 1, 60), process.log()
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert len(receiver.requests) == 3 and all(gap >= 2.0 for gap in gaps), gaps
    figures = process.healthz()
    assert figures is not None and figures["receivers"][0]["retried"] == 2
    assert figures["receivers"][0]["parked"] == 0


# The demo keeps the default web port when free: one process runs every test that does so.
@pytest.mark.xdist_group("default_web_port")
def test_demo_delivers_its_alerts_to_a_configured_webhook(receivers: Any) -> None:
    import json
    import os
    import subprocess
    import sys

    receiver = receivers().start()
    env = {**os.environ, "DRIFTLINE_SINKS_WEBHOOKS": json.dumps([{"url": receiver.url}])}
    result = subprocess.run(
        [sys.executable, "-m", "streams.ui.cli", "demo", "--events", "30000", "--rate", "15000"],
        capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    delivered = [r.json() for r in receiver.ok()]
    assert any(a["feature"] == "credit_score" and a["status"] == "firing" for a in delivered)
    line = next(x for x in result.stdout.splitlines() if x.startswith("webhook http://"))
    assert line.startswith(f"webhook http://127.0.0.1:{receiver.port} (driftline): "
                           f"{len(delivered)} delivered"), line
    assert line.endswith(" 0 parked"), line
