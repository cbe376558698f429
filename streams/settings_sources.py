"""Where settings come from: the YAML file and one environment variable per key.

Every key has a variable, derived from the settings declaration (the
dataclasses of :mod:`streams.settings`) rather than listed by hand, so a new
key is settable by environment the day it is declared:
``DRIFTLINE_`` + the key's path in capitals, ``.`` → ``_``. A top-level key:
``bootstrap_servers`` → ``DRIFTLINE_BOOTSTRAP_SERVERS``; a key of a section:
``labels.max_segments`` → ``DRIFTLINE_LABELS_MAX_SEGMENTS``. The names older
releases read (``DRIFTLINE_REFERENCE_SIZE``, …) still work: :data:`ALIASES`.

A value is read by the type of the key's default: numbers as written, booleans
as true/false, 1/0, yes/no or on/off, a list comma-separated (or a YAML flow
list), a mapping or a list of mappings (``models``, ``topics.names``,
``sinks.webhooks``) as YAML flow text such as ``{fraud-v1: {task: classification}}``.

A ``DRIFTLINE_`` variable that names no key is never silently ignored. One that
looks like a setting (it starts like a section's keys, ``DRIFTLINE_LABELS_…``,
or a mapping's, ``DRIFTLINE_MODELS_…``, or nearly matches a variable) is an
error naming the closest variable: a typo
would otherwise leave a container running on the default. Any other one (a
variable of the user's own, say) is a logged warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from streams.errors import SettingsError

PREFIX = "DRIFTLINE_"
CONFIG_VAR = "DRIFTLINE_CONFIG"
REFERENCE_DOC = "docs/configuration.md"

# The variables of earlier releases, kept working: variable → dotted key.
ALIASES: dict[str, str] = {
    "DRIFTLINE_TOPIC_PREFIX": "topics.prefix",
    "DRIFTLINE_PARTITIONS": "topics.partitions",
    "DRIFTLINE_REFERENCE_SIZE": "monitor.reference_size",
    "DRIFTLINE_WINDOW_SIZE": "monitor.window_size",
    "DRIFTLINE_ALPHA": "monitor.alpha",
    "DRIFTLINE_SESSION_TIMEOUT_MS": "worker.session_timeout_ms",
    "DRIFTLINE_METRICS_PORT": "worker.metrics_port",
    "DRIFTLINE_METRICS_HOST": "worker.metrics_host",
    "DRIFTLINE_RESOLVE_AFTER_WINDOWS": "alerts.resolve_after_windows",
    "DRIFTLINE_ALERT_COOLDOWN_WINDOWS": "alerts.cooldown_windows",
    "DRIFTLINE_MAX_ALERTS_PER_HOUR": "alerts.max_alerts_per_hour",
    "DRIFTLINE_JOINED_TOPIC": "labels.joined_topic",
}

_log = logging.getLogger("driftline.settings")


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


def text_list(text: str) -> list[Any]:
    """A list value: a YAML flow list, or comma-separated names (blank: empty).

    >>> text_list("logistic_regression, hoeffding_adaptive_tree")
    ['logistic_regression', 'hoeffding_adaptive_tree']
    >>> text_list("[{url: 'http://h/x'}]"), text_list(" ")
    ([{'url': 'http://h/x'}], [])
    """
    if text.lstrip().startswith("["):
        loaded = yaml_value(text)
        if not isinstance(loaded, list):
            raise ValueError(text)
        return loaded
    return [item.strip() for item in text.split(",") if item.strip()]


def yaml_value(text: str) -> Any:
    """A mapping (or list) written as YAML flow text, e.g. ``{alerts: pager}``."""
    # yaml is imported where it is used: a run without a YAML file or YAML-valued variable
    # (`driftline replay`, most workers) would otherwise pay ~15 ms of start-up for it.
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(text) from exc


def text(value: str) -> str:
    """A string value, as it is."""
    return value


_PARSERS: dict[type, Callable[[str], Any]] = {
    bool: boolean, int: int, float: float, str: text, tuple: text_list, dict: yaml_value,
}
# What the reference calls each parser's values.
TYPE_NAMES = {boolean: "bool", int: "int", float: "float", text: "str", text_list: "list",
              yaml_value: "mapping"}


@dataclass(frozen=True)
class EnvKey:
    """One configuration key and the environment variable that sets it."""

    var: str
    key: str
    """Dotted path: ``"labels.max_segments"``, or ``"group_id"`` at the top."""
    default: Any
    parse: Callable[[str], Any]
    owner: type
    """The dataclass that declares the key (its docstring describes it)."""

    @property
    def type_name(self) -> str:
        """``int``, ``float``, ``bool``, ``str``, ``list`` or ``mapping``."""
        return TYPE_NAMES[self.parse]


def env_keys(declaration: type) -> list[EnvKey]:
    """Every key of ``declaration`` (a settings dataclass), in declaration order.

    A field whose default is itself a dataclass is a section: its fields are its keys.

    Examples
    --------
    >>> from streams.settings import Settings
    >>> keys = {k.key: k for k in env_keys(Settings)}
    >>> keys["labels.max_segments"].var, keys["labels.max_segments"].type_name
    ('DRIFTLINE_LABELS_MAX_SEGMENTS', 'int')
    >>> keys["models"].var, keys["performance.challengers"].type_name
    ('DRIFTLINE_MODELS', 'list')
    """
    defaults = declaration()
    keys = []
    for top in fields(declaration):
        value = getattr(defaults, top.name)
        if is_dataclass(value) and not isinstance(value, type):
            keys += [_key(f"{top.name}.{f.name}", getattr(value, f.name), type(value))
                     for f in fields(value)]
        else:
            keys.append(_key(top.name, value, declaration))
    return keys


def environment_variable(key: str) -> str:
    """The variable that sets a dotted key, as :func:`env_keys` derives it.

    >>> environment_variable("monitor.reference_size")
    'DRIFTLINE_MONITOR_REFERENCE_SIZE'
    """
    return PREFIX + key.replace(".", "_").upper()


def _key(key: str, default: Any, owner: type) -> EnvKey:
    kind = next((kind for kind in _PARSERS if isinstance(default, kind)),
                dict if isinstance(default, Mapping) else None)
    if kind is None:
        raise TypeError(f"{key}: no environment form for a default of type "
                        f"{type(default).__name__}")
    return EnvKey(environment_variable(key), key, default, _PARSERS[kind], owner)


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping a YAML settings file holds (empty file: no keys)."""
    import yaml

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


