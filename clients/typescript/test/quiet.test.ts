import assert from "node:assert/strict";
import { test } from "node:test";

import { connect, type Logger, RecordOutcome } from "../src/index.js";
import { BosunServer } from "./bosun-server.js";

function capturing(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`INFO ${m}`), warn: (m) => lines.push(`WARN ${m}`) };
}

test("the quiet record answers when bosun does", async () => {
  const server = await BosunServer.start();
  const logger = capturing();
  const client = connect(server.address, { logger });
  try {
    const response = await client.recordLessonQuietly({ lessonType: "transient_retry", workItemId: "ORCH-7" });
    assert.equal(response?.outcome, RecordOutcome.RECORDED);
    assert.equal(response?.lesson?.workItemId, "ORCH-7");

    // A refusal (no lesson_type) is logged, not thrown.
    assert.equal(await client.recordLessonQuietly({}), undefined);
    assert.match(logger.lines.join("\n"), /WARN bosun: lesson not recorded .*invalid_argument/);
  } finally {
    client.close();
    await server.dispose();
  }
});

test("the quiet record against a stopped server resolves quickly", async () => {
  const server = await BosunServer.start();
  const logger = capturing();
  const client = connect(server.address, { logger, quietTimeoutMs: 1000 });
  await server.dispose();
  try {
    const started = Date.now();
    const response = await client.recordLessonQuietly({ lessonType: "gate_failure" });
    const elapsed = Date.now() - started;

    assert.equal(response, undefined);
    assert.ok(elapsed < 3000, `took ${elapsed}ms past its 1s deadline`);
    assert.match(logger.lines.join("\n"), /WARN bosun: lesson not recorded \(lesson_type="gate_failure"/);
  } finally {
    client.close();
  }
});
