from __future__ import annotations

import logging
import time

import pytest

import bosun
from bosun.v1 import lessons_pb2
from bosun_server import BosunServer


def test_the_quiet_record_answers_when_bosun_does(
    client: bosun.Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.record_lesson_quietly(
        lessons_pb2.Lesson(lesson_type="transient_retry", work_item_id="ORCH-7")
    )
    assert response is not None
    assert response.outcome == lessons_pb2.RECORD_OUTCOME_RECORDED
    assert response.lesson.work_item_id == "ORCH-7"

    # A refusal (no lesson_type) is logged, not raised.
    with caplog.at_level(logging.WARNING, logger="bosun"):
        assert client.record_lesson_quietly(lessons_pb2.Lesson()) is None
    assert "lesson not recorded" in caplog.text
    assert "INVALID_ARGUMENT" in caplog.text


def test_the_quiet_record_against_a_stopped_server_returns_quickly(
    server: BosunServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = bosun.connect(server.address, quiet_timeout=1.0)
    server.stop()

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bosun"):
        response = client.record_lesson_quietly(lessons_pb2.Lesson(lesson_type="gate_failure"))
    elapsed = time.monotonic() - started

    assert response is None
    assert elapsed < 3.0, f"took {elapsed:.1f}s past its 1s deadline"
    assert "lesson not recorded" in caplog.text
    assert "'gate_failure'" in caplog.text
    client.close()
