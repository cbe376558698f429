"""Create driftline's topics at start-up (idempotent).

The audit topic is created with ``cleanup.policy=compact``: its records are
kept for good (no time or size retention), and compaction only drops a record
published again under the same key (:mod:`streams.core.audit` explains the
keys). Tansu accepts the setting but never compacts.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# From where it is defined: confluent_kafka.admin re-exports it without marking it public.
from confluent_kafka.cimpl import NewTopic

from streams.errors import StackError
from streams.ingest.mapping import input_topics
from streams.runtime.connections import client_config, cluster_metadata
from streams.settings import TOPIC_ROLES, Settings

log = logging.getLogger(__name__)

AUDIT_TOPIC_CONFIG = {"cleanup.policy": "compact"}


def ensure_topics(settings: Settings, timeout_s: float = 15.0) -> list[str]:
    """Create every configured topic that does not exist yet; return the names created.

    Raises :class:`~streams.runtime.connections.UnreachableError` (a ``StackError``)
    naming the address when no broker answers.
    """
    existing = cluster_metadata(settings.bootstrap_servers, timeout_s, settings.kafka).topics
    # The joined topic is optional output: created only when it is switched on.
    wanted = [settings.topics.name(role) for role in TOPIC_ROLES
              if role != "joined" or settings.labels.joined_topic]
    missing = [name for name in wanted if name not in existing]
    # Partitions per topic: as listed, or as about to be created.
    partitions = {name: len(meta.partitions) for name, meta in existing.items()}
    partitions.update(dict.fromkeys(missing, settings.topics.partitions))
    for index, entry in enumerate(settings.inputs):
        # The users' own topics are theirs to create (partitions, retention, ACLs).
        if entry.topic not in partitions:
            raise StackError(f"inputs[{index}].topic: topic {entry.topic!r} does not exist; "
                             "create it (with as many partitions as the topic it is joined "
                             "with) or correct the name")
    _check_copartitioned(partitions, settings)
    if not missing:
        return []
    admin = AdminClient(client_config(settings.bootstrap_servers, settings.kafka))
    futures = admin.create_topics([
        NewTopic(name, settings.topics.partitions, settings.topics.replication_factor,
                 config=AUDIT_TOPIC_CONFIG if name == settings.topics.name("audit") else {})
        for name in missing])
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise StackError(f"cannot create topic {name}: {exc}") from exc
    log.info("created topics %s", created)
    return created


def _check_copartitioned(partitions: dict[str, int], settings: Settings) -> None:
    """Refuse predictions and labels topics with different partition counts.

    A model's labels join its predictions only when both land in the same
    partition number (same key, same partitioner, same count); otherwise every
    label would wait for a prediction that another partition holds.
    """
    names = list(input_topics(settings)[:2])
    counts = [partitions.get(name, 0) for name in names]
    if all(counts) and counts[0] != counts[1]:
        raise StackError(f"topics {names[0]} ({counts[0]} partitions) and {names[1]} "
                         f"({counts[1]} partitions) must have the same partition count: labels "
                         "join their predictions only within the same partition number")
