"""The partition step: ``(state, consumed batch of one partition) -> (state, outputs, offsets)``.

One step takes the messages consumed from one partition number of the three
co-partitioned input topics (predictions, labels, control), in the order they
were consumed, and runs them through the partition's engines: predictions in
runs (decoded, grouped per model, fed to the monitors and stored for the
label join), then the labels of the same run (a label usually finds a
prediction of its own batch), and a control command between runs, in order.
It returns what to publish and the next offset of every topic it read.

The Kafka worker and offline replay both only drive this step and route its
outputs. The step does no I/O of its own except through the pending store it
is given (idempotent writes of pending predictions and label claims, see
:mod:`streams.state.pending`).

**Together or not at all.** The step changes ``state`` in place and advances
``state.offsets`` only at its very end. A step that raises has left the state
half-applied: the caller must discard it and restore the partition from its
last checkpoint (:class:`~streams.runtime.worker.Worker` does), so nothing
half-applied is ever checkpointed.

**Input never makes it raise.** A message is decoded and checked before any
state changes, and every refusal becomes a dead letter: what a check raises
anyway refuses that message (``internal_error``, naming the exception), and a
dead letter that cannot be built is replaced by one that says why. A fault of
the engines or the pending store still raises, with the contract above.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from operator import methodcaller
from typing import Any, cast

import msgspec
import numpy as np
from numpy.typing import NDArray

from streams.core.audit import (
    alert_record,
    config_record,
    rebaseline_record,
    reference_record,
    retrain_record,
    settings_hash,
)
from streams.core.label_columns import message_indices
from streams.core.labels import LabelBatch, LabelStep
from streams.core.messages import LineRun
from streams.core.partition import InputMessage, PartitionState, StepOutput
from streams.core.rows import group_rows, take_rows, uniform_models
from streams.ingest.batch import BatchDecoder, DecodedBatch
from streams.ingest.bounded import reencode
from streams.ingest.columnar import struct_columns
from streams.ingest.deadletter import Source, dead_letter, kept_key
from streams.ingest.decode import (
    CONTROL,
    LABEL,
    NON_FINITE,
    PREDICTION,
    TICK,
    Decoded,
    Rejected,
    decode_safely,
    unexpected,
)
from streams.ingest.mapping import MappingError, RecordMapper, input_topics
from streams.settings import Settings
from streams.state.pending import ColumnarPendingStore

STEP_BYTES = "step_bytes"
_MAX_MODEL_ID = 256
_EVERYTHING_READ = 2**63 - 1


class PartitionStep:
    """Run consumed batches of one partition through its engines.

    Parameters
    ----------
    settings
        The frozen settings (topic names, limits, batch size).
    store
        Where predictions wait for labels (Redis in the worker, memory in replay).
    topics
        Names of the predictions, labels and control inputs, when not the
        configured topics (replay names its files).
    """

    def __init__(self, settings: Settings, store: ColumnarPendingStore,
                 topics: tuple[str, str, str] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.predictions_topic, self.labels_topic, self.control_topic = (
            topics or input_topics(settings))
        # Mapped topics (the users' own layouts) take their own, slower path.
        self.mapped = {entry.topic: RecordMapper(entry, settings.limits)
                       for entry in settings.inputs
                       if entry.topic in (self.predictions_topic, self.labels_topic)}
        self.config_hash = settings_hash(settings)

    def __call__(self, state: PartitionState,
                 messages: Sequence[InputMessage]) -> StepOutput:
        """Apply ``messages`` (one partition, consumed order) to ``state``; return the outputs."""
        output = StepOutput()
        if not state.config_announced:
            output.audit.append(config_record(self.settings, state.partition, state.offsets,
                                              self.config_hash))
            state.config_announced = True
        # Read once: the offset of every message, for pending rows and label claimants.
        run = messages if isinstance(messages, LineRun) else None
        offsets = run.offsets() if run is not None else _offsets(messages)
        predictions = BatchDecoder(PREDICTION, self.settings.limits, state.monitors.typed)
        labels = BatchDecoder(LABEL, self.settings.limits)
        add_prediction, add_label = predictions.add, labels.add
        predictions_topic, labels_topic = self.predictions_topic, self.labels_topic
        mapped = {topic: (mapper, predictions if mapper.kind == PREDICTION else labels)
                  for topic, mapper in self.mapped.items()}
        if mapped:
            # A mapped topic never takes the envelope arms below ("" names no Kafka topic).
            predictions_topic = "" if predictions_topic in mapped else predictions_topic
            labels_topic = "" if labels_topic in mapped else labels_topic
        # Many small model groups cost more per event than one large one: grow the run.
        limit = self.settings.worker.step_events(len(state.monitors))
        # Events are counted, and bytes too: wide events decode to far more memory each.
        max_bytes = self.settings.limits.max_step_bytes
        prediction_bytes = label_bytes = 0
        last: dict[str, InputMessage] = {}      # the last message read of each topic
        counts = dict.fromkeys((self.predictions_topic, self.labels_topic, self.control_topic), 0)
        def flush(with_labels: bool, over_bytes: bool) -> None:
            # Bound the decoded events held at once; labels follow the predictions before them.
            nonlocal prediction_bytes, label_bytes
            if over_bytes:
                output.limited[STEP_BYTES] += 1
            self._predictions(state, messages, offsets, predictions.take(), output)
            prediction_bytes = 0
            if with_labels:
                self._labels(state, messages, offsets, labels.take(), output)
                label_bytes = 0

        start = 0
        if predictions_topic and len(messages) > 1 and (
                run.name == predictions_topic if run is not None else
                list(map(_TOPIC, messages)).count(predictions_topic) == len(messages)):
            values = (cast("list[bytes | None]", run.values) if run is not None else
                      list(map(_VALUE, messages)))
            keys: list[str | bytes | None] = ([None] * len(run) if run is not None else
                                              list(map(_KEY, messages)))
            start = self._single_events(values, keys, predictions, limit, max_bytes,
                                        lambda: flush(False, False))
            if start:
                last[predictions_topic] = messages[start - 1]
                counts[predictions_topic] = start
        # By index: a LineRun makes a message only for the lines the loop reads.
        for position in range(start, len(messages)):
            message = messages[position]
            topic = message.topic()
            if topic == predictions_topic:
                value = message.value()
                prediction_bytes += len(value) if value else 0
                if (add_prediction(value, position, message.key()) >= limit
                        or prediction_bytes >= max_bytes):
                    flush(False, prediction_bytes >= max_bytes)
            elif topic == labels_topic:
                value = message.value()
                label_bytes += len(value) if value else 0
                add_label(value, position, message.key())
                if label_bytes >= max_bytes:
                    flush(True, True)
            elif topic == self.control_topic:
                flush(True, False)
                self._control(state, message, output)
            elif topic in mapped:
                mapper, decoder = mapped[topic]
                events = decoder.extend(_map_safely(mapper, message), position)
                size = len(message.value() or b"")
                if decoder is predictions:
                    prediction_bytes += size
                    if events >= limit or prediction_bytes >= max_bytes:
                        flush(False, prediction_bytes >= max_bytes)
                else:
                    label_bytes += size
                    if label_bytes >= max_bytes:
                        flush(True, True)
            else:
                continue
            last[topic] = message
            counts[topic] += 1
        flush(True, False)
        self._audit(output, state.partition)
        self.store.flush()
        for topic, message in last.items():
            if message.offset() is not None:
                state.offsets[topic] = _offset(message) + 1
        output.messages.update({topic: n for topic, n in counts.items() if n})
        return output

    @staticmethod
    def _single_events(values: list[bytes | None], keys: list[str | bytes | None],
                       decoder: BatchDecoder, limit: int, max_bytes: int,
                       flush: Callable[[], None]) -> int:
        """Decode a batch of one-event prediction messages in runs; how many it took.

        The runs end where the message-by-message loop would flush (every ``limit``
        events, one per message), so both give the same steps. The first run a message
        of which :meth:`BatchDecoder.add_singles` refuses is left to that loop, from its
        first message on.
        """
        try:
            if sum(map(len, cast("list[bytes]", values))) >= max_bytes:
                return 0
        except TypeError:           # None (a tombstone) is refused message by message
            return 0
        taken = 0
        while taken < len(values):
            end = min(taken + limit, len(values))
            if not decoder.add_singles(values[taken:end], taken, keys[taken:end]):
                break
            if end - taken >= limit:
                flush()
            taken = end
        return taken

    # -- predictions -------------------------------------------------------------------------
    def _predictions(self, state: PartitionState, messages: Sequence[InputMessage],
                     offsets: NDArray[np.int64], decoded: DecodedBatch,
                     output: StepOutput) -> None:
        for origin, rejected in decoded.rejected:
            message = messages[origin]
            self._dead_letter(output, rejected, message)
            key = message.key()
            # A mapped topic's key need not be the model id.
            if (rejected.error == NON_FINITE and key and len(key) <= _MAX_MODEL_ID
                    and message.topic() not in self.mapped):
                # Unparseable, but the key names the model: count it as its data quality.
                model_id = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
                state.monitors.note_rejected(model_id, rejected.path or "(event)")
        events = decoded.events
        if not events:
            return
        output.events += len(events)
        by_version = group_rows(events)
        uniform_models(events, by_version)
        groups = {key: take_rows(events, rows) for key, rows in by_version.items()}
        # A typed version's fields transposed once: its monitor's columns and its pending
        # rows read the same ones.
        fields = {key: struct_columns(group) for key, group in groups.items()
                  if type(group[0]) is not dict}
        result = state.monitors.process_groups(groups, fields)
        output.windows += result.windows
        if result.references:
            # A version's reference is set before any of its alerts.
            self._audit(output, state.partition)
            output.audit += [reference_record(model_id, version, state.partition, source,
                                              window, digest)
                             for model_id, version, source, window, digest in result.references]
        output.alerts += result.alerts
        output.suppressed.update(result.suppressed)
        output.limited.update(result.limited)
        if result.refused:
            by_version = self._refuse(output, messages, decoded, result.refused, by_version)
        for retired in result.retired:
            output.alerts += state.labels.forget(
                retired.model_id, retired.model_version, retired.explanation, retired.at_ts,
                whole_model=not state.monitors.has_model(retired.model_id))
        output.retired += result.retired
        for model_id, model_version, report in result.reports:
            monitor = state.monitors.monitor(model_id, model_version)
            output.reports.append((model_id, model_version, report,
                                   monitor.events if monitor else 0))
        for version, event, problem in result.problems:
            origin = decoded.origins[by_version[version][problem.row]]
            payload, clipped = reencode(event, msgspec.json.encode)
            self._dead_letter(output, Rejected(problem.error, problem.reason, payload,
                                               path=problem.path, clipped=clipped),
                              messages[origin])
        event_offsets = offsets[np.asarray(decoded.origins)]
        # Rows are in stream order: a version's last row holds its newest offset.
        output.alerts += state.monitors.heard({key: int(event_offsets[rows[-1]])
                                               for key, rows in by_version.items()})
        for model_id, (rows, one) in _by_model(by_version).items():
            if one is not None:
                # The model's one version: its group and fields as its monitor had them.
                group, group_fields = groups[one], fields.get(one)
            else:
                group, group_fields = take_rows(events, rows), None
            step = state.labels.on_predictions(model_id, group, event_offsets[rows],
                                               group_fields)
            self.store.put(state.partition, model_id, step.pending[model_id])
            self._route(step, output)
            for waiting_model, waiting in step.retry.items():
                self._claim(state, waiting_model, waiting, output)

    def _refuse(self, output: StepOutput, messages: Sequence[InputMessage],
                decoded: DecodedBatch, refused: dict[tuple[str, str], tuple[str, str]],
                by_version: dict[tuple[str, str], list[int]]) -> dict[tuple[str, str], list[int]]:
        """Dead-letter the events of versions a limit refused; the rows of the others."""
        for version, (error, reason) in refused.items():
            rows = by_version[version]
            output.events -= len(rows)
            for row in rows:
                self._dead_letter(output, Rejected(error, reason, msgspec.json.encode(
                    decoded.events[row])), messages[decoded.origins[row]])
        return {version: rows for version, rows in by_version.items() if version not in refused}

    # -- labels ------------------------------------------------------------------------------
    def _labels(self, state: PartitionState, messages: Sequence[InputMessage],
                offsets: NDArray[np.int64], decoded: DecodedBatch, output: StepOutput) -> None:
        for origin, rejected in decoded.rejected:
            self._dead_letter(output, rejected, messages[origin])
        if not decoded.events:
            return
        output.labels += len(decoded.events)
        # A label's claimant is its message's offset and its index within the message.
        requests = state.labels.requests(decoded.events, offsets[np.asarray(decoded.origins)],
                                         message_indices(decoded.origins))
        for model_id, group in requests.items():
            self._claim(state, model_id, group, output)

    def _claim(self, state: PartitionState, model_id: str, requests: LabelBatch,
               output: StepOutput) -> None:
        claimed = self.store.claim(state.partition, model_id, requests.event_ids,
                                   requests.claimants())
        self._route(state.labels.on_claims(model_id, requests, claimed), output)

    def _route(self, step: LabelStep, output: StepOutput) -> None:
        output.alerts += step.alerts
        output.retrain += step.retrain
        output.joined += step.joined
        output.label_reports += step.reports

    # -- control -----------------------------------------------------------------------------
    def _control(self, state: PartitionState, message: InputMessage,
                 output: StepOutput) -> None:
        decoded = decode_safely(message.value(), CONTROL, self.settings.limits)
        for rejected in decoded.rejected:
            self._dead_letter(output, rejected, message)
        for command in decoded.events:
            if command["command"] == TICK:
                self._tick(state, command, output)
                self._audit(output, state.partition)    # no_data alerts are decisions too
                continue
            # Otherwise "rebaseline": decode refuses any other command.
            alerts = state.monitors.rebaseline(
                command["model_id"], command.get("model_version"),
                command.get("reason") or "requested on the control topic", time.time())
            self._audit(output, state.partition)
            output.audit.append(rebaseline_record(
                command["model_id"], command.get("model_version"), state.partition, command,
                _offset(message), alerts))
            output.alerts += alerts
            output.rebaselines.append((command["model_id"], command.get("model_version"),
                                       len(alerts)))

    @staticmethod
    def _audit(output: StepOutput, partition: int) -> None:
        """Audit the alerts and retrain requests produced since the last call, in order."""
        alerts, retrain = output.audited
        output.audit += [alert_record(alert, partition) for alert in output.alerts[alerts:]]
        output.audit += [retrain_record(request, partition)
                         for request in output.retrain[retrain:]]
        output.audited[:] = [len(output.alerts), len(output.retrain)]

    def _tick(self, state: PartitionState, command: dict[str, Any], output: StepOutput) -> None:
        # Without an offset, a tick is past every prediction read so far.
        offset = command.get("predictions_offset")
        ticked = state.monitors.tick(command["ts"], _EVERYTHING_READ if offset is None else offset)
        output.ticks += 1
        output.windows += ticked.windows
        output.alerts += ticked.alerts
        output.limited.update(ticked.limited)
        for model_id, model_version, report in ticked.reports:
            monitor = state.monitors.monitor(model_id, model_version)
            output.reports.append((model_id, model_version, report,
                                   monitor.events if monitor else 0))

    def _dead_letter(self, output: StepOutput, rejected: Rejected,
                     message: InputMessage) -> None:
        timestamp_type, timestamp = message.timestamp()
        key = message.key()
        raw_key = key.encode() if isinstance(key, str) else key
        source = Source(message.topic() or "", message.partition() or 0, _offset(message),
                        raw_key, timestamp if timestamp_type else None)
        try:
            record = dead_letter(rejected, source)
        except Exception as exc:  # noqa: BLE001 - the last resort: the message still counts
            record = dead_letter(unexpected(exc, b""), Source(source.topic, source.partition,
                                                              source.offset))
        # Keyed by what the record keeps of the key: a 1 MB key would not fit the topic.
        output.dead_letters.append((kept_key(raw_key), record))


def _map_safely(mapper: RecordMapper, message: InputMessage) -> Decoded:
    """A mapped record's events and refusals; what mapping it raises refuses the record.

    A Schema Registry out of reach is no fault of the record: that still raises.
    """
    try:
        return mapper.map(message)
    except MappingError:
        raise
    except Exception as exc:  # noqa: BLE001 - the last resort, as for the envelope topics
        return Decoded([], [unexpected(exc, message.value() or b"")])


def _by_model(by_version: dict[tuple[str, str], list[int]]
              ) -> dict[str, tuple[list[int], tuple[str, str] | None]]:
    """Rows per model from rows per model version (a model's versions share its blob).

    With each model's rows, its version's key if it has just one in the step.
    """
    models: dict[str, tuple[list[int], tuple[str, str] | None]] = {}
    for key, version_rows in by_version.items():
        if key[0] in models:
            models[key[0]] = (sorted(models[key[0]][0] + version_rows), None)
        else:
            models[key[0]] = (version_rows, key)
    return models


_TOPIC, _VALUE, _KEY = methodcaller("topic"), methodcaller("value"), methodcaller("key")
_OFFSET = methodcaller("offset")


def _offset(message: InputMessage) -> int:
    offset = message.offset()
    return -1 if offset is None else offset


def _offsets(messages: Sequence[InputMessage]) -> NDArray[np.int64]:
    """Every message's offset (-1 where it has none): one C call per message when all have."""
    try:
        return np.fromiter(map(_OFFSET, messages), dtype=np.int64, count=len(messages))
    except TypeError:       # a message without an offset (one built by hand)
        return np.fromiter(map(_offset, messages), dtype=np.int64, count=len(messages))


__all__ = ["STEP_BYTES", "PartitionStep"]
