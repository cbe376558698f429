"""The Prometheus config, alert rules and Grafana dashboard in deploy/ match the worker.

Every metric a PromQL expression names must be one a worker actually exports, with
the labels it actually has, so a renamed metric breaks this test instead of leaving
an empty panel or an alert that can never fire.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detectors.base import TestResult
from detectors.monitor import Finding, WindowReport
from streams.runtime.metrics import WorkerMetrics
from streams.settings_service import WebSettings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS_YML = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD_JSON = DEPLOY / "grafana" / "dashboards" / "driftline.json"
GRAFANA_DATASOURCE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "driftline.yml"
COMPOSE = ROOT / "docker-compose.yml"

# Series Prometheus itself attaches to every scrape target, and the labels it adds.
SYNTHETIC_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
TARGET_LABELS = {"job", "instance", "service"}

PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on",
                   "ignoring", "group_left", "group_right", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_IDENT = re.compile(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.*?)\s*,\s*(\w+)\s*\)\s*$")


# --- what a worker exports ---------------------------------------------------------------

@pytest.fixture(scope="module")
def exposition() -> dict[str, set[str]]:
    """Sample names of a worker's /metrics output, each with its label names."""
    m = WorkerMetrics()
    m.messages.labels("driftline.predictions").inc(3)
    m.events.labels("driftline.predictions").inc(5)
    m.dead_letters.labels("invalid_json").inc()
    m.observe_alert({"kind": "data_drift", "status": "firing"})
    m.batch_seconds.observe(0.01)
    m.checkpoint_seconds.observe(0.002)
    m.checkpoint_bytes.labels("0").set(1234)
    m.lag.labels("driftline.predictions", "0").set(7)
    m.assigned.set(2)
    m.models.set(1)
    m.series_dropped.inc()
    result = TestResult(detector="ks", drift=True, statistic=0.3, threshold=0.1,
                        p_value=1e-9, effect_size=0.4, severity="critical",
                        window_events=100, explanation="", reference={})
    m.observe_report("fraud", "v1", WindowReport(
        index=0, start_ts=0.0, end_ts=1.0, events=100,
        findings=[Finding(kind="data_drift", feature="amount", check="ks", result=result)]))
    m.alerts_suppressed.labels("cooldown").inc()
    m.observe_labels({"fraud": {
        "predictions": 10, "labels": 8, "joined": 7, "duplicates": 1, "unmatched": 0,
        "waiting": 1, "coverage": 0.7, "delay_p50_s": 10.0, "delay_p90_s": 60.0,
        "version": "v1", "performance": {"window": {"accuracy": 0.9}, "reference": None},
        "estimate": {"estimated_accuracy": 0.88},
        "segments": {"channel=web": {"window": {"accuracy": 0.8}}}}})
    text = generate_latest(m.registry).decode()
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_exposition_has_the_documented_metrics(exposition: dict[str, set[str]]) -> None:
    assert exposition["driftline_input_events_total"] == {"topic"}
    assert exposition["driftline_drift_score"] == {"model_id", "model_version", "kind",
                                                   "feature", "check"}
    assert exposition["driftline_batch_duration_seconds_bucket"] == {"le"}


# --- PromQL --------------------------------------------------------------------------------

