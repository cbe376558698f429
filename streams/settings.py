"""One frozen settings object, built once at start-up from YAML and environment variables.

Precedence: built-in defaults < YAML file (``--config`` or ``DRIFTLINE_CONFIG``)
< environment variables. Every key is validated; an error names the key, what
was expected and what was given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from detectors.batch import FEATURE_TYPES
from detectors.errors import ConfigurationError, require
from detectors.monitor import MonitorConfig
from detectors.performance import EstimationConfig, PerformanceConfig
from streams.core.alerts import AlertSettings
from streams.errors import SettingsError

if TYPE_CHECKING:
    # For annotations only: _sinks imports the sinks when a webhook is configured.
    from streams.runtime.sinks import WebhookSettings

TOPIC_ROLES = ("predictions", "labels", "alerts", "retrain", "deadletter", "control", "joined")


def boolean(text: str) -> bool:
    """An on/off environment value: true/false, 1/0, yes/no or on/off (any case).

    >>> boolean("True"), boolean("0")
    (True, False)
    """
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(text)


# Environment variable → dotted settings key, with the parser for its text.
ENV_VARS: dict[str, tuple[str, Callable[[str], object]]] = {
    "DRIFTLINE_BOOTSTRAP_SERVERS": ("bootstrap_servers", str),
    "DRIFTLINE_REDIS_URL": ("redis_url", str),
    "DRIFTLINE_GROUP_ID": ("group_id", str),
    "DRIFTLINE_TOPIC_PREFIX": ("topics.prefix", str),
    "DRIFTLINE_PARTITIONS": ("topics.partitions", int),
    "DRIFTLINE_REFERENCE_SIZE": ("monitor.reference_size", int),
    "DRIFTLINE_WINDOW_SIZE": ("monitor.window_size", int),
    "DRIFTLINE_ALPHA": ("monitor.alpha", float),
    "DRIFTLINE_SESSION_TIMEOUT_MS": ("worker.session_timeout_ms", int),
    "DRIFTLINE_METRICS_PORT": ("worker.metrics_port", int),
    "DRIFTLINE_METRICS_HOST": ("worker.metrics_host", str),
    "DRIFTLINE_RESOLVE_AFTER_WINDOWS": ("alerts.resolve_after_windows", int),
    "DRIFTLINE_ALERT_COOLDOWN_WINDOWS": ("alerts.cooldown_windows", int),
    "DRIFTLINE_MAX_ALERTS_PER_HOUR": ("alerts.max_alerts_per_hour", int),
    "DRIFTLINE_DASHBOARD_PORT": ("dashboard.port", int),
    "DRIFTLINE_DASHBOARD_HOST": ("dashboard.host", str),
    "DRIFTLINE_JOINED_TOPIC": ("labels.joined_topic", boolean),
}


@dataclass(frozen=True)
class TopicSettings:
    """Topic names are ``prefix + role`` unless overridden in ``names``."""

    prefix: str = "driftline."
    partitions: int = 6
    replication_factor: int = 1
    names: Mapping[str, str] = field(default_factory=dict)

    def name(self, role: str) -> str:
        """Return the topic name for a role such as ``"predictions"``."""
        return self.names.get(role, self.prefix + role)


@dataclass(frozen=True)
class LimitSettings:
    """What one input message may hold before it is dead-lettered."""

    max_message_bytes: int = 1_048_576
    max_events_per_message: int = 100_000
    max_features: int = 2000


@dataclass(frozen=True)
class WorkerSettings:
    """How the batch consumer polls, checkpoints and joins its group."""

    batch_size: int = 5000
    poll_timeout_s: float = 0.5
    checkpoint_interval_s: float = 2.0
    session_timeout_ms: int = 10_000
    metrics_port: int = 9464
    metrics_host: str = "0.0.0.0"  # noqa: S104 - an exporter listens for Prometheus
    metrics_max_series: int = 5000


@dataclass(frozen=True)
class LabelSettings:
    """How labels join predictions and when a retrain request is sent."""

    pending_ttl_s: float = 7 * 86400.0
    pending_bucket_s: float = 3600.0
    early_wait_s: float = 3600.0
    max_early_labels: int = 100_000
    store_features: bool = True
    retrain_min_labels: int = 1000
    max_segments: int = 20
    joined_topic: bool = False

    def __post_init__(self) -> None:
        for name in ("pending_ttl_s", "pending_bucket_s", "early_wait_s"):
            value = getattr(self, name)
            require(math.isfinite(value) and value > 0, name, "a positive number of seconds",
                    value)
        require(self.pending_bucket_s <= self.pending_ttl_s, "pending_bucket_s",
                f"at most pending_ttl_s ({self.pending_ttl_s})", self.pending_bucket_s)
        require(self.max_early_labels >= 0, "max_early_labels", "an integer >= 0",
                self.max_early_labels)
        require(self.retrain_min_labels >= 1, "retrain_min_labels", "an integer >= 1",
                self.retrain_min_labels)
        require(self.max_segments >= 0, "max_segments", "an integer >= 0 (0: no segments)",
                self.max_segments)


@dataclass(frozen=True)
class DashboardSettings:
    """Where the live web dashboard listens (``driftline dashboard``, ``up`` and ``demo``).

    ``port`` 0 takes any free port, -1 starts no dashboard in ``up``/``demo``.
    The page has no login: the default host keeps it on this machine.
    """

    port: int = 8765
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        require(-1 <= self.port <= 65535, "port", "a port (0 = any free port, -1 = off)",
                self.port)
        require(bool(self.host), "host", "an address to listen on", self.host)


@dataclass(frozen=True)
class SinkSettings:
    """Where alerts go besides the alerts topic."""

    webhooks: tuple[WebhookSettings, ...] = ()


@dataclass(frozen=True)
class ModelSettings:
    """Per-model settings: declared feature types, a reference file, the task type."""

    features: Mapping[str, str] = field(default_factory=dict)
    reference: str | None = None
    task: str | None = None   # "classification" | "regression"; inferred from labels if unset


@dataclass(frozen=True)
class Settings:
    """Everything driftline needs, validated. Build with :func:`load_settings`."""

    bootstrap_servers: str = "localhost:9092"
    redis_url: str = "redis://localhost:6379/0"
    group_id: str = "driftline"
    topics: TopicSettings = field(default_factory=TopicSettings)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    limits: LimitSettings = field(default_factory=LimitSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    models: Mapping[str, ModelSettings] = field(default_factory=dict)
    sinks: SinkSettings = field(default_factory=SinkSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    labels: LabelSettings = field(default_factory=LabelSettings)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    estimation: EstimationConfig = field(default_factory=EstimationConfig)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with top-level fields replaced (used by the embedded stack)."""
        return replace(self, **changes)


