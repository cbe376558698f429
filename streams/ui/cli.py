"""The ``driftline`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, cast

from detectors.errors import ConfigurationError
from detectors.scenarios import SCENARIOS
from streams.errors import DriftlineError
from streams.offline.reference import add_reference_commands
from streams.settings_service import LOG_FORMATS
from streams.ui.audit_cli import add_audit_command
from streams.ui.commands import (
    cmd_bench_join,
    cmd_bench_quality,
    cmd_bench_replay,
    cmd_bench_step,
    cmd_bench_throughput,
    cmd_bench_ticks,
    cmd_dashboard,
    cmd_deliver,
    cmd_demo,
    cmd_rebaseline,
    cmd_replay,
    cmd_report,
    cmd_simulate,
    cmd_status,
    cmd_tail,
    cmd_up,
    cmd_worker,
)
from streams.ui.logs import configure_logging
from streams.version import driftline_version

DESCRIPTION = """\
driftline watches ML models in production through Kafka: services publish
prediction events (and later label events); driftline compares every window of
recent events with a reference and publishes alert events when features,
predictions, data quality or (with labels) performance drift.

Events are JSON objects on the driftline.predictions and driftline.labels topics
(the prefix is topics.prefix), one per Kafka message or an array of them per
message, keyed by model_id; alerts appear on driftline.alerts:
  prediction  {"model_id", "model_version", "event_id", "ts" (Unix seconds),
               "features": {name: number | string | bool | null}, "prediction",
               optional "score", "scores": {class: probability}, "segments"}
  label       {"model_id", "event_id", "ts", "label"}
Their JSON Schemas, and those of the alert and retrain events driftline
publishes, ship inside the installed package: streams/ingest/schemas/.

Configuration comes from a YAML file (--config FILE, before or after the
command, or DRIFTLINE_CONFIG) and environment variables, which win over the
file (DRIFTLINE_BOOTSTRAP_SERVERS, DRIFTLINE_REDIS_URL, DRIFTLINE_TOPIC_PREFIX,
DRIFTLINE_PARTITIONS, DRIFTLINE_WINDOW_SIZE, ...). Every key with its default is
described in the source repository's README and deploy/driftline.yaml there.
"""


def _count(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _share(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def _error_rate(text: str) -> float:
    """An argparse type: an error rate of a binary classifier, in (0, 0.5]."""
    value = _share(text)
    if value > 0.5:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 0.5], got {text!r}")
    return value


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Add the options every command takes, before or after its name.

    On a subcommand's parser they default to ``SUPPRESS``: an option the user did
    not repeat after the command then leaves the value given before it (or the
    top-level default) in place instead of resetting it.
    """
    options = parser.add_argument_group("global options (before or after the command)")
    options.add_argument("--config", type=Path,
                         default=None if top else argparse.SUPPRESS,
                         help="YAML settings file (default: $DRIFTLINE_CONFIG, else built-in "
                         "defaults and environment variables)")
    options.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                         default=None if top else argparse.SUPPRESS,
                         help="default: INFO; WARNING for bench, whose output is its figures")
    options.add_argument("--log-format", choices=list(LOG_FORMATS),
                         default=None if top else argparse.SUPPRESS,
                         help="text lines, or one JSON object per line (ts, level, logger, "
                         "message) for a log collector (default: log.format, "
                         "DRIFTLINE_LOG_FORMAT, else text)")


