"""The columnar pending store's index, in memory (the Redis twin is in tests/integration)."""

from __future__ import annotations

import numpy as np

from streams.core.label_columns import pending_rows
from streams.state.pending import (
    DUPLICATE,
    JOINED,
    MISSING,
    MemoryPendingStore,
    PendingRows,
    claimants,
)


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
    claimed = store.claim(0, "m", ["a", "b", "a", "z"], claimants([1, 2, 3, 4], [0, 0, 0, 0]))
    assert claimed.statuses == [JOINED, JOINED, DUPLICATE, MISSING]
    assert claimed.rows is not None and claimed.rows.versions == ["v1", "v1"]   # first wins
    assert claimed.rows.offsets.tolist() == [0, 1]
    assert set(store._index[0]) == {"m"}                 # "quiet" still has none
    store.put(0, "m", _rows(["c", "a"], 5))              # indexed now: "a" stays the first
    again = store.claim(0, "m", ["c", "a"], claimants([6, 7], [0, 0]))
    assert again.statuses == [JOINED, DUPLICATE]


def test_a_claim_across_blobs_returns_the_rows_in_label_order() -> None:
    store = MemoryPendingStore()
    store.put(0, "m", _rows(["a", "b", "c"], 0))
    store.put(0, "m", _rows(["d", "e"], 3, version="v2"))
    store.put(0, "m", _rows(["f"], 5, version="v3"))
    claimed = store.claim(0, "m", ["e", "x", "a", "f", "c", "e", "d"],
                          claimants([1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0, 0, 0, 0]))
    assert claimed.statuses == [JOINED, MISSING, JOINED, JOINED, JOINED, DUPLICATE, JOINED]
    assert claimed.rows is not None
    assert claimed.rows.event_ids == ["e", "a", "f", "c", "d"]
    assert claimed.rows.offsets.tolist() == [4, 0, 5, 2, 3]
    assert claimed.rows.versions == ["v2", "v1", "v3", "v1", "v2"]
    # The same labels again are replays: they join again, in the same order.
    again = store.claim(0, "m", ["c", "e"], claimants([5, 1], [0, 0]))
    assert again.statuses == ["replayed", "replayed"]
    assert again.rows is not None and again.rows.offsets.tolist() == [2, 4]
    single = store.claim(0, "m", ["b"], claimants([8], [0]))
    assert single.rows is not None and single.rows.event_ids == ["b"]
