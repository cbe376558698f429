"""The kafka: map, Redis TLS/ACL and dashboard credentials: env forms, files, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import SettingsError
from streams.settings import load_settings


def test_kafka_properties_come_from_yaml_env_and_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "kafka-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    config = tmp_path / "driftline.yaml"
    config.write_text("kafka:\n  security.protocol: SASL_SSL\n  sasl.mechanism: PLAIN\n"
                      "  socket.keepalive.enable: true\n  request.timeout.ms: 20000\n",
                      encoding="utf-8")
    settings = load_settings(config, environ={
        "DRIFTLINE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "DRIFTLINE_KAFKA_SASL_USERNAME": "driftline",
        "DRIFTLINE_KAFKA_SASL_PASSWORD_FILE": str(secret),
    })
    assert settings.kafka == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "socket.keepalive.enable": "true", "request.timeout.ms": "20000",
        "sasl.username": "driftline", "sasl.password": "s3cret"}
    # The secret never shows in the settings' repr (start-up logs, tracebacks).
    assert "s3cret" not in repr(settings)


def test_the_whole_map_as_yaml_and_one_property_on_top() -> None:
    settings = load_settings(environ={"DRIFTLINE_KAFKA": "{security.protocol: SSL}",
                                      "DRIFTLINE_KAFKA_SSL_CA_LOCATION": "/etc/ca.pem"})
    assert settings.kafka == {"security.protocol": "SSL", "ssl.ca.location": "/etc/ca.pem"}


@pytest.mark.parametrize(("environ", "message"), [
    ({"DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": "b:9092"},
     "kafka.bootstrap.servers: set bootstrap_servers (DRIFTLINE_BOOTSTRAP_SERVERS) instead"),
    ({"DRIFTLINE_KAFKA_GROUP_ID": "g"}, "kafka.group.id: set group_id"),
    ({"DRIFTLINE_KAFKA_ENABLE_AUTO_COMMIT": "true"}, "kafka.enable.auto.commit: driftline"),
    ({"DRIFTLINE_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/secret"},
     "kafka.sasl.password_file: cannot read the secret file '/nonexistent/secret' "
     "(No such file or directory)"),
    ({"DRIFTLINE_KAFKA": "{ssl.key.password: a, ssl.key.password_file: /x}"},
     "kafka.ssl.key.password_file: set either ssl.key.password or ssl.key.password_file"),
    ({"DRIFTLINE_KAFKA": "{sasl.jaas: {a: b}}"}, "kafka.sasl.jaas: expected a string"),
    ({"DRIFTLINE_REDIS_CA_FILE": "/ca.pem"},
     "redis.ca_file/cert_file/key_file: expected a rediss:// redis_url (TLS), got a redis://"),
    ({"DRIFTLINE_REDIS_PASSWORD_FILE": "/nonexistent/pw"}, "redis.password_file: cannot read"),
    ({"DRIFTLINE_DASHBOARD_USERNAME": "ops"}, "dashboard.username: expected username and"),
])
def test_bad_security_settings_stop_start_up(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=environ)
    assert message in str(caught.value)


def test_redis_acl_and_tls_options(tmp_path: Path) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text("pw\n", encoding="utf-8")
    settings = load_settings(environ={
        "DRIFTLINE_REDIS_URL": "rediss://cache:6380/0", "DRIFTLINE_REDIS_USERNAME": "driftline",
        "DRIFTLINE_REDIS_PASSWORD_FILE": str(secret), "DRIFTLINE_REDIS_CA_FILE": "/ca.pem"})
    assert settings.redis.client_options() == {
        "username": "driftline", "password": "pw", "ssl_ca_certs": "/ca.pem"}
    assert "'pw'" not in repr(settings)


def test_dashboard_secrets_from_files_and_allowed_hosts(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n", encoding="utf-8")
    settings = load_settings(environ={"DRIFTLINE_DASHBOARD_TOKEN_FILE": str(token),
                                      "DRIFTLINE_DASHBOARD_HOST": "10.0.0.5"})
    assert settings.dashboard.token == "t0ken"
    assert settings.dashboard.host_names() == {"localhost", "127.0.0.1", "::1", "10.0.0.5"}


def test_nothing_listens_beyond_loopback_by_default() -> None:
    settings = load_settings(environ={})
    assert settings.worker.metrics_host == "127.0.0.1"
    assert settings.dashboard.host == "127.0.0.1"
