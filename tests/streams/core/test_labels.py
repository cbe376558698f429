"""The label engine's join bookkeeping, with the in-memory pending store (no I/O)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.core.labels import LabelBatch, LabelEngine, LabelStep, infer_task
from streams.settings import load_settings
from streams.state.pending import MemoryPendingStore


def predictions(start: int, stop: int, model: str = "m") -> list[dict[str, Any]]:
    return [{"model_id": model, "model_version": "v1", "event_id": f"e{i}", "ts": 1000.0 + i,
             "features": {"x": float(i % 7)}, "prediction": i % 2, "score": 0.8 if i % 2 else 0.2}
            for i in range(start, stop)]


def labels(ids: list[int], model: str = "m", delay: float = 5.0) -> list[dict[str, Any]]:
    return [{"model_id": model, "event_id": f"e{i}", "ts": 1000.0 + i + delay, "label": i % 2}
            for i in ids]


class Harness:
    """A label engine and its store, driven the way the worker drives them."""

    def __init__(self, **environ: str) -> None:
        self.settings = load_settings(environ=environ)
        self.engine = LabelEngine(self.settings)
        self.store = MemoryPendingStore()
        self.steps: list[LabelStep] = []
        self.offset = 0

    def predict(self, events: list[dict[str, Any]]) -> None:
        offsets = np.arange(self.offset, self.offset + len(events))
        self.offset += len(events)
        by_model: dict[str, list[int]] = {}
        for row, event in enumerate(events):
            by_model.setdefault(event["model_id"], []).append(row)
        for model_id, rows in by_model.items():
            step = self.engine.on_predictions(model_id, [events[i] for i in rows], offsets[rows])
            self.store.put(0, model_id, step.pending[model_id])
            self.steps.append(step)
            for waiting_model, waiting in step.retry.items():
                self._claim(waiting_model, waiting)

    def _claim(self, model_id: str, requests: LabelBatch) -> None:
        claimed = self.store.claim(0, model_id, requests.event_ids, requests.claimants())
        self.steps.append(self.engine.on_claims(model_id, requests, claimed))

    def label(self, events: list[dict[str, Any]], first_offset: int = 0) -> None:
        offsets = list(range(first_offset, first_offset + len(events)))
        for model_id, group in self.engine.requests(events, offsets).items():
            self._claim(model_id, group)

    def summary(self) -> dict[str, Any]:
        return self.engine.summary()["m"]


def test_labels_join_their_predictions_and_duplicates_are_ignored() -> None:
    harness = Harness()
    harness.predict(predictions(0, 100))
    harness.label(labels(list(range(0, 50))), first_offset=0)
    harness.label(labels([3, 4]), first_offset=500)        # the same labels sent again
    summary = harness.summary()
    assert summary["predictions"] == 100 and summary["labels"] == 52
    assert summary["joined"] == 50 and summary["duplicates"] == 2
    assert summary["coverage"] == 0.5
    assert summary["task"] == "classification"
    assert summary["delay_p50_s"] == 10.0        # 5 s delays fall in the (1, 10] s bucket


def test_a_label_read_again_after_a_crash_joins_again() -> None:
    """The restored engine has not seen it; the store recognises the same claimant."""
    harness = Harness()
    harness.predict(predictions(0, 10))
    state = orjson.loads(orjson.dumps(harness.engine.to_state()))
    harness.label(labels([1, 2]), first_offset=7)
    harness.engine = LabelEngine.from_state(harness.settings, state)
    harness.label(labels([1, 2]), first_offset=7)
    assert harness.summary()["joined"] == 2 and harness.summary()["duplicates"] == 0


def test_early_labels_wait_for_their_prediction_then_join() -> None:
    harness = Harness()
    harness.label(labels([5, 6]))
    assert harness.summary()["waiting"] == 2 and harness.summary()["joined"] == 0
    harness.predict(predictions(0, 10))
    summary = harness.summary()
    assert summary["waiting"] == 0 and summary["joined"] == 2 and summary["unmatched"] == 0


def test_early_labels_saved_before_the_packed_claims_join_as_themselves() -> None:
    """A checkpoint of 2026-12-06 held an early label's claimant as "offset.index"."""
    harness = Harness()
    harness.label(labels([5, 6]), first_offset=40)           # offsets 40 and 41, index 0
    state = orjson.loads(orjson.dumps(harness.engine.to_state()))
    assert [(row[4], row[1]) for row in state["early"]["m"]] == [(40, 0), (41, 0)]
    state["early"]["m"] = [[row[0], f"{row[4]}.0", *row[2:]] for row in state["early"]["m"]]
    harness.engine = LabelEngine.from_state(harness.settings, state)
    harness.predict(predictions(0, 10))
    assert harness.summary()["joined"] == 2
    # The same labels read again (a replay) find their claims: no second join, no duplicate.
    harness.engine = LabelEngine.from_state(harness.settings, state)
    harness.predict(predictions(0, 10))
    assert harness.summary()["joined"] == 2 and harness.summary()["duplicates"] == 0


