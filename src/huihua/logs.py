"""How `huihua serve` logs: huihua's own lines (every security event among them) at the chosen
level, as text or as JSON lines (HUIHUA_LOG_FORMAT). It is a logging dictConfig handed to
uvicorn, so every worker process configures itself the same way."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# attributes every LogRecord has; anything else on a record came from `extra=` and is a field
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SKIPPED = frozenset({"color_message"})  # uvicorn's copy of the message with ANSI colours


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _SKIPPED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def log_config(level: str, fmt: str) -> dict[str, Any]:
    """uvicorn's logging config, plus the `huihua` loggers at `level`; all JSON when fmt is json."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    as_json = {"()": "huihua.logs.JsonFormatter"}
    config["formatters"]["huihua"] = as_json if fmt == "json" else {"format": TEXT_FORMAT}
    if fmt == "json":
        config["formatters"]["default"] = config["formatters"]["access"] = as_json
    config["handlers"]["huihua"] = {
        "class": "logging.StreamHandler",
        "formatter": "huihua",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["huihua"] = {"handlers": ["huihua"], "level": level.upper(), "propagate": False}
    return config
