"""The kafka: map reaches every client: TLS and mutual TLS through stunnel, for real.

Tansu speaks neither TLS nor SASL. TLS is terminated by Debian's stunnel4 in front
of a dedicated Tansu that advertises the stunnel address, with certificates made
by openssl in the test. SASL (PLAIN, SCRAM, OAUTHBEARER) is not tested here: no
broker available to the tests speaks it; the map passes those properties to
librdkafka exactly as it passes the TLS ones tested below.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from streams.errors import SettingsError
from streams.runtime.connections import UnreachableError, client_config, cluster_metadata
from streams.runtime.reader import TopicReader
from streams.runtime.topics import ensure_topics
from streams.settings import Settings

from .conftest import as_arrays, events, wait_for
from .tls import Certificates, make_certificates, tls_kafka

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def mtls_bootstrap(certs: Certificates, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[str]:
    with tls_kafka(certs, tmp_path_factory.mktemp("mtls"), mutual=True) as bootstrap:
        yield bootstrap


def mtls_map(certs: Certificates) -> dict[str, str]:
    return {"security.protocol": "SSL", "ssl.ca.location": str(certs.ca),
            "ssl.certificate.location": str(certs.client_cert),
            "ssl.key.location": str(certs.client_key)}


def driftline(settings: Settings, *command: str, **environ: str
              ) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("DRIFTLINE_")}
    env |= {"DRIFTLINE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "DRIFTLINE_REDIS_URL": settings.redis_url, "DRIFTLINE_GROUP_ID": settings.group_id,
            "DRIFTLINE_TOPIC_PREFIX": settings.topics.prefix, **environ}
    return subprocess.run([sys.executable, "-m", "streams.ui.cli", *command], env=env,
                          capture_output=True, text=True, timeout=60)


def test_worker_producer_and_reader_round_trip_through_mutual_tls(
        settings: Settings, certs: Certificates, mtls_bootstrap: str, start_worker: Any) -> None:
    secured = replace(settings, bootstrap_servers=mtls_bootstrap, kafka=mtls_map(certs))
    ensure_topics(secured)                      # the admin client
    running = start_worker(secured)             # the worker's consumer and producer
    producer = Producer(client_config(secured.bootstrap_servers, secured.kafka))
    for value in as_arrays(events(1000) + events(600, start=1000, shift=1.5)):
        producer.produce(secured.topics.name("predictions"), value, key="m1")
    assert producer.flush(30) == 0
    reader = TopicReader(secured.bootstrap_servers, [secured.topics.name("alerts")],
                         kafka=secured.kafka)   # tail's and the demo's consumer
    alerts: list[Any] = []
    try:
        assert wait_for(lambda: bool(alerts.extend(a for _, a in reader.poll(0.5)) or any(
            a["kind"] == "data_drift" and a["feature"] == "x" for a in alerts)), 90), alerts
    finally:
        reader.close()
    assert running.worker.stats.events == 1600


def test_rebaseline_and_tail_commands_take_the_map_from_the_environment(
        settings: Settings, certs: Certificates, mtls_bootstrap: str) -> None:
    secured = replace(settings, bootstrap_servers=mtls_bootstrap)
    ensure_topics(replace(secured, kafka=mtls_map(certs)))
    environ = {"DRIFTLINE_KAFKA_SECURITY_PROTOCOL": "SSL",
               "DRIFTLINE_KAFKA_SSL_CA_LOCATION": str(certs.ca),
               "DRIFTLINE_KAFKA_SSL_CERTIFICATE_LOCATION": str(certs.client_cert),
               "DRIFTLINE_KAFKA_SSL_KEY_LOCATION": str(certs.client_key)}
    done = driftline(secured, "rebaseline", "--model", "m1", **environ)
    assert done.returncode == 0, done.stderr
    done = driftline(secured, "tail", "--limit", "0", **environ)
    assert done.returncode == 0, done.stderr


def test_tls_without_mutual_authentication(settings: Settings, certs: Certificates,
                                           tmp_path: Path) -> None:
    with tls_kafka(certs, tmp_path, mutual=False) as bootstrap:
        tls = {"security.protocol": "SSL", "ssl.ca.location": str(certs.ca)}
        secured = replace(settings, bootstrap_servers=bootstrap, kafka=tls)
        ensure_topics(secured)
        assert secured.topics.name("alerts") in cluster_metadata(bootstrap, kafka=tls).topics


def test_a_wrong_ca_is_refused_with_a_clear_error(settings: Settings, certs: Certificates,
                                                  mtls_bootstrap: str) -> None:
    wrong = dict(mtls_map(certs), **{"ssl.ca.location": str(certs.other_ca)})
    started = time.monotonic()
    with pytest.raises(UnreachableError) as caught:
        cluster_metadata(mtls_bootstrap, kafka=wrong)
    assert time.monotonic() - started < 8.0
    message = str(caught.value)
    assert message.startswith(f"cannot reach Kafka at {mtls_bootstrap} (SSL handshake failed")
    assert "certificate verify failed" in message and "ssl.ca.location" in message


def test_a_missing_client_certificate_is_refused_with_a_clear_error(
        settings: Settings, certs: Certificates, mtls_bootstrap: str) -> None:
    # What the user sees: the worker command's error, no traceback, no log flood.
    secured = replace(settings, bootstrap_servers=mtls_bootstrap)
    done = driftline(secured, "worker", DRIFTLINE_KAFKA_SECURITY_PROTOCOL="SSL",
                     DRIFTLINE_KAFKA_SSL_CA_LOCATION=str(certs.ca))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    first, hint = done.stderr.splitlines()[:2]
    assert first.startswith(f"driftline: error: cannot reach Kafka at {mtls_bootstrap} ("), first
    assert "ssl.certificate.location" in hint, done.stderr
    print(done.stderr)


def test_an_unknown_property_names_itself(settings: Settings) -> None:
    with pytest.raises(SettingsError) as caught:
        cluster_metadata(settings.bootstrap_servers, kafka={"sasl.mechanisms.typo": "PLAIN"})
    assert "No such configuration property: \"sasl.mechanisms.typo\"" in str(caught.value)
