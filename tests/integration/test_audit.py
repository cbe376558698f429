"""The audit trail of a run on the real stack (Tansu + Redis); `driftline audit` reading it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from streams.core.audit import audit_key, settings_hash
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.ui.audit_cli import model_history, read_audit
from streams.ui.demo import worker_env
from tests.test_schemas import validator

from .conftest import as_arrays, events, produce, read_until, wait_for

pytestmark = pytest.mark.integration


def kinds(records: list[dict[str, Any]]) -> list[str]:
    return [r["kind"] if r["kind"] != "alert" else f"alert:{r['details']['status']}"
            for r in records]


def driftline(settings: Settings, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.ui.cli", *arguments],
                          env=worker_env(settings), capture_output=True, text=True, timeout=120)


def test_a_run_leaves_its_decisions_on_the_audit_topic(
        settings: Settings, start_worker: Callable[[Settings], Any]) -> None:
    ensure_topics(settings)
    start_worker(settings)
    # A reference of 1,000 events, two quiet windows, then a 3σ shift: an alert fires.
    produce(settings, as_arrays(events(2000)))
    produce(settings, as_arrays(events(1000, start=2000, shift=3.0)))
    assert read_until(settings, ["alerts"], lambda got: any(
        a["status"] == "firing" for _, a in got))
    rebaseline = driftline(settings, "rebaseline", "--model", "m1", "--reason",
                           "new pricing is the new normal", "--by", "ana@ops")
    assert rebaseline.returncode == 0, rebaseline.stderr
    # After the re-baseline the next 1,000 events are the new reference.
    produce(settings, as_arrays(events(1200, start=3000, shift=3.0)))

    def history() -> list[dict[str, Any]]:
        return model_history(read_audit(settings, idle_s=1.0), "m1")
    assert wait_for(lambda: kinds(history()).count("reference_set") == 2, 60)
    records = history()
    print("\n" + "\n".join(f"{r['kind']:16} {r['summary']}" for r in records))
    order = kinds(records)
    assert order[0] == "config", order
    assert order.index("reference_set") < order.index("alert:firing") \
        < order.index("rebaseline") < order.index("alert:resolved"), order
    config = records[0]
    assert config["details"]["settings_sha256"] == settings_hash(settings)
    first = next(r for r in records if r["kind"] == "reference_set")
    assert first["details"]["source"] == {"type": "first_events", "events": 1000}
    assert first["details"]["reference"]["start_ts"] == 1_700_000_000.0
    firing = [r for r in records if r["kind"] == "alert" and r["details"]["status"] == "firing"]
    assert {r["details"]["kind"] for r in firing} >= {"data_drift"}
    baseline = next(r for r in records if r["kind"] == "rebaseline")
    assert baseline["details"]["requested_by"] == "ana@ops"
    assert baseline["details"]["reason"] == "new pricing is the new normal"
    resolved = {r["details"]["alert_id"] for r in records
                if r["kind"] == "alert" and r["details"]["status"] == "resolved"}
    assert set(baseline["details"]["resolved_alert_ids"]) == resolved != set()
    second = [r for r in records if r["kind"] == "reference_set"][1]
    assert second["details"]["reference"]["start_ts"] == 1_700_003_000.0
    assert second["details"]["learned_sha256"] != first["details"]["learned_sha256"]
    # The schema holds, and every decision has its own key (compaction keeps them all).
    schema = validator("audit")
    for record in records:
        assert list(schema.iter_errors(record)) == [], record
    assert len({audit_key(r) for r in records}) == len(records)

    # The command prints the same history.
    printed = driftline(settings, "audit", "--model", "m1", "--idle", "1")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    print(printed.stdout)
    assert f"settings sha256 {settings_hash(settings)}" in printed.stdout
    assert "re-baselined by ana@ops: new pricing is the new normal" in printed.stdout
    assert sum("reference_set" in line for line in lines) == 2
    assert any(" alert " in line and "data_drift" in line and "firing" in line
               for line in lines), lines
    as_json = driftline(settings, "audit", "--model", "m1", "--idle", "1", "--json")
    assert [orjson.loads(line)["audit_id"] for line in as_json.stdout.splitlines()] \
        == [r["audit_id"] for r in records]
    other = driftline(settings, "audit", "--model", "nobody", "--idle", "0.5")
    assert "no audit record of model 'nobody'" in other.stdout


def test_the_audit_topic_is_created_compacted(settings: Settings) -> None:
    ensure_topics(settings)
    topic = settings.topics.name("audit")
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    try:
        described = admin.describe_configs([resource])[resource].result(timeout=10)
    except Exception as exc:  # noqa: BLE001 - Tansu's answer is what is measured here
        pytest.fail(f"describe_configs on {topic}: {exc}")
    policy = described.get("cleanup.policy")
    print(f"\n{topic}: cleanup.policy = {policy.value if policy else None}")
    assert policy is not None and policy.value == "compact"
