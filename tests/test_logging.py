"""No national number or token reaches a log line, even inside an exception's traceback."""

from __future__ import annotations

import io
import logging

import structlog

from service.logs import configure_logging, formatter
from tests import factories


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
        structlog.get_logger("test").info(
            "event", insz=number, detail=f"number {dotted}", token=token
        )
        logging.getLogger("stdlib").warning("Authorization: Bearer %s for %s", token, number)
        try:
            raise ValueError(f"Key (insz)=({number}) already exists")
        except ValueError:
            structlog.get_logger("test").exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
    output = stream.getvalue()
    assert output.count("\n") >= 3
    for secret in (number, dotted, token, "eyJhbGci"):
        assert secret not in output
    assert "[redacted]" in output
