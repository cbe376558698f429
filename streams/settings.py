"""One frozen settings object, built once at start-up from YAML and environment variables.

Precedence: built-in defaults < YAML file (``--config`` or ``DRIFTLINE_CONFIG``)
< environment variables. Every key is validated; an error names the key, what
was expected and what was given.

The dataclasses below are the one declaration of every key: its type and
default here, its description in the class docstring. Each key's environment
variable is derived from them (:mod:`streams.settings_sources`), and so is the
reference, ``docs/configuration.md`` (:mod:`streams.settings_doc`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.batch import FEATURE_TYPES
from detectors.errors import ConfigurationError, require
from detectors.monitor import MonitorConfig
from detectors.performance import EstimationConfig, PerformanceConfig
from streams.core.alerts import AlertSettings
from streams.core.silence import TickSettings
from streams.errors import SettingsError
from streams.settings_delivery import DeliverySettings
from streams.settings_inputs import InputSettings, parse_inputs
from streams.settings_security import (
    RedisSettings,
    kafka_environment,
    kafka_map,
    read_secret,
    redis_settings,
)
from streams.settings_service import LogSettings, WebSettings, web_settings
from streams.settings_sources import (
    CONFIG_VAR,
    apply_environment,
    check_unknown,
    env_keys,
    read_yaml,
    secret_variables,
)

if TYPE_CHECKING:
    # For annotations only: _sinks imports the sinks when a webhook is configured.
    from streams.delivery.webhook import WebhookSettings

TOPIC_ROLES = ("predictions", "labels", "alerts", "retrain", "deadletter", "control", "joined",
               "audit")
MISSING_CHECKPOINT_POLICIES = ("resume", "rewind")

_log = logging.getLogger("driftline.settings")


@dataclass(frozen=True)
class TopicSettings:
    """Topic names are ``prefix + role`` unless overridden in ``names``.

    Parameters
    ----------
    prefix
        Every topic is ``<prefix><role>``: ``driftline.predictions``, ``driftline.alerts``, …
    partitions
        Partitions per topic (created at start-up). predictions and labels must have the
        same count; it is also the most workers that can share the load.
    replication_factor
        Replicas of each topic created at start-up.
    names
        Role → topic name, for topics that do not follow the prefix
        (roles: predictions, labels, alerts, retrain, deadletter, control, joined, audit).
    """

    prefix: str = "driftline."
    partitions: int = 6
    replication_factor: int = 1
    names: Mapping[str, str] = field(default_factory=dict)

    def name(self, role: str) -> str:
        """Return the topic name for a role such as ``"predictions"``."""
        return self.names.get(role, self.prefix + role)


KEY_POLICIES = ("reject", "accept")


@dataclass(frozen=True)
class LimitSettings:
    """What one input message may hold, and how much state one partition keeps.

    Parameters
    ----------
    max_message_bytes
        Largest message value read; a larger one is dead-lettered (``oversized``).
    max_events_per_message
        Most events in an array message (``too_many_events``).
    max_features
        Most features in one event (``invalid_value``).
    max_models_per_partition
        Model ids monitored in one partition; the events of further models are
        dead-lettered (``too_many_models``) until idle ones expire.
    max_versions_per_model
        Versions of one model monitored at once; a new version retires the one idle longest.
    max_features_per_model
        Features monitored per model version whose schema is inferred (not declared); the
        first ones seen are kept, the others are counted and not monitored.
    max_step_bytes
        Message bytes decoded at once: a partition step's run of predictions (or labels)
        is processed in parts of about this size, so wide events cannot exhaust memory.
    max_drift_segments
        Segment values (``name=value``) per model version with their own drift monitor
        (0: drift is watched per model version only). A version whose first events name
        segments shares its false-alarm budget: half for the whole version, half split
        evenly over this many segment monitors; events of further values are counted,
        not monitored.
    idle_expiry_s
        A model version without predictions for this long (event time; see
        docs/design.md) is forgotten: open alerts resolve, its next events start afresh.
    key_policy
        A prediction or label whose message key is not its ``model_id``: ``reject``
        dead-letters it (``key_mismatch``), ``accept`` monitors it where it landed. A
        message without a key is accepted either way.
    """

    max_message_bytes: int = 1_048_576
    max_events_per_message: int = 100_000
    max_features: int = 2000
    max_models_per_partition: int = 2000
    max_versions_per_model: int = 10
    max_features_per_model: int = 1000
    max_step_bytes: int = 16 * 1_048_576
    max_drift_segments: int = 20
    idle_expiry_s: float = 7 * 86400.0
    key_policy: str = "reject"

    def __post_init__(self) -> None:
        for name in ("max_models_per_partition", "max_versions_per_model",
                     "max_features_per_model", "max_step_bytes"):
            require(getattr(self, name) >= 1, name, "an integer >= 1", getattr(self, name))
        require(self.max_drift_segments >= 0, "max_drift_segments",
                "an integer >= 0 (0: no segment drift monitors)", self.max_drift_segments)
        require(math.isfinite(self.idle_expiry_s) and self.idle_expiry_s > 0, "idle_expiry_s",
                "a positive number of seconds", self.idle_expiry_s)
        require(self.key_policy in KEY_POLICIES, "key_policy", f"one of {list(KEY_POLICIES)}",
                self.key_policy)


@dataclass(frozen=True)
class WorkerSettings:
    """How the batch consumer polls, checkpoints and joins its group.

    Parameters
    ----------
    batch_size
        Most messages consumed per poll (one partition step), and events decoded at once.
    group_events
        Events per model version a step aims to hand each monitor. A monitor's
        update has a fixed cost per call, so with many models in a partition a
        step grows past ``batch_size`` (up to 10 times) until each model's group
        can reach this size: a larger step (memory, latency of one step), the
        same cost per event as with one model.
    poll_timeout_s
        How long a poll waits for messages.
    checkpoint_interval_s
        Seconds between checkpoints of monitor state and offsets to Redis.
    session_timeout_ms
        Kafka consumer-group session timeout.
    metrics_port
        Deprecated: ``/metrics`` is served on the worker's one web port, ``web.port``.
        When set (and ``web.port`` is not), it is used as ``web.port``, with a warning.
    metrics_host
        Deprecated: when set (and ``web.host`` is not), it is used as ``web.host``, with
        a warning.
    metrics_max_series
        Most labelled series per metric; beyond it new label values are not exported.
    missing_checkpoint
        What a worker does with a partition that has no checkpoint although its
        consumer group has committed offsets (its state is lost, e.g. Redis lost its
        data): ``resume`` starts fresh monitors at the committed offsets, ``rewind``
        at the earliest offsets the topics hold. Either way it logs an error, counts
        ``driftline_monitor_resets_total`` and publishes a ``monitor_reset`` alert.
    """

    batch_size: int = 5000
    group_events: int = 1000
    poll_timeout_s: float = 0.5
    checkpoint_interval_s: float = 2.0
    session_timeout_ms: int = 10_000
    metrics_port: int = 9464
    metrics_host: str = "127.0.0.1"
    metrics_max_series: int = 5000
    missing_checkpoint: str = "resume"

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.group_events >= 1, "group_events", "an integer >= 1", self.group_events)
        require(self.missing_checkpoint in MISSING_CHECKPOINT_POLICIES, "missing_checkpoint",
                " or ".join(MISSING_CHECKPOINT_POLICIES), self.missing_checkpoint)

    def step_events(self, models: int) -> int:
        """Events (or messages) one step takes when its partition monitors ``models`` versions.

        Examples
        --------
        >>> worker = WorkerSettings(batch_size=5000, group_events=1000)
        >>> worker.step_events(1), worker.step_events(20), worker.step_events(5000)
        (5000, 20000, 50000)
        """
        return max(self.batch_size, min(10 * self.batch_size, self.group_events * models))


@dataclass(frozen=True)
class LabelSettings:
    """How labels join predictions and when a retrain request is sent.

    Parameters
    ----------
    pending_ttl_s
        How long a prediction waits for its label (in Redis, which expires it).
    pending_bucket_s
        Width of one Redis hash of pending predictions (by arrival time).
    early_wait_s
        How long (event time) a label that arrives before its prediction waits for it.
    max_early_labels
        Early labels kept per partition; beyond it the oldest is counted unmatched.
    store_features
        Keep features with pending predictions (the challengers learn from them).
    retrain_min_labels
        Labelled events after a confirmed drift before a retrain request.
    max_segments
        Segment values (``name=value``) with their own performance monitor, per model
        version (0 = no segments).
    joined_topic
        Publish each joined prediction and label on the ``joined`` topic.
    """

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
    """Who may read the live web dashboard, served on the worker's web port (``web``).

    Parameters
    ----------
    port
        Deprecated: the dashboard is served on ``web.port``. When set (and neither
        ``web.port`` nor ``worker.metrics_port`` is), it is used as ``web.port``, with a
        warning.
    host
        Deprecated: when set (and ``web.host`` is not), it is used as ``web.host``, with
        a warning. Before listening on an address other than loopback, set a ``token``
        or a ``username`` and ``password``.
    allowed_hosts
        Host names (``Host`` header, without port) the page answers to; any other is
        refused, a defence against DNS rebinding. Empty: ``localhost``, ``127.0.0.1``,
        ``::1`` and ``host``. ``*`` allows any (behind a proxy that checks it).
    token
        Bearer token the page, ``/api`` and ``/events`` require
        (``Authorization: Bearer …``, or ``?token=…`` once, which sets a cookie). Prefer
        ``token_file``.
    token_file
        File holding the token (a mounted secret); read at start-up.
    username, password
        HTTP basic authentication the page requires (both set), besides or instead of the
        token.
    password_file
        File holding the basic-authentication password; read at start-up.
    """

    port: int = 8765
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    token: str = field(default="", repr=False)
    token_file: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    password_file: str = ""

    def __post_init__(self) -> None:
        require(-1 <= self.port <= 65535, "port", "a port (0 = any free port, -1 = off)",
                self.port)
        require(bool(self.host), "host", "an address to listen on", self.host)
        require(bool(self.username) == bool(self.password or self.password_file), "username",
                "username and password (or password_file) together", "only one of them")

    def host_names(self) -> frozenset[str]:
        """The ``Host`` names the page answers to (lower case, no port).

        >>> sorted(DashboardSettings(host="0.0.0.0").host_names())
        ['127.0.0.1', '::1', 'localhost']
        >>> sorted(DashboardSettings(allowed_hosts=("Monitor.example.com",)).host_names())
        ['monitor.example.com']
        """
        if self.allowed_hosts:
            return frozenset(name.lower() for name in self.allowed_hosts)
        names = {"localhost", "127.0.0.1", "::1"}
        if self.host not in ("0.0.0.0", "::", ""):  # noqa: S104 - not a name a browser sends
            names.add(self.host.lower().strip("[]"))
        return frozenset(names)


@dataclass(frozen=True)
class SinkSettings:
    """Where alerts go besides the alerts topic.

    Parameters
    ----------
    webhooks
        Webhooks that receive every alert event, delivered by ``driftline deliver``; each a
        mapping of the keys below (``url`` is required; ``secret_env`` names the variable
        holding the HMAC key, ``routing_key_env`` the one holding a PagerDuty routing key).
    """

    webhooks: tuple[WebhookSettings, ...] = ()


@dataclass(frozen=True)
class ModelSettings:
    """Per-model settings: declared feature types, a reference file, the task type."""

    features: Mapping[str, str] = field(default_factory=dict)
    reference: str | None = None
    task: str | None = None   # "classification" | "regression"; inferred from labels if unset


@dataclass(frozen=True)
class Settings:
    """Everything driftline needs, validated. Build with :func:`load_settings`.

    Parameters
    ----------
    bootstrap_servers
        Kafka brokers, ``host:port[,host:port…]``.
    redis_url
        Redis holding the checkpoints (monitor state and offsets), pending
        predictions and the live view: ``redis://[user:password@]host:port/db``, or
        ``rediss://…`` for TLS (see the ``redis`` section for a CA, an ACL user and a
        password file).
    group_id
        The Kafka consumer group all workers share.
    kafka
        librdkafka properties passed unchanged to every Kafka client driftline creates
        (SASL, TLS, …), e.g. ``{security.protocol: SASL_SSL, sasl.mechanism: PLAIN}``.
        Each property also has a variable, ``DRIFTLINE_KAFKA_<PROPERTY>`` (``.`` → ``_``:
        ``DRIFTLINE_KAFKA_SASL_MECHANISM``); a key ending in ``_file`` reads the value of
        the key without the suffix from a file (``sasl.password_file``). See the README,
        "Connecting to your Kafka".
    models
        model_id → ``{features: {name: numeric|categorical}, reference: PATH, task:
        classification|regression}``: declared feature types (inferred from the first
        events otherwise), a reference file built with ``driftline reference build``,
        the task (inferred from the first joined label otherwise).
    inputs
        Topics of your own in your own layout (JSON, or Schema-Registry-framed Avro or
        JSON Schema) read instead of the predictions or labels topic, each with where
        every event field is: a list of mappings, written in the YAML file (its variable
        takes the whole list as YAML flow text). See docs/inputs.md.
    """

    bootstrap_servers: str = "localhost:9092"
    kafka: Mapping[str, str] = field(default_factory=dict, repr=False)
    redis_url: str = "redis://localhost:6379/0"
    redis: RedisSettings = field(default_factory=RedisSettings)
    group_id: str = "driftline"
    topics: TopicSettings = field(default_factory=TopicSettings)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    limits: LimitSettings = field(default_factory=LimitSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    models: Mapping[str, ModelSettings] = field(default_factory=dict)
    sinks: SinkSettings = field(default_factory=SinkSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    ticks: TickSettings = field(default_factory=TickSettings)
    labels: LabelSettings = field(default_factory=LabelSettings)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    estimation: EstimationConfig = field(default_factory=EstimationConfig)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    web: WebSettings = field(default_factory=WebSettings)
    log: LogSettings = field(default_factory=LogSettings)
    inputs: tuple[InputSettings, ...] = ()

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with top-level fields replaced (used by the embedded stack)."""
        return replace(self, **changes)


