"""Plain-data codec for the learned state of river's pure-Python drift detectors.

river keeps a detector's state in ordinary attributes: floats and ints, a few
:mod:`river.stats` objects, a ``deque`` and a ``random.Random``. They are
written out recursively as JSON-ready values with small ``$``-tags for what
JSON cannot say (infinities, deques, RNG state, river objects). Only the
classes in ``_OBJECTS`` are ever rebuilt, so a state dict from the outside
can create nothing else (never pickle: unpickling data from Kafka is remote
code execution).

``river.stats.EWMean`` wraps a Rust object whose state is not readable; HDDM_W
only uses it inside ``SampleInfo``, where ``_is_init`` says whether the mean
was ever updated, so the EWMean is rebuilt exactly by one update with the mean.
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

import numpy as np
from river import stats
from river.drift.binary.hddm_w import SampleInfo

_OBJECTS: dict[str, type[Any]] = {"Mean": stats.Mean, "Var": stats.Var}


def encode(value: Any) -> Any:
    """Turn one attribute value into plain JSON-ready data (inverted exactly by :func:`decode`)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else {"$float": repr(number)}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if isinstance(value, deque):
        return {"$deque": [encode(item) for item in value], "maxlen": value.maxlen}
    if isinstance(value, random.Random):
        version, internal, gauss_next = value.getstate()
        return {"$random": [version, list(internal), gauss_next]}
    if isinstance(value, SampleInfo):
        attributes = {key: encode(item) for key, item in vars(value).items() if key != "_ewma"}
        return {"$sample_info": attributes, "fading_factor": value._ewma.fading_factor,
                "ewma": encode(value._ewma.get())}
    for tag, cls in _OBJECTS.items():
        if type(value) is cls:
            return {"$object": tag, "attributes": encode(vars(value))}
    raise TypeError(f"cannot encode a {type(value).__name__} in a detector state")


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`; raises ``TypeError``/``KeyError``/``ValueError`` on bad data."""
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise TypeError("unexpected list in a detector state")
        return value
    if "$float" in value:
        text = value["$float"]
        if text not in ("inf", "-inf", "nan"):
            raise ValueError(f"bad non-finite float {text!r}")
        return float(text)
    if "$deque" in value:
        maxlen = value["maxlen"]
        return deque((decode(item) for item in value["$deque"]),
                     maxlen=None if maxlen is None else int(maxlen))
    if "$random" in value:
        version, internal, gauss_next = value["$random"]
        rng = random.Random()
        rng.setstate((int(version), tuple(int(word) for word in internal),
                      None if gauss_next is None else float(gauss_next)))
        return rng
    if "$sample_info" in value:
        sample = SampleInfo(float(value["fading_factor"]))
        for key, item in value["$sample_info"].items():
            setattr(sample, key, decode(item))
        if sample._is_init:
            # A fresh EWMean takes its first value as the mean: one update restores it exactly.
            sample._ewma.update(float(decode(value["ewma"])))
        return sample
    if "$object" in value:
        cls = _OBJECTS[value["$object"]]
        restored = object.__new__(cls)
        for key, item in value["attributes"].items():
            setattr(restored, key, decode(item))
        return restored
    return {key: decode(item) for key, item in value.items()}
