"""The inputs: setting is validated at start-up, errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.errors import SettingsError
from streams.settings import load_settings
from streams.settings_inputs import parse_path

LABELS = {"topic": "shop", "role": "labels",
          "fields": {"model_id": {"const": "m"}, "event_id": "id", "label": "y"}}


def entry(**changes: Any) -> dict[str, Any]:
    return {**LABELS, **changes}


@pytest.mark.parametrize(("inputs", "message"), [
    ({"topic": "x"}, "inputs: expected a list of input mappings"),
    ([entry(topic="")], "inputs[0].topic: expected a topic name"),
    ([entry(role="alerts")], "inputs[0].role: expected one of ['predictions', 'labels']"),
    ([entry(format="protobuf")], "inputs[0].format: expected one of"),
    ([entry(ts_unit="min")], "inputs[0].ts_unit: expected one of"),
    ([entry(colour="red")], "inputs[0].colour: unknown key"),
    ([entry(format="avro")], "inputs[0].schema_registry.url: format avro needs"),
    ([entry(schema_registry={"url": "mock://x"})],
     "inputs[0].schema_registry: only for format avro or jsonschema"),
    ([entry(fields={"model_id": "a", "event_id": "b"})],
     "inputs[0].fields.label: required for role labels"),
    ([entry(fields={**LABELS["fields"], "features": "f"})],
     "inputs[0].fields.features: not a field of a label event"),
    ([entry(fields={**LABELS["fields"], "event_id": "$..id"})],
     "inputs[0].fields.event_id: cannot read '$..id'"),
    ([entry(fields={**LABELS["fields"], "model_id": {"header": ""}})],
     "inputs[0].fields.model_id.header: expected a header name"),
    ([entry(fields={**LABELS["fields"], "model_id": {"from": "partition"}})],
     "inputs[0].fields.model_id.from: expected one of ['key', 'timestamp']"),
    ([entry(fields={**LABELS["fields"], "model_id": {"const": None}})],
     "inputs[0].fields.model_id.const: expected a string, number or boolean"),
    ([entry(fields={**LABELS["fields"], "model_id": {"const": 1, "path": "a"}})],
     "inputs[0].fields.model_id: expected a path, or one of"),
    ([entry(topic="driftline.alerts")],
     "inputs[0].topic: 'driftline.alerts' is driftline's own alerts topic"),
    ([LABELS, entry(topic="other")], "inputs[1].role: a second labels input"),
])
def test_a_bad_input_mapping_stops_start_up_naming_the_key(inputs: Any, message: str,
                                                           tmp_path: Path) -> None:
    import yaml

    config = tmp_path / "driftline.yaml"
    config.write_text(yaml.safe_dump({"inputs": inputs}))
    with pytest.raises(SettingsError) as error:
        load_settings(config, environ={})
    assert str(error.value).startswith(message), error.value


def test_a_good_mapping_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "driftline.yaml"
    config.write_text("""
inputs:
  - topic: shop.scored
    role: predictions
    format: avro
    schema_registry: {url: "mock://reg", basic.auth.user.info: "k:s"}
    fields:
      model_id: {from: key}
      model_version: {header: model-version}
      event_id: $.request.id
      ts: {from: timestamp}
      features: {age: $.age, country: "$['home.country']"}
      prediction: response.items[0]
""")
    [mapping] = load_settings(config, environ={}).inputs
    assert (mapping.topic, mapping.role, mapping.format) == ("shop.scored", "predictions", "avro")
    assert mapping.schema_registry == {"url": "mock://reg", "basic.auth.user.info": "k:s"}
    assert mapping.fields["prediction"].path == ("response", "items", 0)
    assert mapping.fields["model_version"].value == "model-version"
    assert mapping.fields["ts"].kind == "timestamp"
    assert mapping.objects["features"]["country"].path == ("home.country",)


def test_paths() -> None:
    assert parse_path("$") == ()
    assert parse_path("$.a[-1]['b c'][\"d.e\"]") == ("a", -1, "b c", "d.e")
    for bad in ("$.", "a..b", "$[x]", "a[0"):
        with pytest.raises(ValueError, match="cannot read"):
            parse_path(bad)