_SECTIONS: dict[str, type] = {
    "topics": TopicSettings, "monitor": MonitorConfig, "limits": LimitSettings,
    "worker": WorkerSettings, "labels": LabelSettings, "alerts": AlertSettings,
    "dashboard": DashboardSettings, "performance": PerformanceConfig, "ticks": TickSettings,
    "estimation": EstimationConfig, "redis": RedisSettings, "delivery": DeliverySettings,
    "web": WebSettings, "log": LogSettings,
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
    path = path or env.get(CONFIG_VAR)
    raw: dict[str, Any] = read_yaml(Path(path)) if path else {}
    keys = env_keys(Settings)
    apply_environment(raw, env, keys)
    properties = kafka_environment(env)
    if properties:
        if not isinstance(raw.setdefault("kafka", {}), dict):
            raise SettingsError(f"kafka: expected a mapping, got {raw['kafka']!r}")
        raw["kafka"].update(properties)
    check_unknown(env, keys, secret_variables(raw) | _kafka_variables(env))
    return _build(raw, env)


def _kafka_variables(env: Mapping[str, str]) -> set[str]:
    return {var for var in env if var.startswith("DRIFTLINE_KAFKA_")}


def _build(raw: dict[str, Any], env: Mapping[str, str]) -> Settings:
    _reject_unknown("", raw, {f.name for f in fields(Settings)})
    values: dict[str, Any] = {}
    for key in ("bootstrap_servers", "redis_url", "group_id"):
        if key in raw:
            values[key] = _typed(key, raw[key], str)
    for key, cls in _SECTIONS.items():
        if key in raw:
            values[key] = _section(key, raw[key], cls)
    if "kafka" in raw:
        values["kafka"] = kafka_map(raw["kafka"])
    if "redis" in raw:
        values["redis"] = redis_settings(vars(values["redis"]).copy(),
                                         values.get("redis_url", Settings.redis_url))
    if "dashboard" in raw:
        values["dashboard"] = _dashboard_secrets(values["dashboard"])
    if "models" in raw:
        values["models"] = _models(raw["models"])
    if "sinks" in raw:
        values["sinks"] = _sinks(raw["sinks"], env)
    topics = values.get("topics", TopicSettings())
    unknown_roles = set(topics.names) - set(TOPIC_ROLES)
    if unknown_roles:
        raise SettingsError(f"topics.names: expected keys among {TOPIC_ROLES}, "
                            f"got {sorted(unknown_roles)}")
    if "inputs" in raw:
        values["inputs"] = parse_inputs(raw["inputs"], {role: topics.name(role)
                                                        for role in TOPIC_ROLES})
    worker = values.get("worker", WorkerSettings())
    if worker.metrics_port < -1 or worker.metrics_port > 65535:
        raise SettingsError(f"worker.metrics_port: expected a port (0 = any free port, -1 = "
                            f"no metrics endpoint), got {worker.metrics_port}")
    if topics.partitions < 1:
        raise SettingsError(f"topics.partitions: expected an integer >= 1, got {topics.partitions}")
    values["web"] = web_settings(raw, values)
    return Settings(**values)


def _dashboard_secrets(dashboard: DashboardSettings) -> DashboardSettings:
    changes: dict[str, Any] = {}
    for secret in ("token", "password"):
        path = getattr(dashboard, secret + "_file")
        if path:
            if getattr(dashboard, secret):
                raise SettingsError(f"dashboard.{secret}_file: set either dashboard.{secret} "
                                    f"or dashboard.{secret}_file, not both")
            changes[secret] = read_secret(f"dashboard.{secret}_file", path)
    try:
        return replace(dashboard, **changes)
    except ConfigurationError as exc:
        raise SettingsError(f"dashboard.{exc}") from exc


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
                 "backoff_max_s", "max_retry_window_s", "headers", "generator_url",
                 "resend_interval_s", "routing_key_env"}


