"""The Kubernetes manifests in deploy/k8s match the code they run.

Every document parses and has what its kind requires; probes and scrape annotations
point at paths the worker's app serves, on the port its settings give; the
ConfigMap's settings file loads (with the Secret's values in its ``*_file`` keys);
every ``DRIFTLINE_`` variable set is one the settings read; the image is the one the
Dockerfile builds, at the package's version.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.runtime.app import app_paths, make_app
from streams.settings import Settings, load_settings
from streams.settings_sources import ALIASES, CONFIG_VAR, env_keys
from streams.version import driftline_version

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
API_VERSIONS = {"ConfigMap": "v1", "Secret": "v1", "Service": "v1", "Deployment": "apps/v1",
                "PodDisruptionBudget": "policy/v1",
                "Kustomization": "kustomize.config.k8s.io/v1beta1"}
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def documents() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert isinstance(document, dict), f"{path.name}: not a mapping"
            found.append((path, document))
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == kind}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any]]:
    """The ConfigMap's settings, loaded with the Secret's values behind each ``*_file``."""
    (configmap,) = by_kind("ConfigMap").values()
    raw = yaml.safe_load(configmap["data"]["driftline.yaml"])
    secret = by_kind("Secret")["driftline-credentials"]["stringData"]
    folder = tmp_path_factory.mktemp("secrets")
    mounted: dict[str, str] = {}

    def relocate(section: dict[str, Any]) -> None:
        for key, value in section.items():
            if isinstance(value, dict):
                relocate(value)
            elif key.endswith("_file"):
                path = Path(value)
                assert path.parent == Path("/etc/driftline/secrets"), (key, value)
                assert path.name in secret, f"{key}: no {path.name} in the Secret"
                (folder / path.name).write_text(secret[path.name])
                mounted[key] = path.name
                section[key] = str(folder / path.name)

    relocate(raw)
    path = folder / "driftline.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_settings(path, environ={}), mounted


def test_every_document_parses_with_its_required_fields() -> None:
    kinds = []
    for path, document in documents():
        kind = document["kind"]
        kinds.append(kind)
        assert document["apiVersion"] == API_VERSIONS[kind], path.name
        if kind == "Kustomization":
            listed = set(document["resources"])
            assert listed == {p.name for p in K8S.glob("*.yaml")} - {path.name}
            continue
        assert NAME.match(document["metadata"]["name"]), path.name
        assert document["metadata"]["labels"]["app.kubernetes.io/name"] == "driftline"
    assert sorted(kinds) == sorted(["ConfigMap", "Secret", "Deployment", "Deployment",
                                    "Service", "PodDisruptionBudget", "Kustomization"])


def test_the_settings_file_loads_and_its_secrets_come_from_the_secret(
        config: tuple[Settings, dict[str, Any]]) -> None:
    settings, mounted = config
    assert mounted == {"sasl.password_file": "kafka-password", "password_file": "redis-password",
                       "token_file": "dashboard-token"}
    assert settings.kafka["sasl.password"] == "REPLACE-ME"
    assert settings.redis.password == "REPLACE-ME" and settings.dashboard.token == "REPLACE-ME"
    assert settings.web.host == "0.0.0.0" and settings.log.format == "json"


@pytest.mark.parametrize("name", ["driftline-worker", "driftline-deliver"])
def test_deployments_run_the_image_with_the_config_and_probe_served_paths(
        name: str, config: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = config
    deployment = by_kind("Deployment")[name]
    spec = deployment["spec"]
    template = spec["template"]
    assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    (container,) = template["spec"]["containers"]
    assert container["image"] == f"driftline:{driftline_version()}"
    assert container["args"] == [{"driftline-worker": "worker",
                                  "driftline-deliver": "deliver"}[name]]
    known = {key.var for key in env_keys(Settings)} | set(ALIASES) | {CONFIG_VAR}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert set(env) <= known
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": settings.web.port}
    # The config file is mounted where DRIFTLINE_CONFIG says, the Secret where the
    # *_file keys point.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert mounts["config"]["mountPath"] == env[CONFIG_VAR]
    assert volumes["config"]["configMap"]["name"] in by_kind("ConfigMap")
    assert mounts["credentials"]["mountPath"] == "/etc/driftline/secrets"
    assert volumes["credentials"]["secret"]["secretName"] in by_kind("Secret")
    probes = {kind: container[kind] for kind in ("startupProbe", "livenessProbe",
                                                 "readinessProbe") if kind in container}
    assert {"livenessProbe", "readinessProbe"} <= set(probes)
    for probe in probes.values():
        assert probe["httpGet"]["port"] in ports
    if name == "driftline-worker":
        served = app_paths(make_app(settings))
        assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {p["httpGet"]["path"] for p in probes.values()} <= set(served)
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/path"] in served
        assert int(annotations["prometheus.io/port"]) == settings.web.port
        # Time for the last checkpoint after SIGTERM: more than a checkpoint interval
        # and a session timeout.
        grace = template["spec"]["terminationGracePeriodSeconds"]
        assert grace > settings.worker.checkpoint_interval_s + \
            settings.worker.session_timeout_ms / 1000
    else:
        # `driftline deliver` serves /healthz on its web port (another branch builds it).
        assert {p["httpGet"]["path"] for p in probes.values()} == {"/healthz"}


def test_service_and_budget_select_the_workers(config: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = config
    labels = by_kind("Deployment")["driftline-worker"]["spec"]["template"]["metadata"]["labels"]
    service = by_kind("Service")["driftline-worker"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http" and port["port"] == settings.web.port
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == settings.web.port
    assert annotations["prometheus.io/path"] in app_paths(make_app(settings))
    budget = by_kind("PodDisruptionBudget")["driftline-worker"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["maxUnavailable"] == 1
