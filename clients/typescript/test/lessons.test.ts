import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Code, ConnectError } from "@connectrpc/connect";

import { connect, errorReason, RecordOutcome } from "../src/index.js";
import { BosunServer } from "./bosun-server.js";

let server: BosunServer;
before(async () => {
  server = await BosunServer.start();
});
after(() => server.dispose());

test("record and list lessons", async () => {
  const client = connect(server.address);
  try {
    for (const lesson of [
      { lessonType: "gate_failure", repo: "orchestrator", workItemId: "ORCH-1", stage: "testing" },
      { lessonType: "merge_hold", repo: "orchestrator", workItemId: "ORCH-2" },
      { lessonType: "gate_failure", repo: "website", workItemId: "WEB-1" },
    ]) {
      const response = await client.lessons.recordLesson({ lesson });
      assert.equal(response.outcome, RecordOutcome.RECORDED);
      assert.ok(response.lesson!.id > 0n);
    }

    const listed = await client.lessons.listLessons({ repo: "orchestrator" });

    // Newest first, only the orchestrator's.
    assert.deepEqual(
      listed.lessons.map((l) => `${l.lessonType}/${l.workItemId}`),
      ["merge_hold/ORCH-2", "gate_failure/ORCH-1"],
    );
    assert.equal(listed.enabled, true);
    assert.equal(listed.nextPageToken, "");
  } finally {
    client.close();
  }
});

test("errors carry their reason", async () => {
  const client = connect(server.address);
  try {
    await assert.rejects(client.lessons.getLesson({ id: 4242n }), (error) => {
      assert.equal(ConnectError.from(error).code, Code.NotFound);
      assert.equal(errorReason(error), "LESSON_NOT_FOUND");
      return true;
    });
  } finally {
    client.close();
  }
});

test("the token is sent on every call", async () => {
  const guarded = await BosunServer.start({
    config: `
[[auth.tokens]]
name = "runner"
role = "agent"
token = "agent-token-0123456789"
`,
  });
  const anonymous = connect(guarded.address);
  const runner = connect(guarded.address, { token: "agent-token-0123456789" });
  try {
    const request = { lesson: { lessonType: "gate_failure" } };
    await assert.rejects(anonymous.lessons.recordLesson(request), (error) => {
      assert.equal(ConnectError.from(error).code, Code.Unauthenticated);
      return true;
    });
    assert.equal((await runner.lessons.recordLesson(request)).outcome, RecordOutcome.RECORDED);
    // Streams carry it too.
    const watch = runner.watch();
    for await (const event of watch) {
      assert.equal(event.eventType, "lesson.created");
      break;
    }
  } finally {
    anonymous.close();
    runner.close();
    await guarded.dispose();
  }
});