def apply_environment(raw: dict[str, Any], env: Mapping[str, str],
                      keys: list[EnvKey]) -> None:
    """Override ``raw`` (the YAML file's keys) with every key's variable that is set."""
    by_key = {key.key: key for key in keys}
    chosen: dict[str, tuple[str, str]] = {}
    names = [(key.var, key.key) for key in keys] + list(ALIASES.items())
    for var, dotted in names:
        if var not in env:
            continue
        if dotted in chosen and chosen[dotted][1] != env[var]:
            first, value = chosen[dotted]
            raise SettingsError(f"{first} and {var} both set {dotted}, to {value!r} and "
                                f"{env[var]!r}: set only {by_key[dotted].var}")
        chosen[dotted] = (var, env[var])
    for dotted, (var, value) in chosen.items():
        parse = by_key[dotted].parse
        try:
            parsed = parse(value)
        except ValueError as exc:
            raise SettingsError(f"{var}: expected {TYPE_NAMES[parse]}, got {value!r}") from exc
        section, _, name = dotted.rpartition(".")
        target = raw.setdefault(section, {}) if section else raw
        if not isinstance(target, dict):
            raise SettingsError(f"{section}: expected a mapping, got {target!r}")
        target[name] = parsed


def secret_variables(raw: Mapping[str, Any]) -> set[str]:
    """The variables webhooks read their secrets from: read, not unknown.

    ``secret_env`` (the HMAC key) and ``routing_key_env`` (a PagerDuty routing key).

    >>> sorted(secret_variables({"sinks": {"webhooks": [{"url": "u", "secret_env": "HOOK_KEY",
    ...                                                   "routing_key_env": "PD_KEY"}]}}))
    ['HOOK_KEY', 'PD_KEY']
    """
    sinks = raw.get("sinks")
    hooks = sinks.get("webhooks") if isinstance(sinks, dict) else None
    if not isinstance(hooks, list):
        return set()
    return {str(hook[option]) for hook in hooks if isinstance(hook, dict)
            for option in ("secret_env", "routing_key_env") if option in hook}


def check_unknown(env: Mapping[str, str], keys: list[EnvKey], also: set[str]) -> None:
    """Refuse a ``DRIFTLINE_`` variable that looks like a mistyped setting; warn of others.

    ``also`` names variables that are not keys but are read (webhook secrets).
    """
    known = {key.var for key in keys} | set(ALIASES) | {CONFIG_VAR}
    sections = {PREFIX + key.key.split(".")[0].upper() + "_" for key in keys if "." in key.key}
    structured = [key for key in keys if key.parse in (yaml_value, text_list)]
    for var in sorted(v for v in env if v.startswith(PREFIX) and v not in known | also):
        import difflib  # only here: the common run, with no unknown variable, never needs it

        # Compared without the prefix every name shares, which would make all of them "close".
        close = difflib.get_close_matches(var.removeprefix(PREFIX),
                                          sorted(v.removeprefix(PREFIX) for v in known), n=1,
                                          cutoff=0.8)
        whole = [key for key in structured if var.startswith(key.var + "_")]
        if close or whole or any(var.startswith(section) for section in sections):
            hint = (f"{whole[0].var} takes all of {whole[0].key} as YAML, e.g. "
                    f"{whole[0].var}='{{...}}'; " if whole
                    else f"did you mean {PREFIX}{close[0]}? " if close else "")
            raise SettingsError(f"{var}: no such setting ({hint}every variable is listed in "
                                f"{REFERENCE_DOC})")
        _log.warning("%s is not a driftline setting and is ignored (every variable is listed "
                     "in %s)", var, REFERENCE_DOC)
