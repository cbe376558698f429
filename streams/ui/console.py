"""``driftline tail`` and ``driftline status``: alerts and models in a terminal."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO, Any

from streams.runtime.reader import TopicReader
from streams.settings import Settings
from streams.state.hotview import HotView

_COLORS = {"critical": "\033[1;31m", "warning": "\033[33m", "info": "\033[36m",
           "resolved": "\033[32m"}
_RESET = "\033[0m"


def format_alert(alert: dict[str, Any], color: bool) -> str:
    """One alert as two readable lines.

    >>> print(format_alert({"ts": 0, "status": "firing", "severity": "warning",
    ...     "kind": "data_drift", "model_id": "m", "model_version": "v1", "feature": "x",
    ...     "detector": "ks", "statistic": 0.2, "threshold": 0.1,
    ...     "window": {"events": 500}, "explanation": "mean 0 → 1"}, color=False))
    1970-01-01T00:00:00Z FIRING   warning  data_drift       m/v1 x  ks 0.2 > 0.1 (500 events)
        mean 0 → 1

    An alert about one segment names it after the feature:

    >>> print(format_alert({"ts": 0, "status": "firing", "severity": "warning",
    ...     "kind": "data_drift", "model_id": "m", "model_version": "v1", "feature": "x",
    ...     "segment": "region=eu", "detector": "ks", "statistic": 0.2, "threshold": 0.1,
    ...     "window": {"events": 500}, "explanation": "segment region=eu: mean 0 → 1"},
    ...     color=False).split("  ks")[0])
    1970-01-01T00:00:00Z FIRING   warning  data_drift       m/v1 x [region=eu]
    """
    when = datetime.fromtimestamp(alert["ts"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = alert["status"].upper()
    tone = _COLORS.get("resolved" if alert["status"] == "resolved" else alert["severity"], "")
    start, end = (tone, _RESET) if color and tone else ("", "")
    head = (f"{when} {start}{status:8} {alert['severity']:8}{end} {alert['kind']:16} "
            f"{alert['model_id']}/{alert['model_version']} {alert.get('feature') or '-'}"
            f"{' [' + alert['segment'] + ']' if alert.get('segment') else ''}  "
            f"{alert['detector']} {alert['statistic']:.3g} > {alert['threshold']:.3g} "
            f"({alert['window']['events']} events)")
    return f"{head}\n    {alert['explanation']}"


def tail(settings: Settings, from_beginning: bool, stop: threading.Event,
         out: IO[str] = sys.stdout, limit: int | None = None) -> int:
    """Print alerts from the alerts topic until ``stop`` (or ``limit`` alerts); return count."""
    color = out.isatty()
    reader = TopicReader(settings.bootstrap_servers, [settings.topics.name("alerts")],
                         from_beginning=from_beginning, kafka=settings.kafka)
    shown = 0
    try:
        while not stop.is_set() and (limit is None or shown < limit):
            for _topic, alert in reader.poll(0.5):
                print(format_alert(alert, color), file=out, flush=True)
                shown += 1
                if shown == limit:
                    break
    finally:
        reader.close()
    return shown


def status(settings: Settings, out: IO[str] = sys.stdout) -> int:
    """Print a per-model summary from the live view; return the number of models."""
    view = HotView(settings.redis_url, settings.group_id, security=settings.redis)
    models = view.models()
    if not models:
        print(f"no model has closed a window yet (group {settings.group_id!r}, Redis "
              f"{settings.redis_url})", file=out)
        return 0
    open_alerts: dict[tuple[str, str], set[str]] = {}
    for alert in reversed(view.alerts(200)):
        key = (alert["model_id"], alert["model_version"])
        firing = open_alerts.setdefault(key, set())
        if alert["status"] == "firing":
            firing.add(alert["dedup_key"])
        else:
            firing.discard(alert["dedup_key"])
    print(f"{'model':24} {'version':12} {'events':>10} {'windows':>8} {'last window':20} "
          f"{'open alerts':>11}  drifting now", file=out)
    now = time.time()
    for model in models:
        key = (model["model_id"], model["model_version"])
        age = now - model["updated_at"]
        last = datetime.fromtimestamp(model["last_window_end_ts"], UTC).strftime(
            "%Y-%m-%d %H:%M:%S")
        print(f"{model['model_id']:24} {model['model_version']:12} {model['events']:>10,} "
              f"{model['windows']:>8,} {last:20} {len(open_alerts.get(key, ())):>11}  "
              f"{', '.join(model['drifted']) or '-'}"
              + (f"  (updated {age:.0f} s ago)" if age > 60 else ""), file=out)
    labelled = view.labels()
    if labelled:
        print(f"\n{'labels':24} {'coverage':>8} {'joined':>10} {'delay p50':>10} "
              f"{'window':>16} {'estimated':>9}  weakest segment", file=out)
        for model_id, entry in sorted(labelled.items()):
            print(f"{model_id:24} {_share(entry.get('coverage')):>8} {entry['joined']:>10,} "
                  f"{_seconds(entry.get('delay_p50_s')):>10} "
                  f"{window_metric(entry.get('performance')) or '-':>16} "
                  f"{_share((entry.get('estimate') or {}).get('estimated_accuracy')):>9}  "
                  f"{_weakest(entry.get('segments'))}", file=out)
    return len(models)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"≤{value:g} s"


def window_metric(performance: dict[str, Any] | None) -> str | None:
    """The last closed window's accuracy (classification) or MAE (regression), if any.

    >>> window_metric({"window": {"accuracy": 0.8681}}), window_metric({"window": None})
    ('accuracy 0.868', None)
    """
    window = (performance or {}).get("window") or {}
    for name in ("accuracy", "mae"):
        if window.get(name) is not None:
            return f"{name} {window[name]:.3g}"
    return None


def _weakest(segments: dict[str, dict[str, Any]] | None) -> str:
    """The segment with the lowest last-window accuracy (highest MAE), or '-'."""
    scored = []
    for name, entry in (segments or {}).items():
        window = entry.get("window") or {}
        if window.get("accuracy") is not None:
            scored.append((window["accuracy"], f"{name} (accuracy {window['accuracy']:.3g})"))
        elif window.get("mae") is not None:
            scored.append((-window["mae"], f"{name} (MAE {window['mae']:.3g})"))
    return min(scored)[1] if scored else "-"
