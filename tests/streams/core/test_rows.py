"""Grouping a step's events per model version: every path gives the plain grouping."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.core.rows import group_rows
from streams.ingest.typed import TypedModels, untyped

MODELS = TypedModels()
for _model in ("m", "n", "o"):
    for _version in ("v1", "v2"):
        MODELS.register(_model, _version, {"a": "numeric"})


def _event(model_id: str, version: str, typed: bool) -> Any:
    document = orjson.dumps({"model_id": model_id, "model_version": version, "event_id": "e",
                             "ts": 1, "features": {"a": 1}, "prediction": 0})
    [event] = MODELS.decode(document) or []
    return event if typed else untyped(event)


def _plain(events: list[Any]) -> dict[tuple[str, str], list[int]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for row, event in enumerate(events):
        key = ((event["model_id"], event["model_version"]) if isinstance(event, dict)
               else (event.model_id, event.model_version))
        groups.setdefault(key, []).append(row)
    return groups


@given(st.lists(st.tuples(st.sampled_from("mno"), st.sampled_from(["v1", "v2"]),
                          st.booleans()), min_size=1, max_size=30),
       st.sampled_from(["typed", "dicts", "mixed"]))
def test_rows_per_version_in_order_of_first_appearance(
        picks: list[tuple[str, str, bool]], kind: str) -> None:
    events = [_event(model_id, version, typed if kind == "mixed" else kind == "typed")
              for model_id, version, typed in picks]
    grouped = group_rows(events)
    assert grouped == _plain(events)
    assert list(grouped) == list(_plain(events))


def test_typed_models_of_one_version_each_group_by_their_struct_type() -> None:
    events = [_event(model_id, "v1", True) for model_id in "mnmonm"]
    assert group_rows(events) == {("m", "v1"): [0, 2, 5], ("n", "v1"): [1, 4],
                                  ("o", "v1"): [3]}
