import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import {
  type BosunClient,
  CheckStatus,
  connect,
  CursorCompactedError,
  type Event,
  Harness,
  type Logger,
  PullRequestState,
} from "../src/index.js";
import { BosunServer } from "./bosun-server.js";

const LESSONS = { eventTypePrefixes: ["lesson."] };
const quiet: Logger = { info: () => {}, warn: () => {} };

async function record(client: BosunClient, workItemId: string): Promise<void> {
  await client.lessons.recordLesson({ lesson: { lessonType: "gate_failure", workItemId } });
}

const describe = (events: Event[]) =>
  events.map((e) => `${e.seq}:${e.eventType}:${e.payload.case === "lesson" ? e.payload.value.workItemId : ""}`);

/** Pulls events off a running iteration, one at a time, with a timeout. */
class Follower {
  private readonly queue: Event[] = [];
  private waiting?: () => void;
  readonly done: Promise<void>;

  constructor(events: AsyncIterable<Event>) {
    this.done = (async () => {
      for await (const event of events) {
        this.queue.push(event);
        this.waiting?.();
      }
    })();
  }

  async take(n: number, timeoutMs = 30_000): Promise<Event[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.queue.length} of ${n} events arrived`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 50).unref();
      });
    }
    return this.queue.splice(0, n);
  }

  get pending(): number {
    return this.queue.length;
  }
}

test("Watch resumes across a server restart", async () => {
  const server = await BosunServer.start();
  const client = connect(server.address, { logger: quiet });
  try {
    await record(client, "before-1");
    await record(client, "before-2");
    // The watch runs on while the test restarts bosun.
    const watch = client.watch({ filter: LESSONS });
    const follower = new Follower(watch);
    const delivered = await follower.take(2);

    // The stream breaks (SHUTTING_DOWN, then connections refused while bosun
    // is down) and the watch retries until bosun is back on its address.
    await server.restart();
    await record(client, "after-1");
    await record(client, "after-2");
    delivered.push(...(await follower.take(2)));

    const history = await client.events.listEvents({ filter: LESSONS });
    assert.deepEqual(describe(delivered), describe(history.events));
    assert.equal(describe(delivered)[3]?.endsWith(":after-2"), true);

    // Nothing more arrives: a fifth event would be a repeat.
    await sleep(300);
    assert.equal(follower.pending, 0);
    watch.cancel();
    await follower.done;
    assert.equal(watch.cursor, delivered[3]!.seq);
  } finally {
    client.close();
    await server.dispose();
  }
});

test("Watch throws CursorCompactedError", async () => {
  // Retention 0s and a pass every second: everything but the newest 10,000
  // events goes.
  const server = await BosunServer.start({
    env: { BOSUN_EVENTS__RETENTION: "0s", BOSUN_EVENTS__COMPACTION_INTERVAL: "1s" },
  });
  const client = connect(server.address, { logger: quiet });
  try {
    await fillChangeLog(client, 10_100n);
    let oldest = 0n;
    while (oldest <= 1n) {
      await sleep(100); // waiting for the background pass
      oldest = (await client.events.getHead({})).oldestSeq;
    }

    await assert.rejects(
      (async () => {
        for await (const event of client.watch({ afterSeq: 1n })) {
          assert.fail(`a compacted cursor delivered seq ${event.seq}`);
        }
      })(),
      (error) => {
        assert.ok(error instanceof CursorCompactedError, String(error));
        assert.equal(error.afterSeq, 1n);
        assert.ok(error.oldestSeq >= oldest);
        return true;
      },
    );
  } finally {
    client.close();
    await server.dispose();
  }
});

/** Writes at least n events cheaply: each pull request report with 500 checks is one transaction of some 500 events. */
async function fillChangeLog(client: BosunClient, n: bigint): Promise<void> {
  await client.sessions.registerProject({ project: { id: "fill", repoPath: "/src/fill" } });
  const session = await client.sessions.spawnSession({ projectId: "fill", harness: Harness.OTHER });
  for (let round = 0; (await client.events.getHead({})).headSeq < n; round++) {
    const checks = Array.from({ length: 500 }, (_, i) => ({
      name: `check-${i}`,
      commitSha: `sha-${round}`,
      status: CheckStatus.PASSED,
    }));
    await client.sessions.reportPullRequest({
      sessionId: session.id,
      fetched: true,
      pullRequest: {
        number: 1n,
        url: "https://forge/pr/1",
        state: PullRequestState.OPEN,
        headSha: `sha-${round}`,
        branch: "fill",
        checks,
      },
    });
  }
}
