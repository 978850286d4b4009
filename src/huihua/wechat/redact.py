"""Keep WeChat's secrets out of httpx's and httpcore's own log lines.

WeChat takes its secrets in the query string (`code2Session` sends `secret` and `js_code`, the
other calls `access_token`), and httpx logs every request URL at INFO. We redact by parameter
name in the *formatted* message, so the filter does not depend on how httpx words the line or
what type its arguments have.

Why a filter and not a transport that hides the values from httpx: httpx routes requests to
proxies from the environment through transports of its own, which a wrapper would bypass. A
logger's filters apply only to records created on that very logger (not to its children's), so
the filter goes on every logger httpx and httpcore log on.
"""

from __future__ import annotations

import logging
import re

SECRET_PARAMS = ("secret", "js_code", "code", "access_token", "session_key", "signature")
_PATTERN = re.compile(r"(?P<name>\b(?:" + "|".join(SECRET_PARAMS) + r"))=(?P<value>[^&\s\"'<>]+)")
LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def redact(text: str) -> str:
    """`text` with the value of every secret query parameter replaced by ***."""
    return _PATTERN.sub(r"\g<name>=***", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    """Add the filter to httpx's and httpcore's loggers (once; importing the client does it)."""
    for name in LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in log.filters):
            log.addFilter(RedactSecrets())
