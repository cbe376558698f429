"""Delivery through a receiver outage and through restarts of `driftline deliver`."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from streams.settings import Settings
from tests.integration import delivery as fixtures
from tests.integration.delivery import Request, make_alert, publish_alerts, wait_until

pytestmark = pytest.mark.integration

receivers, deliver = fixtures.receivers, fixtures.deliver
PATIENT = {"timeout_s": 5.0, "max_attempts": 1000, "backoff_initial_s": 0.1,
           "backoff_max_s": 1.0, "max_retry_window_s": 120.0}


def test_receiver_down_for_30_s_loses_no_alert(settings: Settings, receivers: Any,
                                               deliver: Any) -> None:
    """15 s of refused connections, 15 s of 503 + Retry-After, then back: all delivered."""
    phase = {"name": "busy"}
    answer_lost: list[str] = []

    def respond(request: Request) -> tuple[int, dict[str, str]]:
        if phase["name"] == "busy":
            return 503, {"Retry-After": "1"}
        if not answer_lost:
            # Processed, but the answer is lost: the alert must be sent again.
            answer_lost.append(request.alert_id)
            return 502, {}
        return 200, {}

    receiver = receivers(respond=respond)  # not started: its port refuses connections
    process = deliver([{"url": receiver.url, **PATIENT}])
    process.wait_ready()
    # 12 conditions fire and resolve, 4 more only fire: 28 alerts, one per second, two models.
    schedule = [make_alert(f"churn|v3|data_drift|f{k}|ks", status, model=f"m{k % 2}")
                for k in range(12) for status in ("firing", "resolved")]
    schedule += [make_alert(f"churn|v3|data_quality|g{k}|missing", model=f"m{k % 2}")
                 for k in range(4)]
    started = time.monotonic()
    for second, alert in enumerate(schedule):
        if second == 15:
            receiver.start()
        time.sleep(max(0.0, started + second - time.monotonic()))
        publish_alerts(settings, [alert])
    time.sleep(max(0.0, started + 30 - time.monotonic()))
    assert receiver.ok() == []
    phase["name"] = "up"
    back_at = time.monotonic()
    assert wait_until(lambda: len(receiver.ok()) >= len(schedule), 60), process.log()
    caught_up_s = time.monotonic() - back_at

    figures = process.healthz()
    assert figures is not None
    (counts,) = figures["receivers"]
    ok = receiver.ok()
    assert Counter(r.alert_id for r in ok) == Counter(a["alert_id"] for a in schedule)
    assert counts["parked"] == 0 and counts["delivered"] == len(schedule)
    assert any(r.status == 503 for r in receiver.requests)
    # Per model (key), the receiver got the alerts in the order they were published.
    for model in ("m0", "m1"):
        published = [a["alert_id"] for a in schedule if a["model_id"] == model]
        assert [r.alert_id for r in ok if r.json()["model_id"] == model] == published
    processed = len(ok) + len(answer_lost)
    print(f"\ndelivery outage (30 s: 15 s refused, 15 s 503 Retry-After 1): "
          f"{len(schedule)} alerts published; requests sent {len(receiver.requests)} "
          f"(503 answers {sum(r.status == 503 for r in receiver.requests)}), "
          f"retried {counts['retried']}, delivered {counts['delivered']}, parked "
          f"{counts['parked']}, duplicates {processed - len(schedule)} (answer lost once); "
          f"caught up {caught_up_s:.1f} s after the receiver came back")
    assert processed - len(schedule) == 1


def test_a_kill_9_mid_delivery_loses_nothing(settings: Settings, receivers: Any,
                                             deliver: Any) -> None:
    """Offsets are committed after delivery: a killed app resumes at the last commit."""
    slow = {"on": True}

    def respond(_request: Request) -> tuple[int, dict[str, str]]:
        if slow["on"]:
            time.sleep(0.3)
        return 200, {}

    receiver = receivers(respond=respond).start()
    alerts = [make_alert(f"churn|v3|data_drift|f{k}|ks") for k in range(20)]
    first = deliver([{"url": receiver.url, **PATIENT}])
    first.wait_ready()
    publish_alerts(settings, alerts)
    assert wait_until(lambda: len(receiver.ok()) >= 6, 60), first.log()
    first.kill()
    time.sleep(1.0)  # a request in flight at the kill is answered (and counted) by now
    before = len(receiver.ok())
    slow["on"] = False
    second = deliver([{"url": receiver.url, **PATIENT}])
    assert wait_until(lambda: {r.alert_id for r in receiver.ok()} >=
                      {a["alert_id"] for a in alerts}, 90), second.log()
    time.sleep(2.0)  # anything sent twice has arrived by now
    counts = Counter(r.alert_id for r in receiver.ok())
    duplicates = sum(counts.values()) - len(alerts)
    print(f"\nkill -9 after {before} of {len(alerts)} delivered: duplicates after the restart "
          f"{duplicates}")
    # What was sent again is at most what the killed app delivered since its last commit,
    # and it was sent in order from there.
    assert 0 <= duplicates <= before
    ids = [r.alert_id for r in receiver.ok()]
    restart_from = ids[before:]
    published = [a["alert_id"] for a in alerts]
    start = published.index(restart_from[0])
    assert restart_from == published[start:]


def test_a_stop_mid_retry_leaves_the_alert_queued(settings: Settings, receivers: Any,
                                                  deliver: Any) -> None:
    """SIGTERM while an alert is retried: nothing parked, the next start delivers it."""
    from tests.integration.conftest import read_until

    receiver = receivers()  # down
    alert = make_alert("churn|v3|data_drift|age|ks")
    first = deliver([{"url": receiver.url, **PATIENT}])
    first.wait_ready()
    publish_alerts(settings, [alert])
    assert wait_until(lambda: (first.healthz() or {"receivers": [{"retried": 0}]})
                      ["receivers"][0]["retried"] >= 2, 30), first.log()
    first.stop()
    assert first.process is not None and first.process.returncode == 0, first.log()
    receiver.start()
    second = deliver([{"url": receiver.url, **PATIENT}])
    assert wait_until(lambda: len(receiver.ok()) == 1, 60), second.log()
    assert receiver.ok()[0].alert_id == alert["alert_id"]
    assert read_until(settings, ["deadletter"], lambda got: len(got) > 0, 3) == []
