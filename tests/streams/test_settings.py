from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import SettingsError
from streams.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driftline.yaml"
    path.write_text(text)
    return path


def test_yaml_then_environment_override(tmp_path: Path) -> None:
    path = write(tmp_path, "bootstrap_servers: kafka:9092\nmonitor:\n  window_size: 1000\n"
                 "topics:\n  prefix: 'prod.'\n  names:\n    alerts: pager\n"
                 "models:\n  fraud:\n    features:\n      amount: numeric\n")
    settings = load_settings(path, environ={"DRIFTLINE_BOOTSTRAP_SERVERS": "other:9092"})
    assert settings.bootstrap_servers == "other:9092"
    assert settings.monitor.window_size == 1000
    assert settings.topics.name("predictions") == "prod.predictions"
    assert settings.topics.name("alerts") == "pager"
    assert settings.models["fraud"].features == {"amount": "numeric"}
    assert settings.models["fraud"].reference is None


def test_the_shipped_example_config_loads() -> None:
    settings = load_settings(Path(__file__).parents[2] / "deploy" / "driftline.yaml", environ={})
    assert settings.topics.prefix == "driftline."


@pytest.mark.parametrize(("text", "message"), [
    ("monitor:\n  window_size: ten\n", "monitor.window_size: expected int, got 'ten'"),
    ("monitor:\n  window_size: 5\n", "monitor.window_size: expected an integer >= 100, got 5"),
    ("monitor:\n  alpha: 2.0\n", "monitor.alpha: expected a probability in (0, 1), got 2.0"),
    ("topics:\n  prefx: x\n", "topics.prefx: unknown key"),
    ("brokers: x\n", "brokers: unknown key"),
    ("topics:\n  partitions: 0\n", "topics.partitions: expected an integer >= 1, got 0"),
    ("topics:\n  names:\n    alert: x\n", "topics.names: expected keys among"),
    ("models:\n  m:\n    features:\n      a: number\n",
     "models.m.features.a: expected one of ['numeric', 'categorical'], got 'number'"),
    ("- a list\n", "expected a mapping at the top"),
    ("monitor: [\n", "not valid YAML"),
])
def test_errors_name_the_key_the_expectation_and_the_value(tmp_path: Path, text: str,
                                                           message: str) -> None:
    with pytest.raises(SettingsError) as excinfo:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(excinfo.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read it"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_webhook_secrets_come_from_the_environment(tmp_path: Path) -> None:
    text = ("sinks:\n  webhooks:\n    - url: https://hooks.example.com/driftline\n"
            "      secret_env: HOOK_SECRET\n      format: alertmanager\n")
    settings = load_settings(write(tmp_path, text), environ={"HOOK_SECRET": "abc"})
    (hook,) = settings.sinks.webhooks
    assert hook.format == "alertmanager" and hook.secret == "abc"
    assert "abc" not in repr(hook)
    with pytest.raises(SettingsError, match=r"sinks.webhooks\[0\].secret_env: environment "
                       r"variable 'HOOK_SECRET' is not set"):
        load_settings(write(tmp_path, text), environ={})
    with pytest.raises(SettingsError, match=r"sinks.webhooks\[0\].secret: unknown key"):
        load_settings(write(tmp_path, text.replace("secret_env", "secret")), environ={})


def test_the_web_port_replaces_the_dashboard_and_metrics_ports(
        caplog: pytest.LogCaptureFixture) -> None:
    from streams.settings_service import WebSettings

    assert load_settings(environ={}).web == WebSettings(8765, "127.0.0.1")
    with caplog.at_level("WARNING", logger="driftline.settings"):
        old = load_settings(environ={"DRIFTLINE_METRICS_PORT": "9464",
                                     "DRIFTLINE_DASHBOARD_HOST": "0.0.0.0"})
    assert old.web == WebSettings(9464, "0.0.0.0")
    assert "worker.metrics_port is deprecated" in caplog.text
    assert "using worker.metrics_port as web.port" in caplog.text
    assert "using dashboard.host as web.host" in caplog.text
    # The dashboard's port is used when the metrics port is not set.
    assert load_settings(environ={"DRIFTLINE_DASHBOARD_PORT": "9000"}).web.port == 9000
    # web.<key> wins over both.
    both = load_settings(environ={"DRIFTLINE_WEB_PORT": "7000", "DRIFTLINE_METRICS_PORT": "1"})
    assert both.web.port == 7000


def test_web_and_log_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match=r"web.port: expected a port"):
        load_settings(environ={"DRIFTLINE_WEB_PORT": "70000"})
    with pytest.raises(SettingsError, match=r"log.format: expected text or json, got 'xml'"):
        load_settings(environ={"DRIFTLINE_LOG_FORMAT": "xml"})
