"""``driftline demo``: the embedded stack, a simulated model service, live alerts.

The simulated service publishes a credit-risk model's predictions (as array
messages, the way a busy service batches them) and delayed labels, with a
drift planted at a point printed up front. Alerts are read back from the
alerts topic like any consumer would, and printed as they arrive.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from confluent_kafka import Producer

from detectors.synthetic import ScenarioSpec, iter_chunks, truth
from streams.runtime.connections import client_config
from streams.runtime.reader import TopicReader
from streams.runtime.topics import ensure_topics
from streams.settings import Settings
from streams.stack.embedded import EmbeddedStack, free_port, spawn, stop_process
from streams.state.checkpoint import CheckpointStore
from streams.state.hotview import HotView
from streams.ui.console import window_metric

EVENTS_PER_MESSAGE = 100
log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the demo saw; ``ok`` when the planted drift was caught and nothing fired early."""

    events: int
    drift_at: int
    planted: list[str]
    alerts: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: int = 0
    first_detection: int | None = None
    early_alerts: int = 0
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The label join's summary per model from the live view, read before the worker stops."""
    delivery: dict[str, Any] | None = None
    """``driftline deliver``'s figures (``/healthz``) when webhooks are configured."""

    @property
    def ok(self) -> bool:
        """Planted feature alerted after the drift point, and no drift alert before it."""
        return self.first_detection is not None and self.early_alerts == 0


def embedded_settings(settings: Settings, stack: EmbeddedStack) -> Settings:
    """Point ``settings`` at an embedded stack, with a web port the worker can bind.

    The configured ``web.port`` is kept when it is free (the dashboard's usual
    address); a busy one, or 0, is replaced by a free port: the demo should not
    fail for a port. -1 stays: no web server.
    """
    from dataclasses import replace

    port = settings.web.port
    if port == 0 or (port > 0 and _busy(settings.web.host, port)):
        if port > 0:
            log.warning("web port %d is busy; using a free port", port)
        port = free_port()
    return settings.with_overrides(
        bootstrap_servers=stack.bootstrap_servers, redis_url=stack.redis_url,
        web=replace(settings.web, port=port))


