// One session: its fields, its pull request with each check's log tail, its
// reactions, and its timeline read from the change log (ListEvents for the
// history, then the live events the store applies).

import type { Event } from "../../../clients/typescript/src/gen/bosun/v1/events_pb.js";
import { Role } from "../../../clients/typescript/src/gen/bosun/v1/common_pb.js";
import {
  ActivityState,
  CheckStatus,
  Harness,
  Mergeability,
  type Reaction,
  ReactionPriority,
  ReactionStatus,
  ReactionTarget,
  ReviewDecision,
  type Session,
  SessionState,
  TerminationReason,
} from "../../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { Stage } from "../../../clients/typescript/src/gen/bosun/v1/common_pb.js";
import { allPages, describe } from "../api.js";
import { debounce, h, replace } from "../dom.js";
import { date, enumLabel, type Tone } from "../labels.js";
import type { Context, Page } from "./page.js";
import { badge, fields, prSummary, statusBadge, when } from "./widgets.js";

export function sessionPage(root: HTMLElement, { api, store }: Context, id: string): Page {
  const details = h("div", { class: "session-details" });
  const reactionsBox = h("section", { "aria-labelledby": "reactions-title" });
  const timelineList = h("ol", { class: "timeline", id: "timeline", "aria-live": "polite" });
  root.append(details, reactionsBox, h("section", { "aria-labelledby": "timeline-title" }, h("h2", { id: "timeline-title" }, "Timeline"), timelineList));

  const timeline: Event[] = [];
  let reactions: Reaction[] = [];
  let missing = "";

  const renderSession = () => {
    const session = store.sessions.get(id);
    if (!session) {
      replace(details, h("p", { class: "empty", role: "status" }, missing || "Loading…"));
      return;
    }
    replace(details, sessionFields(session), pullRequest(session));
  };
  const renderReactions = () =>
    replace(
      reactionsBox,
      h("h2", { id: "reactions-title" }, "Reactions"),
      reactions.length === 0
        ? h("p", { class: "muted" }, "No reactions.")
        : h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              {},
              h("thead", {}, h("tr", {}, ["Key", "Status", "For", "Priority", "Nudges", "Message", "Updated"].map((c) => h("th", { scope: "col" }, c)))),
              h("tbody", {}, reactions.map(reactionRow)),
            ),
          ),
    );
  const renderTimeline = () => replace(timelineList, timeline.length === 0 ? h("li", { class: "muted" }, "No events kept for this session.") : [...timeline].reverse().map(timelineItem));

  const loadReactions = async () => {
    reactions = await allPages(async (pageToken) => {
      const page = await api.sessions.listReactions({ sessionId: id, pageSize: 1000, pageToken });
      return [page.reactions, page.nextPageToken];
    });
    renderReactions();
  };
  const reloadReactions = debounce(() => void loadReactions().catch(() => undefined), 150);

  const load = async () => {
    if (!store.sessions.has(id)) {
      try {
        store.sessions.set(id, await api.sessions.getSession({ sessionId: id }));
      } catch (error) {
        missing = `Cannot show session ${id}: ${describe(error)}`;
        renderSession();
        reactionsBox.remove();
        timelineList.parentElement?.remove();
        return;
      }
    }
    renderSession();
    const history = await allPages(async (pageToken) => {
      const page = await api.events.listEvents({ filter: { sessionId: id }, pageSize: 1000, pageToken });
      return [page.events, page.nextPageToken];
    });
    // Live events that arrived while the history loaded are already in `timeline`.
    const seen = new Set(timeline.map((e) => e.seq));
    timeline.push(...history.filter((e) => !seen.has(e.seq)));
    timeline.sort((a, b) => (a.seq < b.seq ? -1 : 1));
    renderTimeline();
    await loadReactions();
  };
  renderSession();
  void load().catch((error) => replace(timelineList, h("li", { role: "alert" }, `Cannot read the timeline: ${describe(error)}`)));

  return {
    title: `Session ${id}`,
    update(events) {
      const mine = events.filter((e) => e.sessionId === id || (e.payload.case === "session" && e.payload.value.id === id));
      if (mine.length > 0) {
        const seen = new Set(timeline.map((e) => e.seq));
        timeline.push(...mine.filter((e) => !seen.has(e.seq)));
        renderTimeline();
        if (mine.some((e) => e.eventType.startsWith("reaction."))) reloadReactions();
      }
      renderSession();
    },
  };
}

