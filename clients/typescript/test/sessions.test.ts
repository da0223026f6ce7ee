import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ActivitySource,
  ActivityState,
  connect,
  DisplayStatus,
  Harness,
  ProcessProbeResult,
  RuntimeProbeResult,
  type Session,
  SessionState,
} from "../src/index.js";
import { BosunServer } from "./bosun-server.js";

test("a session lifecycle: spawn, launch, activity, probe, finish", async () => {
  const server = await BosunServer.start();
  const client = connect(server.address);
  const sessions = client.sessions;
  const expect = (session: Session, state: SessionState, display: DisplayStatus, alive: boolean) =>
    assert.deepEqual(
      [SessionState[session.state], DisplayStatus[session.displayStatus], session.isAlive],
      [SessionState[state], DisplayStatus[display], alive],
    );
  try {
    const project = await sessions.registerProject({
      project: { id: "mer", originUrl: "https://github.com/acme/mer.git" },
    });
    assert.equal(project.displayName, "mer");

    const spawned = await sessions.spawnSession({
      projectId: "mer",
      harness: Harness.CLAUDE_CODE,
      branch: "feature/ORCH-1",
      prompt: "fix the flaky test",
    });
    assert.equal(spawned.id, "mer-1");
    expect(spawned, SessionState.NOT_STARTED, DisplayStatus.SPAWNING, false);

    const started = await sessions.completeSpawn({ sessionId: "mer-1", runtimeHandleId: "tmux:%3", agentSessionId: "abc" });
    expect(started, SessionState.WORKING, DisplayStatus.WORKING, true);

    const waiting = await sessions.reportActivity({
      sessionId: "mer-1",
      state: ActivityState.WAITING_INPUT,
      source: ActivitySource.HOOK,
    });
    expect(waiting, SessionState.NEEDS_INPUT, DisplayStatus.NEEDS_INPUT, true);
    assert.equal(waiting.activity?.state, ActivityState.WAITING_INPUT);

    const idle = await sessions.reportActivity({ sessionId: "mer-1", state: ActivityState.IDLE, source: ActivitySource.TERMINAL });
    expect(idle, SessionState.IDLE, DisplayStatus.IDLE, true);

    const probed = await sessions.reportRuntimeProbe({
      sessionId: "mer-1",
      runtime: RuntimeProbeResult.ALIVE,
      process: ProcessProbeResult.DEAD,
      evidence: "pane shows a shell prompt",
    });
    expect(probed, SessionState.DETECTING, DisplayStatus.DETECTING, true);
    assert.equal(probed.detecting?.attempts, 1);

    const active = await sessions.reportActivity({ sessionId: "mer-1", state: ActivityState.ACTIVE, source: ActivitySource.HOOK });
    expect(active, SessionState.WORKING, DisplayStatus.WORKING, true);
    assert.equal(active.detecting, undefined, "activity clears the detecting memory");

    const finished = await sessions.finishSession({ sessionId: "mer-1" });
    expect(finished, SessionState.DONE, DisplayStatus.DONE, false);

    const listed = (await sessions.listSessions({ projectId: "mer" })).sessions;
    assert.deepEqual(listed.map((s) => s.id), ["mer-1"]);
    expect(listed[0]!, SessionState.DONE, DisplayStatus.DONE, false);
    assert.deepEqual([listed[0]!.agentSessionId, listed[0]!.branch], ["abc", "feature/ORCH-1"]);
    assert.ok(listed[0]!.endTime);
  } finally {
    client.close();
    await server.dispose();
  }
});
