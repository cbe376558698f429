"""The one place Redis clients are built: the URL plus the ``redis:`` section (ACL, TLS).

Every store (checkpoints, pending predictions, the hot view) and the dashboard
build their clients here, so a ``rediss://`` URL with a CA file, an ACL user
and a password from a file reach all of them alike.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from streams.settings_security import RedisSettings


def redis_client(url: str, security: RedisSettings | None = None,
                 **options: Any) -> redis.Redis:
    """A Redis client for ``url`` with the ``redis:`` section's credentials and TLS files.

    Examples
    --------
    >>> client = redis_client("rediss://cache:6380/0", RedisSettings(username="app"),
    ...                       socket_timeout=1.0)
    >>> kwargs = client.connection_pool.connection_kwargs
    >>> kwargs["username"], kwargs["host"], client.connection_pool.connection_class.__name__
    ('app', 'cache', 'SSLConnection')
    """
    return redis.Redis.from_url(url, **_options(security), **options)


def async_redis_client(url: str, security: RedisSettings | None = None,
                       **options: Any) -> redis.asyncio.Redis:
    """The asyncio form of :func:`redis_client` (the dashboard's event stream)."""
    return redis.asyncio.Redis.from_url(url, **_options(security), **options)


def _options(security: RedisSettings | None) -> dict[str, Any]:
    return security.client_options() if security is not None else {}
