// Needs attention: what waits for a person. Sessions whose display status
// asks for one (needs input, stuck, CI failed, approved or mergeable and
// waiting to merge), reactions addressed to a human that are still pending
// or escalated, and held tasks.

import {
  DisplayStatus,
  type Reaction,
  ReactionStatus,
  ReactionTarget,
  type Session,
} from "../../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { HoldReason } from "../../../clients/typescript/src/gen/bosun/v1/tasks_pb.js";
import { allPages, describe } from "../api.js";
import { debounce, h, replace } from "../dom.js";
import { date, enumLabel, isFinished, statusLabel } from "../labels.js";
import type { Context, Page } from "./page.js";
import { badge, prSummary, sessionLink, statusBadge, when } from "./widgets.js";

const WHY: Partial<Record<DisplayStatus, string>> = {
  [DisplayStatus.NEEDS_INPUT]: "the agent asks for input",
  [DisplayStatus.STUCK]: "the agent is stuck",
  [DisplayStatus.CI_FAILED]: "CI is failing",
  [DisplayStatus.CHANGES_REQUESTED]: "a reviewer requested changes",
  [DisplayStatus.APPROVED]: "approved: ready for a merge decision",
  [DisplayStatus.MERGEABLE]: "approved and green: ready to merge",
  [DisplayStatus.ERRORED]: "the session ended in an error",
};

/** Why `session` needs a person, or undefined. */
export function attentionReason(session: Session): string | undefined {
  if (isFinished(session) && session.displayStatus !== DisplayStatus.ERRORED) return undefined;
  return WHY[session.displayStatus];
}

export function attention(root: HTMLElement, { api, store }: Context): Page {
  const body = h("div", {});
  root.append(body);
  let reactions: Reaction[] = [];
  let failure = "";

  const render = () => {
    const sessions = [...store.sessions.values()].filter((s) => attentionReason(s) !== undefined);
    const held = [...store.tasks.values()].filter((t) => t.held);
    replace(
      body,
      failure ? h("p", { role: "alert" }, failure) : null,
      h(
        "section",
        { "aria-labelledby": "att-sessions" },
        h("h2", { id: "att-sessions" }, "Sessions ", h("span", { class: "count" }, String(sessions.length))),
        sessions.length === 0
          ? h("p", { class: "muted" }, "No session waits for a person.")
          : h(
              "ul",
              { class: "cards", id: "attention-sessions" },
              sessions.map((s) =>
                h(
                  "li",
                  { class: "card", "data-session-id": s.id },
                  h("div", { class: "card-head" }, sessionLink(s.id), statusBadge(s)),
                  h("div", {}, attentionReason(s) ?? statusLabel(s.displayStatus)),
                  h("div", {}, s.projectId, " · ", prSummary(s.pullRequest)),
                ),
              ),
            ),
      ),
      h(
        "section",
        { "aria-labelledby": "att-reactions" },
        h("h2", { id: "att-reactions" }, "Reactions for a human ", h("span", { class: "count" }, String(reactions.length))),
        reactions.length === 0
          ? h("p", { class: "muted" }, "None pending.")
          : h(
              "ul",
              { class: "cards" },
              reactions.map((r) =>
                h(
                  "li",
                  { class: "card" },
                  h("div", { class: "card-head" }, h("strong", { class: "mono" }, r.key), badge(r.status === ReactionStatus.ESCALATED ? "bad" : "warn", enumLabel(ReactionStatus, r.status))),
                  h("div", {}, r.message),
                  h("div", { class: "muted" }, r.sessionId ? sessionLink(r.sessionId) : r.projectId, " · ", when(date(r.updateTime) ? r.updateTime : r.createTime)),
                ),
              ),
            ),
      ),
      h(
        "section",
        { "aria-labelledby": "att-held" },
        h("h2", { id: "att-held" }, "Held tasks ", h("span", { class: "count" }, String(held.length))),
        held.length === 0
          ? h("p", { class: "muted" }, "No task is held.")
          : h(
              "ul",
              { class: "cards" },
              held.map((t) =>
                h("li", { class: "card" }, h("div", { class: "card-head" }, h("strong", {}, `#${t.id}`), badge("bad", enumLabel(HoldReason, t.holdReason))), h("div", {}, t.title), h("div", { class: "muted" }, t.holdDetail)),
              ),
            ),
      ),
    );
  };

  const loadReactions = async () => {
    try {
      const lists = await Promise.all(
        [ReactionStatus.PENDING, ReactionStatus.ESCALATED].map((status) =>
          allPages(async (pageToken) => {
            const page = await api.sessions.listReactions({ target: ReactionTarget.HUMAN, status, pageSize: 1000, pageToken });
            return [page.reactions, page.nextPageToken];
          }),
        ),
      );
      reactions = lists.flat();
      failure = "";
    } catch (error) {
      failure = `Cannot read reactions: ${describe(error)}`;
    }
    render();
  };
  const reload = debounce(() => void loadReactions(), 150);
  render();
  void loadReactions();
  return {
    title: "Needs attention",
    update(events) {
      if (events.some((e) => e.eventType.startsWith("reaction."))) reload();
      render();
    },
  };
}
