"""Seeded synthetic prediction and label streams with planted, known drifts.

A credit-risk model scores applicants described by thirteen features. Every
scenario draws exactly the same random numbers and only transforms them from
``drift_at`` on, so two scenarios with the same seed agree event by event
outside the planted change. The generator is vectorized per block of events;
block ``k`` has its own generator seeded from ``(seed, k)``, which makes the
output independent of the ``chunk_size`` a caller asks for.

Events follow the v1 contract: a prediction is ``{"model_id", "model_version",
"event_id", "ts", "features", "prediction", "score"}`` and a label is
``{"model_id", "event_id", "ts", "label"}``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from detectors.scenarios import SCENARIOS

__all__ = [
    "FEATURES",
    "GRADUAL_WIDTH",
    "SCENARIOS",
    "DriftPoint",
    "ScenarioSpec",
    "iter_chunks",
    "truth",
]

FEATURES: dict[str, str] = {
    "age": "numeric",
    "income": "numeric",
    "tenure_months": "numeric",
    "balance": "numeric",
    "num_txn_30d": "numeric",
    "avg_txn_amount": "numeric",
    "credit_utilization": "numeric",
    "days_since_login": "numeric",
    "credit_score": "numeric",
    "country": "categorical",
    "device": "categorical",
    "plan": "categorical",
    "is_promo": "categorical",
}

GRADUAL_WIDTH = 10_000
"""Events over which the ``gradual`` scenario moves from old to new mean."""

# Output does not depend on the caller's chunk size because randomness is drawn
# per fixed-size block.
_BLOCK = 8_192

_COUNTRIES = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "PL")


def _cdf(shares: list[float]) -> npt.NDArray[np.float64]:
    # Pinning the last edge to 1.0 keeps float rounding from ever mapping a
    # uniform draw past the last category.
    edges = np.cumsum(shares)
    edges[-1] = 1.0
    return edges


_COUNTRY_CDF = _cdf([0.42, 0.14, 0.12, 0.09, 0.07, 0.06, 0.05, 0.05])
_NEW_COUNTRY = "XX"
_NEW_COUNTRY_SHARE = 0.15
_COUNTRY_NAMES = np.array([*_COUNTRIES, _NEW_COUNTRY], dtype=object)
_DEVICE_NAMES = np.array(["mobile", "desktop", "tablet"], dtype=object)
_DEVICE_CDF = _cdf([0.62, 0.30, 0.08])
_PLAN_NAMES = np.array(["basic", "plus", "pro"], dtype=object)
_PLAN_CDF = _cdf([0.55, 0.30, 0.15])

_CREDIT_SCORE_MEAN, _CREDIT_SCORE_SD = 680.0, 50.0
_BALANCE_MEAN, _BALANCE_SD = 2_500.0, 1_200.0
_TENURE_MEAN = 36.0
_UTILIZATION_A, _UTILIZATION_B = 2.0, 5.0
_UTILIZATION_MEAN = _UTILIZATION_A / (_UTILIZATION_A + _UTILIZATION_B)
_UTILIZATION_SD = math.sqrt(
    _UTILIZATION_A
    * _UTILIZATION_B
    / ((_UTILIZATION_A + _UTILIZATION_B) ** 2 * (_UTILIZATION_A + _UTILIZATION_B + 1.0))
)
_BASE_MISSING_RATE = 0.01
_SURGE_MISSING_RATE = 0.30

# The true default mechanism. Missing-prone features stay out of it so that a
# missing-value surge changes data quality only, not the score distribution.
_INTERCEPT = -1.25
_W_CREDIT_SCORE, _W_UTILIZATION, _W_TENURE, _W_PROMO = -1.5, 0.8, -0.35, 0.4

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class DriftPoint:
    """One planted change and where it happens.

    Parameters
    ----------
    feature
        The feature that changes, or ``None`` for model-level changes.
    kind
        The alert kind a monitor should raise: ``data_drift``,
        ``prediction_drift``, ``concept_drift`` or ``data_quality``.
    start_index
        Index of the first event affected.
    end_index
        Index at which the change is complete; equal to ``start_index`` for
        an abrupt change.

    """

    feature: str | None
    kind: str
    start_index: int
    end_index: int

    def to_dict(self) -> dict[str, Any]:
        """Return the drift point as a JSON-ready dict."""
        return {
            "feature": self.feature,
            "kind": self.kind,
            "start_index": self.start_index,
            "end_index": self.end_index,
        }


@dataclass(frozen=True)
class ScenarioSpec:
    """What to generate: a scenario, its length, seed and label behaviour.

    Parameters
    ----------
    scenario
        One of :data:`SCENARIOS`.
    events
        Number of prediction events.
    seed
        Seed of the random generators; the same spec yields the same stream.
    model_id, model_version
        Written into every event.
    drift_at
        Index of the first drifted event; ``None`` means ``events // 2``
        (never before 10 000 when ``events >= 20_000``).
    label_fraction
        Share of predictions that ever receive a label.
    label_delay_events
        A label is emitted this many events after its prediction.
    start_ts
        Unix timestamp of event 0.
    events_per_second
        Event rate, which spaces the timestamps.

    """

    scenario: str
    events: int
    seed: int = 7
    model_id: str = "credit-risk"
    model_version: str = "v1"
    drift_at: int | None = None
    label_fraction: float = 1.0
    label_delay_events: int = 500
    start_ts: float = 1_767_225_600.0
    events_per_second: float = 100.0

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            _invalid("scenario", f"one of {', '.join(SCENARIOS)}", self.scenario)
        if not _is_int(self.events) or self.events < 1:
            _invalid("events", "an int >= 1", self.events)
        if not _is_int(self.seed) or self.seed < 0:
            _invalid("seed", "an int >= 0", self.seed)
        for name in ("model_id", "model_version"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                _invalid(name, "a non-empty str", value)
        if self.drift_at is not None and (
            not _is_int(self.drift_at) or not 0 <= self.drift_at < self.events
        ):
            _invalid("drift_at", f"None or an int in [0, {self.events})", self.drift_at)
        if not _is_real(self.label_fraction) or not 0.0 <= self.label_fraction <= 1.0:
            _invalid("label_fraction", "a float in [0, 1]", self.label_fraction)
        if not _is_int(self.label_delay_events) or self.label_delay_events < 0:
            _invalid("label_delay_events", "an int >= 0", self.label_delay_events)
        if not _is_real(self.start_ts) or not math.isfinite(self.start_ts):
            _invalid("start_ts", "a finite float", self.start_ts)
        if (
            not _is_real(self.events_per_second)
            or not math.isfinite(self.events_per_second)
            or self.events_per_second <= 0.0
        ):
            _invalid("events_per_second", "a finite float > 0", self.events_per_second)

    @property
    def drift_index(self) -> int:
        """Index of the first drifted event, with the default resolved."""
        if self.drift_at is not None:
            return self.drift_at
        half = self.events // 2
        return max(half, 10_000) if self.events >= 20_000 else half


def truth(spec: ScenarioSpec) -> dict[str, Any]:
    """Describe what a spec plants, as a JSON-ready dict.

    Parameters
    ----------
    spec
        The scenario to describe.

    Returns
    -------
    dict
        ``scenario``, ``events``, ``seed``, ``model_id``, ``model_version``,
        ``drift_at``, ``label_fraction``, ``label_delay_events``, ``start_ts``,
        ``events_per_second``, ``drifts`` (list of :meth:`DriftPoint.to_dict`,
        empty for ``stationary``) and ``features`` (name to ``"numeric"`` or
        ``"categorical"``).

    """
    return {
        "scenario": spec.scenario,
        "events": spec.events,
        "seed": spec.seed,
        "model_id": spec.model_id,
        "model_version": spec.model_version,
        "drift_at": spec.drift_index,
        "label_fraction": spec.label_fraction,
        "label_delay_events": spec.label_delay_events,
        "start_ts": spec.start_ts,
        "events_per_second": spec.events_per_second,
        "drifts": [point.to_dict() for point in _drift_points(spec)],
        "features": dict(FEATURES),
    }


def iter_chunks(
    spec: ScenarioSpec, chunk_size: int = 10_000
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Generate the stream as ``(predictions, labels)`` chunks of plain dicts.

    A label for prediction ``i`` is emitted with the chunk that contains event
    ``i + label_delay_events``; labels due after the last event are flushed
    with the last chunk. Labels are in event order. The concatenated output
    depends on the spec only, not on ``chunk_size``.

    Parameters
    ----------
    spec
        What to generate.
    chunk_size
        Prediction events per chunk (the last chunk may be shorter).

    Yields
    ------
    tuple of list of dict
        The chunk's prediction events and the label events due in it.

    Examples
    --------
    >>> spec = ScenarioSpec("mean_shift", events=1_000, seed=1, label_delay_events=100)
    >>> chunks = list(iter_chunks(spec, chunk_size=400))
    >>> [(len(predictions), len(labels)) for predictions, labels in chunks]
    [(400, 300), (400, 400), (200, 300)]
    >>> chunks[0][0][0]["event_id"], chunks[0][0][0]["ts"]
    ('credit-risk-000000000', 1767225600.0)
    >>> truth(spec)["drifts"][0]
    {'feature': 'credit_score', 'kind': 'data_drift', 'start_index': 500, 'end_index': 500}

    """
    if not _is_int(chunk_size) or chunk_size < 1:
        _invalid("chunk_size", "an int >= 1", chunk_size)
    return _chunks(spec, chunk_size)