def promql_names(expr: str) -> tuple[set[str], dict[str, set[str]], set[str]]:
    """Metric names, matcher labels per selector, and grouping labels of ``expr``.

    A small lexer, not a parser: enough for the expressions in deploy/.
    """
    selectors: dict[str, set[str]] = {}
    for name, body in _SELECTOR.findall(_STRING.sub('""', expr)):
        selectors.setdefault(name or "", set()).update(_MATCHER.findall(body))
    grouping = {label.strip() for clause in _GROUPING.findall(expr)
                for label in clause.split(",") if label.strip()}
    bare = _STRING.sub(" ", expr)
    bare = re.sub(r"\{[^}]*\}", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = _GROUPING.sub(" ", bare)
    bare = re.sub(r"\$\{?\w+\}?", " ", bare)  # Grafana variables
    names = {word for word in _IDENT.findall(bare) if word.lower() not in PROMQL_KEYWORDS}
    return names, selectors, grouping


def test_promql_lexer() -> None:
    names, selectors, grouping = promql_names(
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{x=~"$v", y!="}"}[$__rate_interval'
        '])))  / on (x) group_left b_total{z="1"} > bool 1 or vector(0)')
    assert names == {"a_bucket", "b_total"}
    assert selectors == {"a_bucket": {"x", "y"}, "b_total": {"z"}}
    assert grouping == {"le", "x"}


def check_expr(expr: str, exposition: dict[str, set[str]]) -> set[str]:
    """Assert ``expr`` only names exported metrics and labels; return its metric names."""
    names, selectors, grouping = promql_names(expr)
    assert names, f"no metric in {expr!r}"
    known = set(exposition) | SYNTHETIC_METRICS
    assert names <= known, f"unknown metric(s) {sorted(names - known)} in {expr!r}"
    all_labels = set().union(*exposition.values()) | TARGET_LABELS
    for name, labels in selectors.items():
        allowed = (exposition.get(name, set()) | TARGET_LABELS) if name else all_labels
        assert labels <= allowed, f"{name} has no label(s) {sorted(labels - allowed)}: {expr!r}"
    assert grouping <= all_labels, f"unknown grouping label(s) in {expr!r}"
    return names


# --- Grafana ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_JSON.read_text())


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "driftline"
    assert dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41


def test_dashboard_panels_have_unique_ids_and_targets(dashboard: dict[str, Any]) -> None:
    panels = list(iter_panels(dashboard["panels"]))
    assert len(panels) >= 10
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        assert panel.get("title"), panel["id"]
        assert panel.get("targets"), f"panel {panel['title']!r} has no target"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"empty query in {panel['title']!r}"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), f"duplicate refId in {panel['title']!r}"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_dashboard_queries_use_exported_metrics(dashboard: dict[str, Any],
                                                exposition: dict[str, set[str]]) -> None:
    used: set[str] = set()
    for panel in iter_panels(dashboard["panels"]):
        for target in panel["targets"]:
            used |= check_expr(target["expr"], exposition)
    # What the issue asks the dashboard to show.
    for metric in ("driftline_input_events_total", "driftline_dead_letters_total",
                   "driftline_alerts_total", "driftline_batch_duration_seconds_bucket",
                   "driftline_consumer_lag_messages", "driftline_monitored_models",
                   "driftline_drift_score", "driftline_checkpoint_size_bytes",
                   "driftline_checkpoint_duration_seconds_bucket",
                   "driftline_label_coverage_ratio", "driftline_model_performance",
                   "driftline_segment_performance", "driftline_alerts_suppressed_total"):
        assert metric in used, f"no panel shows {metric}"


def test_dashboard_variables(dashboard: dict[str, Any],
                             exposition: dict[str, set[str]]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name in ("model_id", "model_version"):
        var = variables[name]
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = _LABEL_VALUES.match(query)
        assert match, query
        selector, label = match.groups()
        assert label == name
        assert check_expr(selector, exposition) == {"driftline_drift_score"}
        assert label in exposition["driftline_drift_score"]


def test_drift_panels(dashboard: dict[str, Any]) -> None:
    panels = list(iter_panels(dashboard["panels"]))
    by_expr = [(panel, target["expr"]) for panel in panels for target in panel["targets"]]
    score = [panel for panel, expr in by_expr
             if "driftline_drift_score{" in expr and "$model_id" in expr
             and "$model_version" in expr and panel["type"] == "timeseries"]
    assert score, "no time series of the selected model's drift scores"
    steps = score[0]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert any(step["value"] == 1 for step in steps), "no threshold at 1"
    assert score[0]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"
    assert any(panel["type"] == "table" and re.search(r"driftline_drift_score\)?\s*>=\s*1", expr)
               for panel, expr in by_expr), "no table of firing tests"
    assert any("histogram_quantile(0.99" in expr for _, expr in by_expr)
    assert any("histogram_quantile(0.5" in expr for _, expr in by_expr)


def test_grafana_provisioning() -> None:
    datasources = yaml.safe_load(GRAFANA_DATASOURCE.read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(GRAFANA_PROVIDER.read_text())["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# --- Prometheus -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS_YML.read_text())


def test_prometheus_scrapes_every_worker(prometheus: dict[str, Any]) -> None:
    assert prometheus["global"]["scrape_interval"] == "5s"
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    (sd,) = jobs["driftline-worker"]["dns_sd_configs"]
    assert sd["names"] == ["worker"]
    assert sd["type"] == "A"
    assert sd["port"] == WebSettings().port
    assert jobs["driftline-worker"].get("metrics_path", "/metrics") == "/metrics"


def test_prometheus_loads_the_alert_rules(prometheus: dict[str, Any]) -> None:
    rule_files = [PROMETHEUS_YML.parent / name for name in prometheus["rule_files"]]
    assert ALERTS_YML in rule_files
    assert all(path.is_file() for path in rule_files)


def test_alert_rules(exposition: dict[str, set[str]]) -> None:
    groups = yaml.safe_load(ALERTS_YML.read_text())["groups"]
    group_names = [group["name"] for group in groups]
    assert len(group_names) == len(set(group_names))
    alerts = {}
    for group in groups:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels",
                                 "annotations"}, rule
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
            assert rule["alert"] not in alerts, f"duplicate alert {rule['alert']}"
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"]
            assert rule["annotations"]["description"]
            if "for" in rule:
                assert re.fullmatch(r"\d+[smhd]", rule["for"])
            check_expr(rule["expr"], exposition)
            alerts[rule["alert"]] = rule
    assert {"DriftlineWorkerDown", "DriftlineDeadLettersRising",
            "DriftlineDriftScoreHigh"} <= set(alerts)
    assert 'job="driftline-worker"' in alerts["DriftlineWorkerDown"]["expr"]


# --- docker-compose ---------------------------------------------------------------------------

def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's ``./`` bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = (ROOT / source).resolve()
    return mounts


def test_compose_mounts_the_deploy_files() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("prometheus", "grafana"):
        for host in bind_mounts(services[name]).values():
            assert host.exists(), f"{name} mounts missing {host}"

    prom = bind_mounts(services["prometheus"])
    config = next(arg.split("=", 1)[1] for arg in services["prometheus"]["command"]
                  if arg.startswith("--config.file="))
    assert prom[str(Path(config).parent)] == PROMETHEUS_YML.parent
    assert Path(config).name == PROMETHEUS_YML.name
    assert any(v.endswith(":ro") for v in services["prometheus"]["volumes"]
               if v.startswith("./"))

    grafana = bind_mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"] == GRAFANA_DATASOURCE.parents[1]
    assert grafana["/var/lib/grafana/dashboards"] == DASHBOARD_JSON.parent
    assert all(v.endswith(":ro") for v in services["grafana"]["volumes"] if v.startswith("./"))


def test_compose_opens_nothing_by_default() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    env = services["grafana"]["environment"]
    assert str(env["GF_AUTH_ANONYMOUS_ENABLED"]).lower() == "false"
    # No default admin password: compose refuses to start without one.
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    kafka = services["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert services["kafka"]["ports"] == ["127.0.0.1:9094:9094"]
    # Workers have no host port; their metrics listen inside the network for Prometheus.
    assert "ports" not in services["worker"]
    assert services["worker"]["environment"]["DRIFTLINE_WEB_HOST"] == "0.0.0.0"
