"""``driftline audit``: a model's decisions, read back from the audit topic.

The topic is read from its beginning without joining a group. On Tansu the
reported high watermark is wrong, so the end of the topic cannot be asked for:
reading stops once no record has arrived for ``--idle`` seconds. A model's
history is its own records (of one version, with ``--version``, and those
covering every version) and the ``config`` records of the partitions they came
from, each ``audit_id`` once (outputs are at-least-once and Tansu never
compacts), oldest first.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from streams.core.audit import CONFIG
from streams.settings import Settings, load_settings


def read_audit(settings: Settings, idle_s: float = 2.0, first_s: float = 10.0,
               timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Every record on the audit topic, read until it stays quiet for ``idle_s`` seconds.

    The first fetch of a fresh reader can take seconds: until a first record
    arrives, the reader waits up to ``first_s`` (an empty topic costs that long).
    """
    from streams.runtime.reader import TopicReader

    reader = TopicReader(settings.bootstrap_servers, [settings.topics.name("audit")],
                         kafka=settings.kafka)
    records: list[dict[str, Any]] = []
    started = time.monotonic()
    deadline = started + timeout_s
    quiet_since = started
    try:
        while time.monotonic() < deadline:
            batch = reader.poll(0.2, max_records=5000)
            now = time.monotonic()
            if batch:
                records += [record for _, record in batch]
                quiet_since = now
            elif now - quiet_since >= (idle_s if records else max(idle_s, first_s)):
                break
    finally:
        reader.close()
    return records


def model_history(records: Iterable[dict[str, Any]], model_id: str,
                  model_version: str | None = None) -> list[dict[str, Any]]:
    """A model's records and the settings records of its partitions, once each, oldest first.

    ``records`` in the order read: each partition's in the order they were published.

    Examples
    --------
    >>> records = [
    ...     {"audit_id": "c", "kind": "config", "model_id": "*", "model_version": None,
    ...      "partition": 1, "ts": 1.0},
    ...     {"audit_id": "r", "kind": "reference_set", "model_id": "m", "model_version": "v1",
    ...      "partition": 1, "ts": 2.0},
    ...     {"audit_id": "r", "kind": "reference_set", "model_id": "m", "model_version": "v1",
    ...      "partition": 1, "ts": 2.5},
    ...     {"audit_id": "o", "kind": "reference_set", "model_id": "other",
    ...      "model_version": "v1", "partition": 0, "ts": 3.0}]
    >>> [r["audit_id"] for r in model_history(records, "m")]
    ['c', 'r']
    """
    records = list(records)
    own = [r for r in records if r.get("model_id") == model_id
           and (model_version is None or r.get("model_version") in (model_version, None))]
    partitions = {r.get("partition") for r in own}
    own_ids = set(map(id, own))
    wanted = [r for r in records if id(r) in own_ids or (r.get("kind") == CONFIG
                                                         and r.get("partition") in partitions)]
    # A partition's records are in the order they were decided; partitions merge by time.
    by_partition: dict[Any, list[dict[str, Any]]] = {}
    for record in wanted:
        by_partition.setdefault(record.get("partition"), []).append(record)
    seen: set[str] = set()
    history = []
    for record in heapq.merge(*by_partition.values(),
                              key=lambda r: float(r.get("ts") or 0.0)):
        if record["audit_id"] not in seen:
            seen.add(record["audit_id"])
            history.append(record)
    return history


def format_record(record: dict[str, Any]) -> str:
    """One record on one line: time, kind, version, the decision.

    >>> format_record({"ts": 0, "kind": "rebaseline", "model_version": None,
    ...                "summary": "m: re-baselined by ana"})
    '1970-01-01T00:00:00Z  rebaseline       *           m: re-baselined by ana'
    """
    when = datetime.fromtimestamp(float(record.get("ts") or 0.0), UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    return (f"{when}  {record['kind']:16} {record.get('model_version') or '*':11} "
            f"{record.get('summary', '')}")


def print_history(history: list[dict[str, Any]], model_id: str, out: IO[str]) -> None:
    """The history as lines, with each record's key facts under it."""
    if not history:
        print(f"no audit record of model {model_id!r} on the audit topic", file=out)
        return
    for record in history:
        print(format_record(record), file=out)
        details = record.get("details") or {}
        if record["kind"] == CONFIG:
            print(f"    settings sha256 {details.get('settings_sha256')}", file=out)
        elif record["kind"] == "reference_set":
            source = details.get("source") or {}
            facts = (f"file {source.get('path')} sha256 {source.get('sha256')} "
                     f"{source.get('bytes'):,} bytes" if source.get("type") == "file"
                     else f"first {source.get('events'):,} events")
            print(f"    {facts}; learned sha256 {details.get('learned_sha256')}", file=out)
        elif record["kind"] == "alert" and details.get("explanation"):
            print(f"    {details['explanation']}", file=out)


def cmd_audit(args: argparse.Namespace) -> int:
    """Print a model's audit history from the audit topic."""
    import orjson

    settings = load_settings(args.config)
    history = model_history(read_audit(settings, idle_s=args.idle), args.model, args.version)
    if args.json:
        sys.stdout.buffer.write(b"".join(orjson.dumps(r) + b"\n" for r in history))
    else:
        print_history(history, args.model, sys.stdout)
    return 0


def add_audit_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``audit`` on the CLI's subcommand parsers."""
    audit = subparsers.add_parser(
        "audit", help="print a model's audit history: settings, references, re-baselines, "
        "alerts, retrain requests",
        description="Read the audit topic (driftline.audit) from its beginning and print, "
        "oldest first, every decision recorded for a model: the settings hash in force on "
        "its partition, each reference set (first events, or a file with its SHA-256 and "
        "size), re-baselines with who asked and why, alerts firing and resolving, retrain "
        "requests. Each record is shown once, however often it was published. Reading stops "
        "when no record has arrived for --idle seconds (before the first record, for up to "
        "10 seconds).")
    audit.add_argument("--model", required=True, help="model_id")
    audit.add_argument("--version", help="model_version (default: every version); records "
                       "about every version are shown too")
    audit.add_argument("--json", action="store_true", help="print the records as JSON lines")
    audit.add_argument("--idle", type=float, default=2.0,
                       help="stop reading after this many seconds without a record (default 2)")
    audit.set_defaults(run=cmd_audit)


__all__ = ["add_audit_command", "format_record", "model_history", "read_audit"]
