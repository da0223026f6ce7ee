// The dashboard as a person uses it: Debian's Chromium (headless, through
// playwright-core) against a real bosun started here, with data written
// through bosun's gRPC API. A screenshot of each page lands in
// target/screenshots/ (the CI artifact a reviewer looks at).

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { type Browser, chromium, type Page } from "playwright-core";

import { ActivitySource, ActivityState, CheckStatus, Harness, Mergeability, PullRequestCiState, PullRequestState, ReviewDecision } from "../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { LessonStatus } from "../../clients/typescript/src/gen/bosun/v1/lessons_pb.js";
import { Bosun, type Clients, READ_TOKEN, REPO_ROOT } from "./bosun.js";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const SCREENSHOTS = join(REPO_ROOT, "target", "screenshots");
/** The promise: a change shows within a second. */
const LIVE_MS = 1000;

let bosun: Bosun;
let api: Clients;
let browser: Browser;
let page: Page;
let navigations = 0;

const card = (status: string, id: string) => `section.group[data-status="${status}"] li[data-session-id="${id}"]`;

async function shoot(name: string, target = page): Promise<void> {
  await target.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

async function seed(): Promise<void> {
  const { sessions, tasks, lessons } = api;
  await sessions.registerProject({ project: { id: "web", originUrl: "https://github.com/acme/web.git" } });
  await sessions.registerProject({ project: { id: "api", originUrl: "https://github.com/acme/api.git" } });
  const spawn = async (projectId: string, branch: string, issueId: string) => {
    const session = await sessions.spawnSession({ projectId, harness: Harness.CLAUDE_CODE, branch, issueId, prompt: "work the issue" });
    await sessions.completeSpawn({ sessionId: session.id, runtimeHandleId: `tmux:%${session.id}`, agentSessionId: `agent-${session.id}` });
    return session.id;
  };
  const web1 = await spawn("web", "feature/login-form", "WEB-12");
  await sessions.reportPullRequest({
    sessionId: web1,
    fetched: true,
    pullRequest: {
      url: "https://github.com/acme/web/pull/1189",
      number: 1189n,
      state: PullRequestState.OPEN,
      reviewDecision: ReviewDecision.REVIEW_REQUIRED,
      ciState: PullRequestCiState.FAILING,
      headSha: "4f1c2a9e7b3d5f60718293a4b5c6d7e8f9a0b1c2",
      branch: "feature/login-form",
      title: "Validate the login form before sending it",
      checks: [
        { name: "build", status: CheckStatus.PASSED, commitSha: "4f1c2a9e7b3d5f60718293a4b5c6d7e8f9a0b1c2" },
        { name: "unit tests", status: CheckStatus.FAILED, commitSha: "4f1c2a9e7b3d5f60718293a4b5c6d7e8f9a0b1c2", logTail: "FAIL src/login.test.ts\n  expected 200, got 401\nTests: 1 failed, 41 passed" },
      ],
    },
  });
  const web2 = await spawn("web", "fix/cache-headers", "WEB-15");
  await sessions.reportActivity({ sessionId: web2, state: ActivityState.WAITING_INPUT, source: ActivitySource.HOOK });
  await spawn("api", "feature/rate-limits", "API-7");
  const api2 = await spawn("api", "chore/bump-deps", "API-9");
  await sessions.finishSession({ sessionId: api2 });
  const api3 = await spawn("api", "feature/metrics", "API-11");
  await sessions.reportPullRequest({
    sessionId: api3,
    fetched: true,
    pullRequest: {
      url: "https://github.com/acme/api/pull/77",
      number: 77n,
      title: "Export request metrics",
      state: PullRequestState.OPEN,
      reviewDecision: ReviewDecision.APPROVED,
      ciState: PullRequestCiState.PASSING,
      mergeability: Mergeability.MERGEABLE,
      headSha: "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5",
      branch: "feature/metrics",
      checks: [{ name: "build", status: CheckStatus.PASSED, commitSha: "9a8b7c6d5e4f30211a2b3c4d5e6f708192a3b4c5" }],
    },
  });
  await tasks.startTask({ projectId: "web", workItemId: "WEB-20", trackerIssueId: "WEB-20", title: "Add a dark mode", repo: "acme/web", branch: "feature/dark-mode" });
  for (const [lessonType, repo, rootCause] of [
    ["flaky_test", "acme/web", "a test depends on wall-clock time"],
    ["flaky_test", "acme/api", "port collision between parallel tests"],
    ["missing_context", "acme/web", "the agent did not read CONTRIBUTING.md"],
  ]) {
    await lessons.recordLesson({ lesson: { lessonType, repo, rootCause, agent: "claude-code", status: LessonStatus.NEW } });
  }
}

describe("dashboard", () => {
  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    bosun = await Bosun.start();
    api = bosun.clients();
    await seed();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) navigations += 1;
    });
  });

  after(async () => {
    await browser?.close();
    await bosun?.dispose();
  });

  test("a wrong token is refused, the right one opens the board", async () => {
    await page.goto(bosun.url);
    await page.getByLabel("Access token").fill("not-the-right-token-at-all");
    await page.getByRole("button", { name: "Open dashboard" }).click();
    await page.getByRole("alert").filter({ hasText: "refused this token" }).waitFor();
    assert.match(await page.getByRole("alert").innerText(), /UNAUTHENTICATED|Unauthenticated/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("bosun.token")), null, "a refused token is not kept");
    await shoot("login-refused");

    await page.getByLabel("Access token").fill(READ_TOKEN);
    await page.getByRole("button", { name: "Open dashboard" }).click();
    await page.locator("#connection[data-state=live]").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("bosun.token")), READ_TOKEN);
  });

  test("the board shows the sessions created through gRPC, grouped by status", async () => {
    await page.locator(card("ci_failed", "web-1")).waitFor();
    await page.locator(card("needs_input", "web-2")).waitFor();
    await page.locator(card("working", "api-1")).waitFor();
    assert.equal(await page.locator('li[data-session-id="api-2"]').count(), 0, "finished sessions are behind the filter");
    const web1 = await page.locator(card("ci_failed", "web-1")).innerText();
    for (const text of ["web", "feature/login-form", "PR #1189", "CI failing", "Validate the login form"]) assert.ok(web1.includes(text), `card shows ${text}: ${web1}`);
    await page.getByLabel("Show finished").check();
    await page.locator(card("done", "api-2")).waitFor();
    await shoot("board");
    await page.getByLabel("Show finished").uncheck();
  });

  test("a session changing state moves its card within a second, without a reload", async () => {
    await page.evaluate(() => ((window as unknown as { marker: string }).marker = "same page"));
    const before = navigations;
    await api.sessions.reportActivity({ sessionId: "api-1", state: ActivityState.WAITING_INPUT, source: ActivitySource.HOOK });
    const started = Date.now();
    await page.locator(card("needs_input", "api-1")).waitFor({ timeout: LIVE_MS });
    const elapsed = Date.now() - started;
    assert.equal(await page.locator(card("working", "api-1")).count(), 0, "the card left its old group");
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: string }).marker), "same page", "the page was not reloaded");
    assert.equal(navigations, before, "no navigation happened");
    assert.ok(elapsed <= LIVE_MS, `moved after ${elapsed} ms`);
  });

  test("the page follows bosun across a restart, resuming from its last seq", async () => {
    await bosun.restart();
    await api.sessions.reportActivity({ sessionId: "api-1", state: ActivityState.ACTIVE, source: ActivitySource.HOOK });
    await page.locator(card("working", "api-1")).waitFor({ timeout: 10_000 });
    await page.locator("#connection[data-state=live]").waitFor();
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: string }).marker), "same page", "the page was not reloaded");
  });

  test("search finds a session by its PR number, its PR title, and finished ones", async () => {
    await page.getByLabel("Search sessions").fill("#1189");
    await page.locator('#board-summary:has-text("1 session shown")').waitFor();
    assert.deepEqual(await page.locator("li[data-session-id]").evaluateAll((cards) => cards.map((c) => c.getAttribute("data-session-id"))), ["web-1"]);
    await shoot("board-search");
    await page.getByLabel("Search sessions").fill("validate the LOGIN");
    await page.locator('#board-summary:has-text("1 session shown")').waitFor();
    await page.locator(card("ci_failed", "web-1")).waitFor();
    await page.getByLabel("Search sessions").fill("API-9");
    await page.locator(card("done", "api-2")).waitFor();
    await page.getByLabel("Search sessions").fill("");
  });

  test("the session page shows its fields, checks and timeline, live", async () => {
    await page.getByRole("link", { name: "web-1", exact: true }).click();
    await page.getByRole("heading", { name: "Session web-1" }).waitFor();
    const timeline = page.locator("#timeline");
    await timeline.locator("li", { hasText: "session.created" }).waitFor();
    await timeline.locator("li", { hasText: "pull_request." }).waitFor();
    const failed = page.locator(".checks li", { hasText: "unit tests" });
    assert.match(await failed.innerText(), /failed/);
    await failed.getByText("Log tail").click();
    await failed.locator("pre.log", { hasText: "expected 200, got 401" }).waitFor();
    const count = await timeline.locator("li").count();
    await api.sessions.reportActivity({ sessionId: "web-1", state: ActivityState.IDLE, source: ActivitySource.TERMINAL });
    await timeline.locator("li").nth(count).waitFor({ timeout: LIVE_MS });
    await shoot("session");
  });

  test("the pipeline, lessons and attention pages", async () => {
    await page.getByRole("link", { name: "Pipeline" }).click();
    const analysis = page.locator('section.stage[data-stage="analysis"] li[data-task-id]');
    await analysis.first().waitFor();
    await api.tasks.startTask({ projectId: "api", workItemId: "API-30", trackerIssueId: "API-30", title: "Page the audit log", repo: "acme/api", branch: "feature/audit-pages" });
    await analysis.filter({ hasText: "Page the audit log" }).waitFor({ timeout: LIVE_MS });
    await shoot("pipeline");

    await page.getByRole("link", { name: "Lessons" }).click();
    await page.locator("#lessons-table tbody tr").nth(2).waitFor();
    await page.getByLabel("Type").fill("flaky_test");
    await page.locator("#lessons-table tbody tr").nth(2).waitFor({ state: "detached" });
    assert.equal(await page.locator("#lessons-table tbody tr").count(), 2);
    await page.getByLabel("Type").fill("");
    await page.locator("#lessons-table tbody tr").nth(2).waitFor();
    await api.lessons.recordLesson({ lesson: { lessonType: "gate_failure", repo: "acme/api", rootCause: "coverage fell under the threshold", status: LessonStatus.NEW } });
    await page.locator("#lessons-table tbody tr", { hasText: "coverage fell under the threshold" }).waitFor({ timeout: LIVE_MS });
    await page.locator(".bars li", { hasText: "gate_failure" }).waitFor({ timeout: LIVE_MS });
    await shoot("lessons");

    await page.getByRole("link", { name: /Needs attention/ }).click();
    const waiting = page.locator('#attention-sessions li[data-session-id="web-2"]');
    await waiting.locator(".reasons", { hasText: "Needs input" }).waitFor();
    await page.locator('#attention-sessions li[data-session-id="api-3"] .reasons', { hasText: "Approved and green" }).waitFor();
    assert.equal(await page.locator("#attention-count").innerText(), String(await page.locator("#attention-sessions > li").count()));
    await shoot("attention");

    // Live: an answer takes web-2 off the list, without a reload.
    await api.sessions.reportActivity({ sessionId: "web-2", state: ActivityState.ACTIVE, source: ActivitySource.HOOK });
    await waiting.waitFor({ state: "detached", timeout: LIVE_MS });
  });

  test("on a phone-sized screen, with the token kept in the tab until signing out", async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
    await phone.goto(bosun.url);
    await phone.evaluate((token) => sessionStorage.setItem("bosun.token", token), READ_TOKEN);
    await phone.reload();
    await phone.locator(card("ci_failed", "web-1")).waitFor();
    const overflow = () => phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok((await overflow()) <= 0, `the board needs no sideways scrolling (${await overflow()}px too wide)`);
    await shoot("board-phone", phone);
    await phone.getByRole("link", { name: "web-1", exact: true }).click();
    await phone.locator("#timeline li", { hasText: "session.created" }).waitFor();
    assert.ok((await overflow()) <= 0, `the session page needs no sideways scrolling (${await overflow()}px too wide)`);
    await shoot("session-phone", phone);

    await phone.getByRole("button", { name: "Sign out" }).click();
    await phone.getByLabel("Access token").waitFor();
    assert.equal(await phone.evaluate(() => sessionStorage.getItem("bosun.token")), null, "signing out forgets the token");
    await phone.close();
  });
});
