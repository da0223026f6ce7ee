// The dashboard's pure decisions, as tables: what a search asks bosun, how
// reasons and labels read, how times read.

import assert from "node:assert/strict";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";

import { AttentionReason, DisplayStatus, SessionSchema, SessionState } from "../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { ago, enumLabel, isFinished } from "../src/labels.js";
import { reasonTone } from "../src/pages/attention.js";
import { searchRequests } from "../src/pages/board.js";

test("a search becomes ListSessions calls: free text, and the PR number filter for a number", () => {
  const rows: [string, unknown[]][] = [
    ["", []],
    ["   ", []],
    ["login", [{ search: "login" }]],
    ["  web-12 ", [{ search: "web-12" }]],
    ["#1189", [{ pullRequestNumber: 1189n }]],
    ["1189", [{ search: "1189" }, { pullRequestNumber: 1189n }]],
    ["#0", [{ search: "#0" }]],
    ["#web", [{ search: "#web" }]],
    ["#12a", [{ search: "#12a" }]],
    ["x".repeat(300), [{ search: "x".repeat(256) }]],
  ];
  for (const [query, want] of rows) assert.deepEqual(searchRequests(query), want, JSON.stringify(query).slice(0, 40));
});

test("finished means done or terminated", () => {
  for (const state of [SessionState.DONE, SessionState.TERMINATED]) assert.ok(isFinished(create(SessionSchema, { state })));
  for (const state of [SessionState.NOT_STARTED, SessionState.WORKING, SessionState.STUCK, SessionState.DETECTING]) assert.ok(!isFinished(create(SessionSchema, { state })));
});

test("every attention reason has a tone, and only a merge decision is good news", () => {
  for (const value of Object.values(AttentionReason).filter((v): v is number => typeof v === "number" && v !== 0)) {
    const tone = reasonTone(value);
    assert.equal(tone === "good", value === AttentionReason.APPROVED_AND_GREEN, AttentionReason[value]);
    assert.equal(enumLabel(AttentionReason, value) !== "", true);
  }
});

test("labels and relative times", () => {
  assert.equal(enumLabel(DisplayStatus, DisplayStatus.CI_FAILED), "CI failed");
  assert.equal(enumLabel(DisplayStatus, DisplayStatus.PR_OPEN), "PR open");
  assert.equal(enumLabel(DisplayStatus, DisplayStatus.NEEDS_INPUT), "needs input");
  assert.equal(enumLabel(DisplayStatus, DisplayStatus.UNSPECIFIED), "");
  assert.equal(enumLabel(DisplayStatus, 99), "99");
  const now = Date.parse("2026-01-02T03:04:05Z");
  const rows: [number, string][] = [
    [0, "0s ago"],
    [59_000, "59s ago"],
    [60_000, "1m ago"],
    [3_599_000, "59m ago"],
    [3_600_000, "1h ago"],
    [86_400_000 * 3, "3d ago"],
    [-5_000, "0s ago"], // a clock slightly ahead
  ];
  for (const [age, want] of rows) assert.equal(ago(timestampFromMs(now - age), now), want, `${age} ms`);
  assert.equal(ago(undefined, now), "");
});
