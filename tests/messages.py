"""A consumed record as the partition step reads it (confluent-kafka's ``Message`` fits)."""

from __future__ import annotations


class Record:
    """One record of one partition: topic, offset, value, and optionally key, headers, time."""

    def __init__(self, topic: str, offset: int, value: bytes | None, key: bytes | None = None,
                 headers: list[tuple[str, bytes]] | None = None, ts_ms: int | None = None) -> None:
        self._topic, self._offset, self._value = topic, offset, value
        self._key, self._headers, self._ts = key, headers, ts_ms

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (0, 0) if self._ts is None else (1, self._ts)

    def __repr__(self) -> str:
        def cut(raw: bytes | None) -> str:
            return repr(raw) if raw is None or len(raw) < 300 else f"{raw[:300]!r}… ({len(raw)})"
        return (f"Record({self._topic!r}, {self._offset}, key={cut(self._key)}, "
                f"value={cut(self._value)})")
