from __future__ import annotations

import queue
import threading
import time
from typing import List

import pytest

import bosun
from bosun.v1 import events_pb2, lessons_pb2, sessions_pb2
from bosun_server import BosunServer
from conftest import StartServer

LESSONS = events_pb2.EventFilter(event_type_prefixes=["lesson."])


def record(client: bosun.Client, work_item: str) -> None:
    client.lessons.RecordLesson(lessons_pb2.RecordLessonRequest(
        lesson=lessons_pb2.Lesson(lesson_type="gate_failure", work_item_id=work_item)))


def describe(events: List[events_pb2.Event]) -> List[str]:
    return [f"{e.seq}:{e.event_type}:{e.lesson.work_item_id}" for e in events]


def test_watch_resumes_across_a_server_restart(server: BosunServer, client: bosun.Client) -> None:
    record(client, "before-1")
    record(client, "before-2")
    watch = client.watch(filter=LESSONS)
    # The watch runs in its own thread, so it keeps running (and
    # reconnecting) while the test restarts bosun.
    delivered: "queue.Queue[events_pb2.Event]" = queue.Queue()
    failures: List[BaseException] = []

    def follow() -> None:
        try:
            for event in watch:
                delivered.put(event)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    events = [delivered.get(timeout=30) for _ in range(2)]

    # The stream breaks (SHUTTING_DOWN, then connections refused while bosun
    # is down) and the watch retries until bosun is back on its address.
    server.restart()
    record(client, "after-1")
    record(client, "after-2")
    events += [delivered.get(timeout=30) for _ in range(2)]

    history = client.events.ListEvents(events_pb2.ListEventsRequest(filter=LESSONS)).events
    assert describe(events) == describe(list(history))
    assert events[-1].lesson.work_item_id == "after-2"

    # Nothing more arrives: a fifth event would be a repeat.
    with pytest.raises(queue.Empty):
        delivered.get(timeout=0.3)
    watch.cancel()
    follower.join(timeout=10)
    assert not follower.is_alive() and failures == []
    assert watch.cursor == events[-1].seq


def test_watch_raises_cursor_compacted(start_server: StartServer) -> None:
    # Retention 0s and a pass every second: everything but the newest 10,000
    # events goes.
    server = start_server(env={
        "BOSUN_EVENTS__RETENTION": "0s", "BOSUN_EVENTS__COMPACTION_INTERVAL": "1s"})
    with bosun.connect(server.address) as client:
        fill_change_log(client, 10_100)
        oldest = 0
        while oldest <= 1:
            time.sleep(0.1)  # waiting for the background pass
            oldest = client.events.GetHead(events_pb2.GetHeadRequest()).oldest_seq

        with pytest.raises(bosun.CursorCompacted) as raised:
            next(client.watch(after_seq=1))
        assert raised.value.after_seq == 1
        assert raised.value.oldest_seq >= oldest


def fill_change_log(client: bosun.Client, n: int) -> None:
    """Writes at least n events cheaply: each pull request report with 500
    checks is one transaction of some 500 events."""
    client.sessions.RegisterProject(sessions_pb2.RegisterProjectRequest(
        project=sessions_pb2.Project(id="fill", repo_path="/src/fill")))
    session = client.sessions.SpawnSession(sessions_pb2.SpawnSessionRequest(
        project_id="fill", harness=sessions_pb2.HARNESS_OTHER))
    round = 0
    while client.events.GetHead(events_pb2.GetHeadRequest()).head_seq < n:
        checks = [
            sessions_pb2.Check(name=f"check-{i}", commit_sha=f"sha-{round}", status=sessions_pb2.CHECK_STATUS_PASSED)
            for i in range(500)
        ]
        client.sessions.ReportPullRequest(sessions_pb2.ReportPullRequestRequest(
            session_id=session.id, fetched=True,
            pull_request=sessions_pb2.PullRequest(
                number=1, url="https://forge/pr/1", state=sessions_pb2.PULL_REQUEST_STATE_OPEN,
                head_sha=f"sha-{round}", branch="fill", checks=checks)))
        round += 1
