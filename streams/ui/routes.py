"""One route of the worker's web port: a path and a plain aiohttp handler.

Handlers stay plain functions of an aiohttp request (testable without Faust);
:func:`streams.runtime.app.make_app` registers each table of routes (the
dashboard's, the operational endpoints') as Faust views.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """A ``GET`` route: its path and its handler.

    Examples
    --------
    >>> async def hello(request: web.Request) -> web.Response:
    ...     return web.Response(text="hello")
    >>> Route("/hello", hello).path
    '/hello'
    """

    path: str
    handler: Handler


__all__ = ["Handler", "Route"]