class _CommandParser(argparse.ArgumentParser):
    """The parser of a subcommand (at any depth): it accepts the global options too.

    ``add_subparsers`` builds nested parsers with the class of their parent, so
    ``driftline bench throughput --config FILE`` works as well as ``worker --config``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _add_global_options(self, top=False)


class _VersionAction(argparse.Action):
    """``--version``: print driftline's version and exit; read only when asked for.

    Reading the installed metadata costs ~30 ms, which every command paid when the
    parser was built with the version in it.
    """

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS,
                 help: str = "show the program's version and exit") -> None:  # noqa: A002
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"{parser.prog} {driftline_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="driftline", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_global_options(parser, top=True)
    parser.add_argument("--version", action=_VersionAction)
    # Typed as plain ArgumentParsers: the subclass only adds options, and
    # add_reference_commands (like any helper) takes the general type.
    commands = cast("argparse._SubParsersAction[argparse.ArgumentParser]",
                    parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                          parser_class=_CommandParser))

    worker = commands.add_parser(
        "worker", help="run one worker against the configured Kafka and Redis",
        description="Consume the predictions, labels and control topics in batches, monitor "
        "every model, join labels to their predictions, publish alerts, retrain requests and "
        "dead letters and checkpoint state with offsets to Redis. It runs inside a Faust app "
        "whose one web port (web.host:web.port, DRIFTLINE_WEB_HOST/PORT, default "
        "127.0.0.1:8765) serves the live dashboard, Prometheus /metrics, /healthz (alive) "
        "and /readyz (partitions assigned, Redis and broker reachable). Start more workers "
        "with the same group_id to scale out over partitions. SIGTERM stops it cleanly, "
        "after a last checkpoint. Needs a running Kafka and Redis: `driftline up` starts "
        "both, with a worker of its own.")
    worker.set_defaults(run=cmd_worker)

    deliver = commands.add_parser(
        "deliver", help="deliver alerts from the alerts topic to the configured webhooks",
        description="Run the alert-delivery app (Faust) in its own consumer group "
        "(delivery.group_id, default <group_id>-delivery): read the alerts topic and POST "
        "each alert to every webhook of sinks.webhooks in its format (driftline, "
        "alertmanager, slack or pagerduty), signed with HMAC-SHA256 when a secret is set; "
        "retry with backoff (honouring Retry-After) and park what cannot be delivered on the "
        "dead-letter topic with the reason. Offsets are committed only after delivery or "
        "parking, so a restart loses nothing; Alertmanager receivers also get every firing "
        "alert again each resend_interval_s. Serves /healthz on delivery.web_host:"
        "delivery.web_port (default 127.0.0.1:9465). SIGTERM stops it cleanly.")
    deliver.set_defaults(run=cmd_deliver)

    up = commands.add_parser(
        "up", help="start the embedded stack (Tansu broker, Redis), a worker and the dashboard",
        description="Start a Tansu Kafka broker and a redis-server on free loopback ports, "
        "create the topics and run a worker, whose web port serves the live dashboard, "
        "/metrics and the probes (web.port, default 8765; a free port if that one is busy; "
        "-1 = none), and, when webhooks are configured (sinks.webhooks), `driftline deliver`; "
        "prints the addresses. "
        "Ctrl-C or SIGTERM stops all of them (they also stop if this process is killed).")
    up.set_defaults(run=cmd_up)

    dashboard = commands.add_parser(
        "dashboard", help="serve the live web dashboard against a running stack",
        description="Serve the live dashboard: models, drift statistics over time, open and "
        "recent alerts, label coverage and throughput, pushed to the page (server-sent "
        "events) as the workers write the live view in Redis. Reads the configured redis_url "
        "and group_id (e.g. DRIFTLINE_REDIS_URL=<the Redis `driftline up` printed>); listens "
        "on web.host:web.port (DRIFTLINE_WEB_HOST/PORT, default 127.0.0.1:8765; every "
        "worker serves the same page on its own web port) with /healthz and /readyz. "
        "Ctrl-C stops it.")
    dashboard.add_argument("--port", type=int, help="port to listen on (0 = any free port; "
                           "default: web.port)")
    dashboard.set_defaults(run=cmd_dashboard)

    demo = commands.add_parser(
        "demo", help="embedded stack + a simulated model service with a planted drift",
        description="Start the embedded stack and a worker (and `driftline deliver` when "
        "webhooks are configured), publish a simulated credit-risk "
        "model's predictions and labels with a drift at a printed point, and print alerts as "
        "they arrive on the alerts topic; the live dashboard's URL is printed first. Ends "
        "with a summary; exit code 0 when the planted drift was detected after the drift "
        "point and no drift alert fired before it.")
    demo.add_argument("--events", type=int, default=60_000, help="predictions to publish "
                      "(default 60,000: under a minute)")
    demo.add_argument("--rate", type=float, default=4000.0,
                      help="predictions per second (default 4000)")
    demo.add_argument("--scenario", default="mean_shift", choices=SCENARIOS,
                      help="what drift to plant (default mean_shift)")
    demo.add_argument("--stay", action="store_true", help="after the last prediction, keep "
                      "the stack and dashboard up until Ctrl-C, then print the summary")
    demo.set_defaults(run=cmd_demo)

    replay = commands.add_parser(
        "replay", help="run the monitor over JSON-lines files, without Kafka",
        description="Offline mode, the worker's monitor without Kafka or Redis: each line of "
        "the predictions file is treated like one Kafka message (an event or an array of "
        "events); with --labels, labels are joined to their predictions in event-time order "
        "as the worker joins them. Alerts are written as JSON lines, the same events the "
        "worker publishes on the alerts topic.")
    replay.add_argument("--predictions", type=Path, required=True, help="predictions JSONL "
                        "('-': standard input; the progress line then has no ETA)")
    replay.add_argument("--labels", type=Path, help="labels JSONL (optional): joined with the "
                        "predictions in event-time order for performance, concept-drift and "
                        "retrain checks")
    replay.add_argument("--control", type=Path, help="control commands JSONL (optional), e.g. "
                        "the ticks a worker published on the control topic: each is read "
                        "after the prediction lines its predictions_offset counts, so quiet "
                        "models close their windows and raise no_data as they did live")
    replay.add_argument("--retrain-out", type=Path,
                        help="where to write retrain requests (JSONL; default: not written)")
    replay.add_argument("--out", type=Path, required=True, help="where to write alerts (JSONL)")
    replay.add_argument("--deadletter", type=Path,
                        help="where to write dead letters (JSONL; default: not written)")
    replay.add_argument("--audit-out", type=Path, help="where to write the audit records "
                        "(JSONL; default: not written): the settings hash, each reference set, "
                        "alert and retrain request, as the worker publishes them on the audit "
                        "topic")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.add_argument("--report", type=Path, help="also write the run's HTML report here "
                        "(one self-contained page: models, windows, alerts with their "
                        "explanations and histograms, performance over time)")
    replay.add_argument("--summary", type=Path, help="also write the run summary (JSON) here: "
                        "with the alerts, what `driftline report` draws the page from")
    replay.set_defaults(run=cmd_replay)

    report = commands.add_parser(
        "report", help="write the HTML report of a replay from its alerts and summary",
        description="Write one self-contained HTML page (no network needed to open it) from "
        "the alerts a replay wrote (--out of `driftline replay`, or any file of alert events, "
        "one per line) and the run summary it wrote with --summary: models, windows, each "
        "alert with its explanation, reference vs window histograms of the features at each "
        "alert, drift statistics and performance over time. Without --summary the page shows "
        "the models and alerts only. `driftline replay --report` writes the same page "
        "directly.")
    report.add_argument("--alerts", type=Path, required=True, help="alert events (JSONL)")
    report.add_argument("--summary", type=Path,
                        help="the run summary (JSON) of `driftline replay --summary`")
    report.add_argument("--out", type=Path, required=True, help="where to write the page")
    report.set_defaults(run=cmd_report)

    simulate = commands.add_parser(
        "simulate", help="write a synthetic scenario: predictions, labels, truth",
        description="Write OUT/predictions.jsonl, OUT/labels.jsonl and OUT/truth.json (the "
        "planted drift points) for a synthetic credit-risk model with 13 features.")
    simulate.add_argument("--scenario", required=True, choices=SCENARIOS)
    simulate.add_argument("--events", type=_count, default=100_000,
                          help="number of predictions (default 100,000)")
    simulate.add_argument("--out", type=Path, required=True, help="output directory")
    simulate.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    simulate.add_argument("--label-fraction", type=float, default=1.0,
                          help="share of predictions that get a label (default 1.0)")
    simulate.add_argument("--label-delay", type=int, default=500,
                          help="label arrives this many events after its prediction (default 500)")
    simulate.set_defaults(run=cmd_simulate)

    tail = commands.add_parser(
        "tail", help="print alerts from the alerts topic, colored, as they arrive",
        description="Read the alerts topic like any consumer (no consumer group) and print "
        "each alert on two lines: status, severity, kind, model, feature, statistic vs "
        "threshold, then the explanation. Ctrl-C stops.")
    tail.add_argument("--from-beginning", action="store_true",
                      help="start at the oldest alert kept by Kafka (default: only new ones)")
    tail.add_argument("--limit", type=int, help="stop after this many alerts")
    tail.set_defaults(run=cmd_tail)

    status_cmd = commands.add_parser(
        "status", help="per-model summary: events, windows, open alerts, what drifts now",
        description="Read the live view the workers keep in Redis (configured redis_url and "
        "group_id) and print one line per model version: events seen, windows closed, the "
        "last window's end, open alerts and the tests drifting in the last window; then, once "
        "labels join, one line per model: label coverage, joined labels, median label delay, "
        "the last window's accuracy (or MAE), the label-free estimate and the weakest segment.")
    status_cmd.set_defaults(run=cmd_status)

    add_reference_commands(commands)
    add_audit_command(commands)

    rebaseline = commands.add_parser(
        "rebaseline", help="accept the new normal: restart a model's reference",
        description="Publish a control event that makes the workers forget a model's "
        "reference (one version, or all of them): its open alerts are resolved and the next "
        "reference_size events become the new reference. Use it after a drift you have "
        "decided is the new normal.")
    rebaseline.add_argument("--model", required=True, help="model_id")
    rebaseline.add_argument("--version", help="model_version (default: every version)")
    rebaseline.add_argument("--reason", default="requested by an operator",
                            help="recorded in the resolution alerts and the audit trail")
    rebaseline.add_argument("--by", help="who asks, as the audit trail records it (default: "
                            "user@host of this shell)")
    rebaseline.set_defaults(run=cmd_rebaseline)

    bench = commands.add_parser("bench", help="benchmarks that print figures",
                                description="Benchmarks on this machine; they print figures "
                                "next to a reference measured in the same run.")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    throughput = benches.add_parser(
        "throughput", help="worker events/s next to raw consume+decode on the same topic; "
        "20 models next to 1",
        description="Start the embedded stack. For each message shape (1 and 100 events per "
        "message) and each round: fill a fresh one-partition topic with one model's synthetic "
        "predictions and time a driftline worker over it, with a bare confluent-kafka "
        "consume(5000)+orjson loop over the same messages just before and just after (the "
        "reference: both runs as one rate); then fill another with the same number of events "
        "from --models models (model-00, model-01, ...: each its own stationary stream, keyed "
        "by model_id) and time a worker over it. Prints per-round figures, the ratios worker "
        "/ raw and N-model / 1-model, and their min/median over --rounds. By default the "
        "steady state is timed: each stream starts with an untimed warm-up in which every "
        "model collects its reference, closes it (calibrating its tests once) and tests one "
        "window; the worker reads it, the raw consumer starts after it. "
        "DRIFTLINE_REFERENCE_SIZE and DRIFTLINE_WINDOW_SIZE are honoured.")
    throughput.add_argument("--events", type=_count, default=200_000, help="measured events "
                            "per round and stream (default 200,000)")
    throughput.add_argument("--rounds", type=_count, default=3, help="rounds (default 3)")
    throughput.add_argument("--events-per-message", type=_count, nargs="+", default=[1, 100],
                            metavar="N", help="message shapes to measure (default: 1 100)")
    throughput.add_argument("--models", type=_count, default=20, help="models of the many-model "
                            "stream (default 20; 1 skips it)")
    throughput.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=True,
                            help="time the steady state after an untimed warm-up (default); "
                            "--no-warmup times whole streams, every model's reference and "
                            "calibration included")
    throughput.set_defaults(run=cmd_bench_throughput)
    replay_bench = benches.add_parser(
        "replay", help="offline replay events/s, in-process and as a whole `driftline replay` "
        "process, next to a bare read+orjson of the same file",
        description="Write a stationary scenario to a temporary file, then, --rounds times, "
        "time a bare line-by-line orjson.loads of it, replay() over it in this process, and "
        "a whole `driftline replay` process over it (wall time, interpreter start-up and "
        "imports included; byte code cached, as an installed package has it, even under "
        "PYTHONDONTWRITEBYTECODE), then the bare read again. Prints both ratios to the bare "
        "reads (before and after, as one rate) per round and min/median.")
    replay_bench.add_argument("--events", type=_count, default=200_000,
                              help="events (default 200,000)")
    replay_bench.add_argument("--rounds", type=_count, default=3, help="rounds (default 3)")
    replay_bench.set_defaults(run=cmd_bench_replay)
    step_bench = benches.add_parser(
        "step", help="CPU µs/event of the partition step, with and without segments, next "
        "to orjson.loads of the same messages",
        description="Encode a stationary scenario (one event per message) and a copy whose "
        "events name one of --segments segment values, then, --rounds times, time in CPU "
        "seconds: orjson.loads of every message, the partition step over the plain stream "
        "and over the segmented one (fresh state, worker.batch_size messages per step, "
        "labels' pending predictions kept in memory). The steady state is timed, after "
        "--warmup events in which every segment collects its reference and calibrates its "
        "tests (their cost is shown in brackets). Prints µs/event and ratios to "
        "orjson.loads per round, then min/median.")
    step_bench.add_argument("--events", type=_count, default=200_000,
                            help="timed events (default 200,000)")
    step_bench.add_argument("--warmup", type=int, default=150_000,
                            help="events fed before the timed ones (default 150,000)")
    step_bench.add_argument("--segments", type=_count, default=20,
                            help="segment values (default 20)")
    step_bench.add_argument("--rounds", type=_count, default=3, help="rounds (default 3)")
    step_bench.set_defaults(run=cmd_bench_step)
    join_bench = benches.add_parser(
        "join", help="worker events/s with labels joined, next to raw consume+orjson; "
        "Redis memory per million pending predictions",
        description="Fill fresh predictions and labels topics (70% labelled, 500 events "
        "late, 100 events per message) on the embedded stack, then time a driftline worker "
        "(drift detectors, the Redis join, performance, concept drift, label-free estimate, "
        "challengers) over both, with a bare consume(5000)+orjson loop over the same messages "
        "just before and just after (the reference: both runs as one rate), --rounds "
        "times; then measure the Redis bytes (MEMORY USAGE) of one million pending "
        "predictions.")
    join_bench.add_argument("--events", type=int, default=200_000,
                            help="predictions per round (default 200,000)")
    join_bench.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    join_bench.set_defaults(run=cmd_bench_join)
    quality = benches.add_parser(
        "quality", help="drifts detected, delays and false alarms, driftline vs river",
        description="Feature drift: 20-feature streams (mean shifts 0.25/0.5/1σ, variance "
        "×1.5/×2, category shares, a new category, gradual, joint) and a long stationary "
        "stream through ModelMonitor, printing detection, mean/max delay, false alarms per "
        "million events and µs/event. Concept drift: error streams of online classifiers on "
        "river's SEA, Agrawal, Hyperplane and STAGGER with abrupt and gradual drifts, scoring "
        "driftline's default error-stream detector and river's detectors by MCC and delay. "
        "Segments: the 20-feature model with 20 segment values through the whole version's "
        "monitor and its segments' (budget split as the worker splits it): false alarms "
        "over --segment-events stationary events per seed, one segment's 1σ shift "
        "detected, CPU µs/event with and without the segments, memory per segment monitor. "
        "Label-side false alarms: stationary streams of a calibrated classifier for each base "
        "error rate and label coverage through the performance monitor (window tests, concept "
        "drift) and the label-free estimator, printing false alarms per 10M labelled events.")
    quality.add_argument("--part", choices=["all", "features", "concept", "segments", "labels"],
                         default="all")
    quality.add_argument("--seeds", type=int, default=3, help="seeds per stream (default 3)")
    quality.add_argument("--stationary-events", type=int, default=10_000_000,
                         help="events of the stationary stream per seed (default 10M)")
    quality.add_argument("--segment-events", type=int, default=10_000_000,
                         help="events of the 20-segment stationary stream per seed "
                         "(default 10M)")
    quality.add_argument("--concept-events", type=int, default=100_000,
                         help="events per concept stream (default 100,000)")
    quality.add_argument("--concept-detectors", nargs="+", metavar="NAME",
                         choices=["ADWIN", "DDM", "EDDM", "HDDM_A", "HDDM_W", "PageHinkley",
                                  "KSWIN"],
                         help="river detectors to compare with (default: all but KSWIN, "
                         "which costs ~600 µs/event)")
    quality.add_argument("--label-events", type=_count, default=10_000_000,
                         help="labelled events per error rate × coverage of the label-side "
                         "false-alarm part, per seed (default 10M)")
    quality.add_argument("--label-seeds", type=_count, default=1,
                         help="seeds per error rate × coverage of the label-side false-alarm "
                         "part (default 1)")
    quality.add_argument("--label-rates", type=_error_rate, nargs="+", metavar="RATE",
                         default=[0.01, 0.05, 0.1, 0.2, 0.4],
                         help="base error rates of the label-side false-alarm part "
                         "(default 0.01 0.05 0.1 0.2 0.4)")
    quality.add_argument("--label-coverages", type=_share, nargs="+", metavar="SHARE",
                         default=[0.3, 0.6, 1.0],
                         help="label coverages of the label-side false-alarm part "
                         "(default 0.3 0.6 1.0)")
    quality.set_defaults(run=cmd_bench_quality)
    ticks = benches.add_parser(
        "ticks", help="CPU µs/event of the partition step without and with ticks, next to "
        "a bare orjson.loads of the same messages",
        description="In-process, no Kafka: a stationary stream of --models models (100 "
        "events per message) goes through the partition step in steps of worker.batch_size "
        "events after an untimed warm-up (every model collects its reference). Each round "
        "times, in CPU seconds, a bare orjson.loads of the messages, the step without ticks "
        "and the step with a tick every --ticks-every steps (no model is quiet: the "
        "bookkeeping every run and tick pays). Prints µs/event, the ratios and their "
        "min/median over --rounds.")
    ticks.add_argument("--events", type=_count, default=200_000,
                       help="measured events per round (default 200,000)")
    ticks.add_argument("--models", type=_count, default=20, help="models (default 20)")
    ticks.add_argument("--rounds", type=_count, default=3, help="rounds (default 3)")
    ticks.add_argument("--ticks-every", type=int, default=1, metavar="N",
                       help="a tick after every N-th step (default 1; 0: time no ticks)")
    ticks.set_defaults(run=cmd_bench_ticks)
    return parser


def _configured_log_format(config: Path | None) -> str:
    """``log.format`` of the settings; ``text`` when they do not load (the command says why)."""
    from streams.settings import load_settings

    # Quiet: the command loads them again, and logs their warnings in the chosen format.
    logging.disable(logging.CRITICAL)
    try:
        return load_settings(config).log.format
    except (DriftlineError, ConfigurationError):
        return "text"
    finally:
        logging.disable(logging.NOTSET)


def log_level(args: argparse.Namespace) -> str:
    """The ``--log-level`` given, else INFO, or WARNING for a bench.

    A bench prints tables, which the INFO lines of the workers it starts would interleave.

    >>> parser = build_parser()
    >>> [log_level(parser.parse_args(argv)) for argv in (["status"], ["bench", "replay"],
    ...  ["--log-level", "INFO", "bench", "replay"], ["bench", "replay", "--log-level", "DEBUG"])]
    ['INFO', 'WARNING', 'INFO', 'DEBUG']
    """
    level: str | None = args.log_level
    return level or ("WARNING" if args.command == "bench" else "INFO")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``driftline`` console script."""
    args = build_parser().parse_args(argv)
    args.log_level = log_level(args)
    configure_logging(args.log_level, args.log_format or _configured_log_format(args.config))
    try:
        code: int = args.run(args)
    except (DriftlineError, ConfigurationError) as exc:
        print(f"driftline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