_SECTIONS: dict[str, type] = {
    "topics": TopicSettings, "monitor": MonitorConfig, "limits": LimitSettings,
    "worker": WorkerSettings, "labels": LabelSettings, "alerts": AlertSettings,
    "dashboard": DashboardSettings, "performance": PerformanceConfig,
    "estimation": EstimationConfig,
}


def load_settings(path: str | Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from an optional YAML file and the environment.

    Examples
    --------
    >>> s = load_settings(environ={"DRIFTLINE_WINDOW_SIZE": "1000"})
    >>> s.monitor.window_size, s.topics.name("alerts")
    (1000, 'driftline.alerts')
    >>> load_settings(environ={"DRIFTLINE_WINDOW_SIZE": "many"})
    Traceback (most recent call last):
    ...
    streams.errors.SettingsError: DRIFTLINE_WINDOW_SIZE: expected int, got 'many'
    """
    env = os.environ if environ is None else environ
    path = path or env.get("DRIFTLINE_CONFIG")
    raw: dict[str, Any] = {}
    if path:
        raw = _read_yaml(Path(path))
    for var, (key, parse) in ENV_VARS.items():
        if var in env:
            try:
                value = parse(env[var])
            except ValueError as exc:
                raise SettingsError(f"{var}: expected {parse.__name__}, got {env[var]!r}") from exc
            section, _, name = key.rpartition(".")
            target = raw.setdefault(section, {}) if section else raw
            if not isinstance(target, dict):
                raise SettingsError(f"{section}: expected a mapping, got {target!r}")
            target[name] = value
    return _build(raw, env)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"config file {str(path)!r}: cannot read it ({exc})") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {str(path)!r}: not valid YAML ({exc})") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"config file {str(path)!r}: expected a mapping at the top, "
                            f"got {type(loaded).__name__}")
    return loaded


def _build(raw: dict[str, Any], env: Mapping[str, str]) -> Settings:
    _reject_unknown("", raw, {f.name for f in fields(Settings)})
    values: dict[str, Any] = {}
    for key in ("bootstrap_servers", "redis_url", "group_id"):
        if key in raw:
            values[key] = _typed(key, raw[key], str)
    for key, cls in _SECTIONS.items():
        if key in raw:
            values[key] = _section(key, raw[key], cls)
    if "models" in raw:
        values["models"] = _models(raw["models"])
    if "sinks" in raw:
        values["sinks"] = _sinks(raw["sinks"], env)
    topics = values.get("topics", TopicSettings())
    unknown_roles = set(topics.names) - set(TOPIC_ROLES)
    if unknown_roles:
        raise SettingsError(f"topics.names: expected keys among {TOPIC_ROLES}, "
                            f"got {sorted(unknown_roles)}")
    worker = values.get("worker", WorkerSettings())
    if worker.metrics_port < -1 or worker.metrics_port > 65535:
        raise SettingsError(f"worker.metrics_port: expected a port (0 = any free port, -1 = "
                            f"no metrics endpoint), got {worker.metrics_port}")
    if topics.partitions < 1:
        raise SettingsError(f"topics.partitions: expected an integer >= 1, got {topics.partitions}")
    return Settings(**values)


def _section(name: str, raw: object, cls: type) -> Any:
    if not isinstance(raw, dict):
        raise SettingsError(f"{name}: expected a mapping, got {raw!r}")
    known = {f.name: f for f in fields(cls)}
    _reject_unknown(name + ".", raw, set(known))
    values = {}
    for key, value in raw.items():
        default = getattr(cls(), key)
        expected = type(default)
        if isinstance(default, Mapping):
            if not isinstance(value, dict):
                raise SettingsError(f"{name}.{key}: expected a mapping, got {value!r}")
            values[key] = {str(k): _typed(f"{name}.{key}.{k}", v, str) for k, v in value.items()}
        else:
            values[key] = _typed(f"{name}.{key}", value, expected)
    try:
        return cls(**values)
    except ConfigurationError as exc:
        raise SettingsError(f"{name}.{exc}") from exc


def _models(raw: object) -> dict[str, ModelSettings]:
    if not isinstance(raw, dict):
        raise SettingsError(f"models: expected a mapping of model_id to settings, got {raw!r}")
    models: dict[str, ModelSettings] = {}
    for model_id, spec in raw.items():
        where = f"models.{model_id}"
        if not isinstance(spec, dict):
            raise SettingsError(f"{where}: expected a mapping, got {spec!r}")
        _reject_unknown(where + ".", spec, {"features", "reference", "task"})
        features = spec.get("features", {})
        if not isinstance(features, dict):
            raise SettingsError(f"{where}.features: expected a mapping, got {features!r}")
        for feature, kind in features.items():
            if kind not in FEATURE_TYPES:
                raise SettingsError(f"{where}.features.{feature}: expected one of "
                                    f"{list(FEATURE_TYPES)}, got {kind!r}")
        reference = spec.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise SettingsError(f"{where}.reference: expected a file path, got {reference!r}")
        task = spec.get("task")
        if task not in (None, "classification", "regression"):
            raise SettingsError(f"{where}.task: expected 'classification' or 'regression', "
                                f"got {task!r}")
        models[str(model_id)] = ModelSettings({str(k): str(v) for k, v in features.items()},
                                              reference, task)
    return models


_WEBHOOK_KEYS = {"url", "secret_env", "format", "timeout_s", "max_attempts", "backoff_initial_s",
                 "backoff_max_s", "max_retry_window_s", "queue_max", "headers", "generator_url"}


def _sinks(raw: object, env: Mapping[str, str]) -> SinkSettings:
    from streams.runtime.sinks import WebhookSettings

    if not isinstance(raw, dict):
        raise SettingsError(f"sinks: expected a mapping, got {raw!r}")
    _reject_unknown("sinks.", raw, {"webhooks"})
    entries = raw.get("webhooks") or []
    if not isinstance(entries, list):
        raise SettingsError(f"sinks.webhooks: expected a list, got {entries!r}")
    webhooks = []
    for index, entry in enumerate(entries):
        where = f"sinks.webhooks[{index}]"
        if not isinstance(entry, dict):
            raise SettingsError(f"{where}: expected a mapping, got {entry!r}")
        _reject_unknown(where + ".", entry, _WEBHOOK_KEYS)
        options = dict(entry)
        # Secrets never live in the YAML file: name the environment variable that holds it.
        secret_env = options.pop("secret_env", None)
        if secret_env is not None:
            if secret_env not in env:
                raise SettingsError(f"{where}.secret_env: environment variable {secret_env!r} "
                                    "is not set")
            options["secret"] = env[secret_env]
        try:
            webhooks.append(WebhookSettings(**options))
        except (SettingsError, TypeError) as exc:
            raise SettingsError(f"{where}.{exc}") from exc
    return SinkSettings(tuple(webhooks))


def _typed(key: str, value: object, expected: type) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise SettingsError(f"{key}: expected {expected.__name__}, got {value!r}")
    return value


def _reject_unknown(prefix: str, raw: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"{prefix}{unknown[0]}: unknown key (expected one of {sorted(known)})")
