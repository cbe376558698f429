"""The dashboard refuses unknown Host headers and, when configured, requests without credentials.

A real server on a free loopback port; the routes tried here answer before any
Redis read, and the refusals happen before any handler runs.
"""

from __future__ import annotations

import base64
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from streams.runtime.app import DriftlineApp, make_app, run_app
from streams.settings import DashboardSettings, Settings
from streams.settings_service import WebSettings


class Served:
    """A dashboard app (no worker) served on a thread, on a free loopback port."""

    def __init__(self, app: DriftlineApp) -> None:
        self.app = app
        self.port = int(app.conf.web_port)
        self.host = str(app.conf.web_bind)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=run_app, args=(app, self.stop), daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex((self.host, self.port)) == 0:
                    return self
            time.sleep(0.02)
        raise RuntimeError(f"nothing listens on port {self.port}")

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def serve(dashboard: DashboardSettings, host: str = "127.0.0.1") -> Iterator[Served]:
    # Nothing listens on port 9: the refused requests never reach Redis.
    settings = replace(Settings(), redis_url="redis://127.0.0.1:9/0", dashboard=dashboard,
                       web=WebSettings(port=0, host=host))
    with Served(make_app(settings, worker=False)) as running:
        yield running


@pytest.fixture()
def open_dashboard() -> Iterator[Served]:
    yield from serve(DashboardSettings())


@pytest.fixture()
def locked_dashboard() -> Iterator[Served]:
    yield from serve(DashboardSettings(token="t0ken", username="ops", password="pw"))


def get(dashboard: Served, path: str = "/", host: str | None = None,
        **headers: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(dashboard.host, dashboard.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host or f"127.0.0.1:{dashboard.port}")
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}"])
def test_loopback_names_are_served(open_dashboard: Served, host: str) -> None:
    status, _, body = get(open_dashboard, host=host.format(port=open_dashboard.port))
    assert status == 200 and b"<html" in body.lower()


@pytest.mark.parametrize("path", ["/", "/api/models", "/events"])
def test_an_unknown_host_is_refused_dns_rebinding(open_dashboard: Served, path: str) -> None:
    status, _, body = get(open_dashboard, path, host=f"attacker.example:{open_dashboard.port}")
    assert status == 403
    assert b"unknown Host 'attacker.example:" in body and b"dashboard.allowed_hosts" in body


@pytest.mark.parametrize("path", ["/", "/api/models", "/events", "/static/app.js"])
def test_credentials_are_required_when_configured(locked_dashboard: Served,
                                                  path: str) -> None:
    status, headers, _ = get(locked_dashboard, path)
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="driftline"'
    assert get(locked_dashboard, path, Authorization="Bearer wrong")[0] == 401


def test_a_bearer_token_basic_auth_or_the_token_link_let_one_in(
        locked_dashboard: Served) -> None:
    assert get(locked_dashboard, Authorization="Bearer t0ken")[0] == 200
    good = base64.b64encode(b"ops:pw").decode()
    bad = base64.b64encode(b"ops:nope").decode()
    assert get(locked_dashboard, Authorization=f"Basic {good}")[0] == 200
    assert get(locked_dashboard, Authorization=f"Basic {bad}")[0] == 401
    status, headers, _ = get(locked_dashboard, "/?token=t0ken")
    assert status == 200 and "HttpOnly" in headers["Set-Cookie"]
    cookie = headers["Set-Cookie"].split(";")[0]
    assert get(locked_dashboard, Cookie=cookie)[0] == 200


def test_allowed_hosts_replace_the_loopback_names() -> None:
    for running in serve(DashboardSettings(allowed_hosts=("monitor.example.com",))):
        assert get(running, host="monitor.example.com")[0] == 200
        assert get(running, host=f"127.0.0.1:{running.port}")[0] == 403


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_the_probes_answer_without_credentials_or_a_known_host(locked_dashboard: Served,
                                                                path: str) -> None:
    status, headers, body = get(locked_dashboard, path, host="10.1.2.3:8765")
    # Redis (port 9) does not answer: alive, not ready; neither asks for credentials.
    assert (status, path) in ((200, "/healthz"), (503, "/readyz")), (status, body)
    assert headers["Content-Type"] == "application/json"
    assert body == b'{"alive":true}' if path == "/healthz" else b'"redis":false' in body


def test_a_dashboard_without_a_worker_serves_no_metrics(open_dashboard: Served) -> None:
    assert get(open_dashboard, "/metrics")[0] == 404


def test_the_address_the_web_port_listens_on_is_an_allowed_host() -> None:
    # Any 127/8 address is this machine: one that is not 127.0.0.1 stands for a pod's IP.
    for running in serve(DashboardSettings(), host="127.0.0.2"):
        assert get(running, host=f"127.0.0.2:{running.port}")[0] == 200
        assert get(running, host=f"127.0.0.3:{running.port}")[0] == 403