def test_labels_that_never_find_a_prediction_are_counted_not_lost() -> None:
    harness = Harness()
    harness.predict(predictions(0, 10))
    harness.label(labels([10_000]))                           # no such prediction (yet)
    harness.predict(predictions(10, 20))
    assert harness.summary()["waiting"] == 1
    # Event time moves past the label's ts + early_wait_s (3600 s by default).
    late = predictions(20, 21)
    late[0]["ts"] = 1000.0 + 10_000 + 5.0 + 3601.0
    harness.predict(late)
    summary = harness.summary()
    assert summary["waiting"] == 0 and summary["unmatched"] == 1


def test_the_early_label_buffer_is_bounded() -> None:
    harness = Harness()
    harness.settings = harness.engine.settings = harness.settings.with_overrides(
        labels=type(harness.settings.labels)(max_early_labels=3))
    harness.label(labels([100, 101, 102, 103, 104]))
    summary = harness.summary()
    assert summary["waiting"] == 3 and summary["unmatched"] == 2


def test_state_round_trips_through_json() -> None:
    harness = Harness()
    harness.predict(predictions(0, 3000))
    harness.label(labels(list(range(0, 2500))))
    harness.label(labels([9999]))
    state = orjson.loads(orjson.dumps(harness.engine.to_state()))
    restored = LabelEngine.from_state(harness.settings, state)

    def without_models(summary: dict[str, Any]) -> dict[str, Any]:
        # river challengers are not checkpointed (no pickle): their learning restarts.
        return {m: {k: v for k, v in entry.items() if k != "challengers"}
                for m, entry in summary.items()}

    assert without_models(restored.summary()) == without_models(harness.engine.summary())
    assert orjson.loads(orjson.dumps(restored.to_state())) == state


def test_task_inference() -> None:
    assert infer_task(True, False) == "classification"
    assert infer_task(2, 3) == "classification"
    assert infer_task(2.5, 3.0) == "regression"


def test_features_wait_only_for_the_rows_a_challenger_will_read() -> None:
    from streams.core.label_columns import pending_rows

    rows = pending_rows(predictions(0, 10), np.arange(10), feature_every=4)
    assert rows.features is not None
    assert [i for i, f in enumerate(rows.features) if f is not None] == [0, 4, 8]
    assert pending_rows(predictions(0, 3), np.arange(3)).features is None
    engine = LabelEngine(load_settings(environ={}))
    assert engine._feature_every == engine.settings.performance.challenger_every


def test_challengers_learn_from_the_kept_rows_only() -> None:
    from detectors.performance.batch import LabelledBatch
    from detectors.performance.challengers import ChallengerSet

    challengers = ChallengerSet("classification", ("logistic_regression",), every=100)
    features: list[dict[str, Any] | None] = [None] * 300
    features[5] = features[150] = {"x": 1.0}
    batch = LabelledBatch.of(["1"] * 300, ["1"] * 300, features=features)
    challengers.update_many(batch, np.ones(300, dtype=bool))
    assert challengers.result()["logistic_regression"]["learned"] == 2


@given(st.lists(st.lists(st.tuples(st.sampled_from("mn"), st.integers(0, 12)), max_size=8),
                max_size=5),
       st.integers(1, 12))
def test_a_batch_of_early_labels_waits_as_its_labels_would_one_by_one(
        batches: list[list[tuple[str, int]]], limit: int) -> None:
    settings = load_settings(environ={})
    settings = settings.with_overrides(labels=type(settings.labels)(max_early_labels=limit))
    batched, single = LabelEngine(settings), LabelEngine(settings)
    for number, batch in enumerate(batches):
        by_model: dict[str, list[int]] = {}
        for model_id, event in batch:
            by_model.setdefault(model_id, []).append(event)
        for model_id, events in by_model.items():
            requests = LabelBatch([f"e{e}" for e in events], [e % 2 for e in events],
                                  np.arange(len(events), dtype=np.float64),
                                  np.full(len(events), number), np.arange(len(events)))
            batched._wait_many(model_id, requests)
            for request in requests.requests():
                single._wait(model_id, request)
    assert batched._early == single._early
    assert [list(early) for early in batched._early.values()] == [
        list(early) for early in single._early.values()]
    assert batched._early_total == single._early_total
    assert batched.summary() == single.summary()
