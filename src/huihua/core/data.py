"""Session data: JSON objects only (no pickle, ever), changed by per-key deltas.

Writers send `DataChanges` (set / unset / incr, optionally clearing first) rather than whole
blobs, and every store applies them atomically. Two requests that change different keys of one
session therefore both survive, and `incr` never loses a count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .errors import NotAnInteger, SessionDataError, SessionDataTooLarge

JSON: TypeAlias = Any
"""Anything `json.dumps` turns into JSON: dict, list, str, int, float, bool, None."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def dumps(value: JSON) -> str:
    """The one JSON encoding huihua writes: compact, UTF-8, no NaN."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SessionDataError(f"session data must be JSON: {exc}") from exc


def _utf8(text: str) -> None:
    """Lone surrogates pass json.dumps but no store can keep them: refuse them here."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise SessionDataError(f"session data must be valid Unicode: {exc.reason}") from exc


def loads(text: str | bytes) -> JSON:
    return json.loads(text)


def entry_size(key: str, encoded_value: str) -> int:
    return len(key.encode()) + len(encoded_value.encode())


def data_size(data: Mapping[str, JSON]) -> int:
    """Size as every store measures it: the UTF-8 bytes of each key and its encoded value."""
    return sum(entry_size(k, dumps(v)) for k, v in data.items())


@dataclass(frozen=True, slots=True)
class DataChanges:
    set: Mapping[str, JSON] = field(default_factory=dict)
    unset: frozenset[str] = frozenset()
    incr: Mapping[str, int] = field(default_factory=dict)
    clear: bool = False

    def __bool__(self) -> bool:
        return bool(self.set or self.unset or self.incr or self.clear)

    def validate(self) -> DataChanges:
        """Reject what no store could apply, before any I/O."""
        for key in (*self.set, *self.unset, *self.incr):
            if not isinstance(key, str):
                raise SessionDataError(f"session keys must be strings, not {type(key).__name__}")
            _utf8(key)
        for value in self.set.values():
            _utf8(dumps(value))
        for key, by in self.incr.items():
            if isinstance(by, bool) or not isinstance(by, int):
                raise SessionDataError(f"incr of {key!r} needs an integer step")
            if not INT64_MIN <= by <= INT64_MAX:
                raise SessionDataError(f"incr of {key!r} is outside the 64-bit range")
        overlap = (set(self.set) | set(self.unset)) & set(self.incr)
        if overlap or set(self.set) & self.unset:
            raise SessionDataError(f"a key is changed twice in one update: {sorted(overlap)}")
        return self


def apply_changes(data: Mapping[str, JSON], changes: DataChanges, *, max_bytes: int) -> dict[str, JSON]:
    """The reference semantics every store implements; SQL and memory stores call it directly."""
    result: dict[str, JSON] = {} if changes.clear else dict(data)
    for key in changes.unset:
        result.pop(key, None)
    result.update(changes.set)
    for key, by in changes.incr.items():
        current = result.get(key, 0)
        if isinstance(current, bool) or not isinstance(current, int):
            raise NotAnInteger(key)
        total = current + by
        if not INT64_MIN <= total <= INT64_MAX:
            raise SessionDataError(f"incr of {key!r} would overflow 64 bits")
        result[key] = total
    size = data_size(result)
    if size > max_bytes:
        raise SessionDataTooLarge(size, max_bytes)
    return result
