"""The drill-down and the audit trail on the dashboard: JSON under /api, and in headless Chromium.

Against the running embedded stack (Tansu + Redis) and a worker. Needs Debian's
``chromium`` and ``chromium-driver`` (``make test`` installs them when missing);
without them the browser test fails: a browser test that skips proves nothing.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.state.hotview import HotView
from tests.browser import headless_chromium

from .conftest import as_arrays, events, produce, wait_for
from .test_dashboard import ARTIFACTS

pytestmark = pytest.mark.integration


@pytest.fixture()
def browser() -> Iterator[WebDriver]:
    with headless_chromium("drill-down", 1400) as driver:
        yield driver


def click(driver: WebDriver, selector: str) -> None:
    """Click what ``selector`` finds, again if the page re-rendered it in between."""
    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR, selector).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.05)
    driver.find_element(By.CSS_SELECTOR, selector).click()


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def drifted_stack(settings: Settings, start_worker: Callable[[Settings], Any]
                  ) -> tuple[str, HotView, dict[str, Any]]:
    """A worker that has seen a reference, four quiet windows and a 3σ shift of ``x``.

    Returns the dashboard's address (the worker's web port), its hot view and the alert.
    """
    ensure_topics(settings)
    running = start_worker(settings)
    url = f"http://127.0.0.1:{running.web_port}/"
    hot = HotView(settings.redis_url, settings.group_id)
    produce(settings, as_arrays(events(3000)))
    produce(settings, as_arrays(events(1000, start=3000, shift=3.0)))

    def x_alert() -> dict[str, Any] | None:
        return next((a for a in hot.alerts(200) if a["kind"] == "data_drift"
                     and a["status"] == "firing" and "x" in [
                         m.get("feature") for m in a.get("features") or [a]]), None)
    assert wait_for(lambda: x_alert() is not None and len(hot.series("m1", "v1")) >= 6)
    alert = x_alert()
    assert alert is not None
    return url, hot, alert


def test_drilldown_json_of_a_feature_an_alert_and_the_audit_trail(
        settings: Settings, start_worker: Callable[[Settings], Any]) -> None:
    url, hot, alert = drifted_stack(settings, start_worker)
    api = url + "api/"
    status, view = get(api + "drilldown?model_id=m1&model_version=v1&feature=x")
    assert status == 200, view
    distribution = view["distribution"]
    assert view["type"] == "numeric" and view["kind"] == "data_drift"
    # The reference histogram holds the 1,000 reference values, the window its 500.
    assert sum(distribution["reference"]) == 1000
    assert sum(distribution["window"]) == 500
    assert len(distribution["edges"]) + 1 == len(distribution["reference"])
    assert view["window"]["index"] == len(hot.series("m1", "v1")) - 1
    assert view["verdict"]["drift"] is True and view["verdict"]["explanation"]
    points = view["over_time"]
    assert len(points) == len(hot.series("m1", "v1"))
    for point in points:
        assert point["ratio"] == pytest.approx(point["statistic"] / point["threshold"],
                                               abs=1e-3)
    assert [p["drift"] for p in points][:4] == [False] * 4 and points[-1]["drift"]
    assert 'data-chart="distribution"' in view["charts"]["distribution"]
    assert f'data-points="{len(points)}"' in view["charts"]["over_time"]
    assert any(a["alert_id"] == alert["alert_id"] for a in view["alerts"])

    status, shares = get(api + "drilldown?model_id=m1&model_version=v1&feature=c")
    assert status == 200 and shares["type"] == "categorical"
    assert set(shares["distribution"]["categories"]) >= {"a", "b", "c"}

    status, by_alert = get(api + "drilldown?alert_id=" + alert["alert_id"])
    assert status == 200, by_alert
    x_view = next(f for f in by_alert["features"] if f["feature"] == "x")
    # At the alert's own window once it closed, with that window's histograms.
    assert x_view["window"]["index"] == alert["window"]["index"]
    assert x_view["verdict"]["drift"] is True and x_view["note"] is None

    assert get(api + "drilldown?model_id=m1&model_version=v1")[0] == 400
    assert get(api + "drilldown?model_id=m1&model_version=v1&feature=nope")[0] == 404
    assert get(api + "drilldown?alert_id=" + "0" * 32)[0] == 404

    status, audit = get(api + "audit?model_id=m1&model_version=v1")
    assert status == 200
    kinds = [r["kind"] for r in audit]
    print(f"\naudit trail of m1 (newest first): {kinds}")
    assert kinds[-1] == "config" and "reference_set" in kinds
    assert alert["alert_id"] in {r["audit_id"] for r in audit if r["kind"] == "alert"}
    status, latest = get(api + "audit?limit=2")
    assert status == 200 and latest == audit[:2]
    assert get(api + "audit?limit=0")[0] == 400


def test_the_page_opens_the_drilldown_of_an_alert(
        settings: Settings, start_worker: Callable[[Settings], Any], browser: WebDriver) -> None:
    url, hot, alert = drifted_stack(settings, start_worker)
    browser.get(url)
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    row = f'#recent-alerts tr[data-alert-id="{alert["alert_id"]}"]'
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
    # The audit panel lists the run's decisions.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR,
                                          '#audit-table tr[data-kind="reference_set"]'))
    assert browser.find_elements(By.CSS_SELECTOR, '#audit-table tr[data-kind="config"]')
    click(browser, row)
    figure = '#drilldown .drill-feature[data-feature="x"]'
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, figure + " svg"))
    block = browser.find_element(By.CSS_SELECTOR, figure)
    assert block.get_attribute("data-window") == str(alert["window"]["index"])
    histogram = block.find_element(By.CSS_SELECTOR, '[data-role="distribution"] svg')
    over_time = block.find_element(By.CSS_SELECTOR, '[data-role="over-time"] svg')
    bars, points = int(histogram.get_attribute("data-bars") or 0), int(
        over_time.get_attribute("data-points") or 0)
    drawn = len(histogram.find_elements(By.CSS_SELECTOR, "rect.bar"))
    print(f"\ndrill-down of x: {bars} bars ({drawn} drawn), {points} windows over time")
    assert bars >= 20 and drawn == bars and points == len(hot.series("m1", "v1"))
    assert histogram.size["width"] > 300 and over_time.size["width"] > 400
    status, view = get(url + "api/drilldown?alert_id=" + alert["alert_id"])
    x_view = next(f for f in view["features"] if f["feature"] == "x")
    explanation = block.find_element(By.CSS_SELECTOR, ".drill-explanation").text
    assert explanation == x_view["verdict"]["explanation"] != ""
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR,
                                          '#drill-audit tr[data-kind="reference_set"]'))
    # A feature button opens a feature's view too.
    click(browser, '[data-drill-feature="c"]')
    wait.until(lambda d: d.find_elements(
        By.CSS_SELECTOR, '#drilldown .drill-feature[data-feature="c"] svg'))
    click(browser, row)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, figure + " svg"))
    time.sleep(0.3)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "drilldown.png"
    card = browser.find_element(By.ID, "drilldown")
    assert card.screenshot(str(screenshot))
    print(f"screenshot: {screenshot} ({screenshot.stat().st_size:,} bytes)")
    assert screenshot.stat().st_size > 20_000
