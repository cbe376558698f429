"""Every configuration key has an environment variable, derived from the declaration."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from streams.errors import SettingsError
from streams.settings import Settings, load_settings
from streams.settings_doc import configuration_reference, describe
from streams.settings_sources import ALIASES, EnvKey, env_keys

ROOT = Path(__file__).parents[2]
KEYS = env_keys(Settings)

# A valid value other than the default, as text, for keys whose type alone cannot make one.
SPECIAL: dict[str, tuple[str, Any]] = {
    "log.format": ("json", "json"),
    "models": ("{fraud: {task: regression}}", None),
    "topics.names": ("{alerts: pager}", {"alerts": "pager"}),
    "sinks.webhooks": ("[{url: 'http://127.0.0.1:9/hook'}]", None),
    "performance.challengers": ("logistic_regression", ("logistic_regression",)),
    "monitor.joint_max_features": ("10", 10),
    "kafka": ("{security.protocol: SSL}", {"security.protocol": "SSL"}),
    "redis.password_file": (str(ROOT / "README.md"), str(ROOT / "README.md")),
    "dashboard.password_file": (str(ROOT / "README.md"), str(ROOT / "README.md")),
    "dashboard.token_file": (str(ROOT / "README.md"), str(ROOT / "README.md")),
    "dashboard.allowed_hosts": ("monitor.example.com", ("monitor.example.com",)),
    "inputs": ("[{topic: shop, role: labels, fields: {model_id: {const: m}, event_id: id, "
               "label: y}}]", None),
    "worker.missing_checkpoint": ("rewind", "rewind"),
    "limits.key_policy": ("accept", "accept"),
}
# Keys that are valid only together with another one.
TOGETHER: dict[str, dict[str, str]] = {
    "redis.ca_file": {"DRIFTLINE_REDIS_URL": "rediss://127.0.0.1:6380/0"},
    "redis.cert_file": {"DRIFTLINE_REDIS_URL": "rediss://127.0.0.1:6380/0",
                        "DRIFTLINE_REDIS_KEY_FILE": "/k.pem"},
    "redis.key_file": {"DRIFTLINE_REDIS_URL": "rediss://127.0.0.1:6380/0",
                       "DRIFTLINE_REDIS_CERT_FILE": "/c.pem"},
    "dashboard.username": {"DRIFTLINE_DASHBOARD_PASSWORD": "pw"},
    "dashboard.password": {"DRIFTLINE_DASHBOARD_USERNAME": "ops"},
    "dashboard.password_file": {"DRIFTLINE_DASHBOARD_USERNAME": "ops"},
}


def other_value(key: EnvKey) -> tuple[str, Any]:
    if key.key in SPECIAL:
        return SPECIAL[key.key]
    default = key.default
    if isinstance(default, bool):
        return ("false" if default else "true"), not default
    if isinstance(default, int):
        return str(default + 1), default + 1
    if isinstance(default, float):
        return repr(default * 1.5), default * 1.5
    assert isinstance(default, str), key
    return default + "x", default + "x"


def value_at(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("key", KEYS, ids=[k.var for k in KEYS])
def test_every_key_is_set_by_its_variable(key: EnvKey) -> None:
    text, expected = other_value(key)
    settings = load_settings(environ={key.var: text, **TOGETHER.get(key.key, {})})
    value = value_at(settings, key.key)
    assert value != key.default
    if key.key == "models":
        assert value["fraud"].task == "regression"
    elif key.key == "sinks.webhooks":
        assert [hook.url for hook in value] == ["http://127.0.0.1:9/hook"]
    elif key.key == "inputs":
        assert [(entry.topic, entry.role) for entry in value] == [("shop", "labels")]
    else:
        assert value == expected


def test_variable_names_follow_the_key_paths_and_cover_every_field() -> None:
    from dataclasses import fields, is_dataclass

    expected = set()
    for top in fields(Settings):
        default = getattr(Settings(), top.name)
        expected |= ({f"{top.name}.{f.name}" for f in fields(default)} if is_dataclass(default)
                     else {top.name})
    assert {k.key for k in KEYS} == expected
    for key in KEYS:
        assert key.var == "DRIFTLINE_" + re.sub(r"\W", "_", key.key).upper()
    assert len(KEYS) > 60  # 17 had variables before


def test_the_labels_max_segments_example_from_the_issue() -> None:
    assert load_settings(environ={"DRIFTLINE_LABELS_MAX_SEGMENTS": "5"}).labels.max_segments == 5


def test_old_names_still_work_and_may_not_contradict_the_new_ones() -> None:
    by_key = {key.key: key for key in KEYS}
    for var, dotted in ALIASES.items():
        text, expected = other_value(by_key[dotted])
        assert value_at(load_settings(environ={var: text}), dotted) == expected, var
        both = {var: text, by_key[dotted].var: text}
        assert value_at(load_settings(environ=both), dotted) == expected
    with pytest.raises(SettingsError, match="DRIFTLINE_MONITOR_REFERENCE_SIZE and "
                       "DRIFTLINE_REFERENCE_SIZE both set monitor.reference_size, to '300' and "
                       "'400': set only DRIFTLINE_MONITOR_REFERENCE_SIZE"):
        load_settings(environ={"DRIFTLINE_REFERENCE_SIZE": "400",
                               "DRIFTLINE_MONITOR_REFERENCE_SIZE": "300"})


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "driftline.yaml"
    path.write_text("labels:\n  max_segments: 7\n  store_features: true\n"
                    "performance:\n  challengers: [hoeffding_adaptive_tree]\n")
    settings = load_settings(path, environ={"DRIFTLINE_LABELS_STORE_FEATURES": "off"})
    assert (settings.labels.max_segments, settings.labels.store_features) == (7, False)
    assert settings.performance.challengers == ("hoeffding_adaptive_tree",)  # a YAML list


@pytest.mark.parametrize(("environ", "message"), [
    ({"DRIFTLINE_LABELS_STORE_FEATURES": "maybe"},
     "DRIFTLINE_LABELS_STORE_FEATURES: expected bool, got 'maybe'"),
    ({"DRIFTLINE_MONITOR_ALPHA": "small"}, "DRIFTLINE_MONITOR_ALPHA: expected float, got 'small'"),
    ({"DRIFTLINE_MODELS": "{unclosed"}, "DRIFTLINE_MODELS: expected mapping, got '{unclosed'"),
    ({"DRIFTLINE_TOPICS_NAMES": "[a]"}, "topics.names: expected a mapping, got ['a']"),
    ({"DRIFTLINE_LABELS_MAX_SEGMENTS": "-1"}, "labels.max_segments: expected an integer >= 0"),
])
def test_a_bad_value_names_the_variable_or_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(environ=environ)
    assert message in str(error.value)


@pytest.mark.parametrize(("var", "hint"), [
    ("DRIFTLINE_LABELS_MAX_SEGMENT", "did you mean DRIFTLINE_LABELS_MAX_SEGMENTS? "),
    ("DRIFTLINE_REFERENCESIZE", "did you mean DRIFTLINE_REFERENCE_SIZE? "),
    ("DRIFTLINE_MONITOR_SOMETHING_ELSE", ""),
    ("DRIFTLINE_MODELS_FRAUD_REFERENCE", "DRIFTLINE_MODELS takes all of models as YAML, e.g. "
                                         "DRIFTLINE_MODELS='{...}'; "),
])
def test_a_mistyped_setting_stops_start_up(var: str, hint: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(environ={var: "5"})
    assert str(error.value) == (f"{var}: no such setting ({hint}every variable is listed in "
                                "docs/configuration.md)")


def test_other_driftline_variables_are_warned_about_not_ignored(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "driftline.yaml"
    path.write_text("sinks:\n  webhooks:\n    - url: http://127.0.0.1:9/hook\n"
                    "      secret_env: DRIFTLINE_HOOK_SECRET\n")
    with caplog.at_level(logging.WARNING, logger="driftline.settings"):
        load_settings(path, environ={"DRIFTLINE_HOOK_SECRET": "s", "DRIFTLINE_OWN_THING": "1",
                                     "DRIFTLINE_CONFIG": str(path), "OTHER": "1"})
    assert [r.getMessage() for r in caplog.records] == [
        "DRIFTLINE_OWN_THING is not a driftline setting and is ignored (every variable is "
        "listed in docs/configuration.md)"]


def test_the_reference_page_is_generated_from_the_declaration() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == configuration_reference(), (
        "docs/configuration.md is out of date: python -m streams.settings_doc > "
        "docs/configuration.md")
    for key in KEYS:
        assert describe(key.owner, key.key.rpartition(".")[2]), f"{key.key} has no description"
        assert f"| `{key.key}` |" in page and f"`{key.var}`" in page


def test_the_example_file_names_real_variables_and_keys() -> None:
    example = ROOT / "deploy" / "driftline.yaml"
    named = set(re.findall(r"\bDRIFTLINE_[A-Z_]+", example.read_text()))
    known = {k.var for k in KEYS} | set(ALIASES) | {"DRIFTLINE_CONFIG", "DRIFTLINE_WEBHOOK_SECRET"}
    assert named and named <= known, named - known
    load_settings(example, environ={})