function sessionFields(session: Session): HTMLElement {
  const termination = enumLabel(TerminationReason, session.terminationReason);
  const activity = session.activity ? enumLabel(ActivityState, session.activity.state) : "";
  return h(
    "section",
    { "aria-labelledby": "fields-title" },
    h("h2", { id: "fields-title" }, "Session ", statusBadge(session)),
    fields([
      ["Id", h("span", { class: "mono" }, session.id)],
      ["Project", session.projectId],
      ["Task", session.taskId > 0n ? `#${session.taskId}` : undefined],
      ["Role", enumLabel(Role, session.role)],
      ["Issue", session.issueId],
      ["Harness", enumLabel(Harness, session.harness)],
      ["State", enumLabel(SessionState, session.state) + (session.isAlive ? " (alive)" : "")],
      ["Termination", termination ? `${termination}${session.terminationDetail ? ` — ${session.terminationDetail}` : ""}` : undefined],
      ["Activity", activity ? h("span", {}, `${activity} · `, when(session.activity?.reportTime)) : undefined],
      ["Detecting", session.detecting ? `${session.detecting.attempts} attempts — ${session.detecting.lastEvidence}` : undefined],
      ["Branch", session.branch ? h("span", { class: "mono" }, session.branch) : undefined],
      ["Workspace", session.workspacePath ? h("span", { class: "mono" }, session.workspacePath) : undefined],
      ["Runtime", session.runtimeName ? `${session.runtimeName} ${session.runtimeHandleId}` : undefined],
      ["Created", when(session.createTime)],
      ["Started", date(session.startTime) ? when(session.startTime) : undefined],
      ["Ended", date(session.endTime) ? when(session.endTime) : undefined],
      ["Tokens", session.usage ? `${session.usage.inputTokens} in · ${session.usage.outputTokens} out · ${session.usage.messages} messages` : undefined],
    ]),
  );
}

const CHECK_TONES: Record<number, Tone> = {
  [CheckStatus.PASSED]: "good",
  [CheckStatus.FAILED]: "bad",
  [CheckStatus.PENDING]: "busy",
};

function pullRequest(session: Session): HTMLElement {
  const pr = session.pullRequest;
  if (!pr || pr.number === 0n) return h("section", { "aria-labelledby": "pr-title" }, h("h2", { id: "pr-title" }, "Pull request"), h("p", { class: "muted" }, "No pull request reported."));
  return h(
    "section",
    { "aria-labelledby": "pr-title" },
    h("h2", { id: "pr-title" }, "Pull request"),
    h("p", {}, prSummary(pr)),
    fields([
      ["Title", pr.title],
      ["Review", enumLabel(ReviewDecision, pr.reviewDecision)],
      ["Mergeability", enumLabel(Mergeability, pr.mergeability)],
      ["Head", pr.headSha ? h("span", { class: "mono" }, pr.headSha.slice(0, 12)) : undefined],
      ["Comments", pr.comments.length > 0 ? `${pr.comments.length} (${pr.comments.filter((c) => !c.resolved).length} unresolved)` : undefined],
      ["Updated", when(pr.updateTime)],
    ]),
    h("h3", {}, "Checks"),
    pr.checks.length === 0
      ? h("p", { class: "muted" }, "No checks.")
      : h(
          "ul",
          { class: "checks" },
          pr.checks.map((check) =>
            h(
              "li",
              {},
              badge(CHECK_TONES[check.status] ?? "quiet", enumLabel(CheckStatus, check.status) || "unknown"),
              " ",
              check.url ? h("a", { href: check.url, rel: "noreferrer", target: "_blank" }, check.name) : check.name,
              check.logTail
                ? h("details", { "data-key": `check-${check.id}` }, h("summary", {}, "Log tail"), h("pre", { class: "log" }, check.logTail))
                : null,
            ),
          ),
        ),
  );
}

function reactionRow(reaction: Reaction): HTMLElement {
  const active = reaction.status === ReactionStatus.PENDING || reaction.status === ReactionStatus.ESCALATED;
  const tone: Tone = reaction.status === ReactionStatus.ESCALATED ? "bad" : active ? "warn" : "quiet";
  return h(
    "tr",
    {},
    h("td", { class: "mono" }, reaction.key),
    h("td", {}, badge(tone, enumLabel(ReactionStatus, reaction.status))),
    h("td", {}, enumLabel(ReactionTarget, reaction.target)),
    h("td", {}, enumLabel(ReactionPriority, reaction.priority)),
    h("td", {}, String(reaction.nudgeCount)),
    h("td", {}, reaction.message),
    h("td", {}, when(date(reaction.updateTime) ? reaction.updateTime : reaction.createTime)),
  );
}

/** One line of the timeline: when, what, and the gist of the new state. */
function timelineItem(event: Event): HTMLElement {
  return h(
    "li",
    { "data-seq": event.seq.toString() },
    h("span", { class: "seq mono" }, `#${event.seq}`),
    " ",
    when(event.createTime),
    " ",
    h("strong", { class: "mono" }, event.eventType),
    " ",
    h("span", {}, gist(event)),
  );
}

export function gist(event: Event): string {
  const { payload } = event;
  switch (payload.case) {
    case "session": {
      const s = payload.value;
      const activity = s.activity ? `, activity ${enumLabel(ActivityState, s.activity.state)}` : "";
      return `state ${enumLabel(SessionState, s.state)}${activity}`;
    }
    case "pullRequest":
      return `PR #${payload.value.number} ${enumLabel(ReviewDecision, payload.value.reviewDecision)}`.trim();
    case "check":
      return `${payload.value.name}: ${enumLabel(CheckStatus, payload.value.status)}`;
    case "reaction":
      return `${enumLabel(ReactionStatus, payload.value.status)} — ${payload.value.message}`;
    case "task":
      return `task #${payload.value.id} in ${enumLabel(Stage, payload.value.stage)}${payload.value.held ? " (held)" : ""}`;
    case "lesson":
      return `lesson #${payload.value.id}: ${payload.value.lessonType}`;
    default:
      return `${event.entityKind} ${event.entityId}`;
  }
}
