"""Who may read the dashboard: a ``Host`` allow-list, and a token or basic authentication.

The ``Host`` check is the defence against DNS rebinding: a web page elsewhere
that points its own name at 127.0.0.1 makes the browser send that name, which
is refused. Credentials are required only when configured (``dashboard.token``
or ``dashboard.username``/``password``); the page, ``/api`` and ``/events`` all
sit behind them. The operational endpoints on the same port (``/metrics`` and the
probes) are not the dashboard's: they are left open. A browser that followed a
link with ``?token=…`` gets a cookie, so the page's own requests (``EventSource``
cannot set headers) carry it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from streams.settings import DashboardSettings

COOKIE = "driftline_token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_name(header: str) -> str:
    """The name of a ``Host`` header, without its port, in lower case.

    >>> host_name("LocalHost:8765"), host_name("[::1]:8765"), host_name("10.0.0.5")
    ('localhost', '::1', '10.0.0.5')
    """
    if header.startswith("["):
        return header[1:].partition("]")[0].lower()
    return header.rpartition(":")[0].lower() if header.count(":") == 1 else header.lower()


def access_middleware(settings: DashboardSettings,
                      open_paths: frozenset[str] = frozenset()) -> Middleware:
    """An aiohttp middleware that enforces ``settings``' allowed hosts and credentials.

    ``open_paths`` (``/metrics``, ``/healthz``, ``/readyz``) are served to anyone who
    reaches the port: Prometheus and the kubelet name the pod by its address, and
    carry no dashboard credentials.
    """
    allowed = settings.host_names()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in open_paths:
            return await handler(request)
        if "*" not in allowed and host_name(request.host) not in allowed:
            raise web.HTTPForbidden(text=f"unknown Host {request.host!r}: add it to "
                                         "dashboard.allowed_hosts\n")
        if not settings.token and not settings.username:
            return await handler(request)
        if settings.token and _same(request.query.get("token", ""), settings.token):
            response = await handler(request)
            response.set_cookie(COOKIE, settings.token, httponly=True, samesite="Strict")
            return response
        if _authorized(request, settings):
            return await handler(request)
        challenge = 'Basic realm="driftline"' if settings.username else 'Bearer realm="driftline"'
        raise web.HTTPUnauthorized(text="driftline dashboard: credentials required\n",
                                   headers={"WWW-Authenticate": challenge})

    return check


def _authorized(request: web.Request, settings: DashboardSettings) -> bool:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if settings.token and (_same(request.cookies.get(COOKIE, ""), settings.token)
                           or (scheme.lower() == "bearer" and _same(credentials, settings.token))):
        return True
    if settings.username and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        # Both compared, always: the time taken says nothing about which one was wrong.
        return _same(user, settings.username) & _same(password, settings.password)
    return False


def _same(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())
