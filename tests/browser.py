"""Headless Debian Chromium for the browser tests (dashboard, run report).

``make test`` installs ``chromium`` and ``chromium-driver`` when missing. Without
them a browser test fails: a browser test that skips proves nothing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver


@contextmanager
def headless_chromium(what: str, width: int) -> Iterator[WebDriver]:
    """A headless Chromium ``width`` pixels wide, quit on exit; ``what`` names the test."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.fail(f"the {what} test needs Debian's chromium and chromium-driver: "
                    "apt-get install -y chromium chromium-driver (make test does it)")
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={width},1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()
