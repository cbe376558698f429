"""`driftline deliver` takes the kafka: map too: mutual TLS through stunnel, for real."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from streams.runtime.connections import client_config
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from tests.integration import delivery as fixtures
from tests.integration import test_kafka_tls as tls
from tests.integration.delivery import DeliveryProcess, make_alert, wait_until
from tests.integration.tls import Certificates

pytestmark = pytest.mark.integration

receivers = fixtures.receivers
certs, mtls_bootstrap = tls.certs, tls.mtls_bootstrap


def test_delivery_reads_alerts_through_mutual_tls(settings: Settings, certs: Certificates,
                                                  mtls_bootstrap: str, receivers: Any,
                                                  tmp_path: Path) -> None:
    secured = replace(settings, bootstrap_servers=mtls_bootstrap, kafka=tls.mtls_map(certs))
    ensure_topics(secured)
    receiver = receivers().start()
    environ = {"DRIFTLINE_KAFKA_SECURITY_PROTOCOL": "SSL",
               "DRIFTLINE_KAFKA_SSL_CA_LOCATION": str(certs.ca),
               "DRIFTLINE_KAFKA_SSL_CERTIFICATE_LOCATION": str(certs.client_cert),
               "DRIFTLINE_KAFKA_SSL_KEY_LOCATION": str(certs.client_key)}
    process = DeliveryProcess(secured, [{"url": receiver.url}], tmp_path / "deliver.log",
                              environ).start()
    try:
        alert = make_alert("churn|v3|data_drift|age|ks")
        producer = Producer(client_config(secured.bootstrap_servers, secured.kafka))
        producer.produce(secured.topics.name("alerts"), orjson.dumps(alert), key="churn")
        assert producer.flush(30) == 0
        assert wait_until(lambda: len(receiver.ok()) == 1, 90), process.log()
        assert receiver.ok()[0].alert_id == alert["alert_id"]
    finally:
        process.stop()
