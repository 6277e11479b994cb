"""Log lines: the standard library's loggers (uvicorn, httpx, the jobs' `logging` calls) write the same JSON lines
as structlog's, with their `extra` fields and a rendered exception; httpx's request lines, which carry full URLs,
are not written."""

from __future__ import annotations

import logging

import orjson
import pytest

from crm_kit.observability import configure_logging


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_a_standard_library_line_has_its_message_extra_fields_and_exception(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("crm-test", "INFO")
    try:
        raise ConnectionError("the peer went away")
    except ConnectionError:
        logging.getLogger("crm.jobs").exception("模型构建失败", extra={"version": 7})
    [line] = _lines(capsys)
    assert line["message"] == "模型构建失败" and line["version"] == 7 and line["service"] == "crm-test"
    assert line["level"] == "error" and "event" not in line and "exc_info" not in line
    [raised] = line["exception"]  # type: ignore[misc]
    assert raised["exc_type"] == "ConnectionError" and raised["exc_value"] == "the peer went away"
    assert all("locals" not in frame for frame in raised["frames"])


def test_httpx_request_lines_with_their_urls_are_not_written(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("crm-test", "INFO")
    logging.getLogger("httpx").info("HTTP Request: POST https://receiver.example/hook?token=SECRET")
    logging.getLogger("httpx").warning("a warning still is")
    assert [line["message"] for line in _lines(capsys)] == ["a warning still is"]
