from __future__ import annotations

import grpc
import pytest

import bosun
from bosun.v1 import lessons_pb2
from conftest import StartServer

RECORDED = lessons_pb2.RECORD_OUTCOME_RECORDED


def test_record_and_list_lessons(client: bosun.Client) -> None:
    for lesson in [
        lessons_pb2.Lesson(lesson_type="gate_failure", repo="orchestrator", work_item_id="ORCH-1", stage="testing"),
        lessons_pb2.Lesson(lesson_type="merge_hold", repo="orchestrator", work_item_id="ORCH-2"),
        lessons_pb2.Lesson(lesson_type="gate_failure", repo="website", work_item_id="WEB-1"),
    ]:
        response = client.lessons.RecordLesson(lessons_pb2.RecordLessonRequest(lesson=lesson))
        assert response.outcome == RECORDED
        assert response.lesson.id > 0

    listed = client.lessons.ListLessons(lessons_pb2.ListLessonsRequest(repo="orchestrator"))

    # Newest first, only the orchestrator's.
    assert [(l.lesson_type, l.work_item_id) for l in listed.lessons] == [
        ("merge_hold", "ORCH-2"),
        ("gate_failure", "ORCH-1"),
    ]
    assert listed.enabled
    assert listed.next_page_token == ""


def test_errors_carry_their_reason(client: bosun.Client) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        client.lessons.GetLesson(lessons_pb2.GetLessonRequest(id=4242))
    assert isinstance(raised.value, grpc.Call)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert bosun.error_reason(raised.value) == "LESSON_NOT_FOUND"


def test_the_token_is_sent_on_every_call(start_server: StartServer) -> None:
    server = start_server(config="""
[[auth.tokens]]
name = "runner"
role = "agent"
token = "agent-token-0123456789"
""")
    request = lessons_pb2.RecordLessonRequest(lesson=lessons_pb2.Lesson(lesson_type="gate_failure"))

    with bosun.connect(server.address) as anonymous:
        with pytest.raises(grpc.RpcError) as raised:
            anonymous.lessons.RecordLesson(request)
        assert isinstance(raised.value, grpc.Call)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED

    with bosun.connect(server.address, token="agent-token-0123456789") as runner:
        assert runner.lessons.RecordLesson(request).outcome == RECORDED
        # Streams carry it too.
        with runner.watch() as events:
            assert next(events).event_type == "lesson.created"