def _busy(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def web_url(settings: Settings) -> str | None:
    """The dashboard's address on the worker's web port (``None``: no web server)."""
    if settings.web.port < 0:
        return None
    host = settings.web.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only
    return f"http://{shown}:{settings.web.port}/"


def worker_env(settings: Settings, config: Path | None = None) -> dict[str, str]:
    """Environment that points a ``driftline worker`` at ``settings``' stack.

    ``config`` is the YAML file the parent read, so the worker reads the same one.
    """
    env = dict(os.environ)
    if config is not None:
        env["DRIFTLINE_CONFIG"] = str(config.resolve())
    return {**env,
            "DRIFTLINE_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "DRIFTLINE_REDIS_URL": settings.redis_url,
            "DRIFTLINE_GROUP_ID": settings.group_id,
            "DRIFTLINE_TOPIC_PREFIX": settings.topics.prefix,
            "DRIFTLINE_PARTITIONS": str(settings.topics.partitions),
            "DRIFTLINE_SESSION_TIMEOUT_MS": str(settings.worker.session_timeout_ms),
            "DRIFTLINE_REFERENCE_SIZE": str(settings.monitor.reference_size),
            "DRIFTLINE_WINDOW_SIZE": str(settings.monitor.window_size),
            "DRIFTLINE_WEB_PORT": str(settings.web.port),
            "DRIFTLINE_WEB_HOST": settings.web.host,
            "DRIFTLINE_JOINED_TOPIC": str(settings.labels.joined_topic).lower()}


def spawn_delivery(settings: Settings, workdir: Path,
                   config: Path | None = None) -> tuple[subprocess.Popen[bytes], int] | None:
    """Start ``driftline deliver`` next to the worker when webhooks are configured.

    Returns the process and the port of its ``/healthz``, or None without webhooks.
    """
    if not settings.sinks.webhooks:
        return None
    port = free_port()
    env = {**worker_env(settings, config), "DRIFTLINE_DELIVERY_WEB_PORT": str(port),
           "DRIFTLINE_DELIVERY_SESSION_TIMEOUT_MS":
               str(settings.worker.session_timeout_ms)}
    process = spawn([sys.executable, "-m", "streams.ui.cli", "deliver"],
                    workdir / "deliver.log", env=env)
    return process, port


def run_demo(settings: Settings, events: int, rate: float, scenario: str,
             out: IO[str] = sys.stdout, config: Path | None = None,
             stay: threading.Event | None = None) -> DemoResult:
    """Run the whole demo; return what it saw (the caller chooses the exit code).

    With ``stay``, the stack, worker and dashboard keep running after the last
    prediction until ``stay`` is set.
    """
    spec = ScenarioSpec(scenario, events)
    facts = truth(spec)
    planted = sorted({d["feature"] for d in facts["drifts"]
                      if d["kind"] == "data_drift" and d["feature"]})
    result = DemoResult(events, spec.drift_index, planted)
    with EmbeddedStack() as stack:
        assert stack.workdir is not None
        settings = embedded_settings(settings, stack)
        url = web_url(settings)
        print(f"driftline demo: Tansu broker {stack.bootstrap_servers}, Redis {stack.redis_url}"
              + (f", metrics {url}metrics" if url else ""), file=out)
        ensure_topics(settings)
        if url is not None:
            print(f"live dashboard: {url}", file=out, flush=True)
        worker = spawn([sys.executable, "-m", "streams.ui.cli", "worker"],
                       stack.workdir / "worker.log", env=worker_env(settings, config))
        print(f"worker pid {worker.pid} (log: {stack.workdir / 'worker.log'})", file=out)
        delivery = spawn_delivery(settings, stack.workdir, config)
        if delivery is not None:
            print(f"alert delivery pid {delivery[0].pid} to {len(settings.sinks.webhooks)} "
                  f"webhooks (log: {stack.workdir / 'deliver.log'})", file=out)
        _announce(spec, facts, rate, settings.monitor.reference_size, out)
        reader = TopicReader(settings.bootstrap_servers,
                             [settings.topics.name("alerts"), settings.topics.name("deadletter")],
                             kafka=settings.kafka)
        done = threading.Event()
        printer = threading.Thread(target=_print_alerts, args=(reader, spec, result, done, out),
                                   daemon=True)
        printer.start()
        try:
            last_offsets = _publish(settings, spec, rate)
            _wait_for_worker(settings, last_offsets, worker, timeout_s=60.0)
            time.sleep(1.0)
            if delivery is not None:
                result.delivery = _wait_for_delivery(delivery[1], len(result.alerts), 60.0)
            result.labels = HotView(settings.redis_url, settings.group_id,
                                    security=settings.redis).labels()
            _print_audit(settings, spec.model_id, out)
            if stay is not None:
                where = f" at {url}" if url is not None else ""
                print(f"\nall predictions published; the stack and dashboard{where} stay up "
                      "until Ctrl-C", file=out, flush=True)
                stay.wait()
        finally:
            done.set()
            printer.join(5.0)
            reader.close()
            if delivery is not None:
                stop_process(delivery[0])
            stop_process(worker)
    _summarise(result, out)
    return result


def _announce(spec: ScenarioSpec, facts: dict[str, Any], rate: float, reference_size: int,
              out: IO[str]) -> None:
    features = ", ".join(facts["features"])
    print(f"model {spec.model_id}/{spec.model_version}: {len(facts['features'])} features "
          f"({features})", file=out)
    print(f"publishing {spec.events:,} predictions at ~{rate:,.0f}/s (+ labels "
          f"{spec.label_delay_events} events later)", file=out)
    for drift in facts["drifts"]:
        if drift["kind"] == "data_drift":
            print(f">>> planted drift: {spec.scenario} on {drift['feature']} from event "
                  f"{drift['start_index']:,}", file=out)
    print(f"reference = first {reference_size:,} events; alerts appear below as the worker "
          "publishes them\n", file=out)


def _publish(settings: Settings, spec: ScenarioSpec, rate: float) -> dict[int, int]:
    producer = Producer(client_config(settings.bootstrap_servers, settings.kafka,
                                      **{"linger.ms": 10}))
    last_offsets: dict[int, int] = {}

    def delivered(error: Any, message: Any) -> None:
        if error is None and message.topic() == settings.topics.name("predictions"):
            last_offsets[message.partition()] = max(last_offsets.get(message.partition(), -1),
                                                    message.offset())

    started = time.monotonic()
    sent = 0
    for predictions, labels in iter_chunks(spec, chunk_size=EVENTS_PER_MESSAGE * 10):
        for start in range(0, len(predictions), EVENTS_PER_MESSAGE):
            batch = predictions[start:start + EVENTS_PER_MESSAGE]
            producer.produce(settings.topics.name("predictions"), orjson.dumps(batch),
                             key=spec.model_id, on_delivery=delivered)
            sent += len(batch)
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
            producer.poll(0)
        if labels:
            producer.produce(settings.topics.name("labels"), orjson.dumps(labels),
                             key=spec.model_id)
    producer.flush(30)
    return last_offsets


def _wait_for_worker(settings: Settings, last_offsets: dict[int, int],
                     worker: subprocess.Popen[bytes], timeout_s: float) -> None:
    store = CheckpointStore(settings.redis_url, settings.group_id, settings.redis)
    topic = settings.topics.name("predictions")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and worker.poll() is None:
        checkpoints = {p: store.load(topic, p) for p in last_offsets}
        if all(c is not None and c.offsets.get(topic, 0) > last_offsets[p]
               for p, c in checkpoints.items()):
            return
        time.sleep(0.5)


def _wait_for_delivery(port: int, alerts: int, timeout_s: float) -> dict[str, Any] | None:
    """Wait until every receiver delivered or parked ``alerts``; its last figures."""
    import json
    import urllib.request

    figures: dict[str, Any] | None = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                        timeout=2) as response:
                figures = json.loads(response.read())
        except OSError:
            figures = None
        if figures is not None and all(r["delivered"] + r["parked"] >= alerts
                                       for r in figures["receivers"]):
            break
        time.sleep(0.5)
    return figures


