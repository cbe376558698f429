"""What each ``driftline`` subcommand does, once :mod:`streams.ui.cli` has parsed it.

Heavy modules (the worker, the embedded stack, Kafka clients) are imported inside
the handler that needs them, so ``driftline --help`` and ``driftline replay`` start fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from types import FrameType

from streams.errors import DriftlineError
from streams.settings import Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


class _Stop:
    """Turns SIGTERM/SIGINT into a stop event (first signal) or an exit (second)."""

    def __init__(self) -> None:
        import signal

        self.event = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise SystemExit(128 + signum)
        self.event.set()


def cmd_worker(args: argparse.Namespace) -> int:
    """Run one worker inside its Faust app until SIGTERM/SIGINT."""
    from streams.runtime.app import make_app, run_app
    from streams.runtime.connections import cluster_metadata, require_redis

    settings = _settings(args)
    # Checked before the worker's clients exist: their librdkafka logs would flood stderr.
    require_redis(settings.redis_url, security=settings.redis)
    cluster_metadata(settings.bootstrap_servers, kafka=settings.kafka)
    app = make_app(settings)
    log = logging.getLogger("driftline")
    if app.web_url is not None:
        url = app.web_url
        log.info("metrics on %smetrics; dashboard %s; probes %shealthz, %sreadyz", url, url,
                 url, url)
    stats = run_app(app)
    log.info("worker stopped: %s", stats)
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    """Deliver alerts from the alerts topic to the configured webhooks until SIGTERM/SIGINT."""
    from streams.delivery.run import run_delivery
    from streams.runtime.connections import cluster_metadata, require_redis

    settings = _settings(args)
    if not settings.sinks.webhooks:
        raise DriftlineError("no receivers configured: add webhooks under sinks.webhooks "
                             "(or DRIFTLINE_SINKS_WEBHOOKS)")
    require_redis(settings.redis_url, security=settings.redis)
    cluster_metadata(settings.bootstrap_servers, kafka=settings.kafka)
    return run_delivery(settings, args.log_level)


def cmd_up(args: argparse.Namespace) -> int:
    """Run the embedded stack and a worker (its Faust app: dashboard too) until SIGTERM/SIGINT."""
    from streams.runtime.topics import ensure_topics
    from streams.stack.embedded import EmbeddedStack, spawn, stop_process
    from streams.ui.demo import embedded_settings, spawn_delivery, web_url, worker_env

    settings = _settings(args)
    stop = _Stop()
    with EmbeddedStack() as stack:
        assert stack.workdir is not None
        settings = embedded_settings(settings, stack)
        ensure_topics(settings)
        worker = spawn([sys.executable, "-m", "streams.ui.cli", "worker"],
                       stack.workdir / "worker.log", env=worker_env(settings, args.config))
        delivery = spawn_delivery(settings, stack.workdir, args.config)
        delivering = (f"pid {delivery[0].pid} to {len(settings.sinks.webhooks)} webhooks, "
                      f"http://127.0.0.1:{delivery[1]}/healthz (log "
                      f"{stack.workdir / 'deliver.log'})" if delivery is not None
                      else "(off: no sinks.webhooks)")
        url = web_url(settings)
        print(f"driftline is up.\n  Kafka (Tansu): {stack.bootstrap_servers}\n"
              f"  Redis:         {stack.redis_url}\n"
              f"  dashboard:     {url or '(off: web.port -1)'}\n"
              + (f"  metrics:       {url}metrics\n  probes:        {url}healthz, {url}readyz\n"
                 if url else "")
              + f"  worker pid:    {worker.pid} "
              f"(log {stack.workdir / 'worker.log'})\n"
              f"  alert delivery: {delivering}\n"
              f"  publish to {settings.topics.name('predictions')}, read "
              f"{settings.topics.name('alerts')}\nCtrl-C stops everything.", flush=True)
        try:
            while not stop.event.is_set():
                if worker.poll() is not None:
                    print(f"worker exited with code {worker.returncode}", file=sys.stderr)
                    return 1
                if delivery is not None and delivery[0].poll() is not None:
                    print(f"alert delivery exited with code {delivery[0].returncode}",
                          file=sys.stderr)
                    return 1
                time.sleep(0.5)
        finally:
            if delivery is not None:
                stop_process(delivery[0])
            stop_process(worker)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the live dashboard (a Faust app without a worker) until SIGTERM/SIGINT."""
    from dataclasses import replace

    from streams.runtime.app import make_app, run_app
    from streams.runtime.connections import redacted, require_redis

    settings = _settings(args)
    require_redis(settings.redis_url, security=settings.redis)
    if args.port is not None:
        settings = settings.with_overrides(web=replace(settings.web, port=args.port))
    if settings.web.port < 0:
        raise DriftlineError("web.port: expected a port (0 = any free port), got -1")
    app = make_app(settings, worker=False)
    print(f"driftline dashboard: {app.web_url}  (hot view of group {settings.group_id!r} in "
          f"{redacted(settings.redis_url)}; Ctrl-C stops)", flush=True)
    run_app(app)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo; exit code 0 when the planted drift was caught cleanly."""
    from streams.ui.demo import run_demo

    settings = _settings(args)
    stop = _Stop()
    result = run_demo(settings, events=args.events, rate=args.rate, scenario=args.scenario,
                      config=args.config, stay=stop.event if args.stay else None)
    return 0 if result.ok else 1


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay files through the monitor."""
    from streams.offline.replay import STDIN, replay

    settings = _settings(args)
    stdin = str(args.predictions) == STDIN
    for path in (args.labels, args.control) if stdin else (args.predictions, args.labels,
                                                           args.control):
        if path is not None and not path.is_file():
            raise DriftlineError(f"no such file: {path}")
    summary = None
    if args.report or args.summary:
        from streams.offline.run_summary import RunSummary

        summary = RunSummary({"predictions": "standard input" if stdin else str(args.predictions),
                              "labels": str(args.labels) if args.labels else None}, settings)
    stats = replay(settings, args.predictions, args.out, labels=args.labels,
                   deadletter_out=args.deadletter, retrain_out=args.retrain_out,
                   progress=None if args.quiet else sys.stderr, summary=summary,
                   audit_out=args.audit_out, control=args.control)
    print(f"replayed {stats.events:,} events ({stats.lines:,} lines, {stats.labels:,} labels, "
          f"{stats.joined:,} joined) in {stats.seconds:.2f} s = "
          f"{stats.events_per_second:,.0f} events/s; {stats.windows:,} windows, "
          f"{stats.alerts} alerts → {args.out}, {stats.retrain} retrain requests"
          f"{' → ' + str(args.retrain_out) if args.retrain_out else ''}, "
          f"{stats.dead_letters} dead letters"
          f"{'; audit records → ' + str(args.audit_out) if args.audit_out else ''}",
          file=sys.stderr)
    if summary is not None:
        from streams.offline.report import read_alerts, write_report
        from streams.offline.run_summary import write_summary

        written = summary.to_dict(stats.counts())
        if args.summary:
            write_summary(written, args.summary)
            print(f"run summary → {args.summary}", file=sys.stderr)
        if args.report:
            write_report(read_alerts(args.out), written, args.report)
            print(f"report → {args.report}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of a replay from its alerts and summary."""
    from streams.offline.report import read_alerts, write_report
    from streams.offline.run_summary import read_summary

    for path in (args.alerts, args.summary):
        if path is not None and not path.is_file():
            raise DriftlineError(f"no such file: {path}")
    alerts = read_alerts(args.alerts)
    write_report(alerts, read_summary(args.summary) if args.summary else None, args.out)
    print(f"report of {len(alerts)} alerts → {args.out}", file=sys.stderr)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Write a synthetic scenario to files."""
    from detectors.synthetic import ScenarioSpec
    from streams.offline.simulate import write_scenario

    spec = ScenarioSpec(args.scenario, args.events, seed=args.seed,
                        label_fraction=args.label_fraction,
                        label_delay_events=args.label_delay)
    files = write_scenario(spec, args.out)
    print(f"wrote {files.events:,} predictions to {files.predictions}, {files.label_count:,} "
          f"labels to {files.labels}, drift points to {files.truth}")
    return 0


def cmd_rebaseline(args: argparse.Namespace) -> int:
    """Publish a rebaseline command for a model on the control topic."""
    import orjson
    from confluent_kafka import KafkaException, Producer

    from streams.runtime.connections import client_config, cluster_metadata

    settings = _settings(args)
    cluster_metadata(settings.bootstrap_servers, kafka=settings.kafka)
    command = {"command": "rebaseline", "model_id": args.model, "ts": time.time(),
               "reason": args.reason, "requested_by": args.by or _operator()}
    if args.version:
        command["model_version"] = args.version
    failures: list[str] = []
    producer = Producer(client_config(settings.bootstrap_servers, settings.kafka))
    try:
        producer.produce(settings.topics.name("control"), orjson.dumps(command), key=args.model,
                         on_delivery=lambda err, _msg: failures.append(str(err)) if err else None)
    except KafkaException as exc:
        raise DriftlineError(f"cannot publish to {settings.topics.name('control')}: {exc}") \
            from exc
    if producer.flush(15) or failures:
        raise DriftlineError(f"rebaseline not delivered to {settings.bootstrap_servers}: "
                             f"{failures or 'timed out'}")
    print(f"rebaseline of {args.model} {args.version or '(all versions)'} published to "
          f"{settings.topics.name('control')}")
    return 0


def _operator() -> str:
    """Who runs this command, as the audit trail records it: ``user@host``."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):       # no name for this uid (a container)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def cmd_tail(args: argparse.Namespace) -> int:
    """Print alerts as they arrive on the alerts topic."""
    from streams.ui.console import tail

    stop = _Stop()
    tail(_settings(args), args.from_beginning, stop.event, limit=args.limit)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print a per-model summary from the live view in Redis."""
    from streams.runtime.connections import require_redis
    from streams.ui.console import status

    settings = _settings(args)
    require_redis(settings.redis_url, security=settings.redis)
    status(settings)
    return 0


def cmd_bench_throughput(args: argparse.Namespace) -> int:
    """Measure the worker next to the raw consumer on the embedded broker."""
    from streams.bench.throughput import MONITOR_VARIABLES, run_throughput

    environ = {name: os.environ[name] for name in MONITOR_VARIABLES if name in os.environ}
    run_throughput(args.events, args.rounds, args.events_per_message, args.models,
                   args.warmup, environ)
    return 0


def cmd_bench_join(args: argparse.Namespace) -> int:
    """Measure the label join next to raw consumption, and pending-prediction memory."""
    from streams.bench.join import run_join_bench

    run_join_bench(args.events, args.rounds)
    return 0


def cmd_bench_replay(args: argparse.Namespace) -> int:
    """Measure offline replay, in-process and as a process, next to a bare read + decode."""
    from streams.bench.replay import run_replay

    run_replay(args.events, args.rounds)
    return 0


def cmd_bench_step(args: argparse.Namespace) -> int:
    """Measure the partition step's CPU time per event, with and without segments."""
    from streams.bench.step import run_step_bench

    run_step_bench(args.events, args.segments, args.rounds, args.warmup)
    return 0


def cmd_bench_ticks(args: argparse.Namespace) -> int:
    """Measure what ticks cost the partition step, next to a bare decode."""
    from streams.bench.ticks import run_ticks_bench

    run_ticks_bench(args.events, args.models, args.rounds, args.ticks_every)
    return 0


def cmd_bench_quality(args: argparse.Namespace) -> int:
    """Detection quality: feature drift, concept drift vs river, label-side false alarms."""
    if args.part in ("all", "features"):
        from streams.bench.features import run_feature_bench

        run_feature_bench(stationary_events=args.stationary_events, seeds=args.seeds)
    if args.part in ("all", "concept"):
        from streams.bench.concept import run_concept_bench

        run_concept_bench(seeds=args.seeds, events=args.concept_events,
                          detectors=args.concept_detectors)
    if args.part in ("all", "segments"):
        from streams.bench.segments import run_segment_bench

        run_segment_bench(events=args.segment_events, seeds=args.seeds)
    if args.part in ("all", "labels"):
        from streams.bench.label_alarms import run_label_alarm_bench

        run_label_alarm_bench(labelled_events=args.label_events, seeds=args.label_seeds,
                              rates=tuple(args.label_rates),
                              coverages=tuple(args.label_coverages))
    return 0