def _sinks(raw: object, env: Mapping[str, str]) -> SinkSettings:
    from streams.delivery.webhook import WebhookSettings

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
        options = dict(entry)
        if options.pop("queue_max", None) is not None:
            # Before `driftline deliver`, alerts waited in the worker's memory; now the
            # alerts topic is the queue. Old files keep working.
            _log.warning("%s.queue_max is no longer used: the alerts topic is the queue", where)
        _reject_unknown(where + ".", options, _WEBHOOK_KEYS)
        # Secrets never live in the YAML file: name the environment variable that holds it.
        for option, secret in (("secret_env", "secret"), ("routing_key_env", "routing_key")):
            variable = options.pop(option, None)
            if variable is not None:
                if variable not in env:
                    raise SettingsError(f"{where}.{option}: environment variable "
                                        f"{variable!r} is not set")
                options[secret] = env[variable]
        try:
            webhooks.append(WebhookSettings(**options))
        except (SettingsError, TypeError) as exc:
            raise SettingsError(f"{where}.{exc}") from exc
    return SinkSettings(tuple(webhooks))


def _typed(key: str, value: object, expected: type) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is tuple and isinstance(value, list):  # YAML has lists, not tuples
        return tuple(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise SettingsError(f"{key}: expected {expected.__name__}, got {value!r}")
    return value


def _reject_unknown(prefix: str, raw: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"{prefix}{unknown[0]}: unknown key (expected one of {sorted(known)})")
