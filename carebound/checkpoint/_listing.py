"""The paging logic of ``list``/``alist``, free of I/O so both savers share it.

Checkpoints of one (thread, namespace) come newest first from the ``load`` script, a page per
round trip; the cursor applies the metadata filter, ``before`` and the overall ``limit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple, get_checkpoint_id

from carebound.checkpoint._codec import Codec

LIST_PAGE = 64


class ListCursor:
    """Yields the checkpoints a ``list`` call asks for, one namespace after another."""

    def __init__(
        self,
        codec: Codec,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> None:
        self._codec = codec
        self._filter = filter or None
        self._before = get_checkpoint_id(before) if before else None
        self._only = get_checkpoint_id(config) if config else None
        self._remaining = limit
        self._bound = "+"
        self._open = False
        self._requested = 0

    @property
    def exhausted(self) -> bool:
        """True once ``limit`` checkpoints were yielded."""
        return self._remaining is not None and self._remaining <= 0

    def start(self) -> None:
        """Begin a new (thread, namespace)."""
        self._bound = f"({self._before}" if self._before else "+"
        self._open = not self.exhausted
        if self._only and self._before and self._only >= self._before:
            self._open = False

    def next_args(self) -> list[str | int] | None:
        """ARGV of the next ``load`` call for the current namespace, or None when done."""
        if not self._open or self.exhausted:
            return None
        if self._only:
            self._requested = 1
            return [self._only, "+", 1]
        count = LIST_PAGE
        if self._remaining is not None and not self._filter:
            count = min(count, self._remaining)
        self._requested = count
        return ["", self._bound, count]

    def accept(
        self, thread_id: str, checkpoint_ns: str, entries: Sequence[Sequence[Any]]
    ) -> list[CheckpointTuple]:
        """Decode one page; returns the tuples to yield, in order."""
        if self._only or len(entries) < self._requested:
            self._open = False
        elif entries:
            self._bound = "(" + entries[-1][0].decode()
        out: list[CheckpointTuple] = []
        for entry in entries:
            if self.exhausted:
                self._open = False
                break
            if self._filter and not self._codec.metadata_matches(entry, self._filter):
                continue
            out.append(self._codec.decode_tuple(thread_id, checkpoint_ns, entry))
            if self._remaining is not None:
                self._remaining -= 1
        return out
