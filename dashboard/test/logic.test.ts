// The dashboard's pure decisions, as tables: what the search matches, what
// needs a person, how times read.

import assert from "node:assert/strict";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";

import { DisplayStatus, PullRequestSchema, type Session, SessionSchema, SessionState } from "../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { ago, enumLabel, isFinished } from "../src/labels.js";
import { attentionReason } from "../src/pages/attention.js";
import { matches } from "../src/pages/board.js";

const session: Session = create(SessionSchema, {
  id: "web-12",
  projectId: "web",
  branch: "feature/Login-Form",
  issueId: "WEB-77",
  state: SessionState.WORKING,
  pullRequest: create(PullRequestSchema, { number: 1189n, url: "https://github.com/acme/web/pull/1189", branch: "feature/Login-Form" }),
});

test("search matches id, project, branch, issue and PR number", () => {
  const rows: [string, boolean][] = [
    ["", true],
    ["   ", true],
    ["web-12", true],
    ["WEB-12", true],
    ["login-form", true],
    ["web-77", true],
    ["#1189", true],
    ["1189", true],
    ["#118", false],
    ["#web", false],
    ["118", true], // a substring of the PR's URL
    ["api", false],
    ["feature/other", false],
  ];
  for (const [query, want] of rows) assert.equal(matches(session, query), want, JSON.stringify(query));
  const noPr = create(SessionSchema, { id: "api-3", projectId: "api" });
  assert.equal(matches(noPr, "#3"), false);
});

test("what needs a person, by display status and state", () => {
  const rows: [DisplayStatus, SessionState, boolean][] = [
    [DisplayStatus.NEEDS_INPUT, SessionState.NEEDS_INPUT, true],
    [DisplayStatus.STUCK, SessionState.STUCK, true],
    [DisplayStatus.CI_FAILED, SessionState.WORKING, true],
    [DisplayStatus.CHANGES_REQUESTED, SessionState.IDLE, true],
    [DisplayStatus.MERGEABLE, SessionState.IDLE, true],
    [DisplayStatus.APPROVED, SessionState.IDLE, true],
    [DisplayStatus.ERRORED, SessionState.TERMINATED, true],
    [DisplayStatus.WORKING, SessionState.WORKING, false],
    [DisplayStatus.PR_OPEN, SessionState.IDLE, false],
    [DisplayStatus.MERGED, SessionState.DONE, false],
    [DisplayStatus.KILLED, SessionState.TERMINATED, false],
    [DisplayStatus.CI_FAILED, SessionState.DONE, false],
  ];
  for (const [displayStatus, state, want] of rows) {
    const s = create(SessionSchema, { id: "x-1", displayStatus, state });
    assert.equal(attentionReason(s) !== undefined, want, `${DisplayStatus[displayStatus]} in ${SessionState[state]}`);
  }
});

test("finished means done or terminated", () => {
  for (const state of [SessionState.DONE, SessionState.TERMINATED]) assert.ok(isFinished(create(SessionSchema, { state })));
  for (const state of [SessionState.NOT_STARTED, SessionState.WORKING, SessionState.STUCK, SessionState.DETECTING]) assert.ok(!isFinished(create(SessionSchema, { state })));
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
