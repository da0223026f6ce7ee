// Pieces shared by the pages: status badges, times, session links.

import type { Timestamp } from "@bufbuild/protobuf/wkt";

import { PullRequestCiState, type PullRequest, PullRequestState, type Session } from "../../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { h } from "../dom.js";
import { ago, ciTone, enumLabel, iso, statusLabel, statusTone, type Tone, toneMark } from "../labels.js";

/** A coloured label whose word and glyph carry the meaning on their own. */
export function badge(tone: Tone, text: string, extra: Record<string, string> = {}): HTMLElement {
  return h("span", { class: `badge tone-${tone}`, ...extra }, h("span", { "aria-hidden": "true" }, toneMark(tone)), " ", text);
}

export function statusBadge(session: Session): HTMLElement {
  return badge(statusTone(session.displayStatus), statusLabel(session.displayStatus), { "data-testid": "status" });
}

export function when(timestamp: Timestamp | undefined): HTMLElement | string {
  const text = ago(timestamp);
  return text ? h("time", { datetime: iso(timestamp), title: iso(timestamp) }, text) : "—";
}

export function sessionLink(id: string): HTMLElement {
  return h("a", { href: `#/session/${encodeURIComponent(id)}`, class: "mono" }, id);
}

/** "PR #12 · open · CI passing", or "no PR". */
export function prSummary(pr: PullRequest | undefined): HTMLElement {
  if (!pr || pr.number === 0n) return h("span", { class: "muted" }, "no PR");
  const state = pr.draft ? "draft" : enumLabel(PullRequestState, pr.state);
  const ci = enumLabel(PullRequestCiState, pr.ciState) || "no CI";
  const number = pr.url ? h("a", { href: pr.url, rel: "noreferrer", target: "_blank" }, `PR #${pr.number}`) : `PR #${pr.number}`;
  return h("span", { class: "pr" }, number, ` · ${state} · `, badge(ciTone(pr.ciState), `CI ${ci}`));
}

/** A <dl> of label/value rows, skipping empty values. */
export function fields(rows: [string, Node | string | undefined][]): HTMLElement {
  return h(
    "dl",
    { class: "fields" },
    rows.filter(([, value]) => value !== undefined && value !== "" && value !== "—").map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]),
  );
}
