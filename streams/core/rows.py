"""Rows of a step's prediction events grouped per model version, dicts or typed structs."""

from __future__ import annotations

from operator import attrgetter, itemgetter
from typing import Any

from streams.ingest.columnar import rows_by_key
from streams.ingest.typed import untyped

__all__ = ["group_rows", "take_rows", "uniform_models"]


def group_rows(events: list[Any]) -> dict[tuple[str, str], list[int]]:
    """Row numbers per (model_id, model_version), in stream order; one pass only when mixed.

    Events are dicts or typed structs (:mod:`streams.ingest.typed`), or both.

    Examples
    --------
    >>> e = [{"model_id": "a", "model_version": "1"}, {"model_id": "b", "model_version": "1"},
    ...      {"model_id": "a", "model_version": "1"}]
    >>> group_rows(e)
    {('a', '1'): [0, 2], ('b', '1'): [1]}
    """
    if not events:
        return {}
    kinds: list[Any] = list(map(type, events))
    if kinds.count(kinds[0]) == len(kinds) and kinds[0] is not dict:
        # All typed structs of one model: its id is the struct type's (no getattr per event).
        versions = list(map(_MODEL_VERSION_ATTR, events))
        if versions.count(versions[0]) == len(versions):
            return {(kinds[0].model_id, versions[0]): list(range(len(events)))}
        model_ids = [kinds[0].model_id] * len(events)
    elif dict not in set(kinds):
        # Typed structs of several models (a struct type each): grouped by type, without a
        # (model, version) tuple per event, when each model sent one version.
        grouped = _one_version_each(events, kinds)
        if grouped is not None:
            return grouped
        model_ids = list(map(_MODEL_ID_ATTR, events))
        versions = list(map(_MODEL_VERSION_ATTR, events))
    else:
        typed = dict not in kinds
        try:
            model_ids = list(map(_MODEL_ID_ATTR if typed else _MODEL_ID, events))
            versions = list(map(_MODEL_VERSION_ATTR if typed else _MODEL_VERSION, events))
        except (AttributeError, TypeError):    # dicts and typed structs in one list
            model_ids = [e["model_id"] if type(e) is dict else e.model_id for e in events]
            versions = [e["model_version"] if type(e) is dict else e.model_version
                        for e in events]
        if (model_ids.count(model_ids[0]) == len(model_ids)
                and versions.count(versions[0]) == len(versions)):
            return {(model_ids[0], versions[0]): list(range(len(events)))}
    by_pair = rows_by_key(list(zip(model_ids, versions, strict=True)))
    return {pair: rows.tolist() for pair, rows in by_pair.items()}


def _one_version_each(events: list[Any], kinds: list[Any]
                      ) -> dict[tuple[str, str], list[int]] | None:
    """Rows per struct type, keyed (model_id, version); ``None`` if a model sent two versions."""
    versions = list(map(_MODEL_VERSION_ATTR, events))
    groups: dict[tuple[str, str], list[int]] = {}
    for kind, rows in rows_by_key(kinds).items():
        picked = rows.tolist()
        taken = itemgetter(*picked)(versions) if len(picked) > 1 else (versions[picked[0]],)
        if taken.count(taken[0]) != len(taken):
            return None
        groups[(kind.model_id, taken[0])] = picked
    return groups


def take_rows(events: list[Any], rows: list[int]) -> list[Any]:
    """``events`` at ``rows`` (ascending): the list itself when all, a slice when adjacent.

    >>> take_rows(list("abcde"), [1, 2, 3]), take_rows(list("abcde"), [0, 4])
    (['b', 'c', 'd'], ['a', 'e'])
    """
    if len(rows) == len(events):
        return events
    if rows and rows[-1] - rows[0] == len(rows) - 1:
        return events[rows[0]:rows[-1] + 1]
    return [events[row] for row in rows]


def uniform_models(events: list[Any], groups: dict[tuple[str, str], list[int]]) -> None:
    """Make a model's events all dicts, in place, where some are dicts and some typed structs.

    A message of a known model that the typed decoder refused (a new version,
    an extra feature) is decoded as dicts; its model's other events of the run
    follow, as the generic path decodes them, so each model's columns and
    pending rows are built one way. Other models keep their structs.
    """
    present = set(map(type, events))
    if dict not in present or len(present) == 1:
        return      # all typed, or all dicts
    kinds: dict[str, set[type]] = {}
    for (model_id, _), rows in groups.items():
        kinds.setdefault(model_id, set()).update(map(type, take_rows(events, rows)))
    for (model_id, _), rows in groups.items():
        if dict in kinds[model_id] and len(kinds[model_id]) > 1:
            for row in rows:
                if type(events[row]) is not dict:
                    events[row] = untyped(events[row])


_MODEL_ID, _MODEL_VERSION = itemgetter("model_id"), itemgetter("model_version")
_MODEL_ID_ATTR = attrgetter("model_id")
_MODEL_VERSION_ATTR = attrgetter("model_version")
