package bosun_test

import (
	"context"
	"testing"

	bosunv1 "github.com/bosun-dev/bosun/clients/go/gen/bosun/v1"
	"github.com/bosun-dev/bosun/clients/go/internal/testserver"
)

// A runner's view of one session: spawn, launch, activity, probe, finish.
func TestSessionLifecycle(t *testing.T) {
	server := testserver.Start(t, testserver.Options{})
	sessions := connect(t, server.Addr).Sessions
	ctx := context.Background()
	check := func(step string, session *bosunv1.Session, err error, state bosunv1.SessionState, display bosunv1.DisplayStatus, alive bool) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if session.GetState() != state || session.GetDisplayStatus() != display || session.GetIsAlive() != alive {
			t.Fatalf("%s: state %v display %v alive %v, want %v %v %v", step,
				session.GetState(), session.GetDisplayStatus(), session.GetIsAlive(), state, display, alive)
		}
	}

	project, err := sessions.RegisterProject(ctx, &bosunv1.RegisterProjectRequest{
		Project: &bosunv1.Project{Id: "mer", OriginUrl: "https://github.com/acme/mer.git"},
	})
	if err != nil || project.GetDisplayName() != "mer" {
		t.Fatalf("register project: %v %v", project, err)
	}

	spawned, err := sessions.SpawnSession(ctx, &bosunv1.SpawnSessionRequest{
		ProjectId: "mer", Harness: bosunv1.Harness_HARNESS_CLAUDE_CODE, Branch: "feature/ORCH-1", Prompt: "fix the flaky test",
	})
	if spawned.GetId() != "mer-1" {
		t.Fatalf("spawned %q, want mer-1 (%v)", spawned.GetId(), err)
	}
	check("spawn", spawned, err, bosunv1.SessionState_SESSION_STATE_NOT_STARTED, bosunv1.DisplayStatus_DISPLAY_STATUS_SPAWNING, false)

	started, err := sessions.CompleteSpawn(ctx, &bosunv1.CompleteSpawnRequest{
		SessionId: "mer-1", RuntimeHandleId: "tmux:%3", AgentSessionId: "abc",
	})
	check("complete spawn", started, err, bosunv1.SessionState_SESSION_STATE_WORKING, bosunv1.DisplayStatus_DISPLAY_STATUS_WORKING, true)

	waiting, err := sessions.ReportActivity(ctx, &bosunv1.ReportActivityRequest{
		SessionId: "mer-1", State: bosunv1.ActivityState_ACTIVITY_STATE_WAITING_INPUT, Source: bosunv1.ActivitySource_ACTIVITY_SOURCE_HOOK,
	})
	check("waiting for input", waiting, err, bosunv1.SessionState_SESSION_STATE_NEEDS_INPUT, bosunv1.DisplayStatus_DISPLAY_STATUS_NEEDS_INPUT, true)
	if waiting.GetActivity().GetState() != bosunv1.ActivityState_ACTIVITY_STATE_WAITING_INPUT {
		t.Fatalf("activity not kept: %v", waiting.GetActivity())
	}

	idle, err := sessions.ReportActivity(ctx, &bosunv1.ReportActivityRequest{
		SessionId: "mer-1", State: bosunv1.ActivityState_ACTIVITY_STATE_IDLE, Source: bosunv1.ActivitySource_ACTIVITY_SOURCE_TERMINAL,
	})
	check("idle", idle, err, bosunv1.SessionState_SESSION_STATE_IDLE, bosunv1.DisplayStatus_DISPLAY_STATUS_IDLE, true)

	probed, err := sessions.ReportRuntimeProbe(ctx, &bosunv1.ReportRuntimeProbeRequest{
		SessionId: "mer-1", Runtime: bosunv1.RuntimeProbeResult_RUNTIME_PROBE_RESULT_ALIVE, Process: bosunv1.ProcessProbeResult_PROCESS_PROBE_RESULT_DEAD,
		Evidence: "pane shows a shell prompt",
	})
	check("probe: process dead", probed, err, bosunv1.SessionState_SESSION_STATE_DETECTING, bosunv1.DisplayStatus_DISPLAY_STATUS_DETECTING, true)
	if probed.GetDetecting().GetAttempts() != 1 {
		t.Fatalf("detecting memory: %v", probed.GetDetecting())
	}

	active, err := sessions.ReportActivity(ctx, &bosunv1.ReportActivityRequest{
		SessionId: "mer-1", State: bosunv1.ActivityState_ACTIVITY_STATE_ACTIVE, Source: bosunv1.ActivitySource_ACTIVITY_SOURCE_HOOK,
	})
	check("active again", active, err, bosunv1.SessionState_SESSION_STATE_WORKING, bosunv1.DisplayStatus_DISPLAY_STATUS_WORKING, true)
	if active.GetDetecting() != nil {
		t.Fatalf("activity did not clear the detecting memory: %v", active.GetDetecting())
	}

	finished, err := sessions.FinishSession(ctx, &bosunv1.FinishSessionRequest{SessionId: "mer-1"})
	check("finish", finished, err, bosunv1.SessionState_SESSION_STATE_DONE, bosunv1.DisplayStatus_DISPLAY_STATUS_DONE, false)

	listed, err := sessions.ListSessions(ctx, &bosunv1.ListSessionsRequest{ProjectId: "mer"})
	if err != nil || len(listed.GetSessions()) != 1 {
		t.Fatalf("list sessions: %v %v", listed, err)
	}
	got := listed.GetSessions()[0]
	check("list", got, nil, bosunv1.SessionState_SESSION_STATE_DONE, bosunv1.DisplayStatus_DISPLAY_STATUS_DONE, false)
	if got.GetAgentSessionId() != "abc" || got.GetBranch() != "feature/ORCH-1" || got.GetEndTime() == nil {
		t.Fatalf("the session lost its facts: %v", got)
	}
}
