"""A content hash of plain-dict detector state: canonical JSON (sorted keys), SHA-256.

Used to name what a reference learned (the audit trail records it): two
states with the same digest hold the same numbers, so they judge alike.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def state_digest(state: Any) -> str:
    """SHA-256 (hex) of ``state`` in canonical JSON; numpy values count as their lists.

    Examples
    --------
    >>> import numpy as np
    >>> state_digest({"b": [1.0, 2.0], "a": None}) == state_digest({"a": None,
    ...                                                             "b": np.array([1.0, 2.0])})
    True
    >>> state_digest({"a": 1})[:12]
    '015abd7f5cc5'
    """
    text = json.dumps(state, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """What ``json`` cannot encode by itself: numpy scalars and arrays."""
    tolist = getattr(value, "tolist", None)
    if tolist is None:
        raise TypeError(f"not JSON-ready: {type(value).__name__}")
    return tolist()


__all__ = ["state_digest"]
