"""The configuration reference, ``docs/configuration.md``, generated from the declaration.

Every key, its type, default, environment variable and description comes from
the settings dataclasses (descriptions from their numpydoc ``Parameters``), so
the page cannot drift from the code: a test compares the file with
:func:`configuration_reference`. Regenerate it with::

    python -m streams.settings_doc > docs/configuration.md
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import MISSING, fields
from typing import Any

from streams.delivery.webhook import WebhookSettings
from streams.settings import Settings
from streams.settings_sources import ALIASES, CONFIG_VAR, EnvKey, env_keys

_INTRO = f"""# Configuration reference

<!-- Generated from the settings declaration (streams/settings.py and the dataclasses it
uses) by `python -m streams.settings_doc > docs/configuration.md`; a test fails when this
file is out of date. -->

driftline reads one YAML file (`--config FILE` or `{CONFIG_VAR}`) and environment
variables, validated once at start-up; an error names the key, what was expected and
what was given. Precedence: built-in defaults < the YAML file < environment variables.
[`deploy/driftline.yaml`](../deploy/driftline.yaml) is a commented example.

**Every key has an environment variable**: `DRIFTLINE_` and the key's path in capitals,
`.` written `_` (`labels.max_segments` → `DRIFTLINE_LABELS_MAX_SEGMENTS`). Values are read
by the key's type:

- `int`, `float`, `str`: as is (`5`, `1e-6`, `driftline.`);
- `bool`: `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`, in any case;
- `list`: comma-separated (`logistic_regression,hoeffding_adaptive_tree`) or a YAML flow
  list (`[a, b]`);
- `mapping`: YAML flow text, e.g.
  `DRIFTLINE_MODELS='{{fraud-v1: {{features: {{amount: numeric}}}}}}'`.

A `DRIFTLINE_` variable that is no setting is never ignored in silence: one that looks
like a setting (it starts like a section's variables, `DRIFTLINE_LABELS_…`, or a
mapping's, `DRIFTLINE_MODELS_…`, or is a near miss of a variable) stops start-up with an
error naming the closest variable; any other one is logged as a warning. The variables
named by a webhook's `secret_env` or `routing_key_env` are read, not reported.

**The `kafka:` map** (librdkafka properties for every Kafka client) has a variable per
property besides `DRIFTLINE_KAFKA`: `DRIFTLINE_KAFKA_` + the property in capitals, `.`
written `_` (`DRIFTLINE_KAFKA_SASL_MECHANISM=PLAIN` sets `sasl.mechanism`). **Secrets from
files**: a key ending in `_file` is read from the file it names (trailing newline dropped)
into the key without the suffix: `kafka.sasl.password_file` → `sasl.password`
(`DRIFTLINE_KAFKA_SASL_PASSWORD_FILE`), `redis.password_file`, `dashboard.token_file`,
`dashboard.password_file`. Examples: the README, "Connecting to your Kafka".

"""


def configuration_reference() -> str:
    """The text of ``docs/configuration.md``.

    >>> text = configuration_reference()
    >>> "| `labels.max_segments` | int | `20` | `DRIFTLINE_LABELS_MAX_SEGMENTS` |" in text
    True
    """
    keys = env_keys(Settings)
    parts = [_INTRO]
    sections: dict[str, list[EnvKey]] = {}
    for key in keys:
        sections.setdefault(key.key.split(".")[0] if "." in key.key else "", []).append(key)
    for section, members in sections.items():
        title = f"`{section}`: {_summary(members[0].owner)}" if section else "Top level"
        parts.append(f"## {title}\n\n| key | type | default | environment variable | "
                     "description |\n| --- | --- | --- | --- | --- |\n")
        parts += [f"| `{k.key}` | {k.type_name} | `{_default(k.default)}` | `{k.var}` | "
                  f"{describe(k.owner, k.key.rpartition('.')[2])} |\n" for k in members]
        parts.append("\n")
        if section == "sinks":
            parts.append(_webhook_table())
    parts.append("## Older variable names\n\nStill read, as the same key (setting both an "
                 "old and a new name to different values is an error):\n\n"
                 "| variable | same as |\n| --- | --- |\n")
    by_key = {key.key: key.var for key in keys}
    parts += [f"| `{var}` | `{by_key[dotted]}` (`{dotted}`) |\n" for var, dotted in ALIASES.items()]
    return "".join(parts)


def describe(owner: type, name: str) -> str:
    """A key's description from its class docstring's ``Parameters`` (one line, Markdown).

    >>> describe(Settings, "group_id")
    'The Kafka consumer group all workers share.'
    """
    return _parameters(owner).get(name, "")


def _parameters(owner: type) -> dict[str, str]:
    doc = inspect.getdoc(owner) or ""
    match = re.search(r"^Parameters\n-+\n(.*?)(?:\n\n[A-Z][a-z]+\n-+\n|\Z)", doc, re.S | re.M)
    described: dict[str, str] = {}
    names: list[str] = []
    for line in (match.group(1) if match else "").splitlines():
        if line and not line.startswith(" "):
            names = [name.strip() for name in line.split(",")]
        elif line.strip() and names:
            for name in names:
                described[name] = f"{described.get(name, '')} {line.strip()}".strip()
    return {name: _markdown(text) for name, text in described.items()}


def _summary(owner: type) -> str:
    return _markdown((inspect.getdoc(owner) or "").split("\n\n")[0].replace("\n", " "))


def _markdown(text: str) -> str:
    """Docstring markup as Markdown: ``code`` and :class:`~a.b.Name` roles."""
    text = re.sub(r":[a-z]+:`~?(?:[\w]+\.)*(\w+)`", r"`\1`", text)
    return text.replace("``", "`").replace("|", "\\|")


def _default(value: Any) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else dict(value)
                      if hasattr(value, "keys") else value)


def _webhook_table() -> str:
    rows = ["### Webhook entries (`sinks.webhooks`)\n\n| key | default | description |\n"
            "| --- | --- | --- |\n"]
    for field in fields(WebhookSettings):
        default = (field.default if field.default is not MISSING
                   else field.default_factory() if field.default_factory is not MISSING
                   else None)
        if field.name == "secret":
            # The file names the variable that holds the secret, never the secret itself.
            rows.append("| `secret_env` | none | Name of the environment variable that holds "
                        "the HMAC-SHA256 key; without one, requests are unsigned. |\n")
            continue
        if field.name == "routing_key":
            rows.append("| `routing_key_env` | none | `pagerduty` format only (required there): "
                        "name of the environment variable that holds the PagerDuty "
                        "integration's routing key. |\n")
            continue
        shown = "required" if field.name == "url" else f"`{_default(default)}`"
        rows.append(f"| `{field.name}` | {shown} | {describe(WebhookSettings, field.name)} |\n")
    return "".join(rows) + "\n"


def main() -> None:
    """Print the reference (``python -m streams.settings_doc > docs/configuration.md``)."""
    print(configuration_reference(), end="")


if __name__ == "__main__":
    main()
