"""The live dashboard in headless Chromium, against the running embedded stack.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them
when missing). Without them this test fails: a browser test that skips proves nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, TopicPartition
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.state.hotview import HotView
from tests.browser import headless_chromium

from .conftest import as_arrays, events, produce, wait_for

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

# Pixels of a canvas that are clearly colored (the lines), not white, gray grid or text.
COLORED_PIXELS = """
const canvas = document.querySelector(arguments[0]);
const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let count = 0;
for (let i = 0; i < data.length; i += 4) {
  const high = Math.max(data[i], data[i + 1], data[i + 2]);
  const low = Math.min(data[i], data[i + 1], data[i + 2]);
  if (data[i + 3] > 200 && high - low > 80) count++;
}
return count;
"""


@pytest.fixture()
def browser() -> Iterator[WebDriver]:
    with headless_chromium("dashboard", 1400) as driver:
        yield driver


def attribute_int(driver: WebDriver, selector: str, name: str) -> int:
    value = driver.find_element(By.CSS_SELECTOR, selector).get_attribute(name)
    return int(value or 0)


def until(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout_s: float) -> Any:
    return WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(condition)


def alerts_consumer(settings: Settings) -> Consumer:
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                         "group.id": "dashboard-test", "enable.auto.commit": False})
    topic = settings.topics.name("alerts")
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    return consumer


def test_page_shows_live_charts_and_an_alert_within_two_seconds(
        settings: Settings, start_worker: Callable[[Settings], Any], browser: WebDriver) -> None:
    # Created before anything is produced: a topic the producer auto-creates gets the broker's
    # partition count, and labels then land in another partition than their predictions.
    ensure_topics(settings)
    # The page is served on the worker's own web port, by its Faust app.
    running = start_worker(settings)
    url = f"http://127.0.0.1:{running.web_port}/"
    hot = HotView(settings.redis_url, settings.group_id)
    # Reference (1000) and four stationary windows of 500, in two segments, all labelled.
    predictions = events(3000)
    for i, event in enumerate(predictions):
        event["segments"] = {"channel": "web" if i % 2 else "app"}
    produce(settings, as_arrays(predictions))
    produce(settings, as_arrays([{"model_id": "m1", "event_id": e["event_id"],
                                  "ts": e["ts"] + 5.0, "label": e["prediction"]}
                                 for e in predictions]), topic_role="labels")
    assert wait_for(lambda: len(hot.series("m1", "v1")) >= 4 and len(hot.throughput()) >= 2)
    assert wait_for(lambda: hot.labels().get("m1", {}).get("joined") == 3000)

    browser.get(url)
    assert browser.title == "driftline · live"
    until(browser, lambda d: attribute_int(d, "[data-role=drift-chart]", "data-points") >= 4
          and attribute_int(d, "#throughput-chart", "data-points") >= 2, 15)
    drift_pixels = browser.execute_script(COLORED_PIXELS, "[data-role=drift-chart]")
    throughput_pixels = browser.execute_script(COLORED_PIXELS, "#throughput-chart")
    print(f"\ndrift chart: {attribute_int(browser, '[data-role=drift-chart]', 'data-points')}"
          f" points, {drift_pixels} colored pixels; throughput chart: "
          f"{attribute_int(browser, '#throughput-chart', 'data-points')} points, "
          f"{throughput_pixels} colored pixels")
    assert drift_pixels > 300 and throughput_pixels > 100
    row = browser.find_element(By.CSS_SELECTOR, '#models-table tr[data-model="m1|v1"]')
    assert row.text.startswith("m1 v1 3,000 4")
    until(browser, lambda d: "3,000 joined of 3,000" in d.find_element(
        By.ID, "labels-panel").text, 10)
    labels = browser.find_element(By.ID, "labels-panel").text
    assert "last window accuracy 1.000" in labels, labels
    segments = {e.get_attribute("data-segment"): e.text for e in
                browser.find_elements(By.CSS_SELECTOR, "#labels .segment")}
    assert set(segments) == {"channel=web", "channel=app"}, segments
    assert segments["channel=web"].startswith("channel=web: 1,500 labelled"), segments
    assert browser.find_element(By.ID, "connection").text == "live"
    on_page = {e.get_attribute("data-alert-id") for e in
               browser.find_elements(By.CSS_SELECTOR, "#recent-alerts tr[data-alert-id]")}
    points_before = attribute_int(browser, "[data-role=drift-chart]", "data-points")

    # A drift: the worker publishes alerts on the topic; each must reach the page.
    consumer = alerts_consumer(settings)
    try:
        produce(settings, as_arrays(events(1000, start=3000, shift=3.0)))
        produced: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not produced:
            for message in consumer.consume(100, 0.2):
                alert = orjson.loads(message.value())
                kind, timestamp_ms = message.timestamp()
                if alert["alert_id"] not in on_page:
                    assert kind == TIMESTAMP_CREATE_TIME, kind
                    produced[alert["alert_id"]] = timestamp_ms
        for message in consumer.consume(100, 1.0):     # the rest of that batch
            kind, timestamp_ms = message.timestamp()
            produced.setdefault(orjson.loads(message.value())["alert_id"], timestamp_ms)
    finally:
        consumer.close()
    assert produced, "the drift produced no alert on the topic"

    latencies = []
    for alert_id, produced_ms in produced.items():
        selector = f'#recent-alerts tr[data-alert-id="{alert_id}"]'
        until(browser, lambda d, s=selector: d.find_elements(By.CSS_SELECTOR, s), 10)
        shown_ms = attribute_int(browser, selector, "data-rendered-ms")
        latencies.append((shown_ms - produced_ms) / 1000)
    print(f"{len(latencies)} alerts produced on the topic → on the page in "
          f"{min(latencies):.3f}–{max(latencies):.3f} s")
    assert max(latencies) <= 2.0, latencies
    assert int(browser.find_element(By.ID, "open-count").text) >= 1

    # The drifted windows reach the chart too; then keep a picture of the whole page.
    until(browser, lambda d: attribute_int(d, "[data-role=drift-chart]", "data-points")
          > points_before, 15)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1400, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.5)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    assert browser.save_screenshot(str(screenshot))
    print(f"screenshot: {screenshot} ({screenshot.stat().st_size:,} bytes)")
    assert screenshot.stat().st_size > 20_000
