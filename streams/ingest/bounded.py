"""Any decoded JSON value, described and re-encoded to a bounded depth and length.

A refusal must never raise: a list nested 1,000 deep passes the JSON parser
(orjson allows 1,024 levels) but not ``repr`` (Python's recursion limit) nor
``orjson.dumps`` (255 levels), and a 1 MB string must not become a 1 MB reason.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

import orjson

MAX_DEPTH = 64
"""Re-encoded payloads keep this many levels of nesting; deeper values become a marker."""


def describe(value: Any) -> str:
    """A short description of any decoded JSON value, however long or deep.

    Examples
    --------
    >>> describe("n/a"), describe([[[[[[1]]]]]]), describe("x" * 100)[-5:]
    ("str 'n/a'", 'list [[[…]]]', 'xxxx…')
    >>> deep = []
    >>> for _ in range(100_000):
    ...     deep = [deep]
    >>> describe(deep), describe({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    ('list [[[…]]]', "dict {'a': 1, 'b': 2, 'c': 3, 'd': 4, …: …}")
    """
    if isinstance(value, (str, bytes)):
        text = repr(value[:41])
    elif isinstance(value, (list, dict)):
        text = repr(_clip(value, 3, 4, "…")).replace("'…'", "…")
    else:
        text = repr(value)
    return f"{type(value).__name__} {text[:40] + '…' if len(text) > 40 else text}"


def reencode(value: Any, encode: Callable[[Any], bytes] = orjson.dumps) -> tuple[bytes, bool]:
    """``value`` as compact JSON, and whether nesting beyond :data:`MAX_DEPTH` was cut.

    ``encode`` is ``orjson.dumps`` for decoded JSON; ``msgspec.json.encode`` also
    encodes the typed events of :mod:`streams.ingest.typed`.

    Examples
    --------
    >>> reencode({"a": [1, 2]})
    (b'{"a":[1,2]}', False)
    >>> deep = 1
    >>> for _ in range(1000):
    ...     deep = [deep]
    >>> payload, clipped = reencode(deep)
    >>> clipped, payload.count(b"["), payload[60:100]
    (True, 64, b'[[[["nested deeper than 64 levels"]]]]]]')
    """
    try:
        return encode(value), False
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return encode(_clip(value, MAX_DEPTH, None, f"nested deeper than {MAX_DEPTH} levels")), True
    except (TypeError, ValueError, RecursionError):
        return orjson.dumps(describe(value)), True


def _clip(value: Any, depth: int, items: int | None, marker: str) -> Any:
    """``value`` with containers below ``depth`` levels (and past ``items`` items) cut."""
    if isinstance(value, dict):
        if depth <= 0:
            return marker
        kept = islice(value.items(), items)
        clipped = {str(k): _clip(v, depth - 1, items, marker) for k, v in kept}
        if items is not None and len(value) > items:
            clipped[marker] = marker
        return clipped
    if isinstance(value, list):
        if depth <= 0:
            return marker
        kept_values = value[:items]
        clipped_list = [_clip(v, depth - 1, items, marker) for v in kept_values]
        if items is not None and len(value) > items:
            clipped_list.append(marker)
        return clipped_list
    return value


__all__ = ["MAX_DEPTH", "describe", "reencode"]