def _chunks(
    spec: ScenarioSpec, chunk_size: int
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    delay = spec.label_delay_events
    pending_index: list[IntArray] = []
    pending_label: list[IntArray] = []
    cached_block: tuple[int, dict[str, Any]] | None = None
    for start in range(0, spec.events, chunk_size):
        stop = min(start + chunk_size, spec.events)
        parts: list[dict[str, Any]] = []
        for block in range(start // _BLOCK, (stop - 1) // _BLOCK + 1):
            if cached_block is None or cached_block[0] != block:
                cached_block = (block, _generate_block(spec, block))
            lo = max(start, block * _BLOCK) - block * _BLOCK
            hi = min(stop, (block + 1) * _BLOCK) - block * _BLOCK
            parts.append({name: column[lo:hi] for name, column in cached_block[1].items()})
        columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        predictions = _prediction_events(spec, start, columns)

        labelled = columns["labelled"]
        pending_index.append(np.arange(start, stop, dtype=np.int64)[labelled])
        pending_label.append(columns["label"][labelled])
        index, label = np.concatenate(pending_index), np.concatenate(pending_label)
        due = len(index) if stop == spec.events else int(np.searchsorted(index, stop - delay))
        pending_index, pending_label = [index[due:]], [label[due:]]
        yield predictions, _label_events(spec, index[:due], label[:due])


def _drift_points(spec: ScenarioSpec) -> list[DriftPoint]:
    at = spec.drift_index
    if spec.scenario == "mean_shift":
        return [
            DriftPoint("credit_score", "data_drift", at, at),
            DriftPoint(None, "prediction_drift", at, at),
        ]
    if spec.scenario == "gradual":
        end = at + GRADUAL_WIDTH
        return [
            DriftPoint("credit_score", "data_drift", at, end),
            DriftPoint(None, "prediction_drift", at, end),
        ]
    if spec.scenario == "variance_change":
        return [DriftPoint("balance", "data_drift", at, at)]
    if spec.scenario == "new_category":
        return [DriftPoint("country", "data_drift", at, at)]
    if spec.scenario == "concept_change":
        return [DriftPoint(None, "concept_drift", at, at)]
    if spec.scenario == "missing_surge":
        return [DriftPoint("income", "data_quality", at, at)]
    return []


def _generate_block(spec: ScenarioSpec, block: int) -> dict[str, Any]:
    """Draw and transform one block of events as numpy columns."""
    start = block * _BLOCK
    n = min(_BLOCK, spec.events - start)
    rng = np.random.default_rng([spec.seed, block])
    # Every scenario draws the same numbers in the same order: scenarios differ
    # only in how the draws are transformed after the drift point.
    age_z = rng.standard_normal(n)
    log_income = rng.normal(math.log(52_000.0), 0.5, n)
    income_u = rng.random(n)
    tenure = rng.poisson(_TENURE_MEAN, n)
    balance_z = rng.standard_normal(n)
    num_txn = rng.poisson(22.0, n)
    avg_txn = rng.gamma(2.0, 40.0, n)
    utilization = rng.beta(_UTILIZATION_A, _UTILIZATION_B, n)
    days_since_login = rng.exponential(6.0, n)
    login_u = rng.random(n)
    credit_z = rng.standard_normal(n)
    country_u = rng.random(n)
    device_u = rng.random(n)
    plan_u = rng.random(n)
    promo_u = rng.random(n)
    label_u = rng.random(n)
    labelled_u = rng.random(n)

    index = np.arange(start, start + n)
    after = index >= spec.drift_index
    scenario = spec.scenario

    credit_shift = np.zeros(n)
    if scenario == "mean_shift":
        credit_shift = after.astype(np.float64)
    elif scenario == "gradual":
        credit_shift = np.clip((index - spec.drift_index) / GRADUAL_WIDTH, 0.0, 1.0)
    credit_score = np.clip(
        np.rint(_CREDIT_SCORE_MEAN + _CREDIT_SCORE_SD * (credit_z + credit_shift)), 300, 850
    )
    balance_sd = np.where(after, 2.0, 1.0) if scenario == "variance_change" else 1.0
    surge_rate = _SURGE_MISSING_RATE if scenario == "missing_surge" else _BASE_MISSING_RATE
    income_missing_rate = np.where(after, surge_rate, _BASE_MISSING_RATE)

    country = np.searchsorted(_COUNTRY_CDF, country_u, side="right")
    if scenario == "new_category":
        new_share = np.where(after, _NEW_COUNTRY_SHARE, 0.0)
        rescaled = (country_u - new_share) / (1.0 - new_share)
        country = np.where(
            country_u < new_share,
            len(_COUNTRIES),
            np.searchsorted(_COUNTRY_CDF, rescaled, side="right"),
        )
    is_promo = promo_u < 0.12

    signal = (
        _W_CREDIT_SCORE * (credit_score - _CREDIT_SCORE_MEAN) / _CREDIT_SCORE_SD
        + _W_UTILIZATION * (utilization - _UTILIZATION_MEAN) / _UTILIZATION_SD
        + _W_TENURE * (tenure - _TENURE_MEAN) / math.sqrt(_TENURE_MEAN)
        + _W_PROMO * is_promo
    )
    score = _sigmoid(_INTERCEPT + signal)
    true_signal = np.where(after, -signal, signal) if scenario == "concept_change" else signal
    default_probability = _sigmoid(_INTERCEPT + true_signal)

    return {
        "age": np.clip(np.rint(41.0 + 12.0 * age_z), 18, 90).astype(np.int64),
        "income": np.round(np.exp(log_income), 4),
        "income_missing": income_u < income_missing_rate,
        "tenure_months": tenure.astype(np.int64),
        "balance": np.round(_BALANCE_MEAN + _BALANCE_SD * balance_sd * balance_z, 4),
        "num_txn_30d": num_txn.astype(np.int64),
        "avg_txn_amount": np.round(avg_txn, 4),
        "credit_utilization": np.round(utilization, 4),
        "days_since_login": np.round(days_since_login, 4),
        "days_since_login_missing": login_u < _BASE_MISSING_RATE,
        "credit_score": credit_score.astype(np.int64),
        "country": _COUNTRY_NAMES[country],
        "device": _DEVICE_NAMES[np.searchsorted(_DEVICE_CDF, device_u, side="right")],
        "plan": _PLAN_NAMES[np.searchsorted(_PLAN_CDF, plan_u, side="right")],
        "is_promo": is_promo,
        "score": np.round(score, 6),
        "label": (label_u < default_probability).astype(np.int64),
        "labelled": labelled_u < spec.label_fraction,
    }


def _prediction_events(
    spec: ScenarioSpec, start: int, columns: dict[str, Any]
) -> list[dict[str, Any]]:
    missing = {"income": "income_missing", "days_since_login": "days_since_login_missing"}
    feature_columns = [
        _with_missing(columns[name], columns[missing[name]])
        if name in missing
        else columns[name].tolist()
        for name in FEATURES
    ]
    names = tuple(FEATURES)
    score = columns["score"]
    index = np.arange(start, start + len(score))
    model_id, model_version = spec.model_id, spec.model_version
    return [
        {
            "model_id": model_id,
            "model_version": model_version,
            "event_id": f"{model_id}-{i:09d}",
            "ts": ts,
            "features": dict(zip(names, values, strict=True)),
            "prediction": prediction,
            "score": p,
        }
        for i, ts, values, prediction, p in zip(
            index.tolist(),
            _timestamps(spec, index, 0).tolist(),
            zip(*feature_columns, strict=True),
            (score >= 0.5).astype(np.int64).tolist(),
            score.tolist(),
            strict=True,
        )
    ]


def _label_events(spec: ScenarioSpec, index: IntArray, label: IntArray) -> list[dict[str, Any]]:
    model_id = spec.model_id
    timestamps = _timestamps(spec, index, spec.label_delay_events).tolist()
    return [
        {"model_id": model_id, "event_id": f"{model_id}-{i:09d}", "ts": ts, "label": y}
        for i, ts, y in zip(index.tolist(), timestamps, label.tolist(), strict=True)
    ]


def _timestamps(spec: ScenarioSpec, index: IntArray, delay: int) -> FloatArray:
    seconds = spec.start_ts + index / spec.events_per_second
    return np.round(seconds + delay / spec.events_per_second, 3)


def _with_missing(values: FloatArray, missing: BoolArray) -> list[float | None]:
    column: list[float | None] = list(values.tolist())
    for position in np.flatnonzero(missing).tolist():
        column[position] = None
    return column


def _sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _invalid(name: str, expected: str, given: object) -> NoReturn:
    raise ValueError(f"{name} must be {expected}, got {given!r}")
