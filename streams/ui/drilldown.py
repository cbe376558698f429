"""The dashboard's drill-down: what lies behind one feature's verdict or one alert.

Plain functions of the live view (:class:`~streams.state.hotview.HotView`) to
JSON-ready dicts; the web layer only routes to them (``/api/drilldown``,
``/api/audit``). For a feature of a model version: the reference and window
histograms of its last closed window (numeric features on the reference's
quantile bins, categorical ones as category shares), its statistic ÷ threshold
per closed window with the threshold at 1, the verdict's explanation, and its
alerts. For an alert: the same for each feature it names, taken at the alert's
window when that window has closed (the worker keeps the histograms of every
drifted window, :meth:`HotView.drifted`), else at the last closed window.

The charts are the run report's (:mod:`streams.offline.report_svg`): the same
SVG a ``driftline replay --report`` page shows, drawn once for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.errors import DriftlineError
from streams.offline import report_svg as svg
from streams.state.hotview import HotView, series_name
from streams.ui.audit_cli import model_history

DISTRIBUTION_KINDS = ("data_drift", "prediction_drift")
MAX_FEATURES_PER_ALERT = 12


class DrillDownError(DriftlineError):
    """A drill-down request that lacks a parameter (HTTP 400)."""


class NotInLiveView(DrillDownError):
    """A drill-down request for an alert or feature the live view does not hold (HTTP 404)."""


def drilldown(hot: HotView, query: Mapping[str, str]) -> dict[str, Any]:
    """The view ``query`` asks for: ``alert_id``, or ``model_id``, ``model_version``, ``feature``.

    Raises
    ------
    DrillDownError
        A parameter is missing.
    NotInLiveView
        The alert or feature is unknown to the live view.
    """
    if query.get("alert_id"):
        return alert_view(hot, query["alert_id"])
    missing = [key for key in ("model_id", "model_version", "feature") if not query.get(key)]
    if missing:
        raise DrillDownError(f"{missing[0]}: expected a non-empty query parameter (or "
                             "alert_id), got none")
    return feature_view(hot, query["model_id"], query["model_version"], query["feature"])


def feature_view(hot: HotView, model_id: str, model_version: str, feature: str,
                 window_index: int | None = None) -> dict[str, Any]:
    """A feature's last closed window (or window ``window_index`` if it drifted and is kept)."""
    details = hot.details(model_id, model_version)
    detail = details.get(feature)
    if detail is None:
        known = ", ".join(sorted(details)) or "none yet"
        raise NotInLiveView(f"feature: {feature!r} has no closed window of {model_id} "
                             f"{model_version} in the live view (features: {known})")
    note = None
    if window_index is not None and detail["window"]["index"] != window_index:
        kept = next((d for d in hot.drifted(model_id, model_version)
                     if d["feature"] == feature and d["window"]["index"] == window_index), None)
        if kept is not None:
            detail = kept
        else:
            note = (f"window #{window_index} has not closed (or is no longer kept): the last "
                    f"closed window #{detail['window']['index']} is shown")
    label = series_name(detail["kind"], feature, "distribution")
    over_time = [_point(point, label) for point in hot.series(model_id, model_version)
                 if label in point.get("scores", {})]
    alerts = [a for a in hot.alerts(200) if (a["model_id"], a["model_version"])
              == (model_id, model_version) and feature in _features(a)]
    distribution = detail.get("distribution")
    window = detail["window"]
    return {
        "model_id": model_id, "model_version": model_version, "feature": feature,
        "kind": detail["kind"], "type": (distribution or {}).get("type"),
        "verdict": {key: detail.get(key) for key in (
            "detector", "statistic", "threshold", "p_value", "drift", "severity",
            "explanation")},
        "window": window, "reference": detail.get("reference", {}), "note": note,
        "distribution": distribution, "over_time": over_time, "alerts": alerts,
        # Alerts are marked at their window's end: the chart's axis is event time.
        "charts": {"distribution": _distribution_chart(distribution, window),
                   "over_time": svg.lines(
                       "drift", [(feature, [(p["end_ts"], p["ratio"]) for p in over_time])],
                       threshold=1.0, y_label="statistic / threshold",
                       markers=[(float(a["window"]["end_ts"]), f"{a['status']} {a['kind']}")
                                for a in alerts if isinstance(
                                    (a.get("window") or {}).get("end_ts"), int | float)])}}


def alert_view(hot: HotView, alert_id: str) -> dict[str, Any]:
    """An alert and the drill-down of every feature it names (at its window when kept)."""
    alert = next((a for a in hot.alerts(hot.alerts_length) if a.get("alert_id") == alert_id),
                 None)
    if alert is None:
        raise NotInLiveView(f"alert_id: {alert_id!r} is not among the live view's last "
                             f"{hot.alerts_length} alerts")
    index = (alert.get("window") or {}).get("index")
    known = hot.details(alert["model_id"], alert["model_version"])
    features = []
    for feature in [f for f in _features(alert) if f in known][:MAX_FEATURES_PER_ALERT]:
        features.append(feature_view(hot, alert["model_id"], alert["model_version"], feature,
                                     index if isinstance(index, int) else None))
    note = None if features else (
        "no histograms: the alert is about no feature with a distribution test "
        f"({alert.get('kind')})")
    return {"alert": alert, "features": features, "note": note}


def audit_trail(hot: HotView, query: Mapping[str, str]) -> list[dict[str, Any]]:
    """The live view's audit records, newest first; a model's history when ``model_id`` is given.

    At most ``limit`` records (default: all the live view keeps, 1,000).

    A model's history is what ``driftline audit`` prints
    (:func:`~streams.ui.audit_cli.model_history`): its records (of
    ``model_version`` and of every version) and its partitions' ``config`` records.
    """
    text = query.get("limit", str(hot.audit_length))
    limit = int(text) if text.isdigit() else 0
    if not 1 <= limit <= hot.audit_length:
        raise DrillDownError(f"limit: expected an integer from 1 to {hot.audit_length}, "
                             f"got {text!r}")
    model_id = query.get("model_id")
    if not model_id:
        return hot.audit(limit)
    records = hot.audit()
    return model_history(reversed(records), model_id, query.get("model_version"))[::-1][:limit]


def _features(alert: dict[str, Any]) -> list[str]:
    members = alert.get("features") or [alert]
    return [str(m["feature"]) for m in members if m.get("feature")]


def _point(point: dict[str, Any], label: str) -> dict[str, Any]:
    statistic, threshold, detector = (point.get("statistics", {}).get(label)
                                      or [None, None, None])
    return {"index": point["index"], "end_ts": point["end_ts"], "ratio": point["scores"][label],
            "statistic": statistic, "threshold": threshold, "detector": detector,
            "drift": label in point.get("drifted", [])}


def _distribution_chart(distribution: dict[str, Any] | None, window: dict[str, Any]) -> str | None:
    if not distribution:
        return None
    label = f"window #{window['index']}"
    if distribution.get("type") == "numeric":
        return svg.histogram(distribution, label, side_by_side=True)
    return svg.category_shares(distribution, label)


__all__ = ["DrillDownError", "NotInLiveView", "alert_view", "audit_trail", "drilldown",
           "feature_view"]
