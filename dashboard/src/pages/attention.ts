// Needs attention: what waits for a person, as bosun's Sessions.ListAttention
// answers it (read again by the store after every change to a session, a
// reaction or a task): each session with its reasons, its open reactions for
// a person and the hold of its task. Held tasks are listed from the pipeline
// too.

import {
  type AttentionItem,
  AttentionReason,
  ReactionStatus,
} from "../../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { HoldReason } from "../../../clients/typescript/src/gen/bosun/v1/tasks_pb.js";
import { h, replace } from "../dom.js";
import { date, enumLabel, sentence, type Tone } from "../labels.js";
import type { Context, Page } from "./page.js";
import { badge, prSummary, sessionLink, statusBadge, when } from "./widgets.js";

/** Waiting on a person blocks an agent: red; a person may act (merge): green. */
export function reasonTone(reason: AttentionReason): Tone {
  switch (reason) {
    case AttentionReason.APPROVED_AND_GREEN:
      return "good";
    case AttentionReason.ESCALATED:
    case AttentionReason.AGENT_EXITED:
      return "warn";
    default:
      return "bad";
  }
}

export function attention(root: HTMLElement, { store }: Context): Page {
  const body = h("div", {});
  root.append(body);
  const render = () => {
    const held = [...store.tasks.values()].filter((t) => t.held);
    replace(
      body,
      store.attentionError ? h("p", { role: "alert" }, `Cannot read what needs attention: ${store.attentionError}`) : null,
      h(
        "section",
        { "aria-labelledby": "att-sessions" },
        h("h2", { id: "att-sessions" }, "Sessions ", h("span", { class: "count" }, String(store.attention.length))),
        store.attention.length === 0
          ? h("p", { class: "muted" }, "No session waits for a person.")
          : h("ul", { class: "cards", id: "attention-sessions" }, store.attention.map(item)),
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
                h(
                  "li",
                  { class: "card tone-bad" },
                  h("div", { class: "card-head" }, h("strong", {}, `#${t.id}`), badge("bad", enumLabel(HoldReason, t.holdReason))),
                  h("div", {}, t.title),
                  h("div", { class: "muted" }, t.holdDetail),
                ),
              ),
            ),
      ),
    );
  };
  render();
  return { title: "Needs attention", update: render };
}

function item({ session, reasons, reactions, heldTaskId, holdDetail }: AttentionItem): HTMLElement {
  if (!session) return h("li", {});
  const tone = reasonTone(reasons[0] ?? AttentionReason.UNSPECIFIED);
  return h(
    "li",
    { class: `card tone-${tone}`, "data-session-id": session.id },
    h("div", { class: "card-head" }, sessionLink(session.id), statusBadge(session)),
    h("div", { class: "reasons" }, reasons.map((reason) => badge(reasonTone(reason), sentence(enumLabel(AttentionReason, reason))))),
    h("div", {}, session.projectId, " · ", prSummary(session.pullRequest)),
    heldTaskId > 0n ? h("div", {}, `task #${heldTaskId} held`, holdDetail ? `: ${holdDetail}` : "") : null,
    reactions.map((reaction) =>
      h(
        "div",
        { class: "reaction" },
        h("span", { class: "mono" }, reaction.key),
        " ",
        badge(reaction.status === ReactionStatus.ESCALATED ? "bad" : "warn", enumLabel(ReactionStatus, reaction.status)),
        " ",
        reaction.message,
        " · ",
        when(date(reaction.updateTime) ? reaction.updateTime : reaction.createTime),
      ),
    ),
  );
}
