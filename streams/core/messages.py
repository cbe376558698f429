"""Messages a step reads without Kafka: a file's lines, one at a time or as a run.

:class:`Line` is one message with the methods of confluent-kafka's
``Message`` that a step reads (:class:`~streams.core.partition.InputMessage`).
:class:`LineRun` is many lines of one topic at consecutive offsets, without
keys: the step reads its values and offsets as whole columns instead of
calling four methods per line, which is most of what a one-event line costs
outside the decoder. It is still a sequence of :class:`Line`, made on demand
(a dead letter names its line).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
from numpy.typing import NDArray


class Line:
    """One line of an input file, read the way a step reads a Kafka message."""

    __slots__ = ("_offset", "_topic", "_value")

    def __init__(self, topic: str, offset: int, value: bytes) -> None:
        self._topic, self._offset, self._value = topic, offset, value

    def topic(self) -> str:
        """The file's path (dead letters name it as their source)."""
        return self._topic

    def offset(self) -> int:
        """The line number."""
        return self._offset

    def partition(self) -> int:
        """Files are one partition."""
        return 0

    def key(self) -> None:
        """Lines have no key."""

    def value(self) -> bytes:
        """The line without its end."""
        return self._value

    def timestamp(self) -> tuple[int, int]:
        """No timestamp (type 0)."""
        return (0, 0)


class LineRun(Sequence[Line]):
    """Lines of one topic numbered from ``first_offset`` on, kept as a list of values.

    Examples
    --------
    >>> run = LineRun("p.jsonl", 7, [b'{"a": 1}', b"oops"])
    >>> len(run), run[1].offset(), run[1].value(), run[-1].topic()
    (2, 8, b'oops', 'p.jsonl')
    >>> run.offsets().tolist(), [line.offset() for line in run[:1]]
    ([7, 8], [7])
    """

    __slots__ = ("first_offset", "name", "values")

    def __init__(self, topic: str, first_offset: int, values: list[bytes]) -> None:
        self.name, self.first_offset, self.values = topic, first_offset, values

    def offsets(self) -> NDArray[np.int64]:
        """The offset of every line, in order."""
        return np.arange(self.first_offset, self.first_offset + len(self.values),
                         dtype=np.int64)

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> Line: ...
    @overload
    def __getitem__(self, index: slice) -> list[Line]: ...
    def __getitem__(self, index: int | slice) -> Line | list[Line]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.values)))]
        position = range(len(self.values))[index]       # negative indices, IndexError
        return Line(self.name, self.first_offset + position, self.values[position])

    def __iter__(self) -> Iterator[Line]:
        name, first = self.name, self.first_offset
        return (Line(name, first + n, value) for n, value in enumerate(self.values))
