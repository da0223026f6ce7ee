from __future__ import annotations

import bosun
from bosun.v1 import sessions_pb2 as s


def test_a_session_lifecycle(client: bosun.Client) -> None:
    """A runner's view of one session: spawn, launch, activity, probe, finish."""
    sessions = client.sessions

    def expect(session: s.Session, state: int, display: int, alive: bool) -> None:
        assert (session.state, session.display_status, session.is_alive) == (state, display, alive)

    project = sessions.RegisterProject(s.RegisterProjectRequest(
        project=s.Project(id="mer", origin_url="https://github.com/acme/mer.git")))
    assert project.display_name == "mer"

    spawned = sessions.SpawnSession(s.SpawnSessionRequest(
        project_id="mer", harness=s.HARNESS_CLAUDE_CODE, branch="feature/ORCH-1", prompt="fix the flaky test"))
    assert spawned.id == "mer-1"
    expect(spawned, s.SESSION_STATE_NOT_STARTED, s.DISPLAY_STATUS_SPAWNING, False)

    started = sessions.CompleteSpawn(s.CompleteSpawnRequest(
        session_id="mer-1", runtime_handle_id="tmux:%3", agent_session_id="abc"))
    expect(started, s.SESSION_STATE_WORKING, s.DISPLAY_STATUS_WORKING, True)

    waiting = sessions.ReportActivity(s.ReportActivityRequest(
        session_id="mer-1", state=s.ACTIVITY_STATE_WAITING_INPUT, source=s.ACTIVITY_SOURCE_HOOK))
    expect(waiting, s.SESSION_STATE_NEEDS_INPUT, s.DISPLAY_STATUS_NEEDS_INPUT, True)
    assert waiting.activity.state == s.ACTIVITY_STATE_WAITING_INPUT

    idle = sessions.ReportActivity(s.ReportActivityRequest(
        session_id="mer-1", state=s.ACTIVITY_STATE_IDLE, source=s.ACTIVITY_SOURCE_TERMINAL))
    expect(idle, s.SESSION_STATE_IDLE, s.DISPLAY_STATUS_IDLE, True)

    probed = sessions.ReportRuntimeProbe(s.ReportRuntimeProbeRequest(
        session_id="mer-1", runtime=s.RUNTIME_PROBE_RESULT_ALIVE, process=s.PROCESS_PROBE_RESULT_DEAD,
        evidence="pane shows a shell prompt"))
    expect(probed, s.SESSION_STATE_DETECTING, s.DISPLAY_STATUS_DETECTING, True)
    assert probed.detecting.attempts == 1

    active = sessions.ReportActivity(s.ReportActivityRequest(
        session_id="mer-1", state=s.ACTIVITY_STATE_ACTIVE, source=s.ACTIVITY_SOURCE_HOOK))
    expect(active, s.SESSION_STATE_WORKING, s.DISPLAY_STATUS_WORKING, True)
    assert not active.HasField("detecting"), "activity clears the detecting memory"

    finished = sessions.FinishSession(s.FinishSessionRequest(session_id="mer-1"))
    expect(finished, s.SESSION_STATE_DONE, s.DISPLAY_STATUS_DONE, False)

    listed = sessions.ListSessions(s.ListSessionsRequest(project_id="mer")).sessions
    assert [session.id for session in listed] == ["mer-1"]
    expect(listed[0], s.SESSION_STATE_DONE, s.DISPLAY_STATUS_DONE, False)
    assert (listed[0].agent_session_id, listed[0].branch) == ("abc", "feature/ORCH-1")
    assert listed[0].HasField("end_time")
