"""The run report of a mean-shift replay, opened offline in headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them
when missing). Without them this test fails: a browser test that skips proves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from detectors.synthetic import ScenarioSpec
from streams.offline.simulate import write_scenario
from streams.ui.cli import main
from tests.browser import headless_chromium

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"


@pytest.fixture()
def browser() -> Iterator[WebDriver]:
    with headless_chromium("report", 1300) as driver:
        yield driver


def test_mean_shift_report_shows_the_alert_and_its_histograms_offline(
        tmp_path: Path, browser: WebDriver) -> None:
    files = write_scenario(ScenarioSpec("mean_shift", 60_000), tmp_path / "sim")
    alerts_path, report = tmp_path / "alerts.jsonl", tmp_path / "report.html"
    assert main(["replay", "--predictions", str(files.predictions), "--labels",
                 str(files.labels), "--out", str(alerts_path), "--summary",
                 str(tmp_path / "summary.json"), "--report", str(report), "--quiet"]) == 0
    alerts = [orjson.loads(line) for line in alerts_path.read_bytes().splitlines()]
    drift = next(a for a in alerts if a["kind"] == "data_drift" and a["status"] == "firing")
    assert drift["feature"] == "credit_score"

    html = report.read_text()
    # One file that loads nothing: no URL at all, no script, stylesheet or image to fetch.
    assert not re.search(r"https?://", html)
    assert not re.search(r"<(script|link|img|iframe)\b|\bsrc=|@import|url\(", html)
    # `driftline report` draws the same page from the files the replay left.
    assert main(["report", "--alerts", str(alerts_path), "--summary",
                 str(tmp_path / "summary.json"), "--out", str(tmp_path / "again.html")]) == 0
    assert (tmp_path / "again.html").read_text() == html

    browser.get(report.as_uri())
    assert browser.title == "driftline run report"
    assert browser.execute_script(
        "return performance.getEntriesByType('resource').length") == 0
    card = browser.find_element(By.CSS_SELECTOR, f'article[data-alert-id="{drift["alert_id"]}"]')
    assert card.find_element(By.CSS_SELECTOR, ".explanation").text == drift["explanation"]
    figure = card.find_element(By.CSS_SELECTOR, 'figure[data-feature="credit_score"]')
    chart = figure.find_element(By.CSS_SELECTOR, 'svg[data-chart="distribution"]')
    assert chart.is_displayed() and chart.size["width"] >= 400 and chart.size["height"] >= 150
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.bar.window")
    assert len(bars) == 22 and sum(b.size["height"] for b in bars) > 300
    assert "reference (5,000 values) vs window #" in figure.text
    drift_chart = browser.find_element(By.CSS_SELECTOR, 'svg[data-chart="drift"]')
    assert int(drift_chart.get_attribute("data-points") or 0) >= 20 * 6
    assert browser.find_elements(By.CSS_SELECTOR, 'svg[data-chart="performance"]')

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1300, min(height + 40, 8000))
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    assert browser.save_screenshot(str(screenshot))
    print(f"\nreport: {report}\nscreenshot: {screenshot} ({screenshot.stat().st_size:,} bytes)")
    assert screenshot.stat().st_size > 50_000
