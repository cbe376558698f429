"""The alert lifecycle: dedup, hysteresis, cooldown, grouping, rate limit, state, ids."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from detectors.base import TestResult
from detectors.batch import CategoricalColumn, ColumnBatch
from detectors.errors import ConfigurationError
from detectors.monitor import Finding, ModelMonitor, MonitorConfig, WindowReport
from streams.core.alerts import AlertPolicy, AlertRateLimit, AlertSettings
from tests.contract import validate


def run(values: np.ndarray, policy: AlertPolicy) -> list[dict[str, object]]:
    monitor = ModelMonitor({"x": "numeric"}, {}, MonitorConfig(reference_size=1000,
                                                               window_size=500))
    alerts: list[dict[str, object]] = []
    for start in range(0, values.size, 700):
        chunk = values[start:start + 700]
        batch = ColumnBatch.from_numeric(ts=np.arange(start, start + chunk.size, dtype=float),
                                         x=chunk)
        for report in monitor.update_many(batch):
            alerts += policy.apply(report)
    return alerts


def lifecycles(alerts: list[dict[str, Any]]) -> dict[str, list[tuple[dict[str, Any],
                                                                      dict[str, Any]]]]:
    """Per dedup key, every (event, member) that carries it: grouped events count per member."""
    by_key: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for alert in alerts:
        for member in alert.get("features") or [alert]:
            by_key.setdefault(member["dedup_key"], []).append((alert, member))
    return by_key


def test_a_persistent_drift_fires_once_and_resolves_once_after_it_ends() -> None:
    rng = np.random.default_rng(11)
    # Reference 1000, 10 clean windows, a +2σ shift lasting 1,000,000 events, 10 clean windows.
    drifted = 1_000_000
    values = np.r_[rng.normal(size=1000 + 5000), rng.normal(2.0, 1.0, drifted),
                   rng.normal(size=5000)]
    # As the engine builds it: grouping, cooldown and a rate limit (ts = event index).
    policy = AlertPolicy("m", "v1", resolve_after_windows=3, cooldown_windows=5, group=True,
                         rate_limit=AlertRateLimit("m", max_per_hour=20))
    alerts = run(values, policy)
    by_key = lifecycles(alerts)
    # The shift is a distribution drift and pushes values past the reference range too:
    # two dedup keys, each exactly one firing then one resolved.
    assert sorted(by_key) == ["m|v1|data_drift|x|distribution",
                              "m|v1|data_quality|x|out_of_range_rate"]
    for key, events in by_key.items():
        assert [a["status"] for a, _ in events] == ["firing", "resolved"], key
        assert events[1][1]["resolves"] == events[0][0]["alert_id"]
        assert events[1][0]["window"]["end_ts"] == values.size - 5000 + 3 * 500 - 1
    assert policy.take_suppressed() == {}
    firing = by_key["m|v1|data_drift|x|distribution"][0][0]
    # The block CUSUM fires inside the first drifted window (a partial window report), so
    # the alert's window ends at that block, before the window's last event.
    assert 1000 + 5000 <= firing["window"]["end_ts"] <= 1000 + 5000 + 499
    for alert in alerts:
        validate(alert, "alert")


def test_counts_in_alerts_are_integers() -> None:
    # JSON consumers (and the contract's "integer") read 5000.0 as a float: counts are ints.
    rng = np.random.default_rng(10)
    monitor = ModelMonitor({"x": "numeric", "y": "numeric", "c": "categorical"}, {},
                           MonitorConfig(reference_size=1000, window_size=500))
    n = 3000
    shifted = np.r_[np.zeros(1500), np.full(n - 1500, 3.0)]
    x = rng.normal(size=n) + shifted
    c = np.where(np.arange(n) < 1500, rng.choice(["a", "b"], n), rng.choice(["a", "z"], n))
    batch = ColumnBatch.from_numeric(ts=np.arange(n, dtype=float), x=x, y=rng.normal(size=n))
    batch.columns["c"] = CategoricalColumn(c.tolist())
    policy = AlertPolicy("m", "v1", group=False)
    alerts = [a for report in monitor.update_many(batch) for a in policy.apply(report)]
    detectors = {a["detector"] for a in alerts}
    assert {"new_category", "cusum_location"} <= detectors, detectors
    for alert in alerts:
        counts = {k: v for k, v in alert["reference"].items()
                  if k in ("events", "categories", "features", "components")}
        assert counts and all(type(v) is int for v in counts.values()), alert["reference"]
        assert type(alert["window"]["events"]) is int
        assert b'"events":1000,' in orjson.dumps(alert["reference"])


def test_alert_ids_are_deterministic_across_runs() -> None:
    rng = np.random.default_rng(12)
    values = np.r_[rng.normal(size=3000), rng.normal(3.0, 1.0, 2000)]
    first = run(values, AlertPolicy("m", "v1"))
    again = run(values, AlertPolicy("m", "v1"))
    assert first and [a["alert_id"] for a in first] == [a["alert_id"] for a in again]
    assert run(values, AlertPolicy("m", "v2"))[0]["alert_id"] != first[0]["alert_id"]


def test_policy_state_round_trips_and_does_not_refire() -> None:
    rng = np.random.default_rng(13)
    policy = AlertPolicy("m", "v1")
    run(np.r_[rng.normal(size=1000), rng.normal(3.0, 1.0, 1000)], policy)
    restored = AlertPolicy.from_state(policy.to_state())
    assert restored.open_alerts == policy.open_alerts and restored.open_alerts


# --- synthetic windows: each feature's finding drifts or not, as the test says -----------

FEATURES = [f"f{i}" for i in range(8)]
REFERENCE = {"events": 1000.0, "start_ts": 0.0, "end_ts": 999.0}


def finding(feature: str, drift: bool, severity: str = "warning", statistic: float = 2.0,
            kind: str = "data_drift", check: str = "distribution") -> Finding:
    return Finding(kind, feature, check, TestResult(
        detector="ks", drift=drift, statistic=statistic if drift else 0.1, threshold=1.0,
        p_value=1e-9 if drift else 0.5, effect_size=0.3 if drift else 0.0, severity=severity,
        window_events=500, explanation=f"{feature} {'moved' if drift else 'as usual'}",
        reference={}))


def window(index: int, drifting: set[str], features: list[str] = FEATURES,
           seconds: float = 100.0, **kwargs: Any) -> WindowReport:
    """Window ``index`` (``seconds`` of event time each) with one finding per feature."""
    return WindowReport(index=index, start_ts=index * seconds,
                        end_ts=index * seconds + seconds - 1, events=500,
                        findings=[finding(f, f in drifting, **kwargs) for f in features],
                        reference=REFERENCE)


def feed(policy: AlertPolicy, plan: list[set[str]], start: int = 0,
         **kwargs: Any) -> list[list[dict[str, Any]]]:
    """Alert events of each window of ``plan`` (drifting features per window)."""
    return [policy.apply(window(start + i, drifting, **kwargs))
            for i, drifting in enumerate(plan)]


def summary(per_window: list[list[dict[str, Any]]]) -> list[tuple[int, str, str, int]]:
    """(window, status, lead feature, members) of every event."""
    return [(i, a["status"], a["feature"], len(a.get("features") or [a]))
            for i, alerts in enumerate(per_window) for a in alerts]


def test_cooldown_holds_a_flapping_condition_and_counts_it() -> None:
    x = {"f0"}
    plan = [x, set(), set(), x, set(), set(), x, x, x, x]
    flapping = feed(AlertPolicy("m", "v1", 2, cooldown_windows=0), plan, features=["f0"])
    # Without a cooldown every flap pages again.
    assert [(i, s) for i, s, _, _ in summary(flapping)] == [
        (0, "firing"), (2, "resolved"), (3, "firing"), (5, "resolved"), (6, "firing")]
    policy = AlertPolicy("m", "v1", 2, cooldown_windows=5)
    cooled = feed(policy, plan, features=["f0"])
    # Resolved at window 2, so windows 3..7 are the cooldown: the flap at 3 clears silently,
    # the drift from 6 is held until the cooldown ends and fires at window 8.
    assert [(i, s) for i, s, _, _ in summary(cooled)] == [
        (0, "firing"), (2, "resolved"), (8, "firing")]
    assert policy.take_suppressed() == {"cooldown": 2}
    assert policy.take_suppressed() == {}
    late = cooled[8][0]
    assert late["window"]["index"] == 8 and late["alert_id"] != cooled[0][0]["alert_id"]


def test_eight_features_drifting_together_make_one_event_and_one_resolution() -> None:
    everything = set(FEATURES)
    policy = AlertPolicy("m", "v1", 3)
    # f3 is the only critical one: it leads the group even with a smaller statistic.
    per_window = [policy.apply(WindowReport(
        index=0, start_ts=0.0, end_ts=99.0, events=500, reference=REFERENCE,
        findings=[finding(f, True, severity="critical" if f == "f3" else "warning",
                          statistic=1.5 if f == "f3" else 2.0 + i)
                  for i, f in enumerate(FEATURES)]))]
    per_window += feed(policy, [everything, set(), set(), set()], start=1)
    assert summary(per_window) == [(0, "firing", "f3", 8), (4, "resolved", "f3", 8)]
    firing, resolved = per_window[0][0], per_window[4][0]
    assert firing["severity"] == "critical" and firing["dedup_key"] == "m|v1|data_drift|f3|" \
        "distribution"
    assert firing["group_key"] == resolved["group_key"] == "m|v1|data_drift"
    assert [m["feature"] for m in firing["features"]] == ["f3", "f7", "f6", "f5", "f4", "f2",
                                                          "f1", "f0"]
    assert "8 data drift conditions" in firing["explanation"]
    # Every member resolves once, naming the event it fired in; the lead keeps its key.
    assert {m["dedup_key"] for m in resolved["features"]} == \
        {m["dedup_key"] for m in firing["features"]}
    assert {m["resolves"] for m in resolved["features"]} == {firing["alert_id"]}
    assert resolved["dedup_key"] == firing["dedup_key"]
    assert resolved["resolves"] == firing["alert_id"] and resolved["severity"] == "info"
    assert {m["fired_severity"] for m in resolved["features"]} == {"warning", "critical"}
    for alert in (firing, resolved):
        validate(alert, "alert")
    ungrouped = feed(AlertPolicy("m", "v1", 3, group=False), [everything])
    assert len(ungrouped[0]) == 8 and not any("features" in a for a in ungrouped[0])


def test_members_resolve_on_their_own_and_a_late_key_gets_its_own_event() -> None:
    policy = AlertPolicy("m", "v1", 2)
    per_window = feed(policy, [{"f0", "f1"}, {"f0", "f1", "f2"}, {"f1", "f2"}, {"f2"}, {"f2"},
                               set(), set()])
    # Equal statistics: the lead is the first member in the window's order.
    assert summary(per_window) == [(0, "firing", "f0", 2), (1, "firing", "f2", 1),
                                   (3, "resolved", "f0", 1), (4, "resolved", "f1", 1),
                                   (6, "resolved", "f2", 1)]
    group_event = per_window[0][0]
    assert {a["resolves"] for a in (per_window[3][0], per_window[4][0])} == \
        {group_event["alert_id"]}
    assert per_window[1][0]["group_key"] == group_event["group_key"]
    for alerts in per_window:
        for alert in alerts:
            validate(alert, "alert")


def test_kinds_are_grouped_apart() -> None:
    policy = AlertPolicy("m", "v1")
    alerts = policy.apply(WindowReport(0, 0.0, 99.0, 500, reference=REFERENCE, findings=[
        finding("a", True), finding("b", True),
        finding("a", True, kind="data_quality", check="missing_rate")]))
    assert sorted((a["kind"], len(a.get("features") or [a])) for a in alerts) == [
        ("data_drift", 2), ("data_quality", 1)]


def test_rate_limit_holds_firings_and_summarises_the_hour() -> None:
    limit = AlertRateLimit("m", max_per_hour=2)
    policy = AlertPolicy("m", "v1", 2, rate_limit=limit)
    # 100 s windows: windows 0..35 are the first hour of event time. One new feature each.
    plan = [set(FEATURES[:n]) for n in range(1, 6)]
    first_hour = feed(policy, plan)
    assert [(i, a["kind"], a["status"], a["feature"]) for i, alerts in enumerate(first_hour)
            for a in alerts] == [(0, "data_drift", "firing", "f0"),
                                 (1, "data_drift", "firing", "f1"),
                                 (2, "alert_rate_limit", "firing", None)]
    notice = first_hour[2][0]
    assert notice["dedup_key"] == "m|alert_rate_limit" and notice["threshold"] == 2
    assert policy.take_suppressed() == {"rate_limit": 3}          # f2, f3, f4: once each
    # The next hour: the summary resolves the notice first, then the held conditions
    # that still drift fire, grouped, using one firing of the new hour's budget.
    next_hour = policy.apply(window(36, set(FEATURES[:5])))
    assert [(a["kind"], a["status"]) for a in next_hour] == [
        ("alert_rate_limit", "resolved"), ("data_drift", "firing")]
    assert next_hour[0]["suppressed"] == 3 and next_hour[0]["resolves"] == notice["alert_id"]
    assert "3 alert firings" in next_hour[0]["explanation"]
    assert {m["feature"] for m in next_hour[1]["features"]} == {"f2", "f3", "f4"}
    # Resolutions are never held back, even with the budget spent.
    assert limit.allow() and not limit.allow()
    cleared = feed(policy, [set(), set()], start=37)
    assert [(a["status"], len(a.get("features") or [a])) for a in cleared[1]] == [
        ("resolved", 5)]
    for alert in [*first_hour[2], *next_hour, *cleared[1]]:
        validate(alert, "alert")


def test_the_rate_limit_is_per_model_across_versions() -> None:
    limit = AlertRateLimit("m", max_per_hour=1)
    v1, v2 = AlertPolicy("m", "v1", rate_limit=limit), AlertPolicy("m", "v2", rate_limit=limit)
    assert [a["kind"] for a in v1.apply(window(0, {"f0"}))] == ["data_drift"]
    assert [a["kind"] for a in v2.apply(window(1, {"f0"}))] == ["alert_rate_limit"]
    assert AlertPolicy("other", "v1", rate_limit=AlertRateLimit("other", 1)).apply(
        window(1, {"f0"}))[0]["kind"] == "data_drift"


def without_ts(per_window: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    return [[{k: v for k, v in a.items() if k != "ts"} for a in alerts] for alerts in per_window]


def test_state_round_trip_mid_sequence_gives_identical_outputs() -> None:
    rng = np.random.default_rng(14)
    # Random flapping of 8 features over 60 windows of 300 s: cooldowns, groups, the limit.
    plan = [set(np.array(FEATURES)[rng.random(8) < 0.35].tolist()) for _ in range(60)]

    def fresh() -> AlertPolicy:
        return AlertPolicy("m", "v1", 2, cooldown_windows=3,
                           rate_limit=AlertRateLimit("m", max_per_hour=3))

    def resume(policy: AlertPolicy) -> AlertPolicy:
        assert policy.rate_limit is not None
        state = orjson.loads(orjson.dumps(policy.to_state()))
        limit = orjson.loads(orjson.dumps(policy.rate_limit.to_state()))
        return AlertPolicy.from_state(state, AlertSettings(2, 3, True, 3),
                                      AlertRateLimit.from_state(limit, 3))

    policy = fresh()
    straight = without_ts(feed(policy, plan, seconds=300.0))
    kinds = {(a["kind"], a["status"]) for alerts in straight for a in alerts}
    assert ("alert_rate_limit", "resolved") in kinds and ("data_drift", "resolved") in kinds
    assert any("features" in a for alerts in straight for a in alerts)
    assert policy.take_suppressed().keys() == {"cooldown", "rate_limit"}
    for cut in range(1, 60, 7):
        first = fresh()
        before = feed(first, plan[:cut], seconds=300.0)
        after = feed(resume(first), plan[cut:], start=cut, seconds=300.0)
        assert without_ts(before + after) == straight, cut


def test_version_1_state_still_loads_and_resolves_its_open_alert() -> None:
    key = "m|v1|data_drift|f0|distribution"
    old = {"version": 1, "model_id": "m", "model_version": "v1", "resolve_after_windows": 2,
           "open_alerts": {key: {"alert_id": "ab" * 16, "clean_windows": 0,
                                 "kind": "data_drift", "feature": "f0", "detector": "ks"}}}
    policy = AlertPolicy.from_state(old)
    assert policy.to_state()["version"] == 2
    alerts = [a for alerts in feed(policy, [{"f0"}, set(), set()], features=["f0"])
              for a in alerts]
    assert [(a["status"], a["resolves"]) for a in alerts] == [("resolved", "ab" * 16)]
    assert AlertPolicy.from_state(old, AlertSettings(resolve_after_windows=5)) \
        .resolve_after_windows == 5


def test_grouped_alert_ids_are_deterministic() -> None:
    plan = [{"f0", "f1", "f2"}, set(), set(), set()]
    first = feed(AlertPolicy("m", "v1"), plan)
    again = feed(AlertPolicy("m", "v1"), plan)
    ids = [a["alert_id"] for alerts in first for a in alerts]
    assert len(ids) == 2 and ids == [a["alert_id"] for alerts in again for a in alerts]
    other = feed(AlertPolicy("m", "v1"), [{"f0", "f1"}])[0][0]["alert_id"]
    assert other not in ids
    # A single condition keeps the id it had before grouping existed.
    assert feed(AlertPolicy("m", "v1"), [{"f0"}])[0][0]["alert_id"] == \
        feed(AlertPolicy("m", "v1", group=False), [{"f0"}])[0][0]["alert_id"]


def test_rebaseline_resolves_open_conditions_grouped_by_kind() -> None:
    policy = AlertPolicy("m", "v1", cooldown_windows=5)
    fired = feed(policy, [set(FEATURES[:3])])[0][0]
    resolved = policy.resolve_all("new normal", at_ts=123.0)
    assert len(resolved) == 1 and len(resolved[0]["features"]) == 3
    assert resolved[0]["dedup_key"] == fired["dedup_key"]
    assert {m["resolves"] for m in resolved[0]["features"]} == {fired["alert_id"]}
    validate(resolved[0], "alert")
    assert policy.open_alerts == {} and policy.resolve_all("again", 124.0) == []


def test_alert_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="resolve_after_windows: expected an integer"):
        AlertSettings(resolve_after_windows=0)
    with pytest.raises(ConfigurationError, match="max_per_hour: expected an integer >= 0"):
        AlertRateLimit("m", max_per_hour=-1)


def test_engine_builds_policies_from_settings_and_checkpoints_the_rate_limit() -> None:
    from streams.core.engine import MonitorEngine
    from streams.settings import Settings

    settings = Settings(monitor=MonitorConfig(reference_size=1000, window_size=500),
                        alerts=AlertSettings(max_alerts_per_hour=1))
    rng = np.random.default_rng(15)
    hour = 472_222 * 3600.0    # an hour of event time starts at event 0, the next at 3600

    def events(start: int, n: int, shift: float) -> list[dict[str, Any]]:
        a, b = rng.normal(shift, 1.0, n), rng.normal(shift, 1.0, n)
        return [{"model_id": "m", "model_version": "v1", "event_id": str(start + i),
                 "ts": hour + start + i, "features": {"a": a[i], "b": b[i]},
                 "prediction": 0} for i in range(n)]

    chunks = [events(0, 2000, 0.0), events(2000, 800, 3.0), events(2800, 1500, 3.0)]
    straight = MonitorEngine(settings)
    outputs = [straight.process(chunk) for chunk in chunks]
    alerts = [a for out in outputs for a in out.alerts]
    drift = [a for a in alerts if a["kind"] == "data_drift"]
    assert len(drift) == 1 and {"a", "b"} <= {m["feature"] for m in drift[0]["features"]}
    # One firing per hour: the other conditions are held and counted, the limit fires
    # once, and when the next hour starts it resolves with the count, then they fire.
    held = outputs[1].suppressed["rate_limit"]
    notices = [a for a in alerts if a["kind"] == "alert_rate_limit"]
    assert [a["status"] for a in notices] == ["firing", "resolved", "firing"]
    assert held >= 2 and notices[1]["suppressed"] == held
    late = [a for a in outputs[2].alerts if a["kind"] == "data_quality"]
    assert [(a["status"], len(a["features"])) for a in late] == [("firing", 2)]
    assert late[0]["window"]["end_ts"] >= hour + 3600
    assert outputs[2].suppressed == {"rate_limit": 1}   # the third hold: the next hour's
    # A checkpoint after the second chunk resumes to the same alerts.
    resumed = MonitorEngine(settings)
    for chunk in chunks[:2]:
        resumed.process(chunk)
    state = orjson.loads(orjson.dumps(resumed.to_state()))
    assert [limit["model_id"] for limit in state["rate_limits"]] == ["m"]
    again = MonitorEngine.from_state(settings, state).process(chunks[2])
    assert without_ts([again.alerts]) == without_ts([outputs[2].alerts])
    for alert in alerts:
        validate(alert, "alert")


def test_held_firings_are_exported_as_a_prometheus_counter() -> None:
    from prometheus_client import generate_latest

    from streams.runtime.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    policy = AlertPolicy("m", "v1", 1, cooldown_windows=3)
    feed(policy, [{"f0"}, set(), {"f0"}], features=["f0"])
    for reason, count in policy.take_suppressed().items():
        metrics.alerts_suppressed.labels(reason).inc(count)
    text = generate_latest(metrics.registry).decode()
    assert 'driftline_alerts_suppressed_total{reason="cooldown"} 1.0' in text
