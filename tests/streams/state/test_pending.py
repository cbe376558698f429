"""The columnar pending store's index, in memory (the Redis twin is in tests/integration)."""

from __future__ import annotations

import numpy as np

from streams.core.label_columns import pending_rows
from streams.state.pending import DUPLICATE, JOINED, MISSING, MemoryPendingStore, PendingRows


def _rows(ids: list[str], first_offset: int, version: str = "v1") -> PendingRows:
    events = [{"model_version": version, "event_id": event_id, "ts": float(i),
               "prediction": 1, "score": 0.9, "features": {"x": i}}
              for i, event_id in enumerate(ids)]
    return pending_rows(events, np.arange(first_offset, first_offset + len(ids)))


def test_a_model_without_labels_has_no_index_and_its_first_label_builds_it() -> None:
    store = MemoryPendingStore()
    store.put(0, "m", _rows(["a", "b", "a"], 0))         # a duplicate id in one step
    store.put(0, "m", _rows(["b"], 3, version="v2"))     # and one sent again later
    store.put(0, "quiet", _rows(["q"], 4))
    assert store._index == {} and store.pending(0) == 5
    claimed = store.claim(0, "m", ["a", "b", "a", "z"], ["1.0", "2.0", "3.0", "4.0"])
    assert claimed.statuses == [JOINED, JOINED, DUPLICATE, MISSING]
    assert claimed.rows is not None and claimed.rows.versions == ["v1", "v1"]   # first wins
    assert claimed.rows.offsets.tolist() == [0, 1]
    assert set(store._index[0]) == {"m"}                 # "quiet" still has none
    store.put(0, "m", _rows(["c", "a"], 5))              # indexed now: "a" stays the first
    assert store.claim(0, "m", ["c", "a"], ["6.0", "7.0"]).statuses == [JOINED, DUPLICATE]
