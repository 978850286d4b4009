"""JSON request bodies, parsed the same way by every front end (the service, the Django views):
valid JSON, at most 32 levels deep, or a `JsonBodyError` that says which (400 `invalid_json` or
400 `json_too_deep`).

A deeply nested body costs recursion in every layer that walks it (the parser, validation,
serialisation back out) and ends as a RecursionError, a 500, somewhere. Framework-neutral: the
caller turns a JsonBodyError into its own error answer.
"""

from __future__ import annotations

import json
from typing import Any

from .core.errors import JsonBodyError

__all__ = ["MAX_JSON_DEPTH", "JsonBodyError", "depth_exceeds", "parse_json_body"]

MAX_JSON_DEPTH = 32


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels (without recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


_PLAIN = {
    "Expecting value": "expected a JSON value",
    "Extra data": "unexpected text after the end of the JSON value",
    "Unterminated string starting at": "a string starts here and is never closed",
    "Invalid control character at": "a raw control character (such as a newline) inside a string",
}


def _where(exc: ValueError) -> str:
    """Where and why the parser stopped, in plain words: `line 2, column 13: expected ':'`."""
    if isinstance(exc, json.JSONDecodeError):
        what = _PLAIN.get(exc.msg) or exc.msg[:1].lower() + exc.msg[1:]
        what = what.replace("expecting ", "expected ", 1).replace(" delimiter", "")
        return f"line {exc.lineno}, column {exc.colno}: {what}"
    return "it is not UTF-8 text"


def parse_json_body(body: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The parsed body, or JsonBodyError: `invalid_json` when it is not JSON (or not UTF-8/16/32),
    `json_too_deep` when it nests more than `max_depth` levels (however deep: the parser's own
    RecursionError is caught)."""
    too_deep = JsonBodyError("json_too_deep", f"JSON bodies may nest at most {max_depth} levels")
    try:
        value = json.loads(body)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8/16/32
        raise JsonBodyError("invalid_json", f"the request body is not valid JSON: {_where(exc)}") from None
    if depth_exceeds(value, max_depth):
        raise too_deep
    return value
