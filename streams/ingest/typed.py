"""Prediction events of models whose feature schema is known, decoded into typed structs.

Once a model version has a monitor, its feature names and kinds are known, and
decoding each event into a dict of features (the generic path of
:mod:`streams.ingest.batch`) is the largest cost left in a step: a dict and
its keys per event. Here each known model gets a ``msgspec.Struct`` type whose
fields are its features (numbers as ``float | None``, categories as
``str | bool | None``), tagged by ``model_id``, and one decoder takes the
tagged union of every known model. msgspec decodes a message straight into
these structs and checks every type on the way, so the columns can be built
without a per-value type check (:func:`streams.ingest.columnar.build_batch`).

Only exact matches take this path: a known model (the tag) and version,
features among the schema's (unknown fields refused), every value of its
feature's kind. Anything else (a new model or version, an extra feature, a
category sent as a number, a score of ``null``) is refused here and decoded by
the generic path, as if this module did not exist: both paths give the same
events, columns and dead letters (tested property by property).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, ClassVar

import msgspec

from detectors.batch import NUMERIC
from streams.ingest.batch import EventId, ModelVersion, Scalar, Timestamp

_VERSION = attrgetter("model_version")


class TypedEvent(msgspec.Struct, gc=False):
    """Base of the per-model event structs; ``model_id`` is their class attribute (the tag)."""

    model_id: ClassVar[str]
    model_key: ClassVar[bytes]
    """``model_id`` as the message key that names it (UTF-8), for the key check."""


class TypedModels:
    """Struct types and the decoder of every model version with a known schema.

    Examples
    --------
    >>> models = TypedModels()
    >>> models.register("m", "v1", {"age": "numeric", "plan": "categorical"})
    >>> [event] = models.decode(b'{"model_id":"m","model_version":"v1","event_id":"e",'
    ...                         b'"ts":1,"features":{"age":3},"prediction":0}')
    >>> event.model_id, event.ts, event.features.age, event.features.plan
    ('m', 1.0, 3.0, None)
    >>> models.decode(b'{"model_id":"m","model_version":"v2","event_id":"e",'
    ...               b'"ts":1,"features":{},"prediction":0}') is None   # unknown version
    True
    """

    def __init__(self) -> None:
        self._types: dict[str, tuple[type[msgspec.Struct], tuple[tuple[str, str], ...]]] = {}
        self._allowed: set[tuple[type[msgspec.Struct], str]] = set()
        self._decoder: msgspec.json.Decoder[Any] | None = None

    def __len__(self) -> int:
        return len(self._allowed)

    def register(self, model_id: str, model_version: str, schema: dict[str, str]) -> None:
        """Decode ``model_version``'s events typed from now on (the model's latest schema wins).

        A schema with a feature name that cannot be a struct field (``credit-score``,
        ``__init__``) leaves the model on the generic path.

        >>> models = TypedModels()
        >>> models.register("m", "v1", {"credit-score": "numeric"})
        >>> len(models)
        0
        """
        fields = tuple(schema.items())
        known = self._types.get(model_id)
        if known is None or known[1] != fields:
            if known is not None:
                # The model's other versions had the old schema: they go back to the generic path.
                self._allowed = {pair for pair in self._allowed if pair[0] is not known[0]}
                del self._types[model_id]
                self._decoder = None
            if not all(map(_field_name, schema)):
                return
            known = self._types[model_id] = (_event_type(model_id, fields), fields)
            self._decoder = None
        self._allowed.add((known[0], model_version))

    def forget(self, model_id: str, model_version: str | None = None) -> None:
        """Stop decoding a model's version (or all its versions) typed."""
        known = self._types.get(model_id)
        if known is None:
            return
        self._allowed = {pair for pair in self._allowed if pair[0] is not known[0]
                         or model_version not in (None, pair[1])}
        if not any(pair[0] is known[0] for pair in self._allowed):
            del self._types[model_id]
            self._decoder = None

    def decode(self, value: bytes, key: bytes | None = None) -> list[Any] | None:
        """The typed events of one message, or ``None`` when the generic path must decode it.

        With ``key``, only events of the model it names are typed: another model's go to
        the generic path, which refuses them (``key_mismatch``). The check is one
        comparison per model in the message, from the types already collected.
        """
        if not self._allowed:
            return None
        try:
            document = self._union_decoder().decode(value)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        if type(document) is not list:
            if (type(document), document.model_version) in self._allowed and (
                    key is None or document.model_key == key):
                return [document]
            return None
        kinds: set[Any] = set(map(type, document))
        versions: set[str] = set(map(_VERSION, document))
        if len(kinds) == 1 and len(versions) == 1:
            # The common message: one model version (two small sets, no tuple per event).
            pairs: set[tuple[Any, str]] = {(*kinds, *versions)}
        else:
            pairs = set(zip(map(type, document), map(_VERSION, document), strict=True))
        if pairs <= self._allowed and (key is None or all(
                event_type.model_key == key for event_type, _ in pairs)):
            return document
        return None


    def decode_singles(self, values: list[bytes], keys: list[bytes | None] | None = None,
                       runs: list[int] | None = None) -> list[Any] | None:
        """The typed events of a run of one-event messages, one per message, or ``None``.

        All or nothing: unless every message is one event that :meth:`decode` would type
        (an allowed version, and with ``keys``, of the model its message's key names),
        ``None``, and each message takes :meth:`decode` (or the generic path) on its own.
        Sparing a Python call per message is what makes one-event messages cheaper.

        ``runs``: the messages come in runs of these lengths, each of one key (a
        keyed batch of several models, ordered by key). Each run is then checked on
        its own, without a (model, version) or (model, key) tuple per message.

        >>> models = TypedModels()
        >>> models.register("m", "v1", {"age": "numeric"})
        >>> one = (b'{"model_id":"m","model_version":"v1","event_id":"%d","ts":1,'
        ...        b'"features":{"age":3},"prediction":0}')
        >>> [e.event_id for e in models.decode_singles([one % 1, one % 2], [b"m", None])]
        ['1', '2']
        >>> models.decode_singles([one % 1, b"[" + one % 2 + b"]"]) is None   # an array
        True
        >>> models.decode_singles([one % 1], [b"other"]) is None      # the key names another
        True
        """
        if not self._allowed or not values:
            return None
        try:
            documents = list(map(self._union_decoder().decode, values))
        except Exception:  # noqa: BLE001 - any refusal sends the run back, message by message
            return None
        if runs is not None and keys is not None:
            checked = self._check_runs(documents, keys, runs)
            if checked is not None:
                return documents if checked else None
        kinds: set[Any] = set(map(type, documents))
        if list in kinds:
            return None
        versions: set[str] = set(map(_VERSION, documents))
        if len(kinds) == 1 and len(versions) == 1:
            pairs: set[tuple[Any, str]] = {(*kinds, *versions)}
        else:
            pairs = set(zip(map(type, documents), map(_VERSION, documents), strict=True))
        if not pairs <= self._allowed:
            return None
        if keys is not None:
            # One comparison per distinct (model, key): a run holds few of each.
            pairs_with_keys: set[tuple[Any, bytes | None]] = set(
                zip(map(type, documents), keys, strict=True))
            for event_type, key in pairs_with_keys:
                if key and event_type.model_key != key:
                    return None
        return documents

    def _check_runs(self, documents: list[Any], keys: list[bytes | None],
                    runs: list[int]) -> bool | None:
        """Whether every run of one key holds events of one allowed version of its model.

        ``None`` when a run holds several models or versions (or an array): the caller
        checks the messages one pair at a time instead.
        """
        start = 0
        allowed = self._allowed
        for length in runs:
            run = documents[start:start + length]
            kinds: set[Any] = set(map(type, run))
            if list in kinds:
                return False
            versions: set[str] = set(map(_VERSION, run))
            if len(kinds) != 1 or len(versions) != 1:
                return None
            [kind], [version] = kinds, versions
            key = keys[start]
            if (kind, version) not in allowed or (key and kind.model_key != key):
                return False
            start += length
        return True

    def _union_decoder(self) -> msgspec.json.Decoder[Any]:
        decoder = self._decoder
        if decoder is None:
            types = tuple(known[0] for known in self._types.values())
            union: Any = types[0] if len(types) == 1 else _union(types)
            decoder = self._decoder = msgspec.json.Decoder(union | list[union])
        return decoder


