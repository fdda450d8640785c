"""Structured JSON logs with a redaction step: no national number or token reaches a log."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from service.validation import INSZ_SHAPE as INSZ_PATTERN

JWT_PATTERN = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*")
BEARER_PATTERN = re.compile(r"(?i)bearer\s+\S+")
# Share links, and the wallet's pre-authorized codes, access tokens and nonces.
SHARE_TOKEN_PATTERN = re.compile(r"(?:psl|pwc|pwt|pwn)_[\w-]{16,}")
# PostgreSQL repeats the values of a failing row or key in its errors ("DETAIL: Failing row
# contains (...)", "Key (insz_hash)=(...)"); the statement's parameters are hidden, these are not.
# asyncpg names the value it could not send ("invalid input for query argument $2: '...'").
ARGUMENT_PATTERN = re.compile(r"(query argument \$\d+: ).*?(?=\s\(|$)", re.S)
ROW_DETAIL_PATTERN = re.compile(r"(Failing row contains |Key \([^)]*\)=)\(.*?\)(?=[ .\n]|$)", re.S)
REDACTED = "[redacted]"
SENSITIVE_KEYS = frozenset({"insz", "authorization", "token", "password", "secret", "name"})


# UUIDs are kept whole (their digit runs can look like an INSZ) so log lines stay correlatable.
UUID_PATTERN = re.compile(r"(\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b)")


def redact_text(text: str) -> str:
    text = JWT_PATTERN.sub(REDACTED, text)
    text = BEARER_PATTERN.sub("Bearer " + REDACTED, text)
    text = SHARE_TOKEN_PATTERN.sub(REDACTED, text)
    text = ROW_DETAIL_PATTERN.sub(r"\1" + REDACTED, text)
    text = ARGUMENT_PATTERN.sub(r"\1" + REDACTED, text)
    parts = UUID_PATTERN.split(text)  # odd positions are the UUIDs themselves
    return "".join(p if i % 2 else INSZ_PATTERN.sub(REDACTED, p) for i, p in enumerate(parts))


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if k.lower() in SENSITIVE_KEYS else _redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redaction_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return {
        key: REDACTED if key.lower() in SENSITIVE_KEYS else _redact(value)
        for key, value in event_dict.items()
    }


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
    redaction_processor,
]


def formatter(*, json: bool = True) -> logging.Formatter:
    """The one formatter every handler uses; redaction runs last, after tracebacks are rendered."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED_PROCESSORS,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )


# The service's own loggers (and uvicorn's lines about starting and stopping it) log at the
# configured level; every other library at ``library_level``, WARNING unless asked for, so that
# WeasyPrint's and fontTools' INFO lines (a dozen per PDF) do not bury the service's own.
OWN_LOGGERS = ("service", "passport", "uvicorn.error")


def configure_logging(
    level: str = "INFO", *, json: bool = True, library_level: str = "WARNING"
) -> None:
    """Route stdlib and structlog through one redacting renderer."""
    structlog.configure(
        # A line below its logger's level is dropped first, before any processor reads it
        # (stdlib's records are dropped by stdlib itself, before the foreign chain).
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(json=json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(library_level)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    global _configured
    _configured = True


_configured = False


def ensure_logging(level: str = "INFO", library_level: str = "WARNING") -> None:
    """Configure logging unless this process already has: every worker process of the server
    starts afresh, and must never log through the unredacted defaults."""
    if not _configured:
        configure_logging(level, library_level=library_level)
