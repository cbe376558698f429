"""Settings that reach secured services: the ``kafka:`` client map, Redis TLS/ACL, secrets.

The ``kafka:`` map holds librdkafka properties (``security.protocol``,
``sasl.mechanism``, ``ssl.ca.location``, …) passed unchanged to every Kafka
client driftline creates. Besides the YAML map and ``DRIFTLINE_KAFKA`` (the
whole map as YAML flow text), each property has a variable of its own:
``DRIFTLINE_KAFKA_`` + the property in capitals with ``.`` written ``_``
(``DRIFTLINE_KAFKA_SASL_MECHANISM`` → ``sasl.mechanism``); librdkafka's
settable properties have no ``_`` of their own, so the mapping back is exact.

Secrets come from files: a key ending in ``_file`` names a file whose content
(without the trailing newline) is the value of the key without the suffix:
``sasl.password_file: /run/secrets/kafka`` sets ``sasl.password``
(``DRIFTLINE_KAFKA_SASL_PASSWORD_FILE``). The same holds for
``redis.password_file`` and the dashboard's ``password_file`` and ``token_file``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.errors import SettingsError

KAFKA_VAR = "DRIFTLINE_KAFKA"
FILE_SUFFIX = "_file"
# Keys driftline sets itself on every client; the map may not change them.
KAFKA_RESERVED = {
    "bootstrap.servers": "set bootstrap_servers (DRIFTLINE_BOOTSTRAP_SERVERS) instead",
    "group.id": "set group_id (DRIFTLINE_GROUP_ID) instead",
    "enable.auto.commit": "driftline commits offsets together with its checkpoints",
}


@dataclass(frozen=True)
class RedisSettings:
    """How to authenticate to Redis and verify it (besides ``redis_url``).

    Parameters
    ----------
    username
        ACL user name (Redis 6+); empty: the URL's user, else ``default``.
    password
        Password of that user; empty: the URL's password, if any. Prefer ``password_file``.
    password_file
        File holding the password (a mounted secret); read at start-up.
    ca_file
        PEM file of the CA that signed the server's certificate, for a ``rediss://`` URL
        (empty: the system's trusted CAs).
    cert_file
        PEM client certificate, for a Redis that requires one (``tls-auth-clients yes``).
    key_file
        PEM private key of ``cert_file``.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    password_file: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis.from_url`` (only the ones that are set).

        >>> RedisSettings(username="app", ca_file="/ca.pem").client_options()
        {'username': 'app', 'ssl_ca_certs': '/ca.pem'}
        """
        options = {"username": self.username, "password": self.password,
                   "ssl_ca_certs": self.ca_file, "ssl_certfile": self.cert_file,
                   "ssl_keyfile": self.key_file}
        return {name: value for name, value in options.items() if value}


def kafka_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The ``kafka:`` properties set by ``DRIFTLINE_KAFKA_<PROPERTY>`` variables.

    >>> kafka_environment({"DRIFTLINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    ...                    "DRIFTLINE_KAFKA_SASL_PASSWORD_FILE": "/run/secrets/kafka"})
    {'security.protocol': 'SASL_SSL', 'sasl.password_file': '/run/secrets/kafka'}
    """
    properties = {}
    for var, value in env.items():
        if not var.startswith(KAFKA_VAR + "_"):
            continue
        name = var.removeprefix(KAFKA_VAR + "_").lower()
        suffix = FILE_SUFFIX if name.endswith(FILE_SUFFIX) else ""
        properties[name.removesuffix(suffix).replace("_", ".") + suffix] = value
    return properties


def kafka_map(raw: object) -> dict[str, str]:
    """Validate the ``kafka:`` map: scalar values as librdkafka strings, secrets read.

    Examples
    --------
    >>> kafka_map({"security.protocol": "SSL", "enable.ssl.certificate.verification": True})
    {'security.protocol': 'SSL', 'enable.ssl.certificate.verification': 'true'}
    >>> kafka_map({"group.id": "x"})
    Traceback (most recent call last):
    ...
    streams.errors.SettingsError: kafka.group.id: set group_id (DRIFTLINE_GROUP_ID) instead
    """
    if not isinstance(raw, dict):
        raise SettingsError(f"kafka: expected a mapping of librdkafka properties, got {raw!r}")
    properties: dict[str, str] = {}
    for key, value in raw.items():
        where = f"kafka.{key}"
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            raise SettingsError(f"{where}: expected a string, number or boolean, got {value!r}")
        name = str(key)
        if name.endswith(FILE_SUFFIX):
            name = name.removesuffix(FILE_SUFFIX)
            if name in raw:
                raise SettingsError(f"{where}: set either {name} or {key}, not both")
            text = read_secret(where, text)
        if name in KAFKA_RESERVED:
            raise SettingsError(f"kafka.{name}: {KAFKA_RESERVED[name]}")
        properties[name] = text
    return properties


def read_secret(key: str, path: str) -> str:
    """The secret a ``*_file`` key names: the file's text without the trailing newline."""
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SettingsError(f"{key}: cannot read the secret file {path!r} "
                            f"({exc.strerror or exc})") from exc


def redis_settings(raw: dict[str, Any], redis_url: str) -> RedisSettings:
    """Finish the ``redis:`` section: read ``password_file``; a CA needs ``rediss://``."""
    values = dict(raw)
    if values.get("password_file"):
        if values.get("password"):
            raise SettingsError("redis.password_file: set either redis.password or "
                                "redis.password_file, not both")
        values["password"] = read_secret("redis.password_file", values["password_file"])
    settings = RedisSettings(**values)
    uses_tls = settings.ca_file or settings.cert_file or settings.key_file
    if uses_tls and not redis_url.startswith("rediss://"):
        scheme = redis_url.partition("://")[0]
        raise SettingsError("redis.ca_file/cert_file/key_file: expected a rediss:// redis_url "
                            f"(TLS), got a {scheme}:// one")
    if bool(settings.cert_file) != bool(settings.key_file):
        raise SettingsError("redis.cert_file: expected cert_file and key_file together, got "
                            f"only {'cert_file' if settings.cert_file else 'key_file'}")
    return settings