def untyped(event: Any) -> dict[str, Any]:
    """A typed event as the generic path decodes it: plain dicts (absent features as null).

    Examples
    --------
    >>> models = TypedModels()
    >>> models.register("m", "v1", {"age": "numeric"})
    >>> [event] = models.decode(b'{"model_id":"m","model_version":"v1","event_id":"e",'
    ...                         b'"ts":1,"features":{},"prediction":0}')
    >>> untyped(event)["features"], untyped(event)["model_id"]
    ({'age': None}, 'm')
    """
    plain: dict[str, Any] = msgspec.to_builtins(event)
    return plain


def _field_name(name: str) -> bool:
    """Whether a feature name can be a struct field: an identifier, not a dunder name.

    msgspec (through Python's ``__slots__``) refuses other names with a ``TypeError``,
    and a field such as ``__repr__`` would shadow the struct's own method.
    """
    return name.isidentifier() and not (name.startswith("__") and name.endswith("__"))


def _event_type(model_id: str, fields: tuple[tuple[str, str], ...]) -> type[msgspec.Struct]:
    features = msgspec.defstruct(
        "Features", [(name, float | None if kind == NUMERIC else str | bool | None, None)
                     for name, kind in fields],
        forbid_unknown_fields=True, gc=False)
    unset = msgspec.UnsetType
    return msgspec.defstruct(
        "Prediction",
        [("model_version", ModelVersion), ("event_id", EventId), ("ts", Timestamp),
         ("features", features), ("prediction", Scalar),
         # UNSET, not None: ``"score": null`` is refused, as on the generic path.
         ("score", float | unset, msgspec.UNSET),
         ("scores", dict[str, Scalar | None] | unset, msgspec.UNSET),
         ("segments", dict[str, Scalar] | unset, msgspec.UNSET)],
        bases=(TypedEvent,), tag_field="model_id", tag=model_id, gc=False,
        namespace={"model_id": model_id,
                   "model_key": model_id.encode("utf-8", "surrogatepass")})


def _union(types: tuple[type[msgspec.Struct], ...]) -> Any:
    union: Any = types[0]
    for struct in types[1:]:
        union = union | struct
    return union


__all__ = ["TypedEvent", "TypedModels", "untyped"]
