"""The ``kafka:`` map (librdkafka properties) as Faust's broker credentials (aiokafka).

The delivery app's Kafka clients are aiokafka's, not librdkafka's, so the one
``kafka:`` map every driftline client takes is translated here. The properties
that aiokafka can honour are: ``security.protocol`` (PLAINTEXT, SSL,
SASL_PLAINTEXT, SASL_SSL), ``sasl.mechanism`` (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512), ``sasl.username``, ``sasl.password``, ``ssl.ca.location``,
``ssl.certificate.location``, ``ssl.key.location``, ``ssl.key.password`` and
``ssl.endpoint.identification.algorithm`` (``none`` turns host-name checks off).
Any other property stops start-up naming it, rather than being ignored.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from streams.errors import SettingsError

SUPPORTED = frozenset({
    "security.protocol", "sasl.mechanism", "sasl.username", "sasl.password",
    "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
    "ssl.endpoint.identification.algorithm"})
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def faust_credentials(kafka: Mapping[str, str]) -> Any:
    """Faust ``broker_credentials`` for a ``kafka:`` map; None for plaintext.

    Examples
    --------
    >>> faust_credentials({}) is None
    True
    >>> type(faust_credentials({"security.protocol": "SASL_PLAINTEXT",
    ...     "sasl.mechanism": "PLAIN", "sasl.username": "u", "sasl.password": "p"})).__name__
    'SASLCredentials'
    >>> faust_credentials({"sasl.oauthbearer.method": "oidc"})
    Traceback (most recent call last):
    ...
    streams.errors.SettingsError: kafka.sasl.oauthbearer.method: not supported by the ...
    """
    unknown = sorted(set(kafka) - SUPPORTED)
    if unknown:
        raise SettingsError(f"kafka.{unknown[0]}: not supported by the delivery app (aiokafka), "
                            f"which takes {sorted(SUPPORTED)}")
    protocol = kafka.get("security.protocol", "PLAINTEXT").upper()
    if protocol == "PLAINTEXT":
        return None
    import faust

    context = _ssl_context(kafka) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        raise SettingsError(f"kafka.security.protocol: expected PLAINTEXT, SSL, SASL_PLAINTEXT "
                            f"or SASL_SSL, got {kafka['security.protocol']!r}")
    mechanism = kafka.get("sasl.mechanism", "PLAIN").upper()
    if mechanism not in _MECHANISMS:
        raise SettingsError(f"kafka.sasl.mechanism: the delivery app takes one of "
                            f"{list(_MECHANISMS)}, got {kafka.get('sasl.mechanism')!r}")
    return faust.SASLCredentials(username=kafka.get("sasl.username"),
                                 password=kafka.get("sasl.password"), ssl_context=context,
                                 mechanism=mechanism)


def _ssl_context(kafka: Mapping[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=kafka.get("ssl.ca.location"))
    if kafka.get("ssl.certificate.location"):
        context.load_cert_chain(kafka["ssl.certificate.location"], kafka.get("ssl.key.location"),
                                kafka.get("ssl.key.password"))
    if kafka.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
        context.check_hostname = False
    return context