def _print_alerts(reader: TopicReader, spec: ScenarioSpec, result: DemoResult,
                  done: threading.Event, out: IO[str]) -> None:
    while not done.is_set():
        for topic, record in reader.poll(0.3):
            if topic.endswith("deadletter"):
                result.dead_letters += 1
                continue
            result.alerts.append(record)
            end_index = round((record["window"]["end_ts"] - spec.start_ts) *
                              spec.events_per_second)
            start_index = end_index - record["window"]["events"] + 1
            if record["kind"] == "data_drift" and record["status"] == "firing":
                if end_index < spec.drift_index:
                    result.early_alerts += 1
                elif record["feature"] in result.planted and result.first_detection is None:
                    result.first_detection = end_index
            print(f"ALERT {record['status'].upper():8} {record['severity']:8} "
                  f"{record['kind']:16} {record['feature'] or '-':18} "
                  f"events {start_index:,}–{end_index:,}  {record['detector']} "
                  f"{record['statistic']:.3g} > {record['threshold']:.3g}\n"
                  f"      {record['explanation']}", file=out, flush=True)


def _print_audit(settings: Settings, model_id: str, out: IO[str]) -> None:
    """The model's audit trail, as ``driftline audit --model`` prints it."""
    from streams.ui.audit_cli import model_history, print_history, read_audit

    print(f"\n── audit trail of {model_id} (driftline audit --model {model_id}) ──", file=out)
    print_history(model_history(read_audit(settings, idle_s=1.0), model_id), model_id, out)


def _summarise(result: DemoResult, out: IO[str]) -> None:
    kinds = Counter(f"{a['kind']}:{a['feature']}" for a in result.alerts
                    if a["status"] == "firing")
    print("\n── summary ──", file=out)
    print(f"events published: {result.events:,}; drift planted at event {result.drift_at:,} "
          f"on {', '.join(result.planted) or '(no feature)'}", file=out)
    listed = ", ".join(f"{k} ×{v}" for k, v in kinds.items()) or "none"
    print(f"alerts: {len(result.alerts)} ({listed})", file=out)
    if result.first_detection is not None:
        print(f"first data_drift alert on the planted feature: window ending at event "
              f"{result.first_detection:,} ({result.first_detection - result.drift_at:,} events "
              "after the drift)", file=out)
    else:
        print("the planted drift was NOT detected", file=out)
    print(f"data_drift alerts before the drift point: {result.early_alerts}", file=out)
    for model_id, entry in sorted(result.labels.items()):
        metric = window_metric(entry.get("performance"))
        estimate = (entry.get("estimate") or {}).get("estimated_accuracy")
        print(f"labels of {model_id}: {entry['joined']:,} joined of {entry['predictions']:,} "
              f"predictions"
              + (f" (coverage {entry['coverage']:.1%})" if entry.get("coverage") is not None
                 else "")
              + (f"; last window {metric}" if metric is not None else "")
              + (f"; label-free estimate {estimate:.3f}" if estimate is not None else ""),
              file=out)
    if result.delivery is not None:
        for receiver in result.delivery["receivers"]:
            print(f"webhook {receiver['endpoint']} ({receiver['format']}): "
                  f"{receiver['delivered']} delivered, {receiver['retried']} retried, "
                  f"{receiver['parked']} parked", file=out)
    print(f"dead letters: {result.dead_letters}", file=out)
    print("result: " + ("OK" if result.ok else "FAILED"), file=out)
