"""No national number or token reaches a log line, even inside an exception's traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from service.logs import configure_logging, formatter
from tests import factories

CITIZEN_ID = "3f2a9c1e-976d-4a1b-8c2d-850730033280"  # a UUID whose last group holds 11 digits


def test_log_lines_are_redacted() -> None:
    configure_logging()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    logging.getLogger().addHandler(handler)
    number = factories.insz()
    dotted = f"{number[:2]}.{number[2:4]}.{number[4:6]}-{number[6:9]}.{number[9:]}"
    token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    try:
        structlog.get_logger("service.test").info(
            "event", insz=number, detail=f"number {dotted}", token=token
        )
        logging.getLogger("stdlib").warning("Authorization: Bearer %s for %s", token, number)
        try:
            raise ValueError(f"Key (insz)=({number}) already exists for {CITIZEN_ID}")
        except ValueError:
            structlog.get_logger("service.test").exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
    output = stream.getvalue()
    assert output.count("\n") >= 3
    for secret in (number, dotted, token, "eyJhbGci"):
        assert secret not in output
    assert "[redacted]" in output
    assert CITIZEN_ID in output  # ids stay whole, so log lines can be correlated


def test_database_error_details_lose_their_values() -> None:
    """PostgreSQL repeats a failing row's values in DETAIL; statement parameters are hidden
    by the engine, these would not be."""
    from service.logs import redact_text

    text = (
        'new row for relation "access_grants" violates check constraint "ck_x"\n'
        "DETAIL:  Failing row contains (3f2a, link, Jan Peeters's application, 2026).\n"
        "DETAIL:  Key (external_ref)=(student 4411 Jan) already exists."
    )
    redacted = redact_text(text)
    assert "Jan" not in redacted and "4411" not in redacted
    assert "Failing row contains [redacted]" in redacted
    assert "Key (external_ref)=[redacted]" in redacted


def _lines(level: str, library_level: str = "WARNING") -> list[dict[str, object]]:
    """What a library at work (httpx, which logs every request at INFO) and the service's own
    INFO lines leave in the log."""
    import httpx
    import orjson

    configure_logging(level, library_level=library_level)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter())
    logging.getLogger().addHandler(handler)
    try:
        with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(204))) as http:
            http.get("http://receiver.example/hook")
        for chatty in ("weasyprint.progress", "fontTools.subset"):
            logging.getLogger(chatty).info("library chatter")
        structlog.get_logger("service.api.graphql").info("own_line")
        logging.getLogger("passport.cli").info("cli_line")
        logging.getLogger("uvicorn.error").info("Uvicorn running")
    finally:
        logging.getLogger().removeHandler(handler)
        configure_logging()
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_libraries_log_warnings_only_unless_asked() -> None:
    """A PDF's fontTools and WeasyPrint INFO lines once outnumbered the service's own."""
    lines = _lines("INFO")
    assert [line["event"] for line in lines] == ["own_line", "cli_line", "Uvicorn running"]
    asked = {str(line["logger"]) for line in _lines("INFO", library_level="INFO")}
    assert {"httpx", "weasyprint.progress", "fontTools.subset"} <= asked
    assert _lines("WARNING") == []


def test_a_line_below_its_level_is_dropped_before_any_processor() -> None:
    """The access log's line is written on every request: at WARNING it must cost no
    redaction or rendering, only the level check."""
    configure_logging("WARNING")
    seen: list[str] = []

    def spy(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        seen.append(str(event["event"]))
        return event

    processors = structlog.get_config()["processors"]
    structlog.configure(processors=[processors[0], spy, *processors[1:]])
    try:
        log = structlog.get_logger("service.test.levels")
        log.info("request")
        log.warning("slow")
    finally:
        configure_logging()
    assert seen == ["slow"]
