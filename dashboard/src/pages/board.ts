// The board: sessions grouped by display status, most urgent first. Finished
// sessions only with "Show finished"; the search matches id, project,
// branch, issue id and PR number ("#1189" or "1189") and looks at finished
// sessions too.

import type { Session } from "../../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { ActivityState, DisplayStatus } from "../../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { h, replace } from "../dom.js";
import { BOARD_ORDER, enumKey, enumLabel, isFinished, lastActivity, sentence, statusLabel, statusTone, toneMark } from "../labels.js";
import type { Context, Page } from "./page.js";
import { prSummary, sessionLink, when } from "./widgets.js";

/** Whether `session` matches the search text (case-insensitive). */
export function matches(session: Session, query: string): boolean {
  const text = query.trim().toLowerCase();
  if (!text) return true;
  const pr = session.pullRequest;
  const number = text.replace(/^#/, "");
  if (pr && pr.number > 0n && /^\d+$/.test(number) && pr.number.toString() === number) return true;
  if (text.startsWith("#")) return false;
  return [session.id, session.projectId, session.branch, session.issueId, pr?.branch ?? "", pr?.url ?? ""].some((field) => field.toLowerCase().includes(text));
}

export function board(root: HTMLElement, { store }: Context): Page {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const search = h("input", { type: "search", id: "search", name: "search", placeholder: "id, branch, issue or PR #", autocomplete: "off", value: params.get("q") ?? "" });
  const finished = h("input", { type: "checkbox", id: "show-finished", name: "finished" });
  const results = h("div", { class: "groups", "aria-live": "polite" });
  const summary = h("p", { class: "muted", id: "board-summary" });
  root.append(
    h(
      "form",
      { class: "toolbar", role: "search", onsubmit: (event: Event) => event.preventDefault() },
      h("label", { for: "search" }, "Search sessions"),
      search,
      h("label", { class: "check" }, finished, " Show finished"),
    ),
    summary,
    results,
  );

  const render = () => {
    const query = search.value;
    const shown = [...store.sessions.values()].filter((s) => matches(s, query) && (query.trim() !== "" || finished.checked || !isFinished(s)));
    const hidden = [...store.sessions.values()].filter((s) => isFinished(s)).length;
    summary.textContent = `${shown.length} session${shown.length === 1 ? "" : "s"} shown` + (finished.checked || query ? "" : ` · ${hidden} finished hidden`);
    const groups = BOARD_ORDER.map((status) => [status, shown.filter((s) => s.displayStatus === status)] as const).filter(([, sessions]) => sessions.length > 0);
    replace(
      results,
      groups.length === 0 ? h("p", { class: "empty" }, query ? "No session matches this search." : "No sessions yet.") : null,
      groups.map(([status, sessions]) => {
        const tone = statusTone(status);
        const id = `group-${status}`;
        sessions.sort((a, b) => Number((lastActivity(b)?.seconds ?? 0n) - (lastActivity(a)?.seconds ?? 0n)));
        return h(
          "section",
          { class: `group tone-${tone}`, "data-status": enumKey(DisplayStatus, status), "aria-labelledby": id },
          h("h2", { id }, h("span", { "aria-hidden": "true" }, toneMark(tone)), ` ${sentence(statusLabel(status))} `, h("span", { class: "count" }, String(sessions.length))),
          h("ul", { class: "cards" }, sessions.map(card)),
        );
      }),
    );
  };
  search.addEventListener("input", () => {
    history.replaceState(null, "", search.value ? `#/?q=${encodeURIComponent(search.value)}` : "#/");
    render();
  });
  finished.addEventListener("change", render);
  render();
  return { title: "Board", update: render };
}

function card(session: Session): HTMLElement {
  const activity = session.activity ? enumLabel(ActivityState, session.activity.state) : "";
  return h(
    "li",
    { class: `card tone-${statusTone(session.displayStatus)}`, "data-session-id": session.id },
    h("div", { class: "card-head" }, sessionLink(session.id), h("span", { class: "project" }, session.projectId)),
    h("div", { class: "branch mono", title: "branch" }, session.branch || h("span", { class: "muted" }, "no branch")),
    session.issueId ? h("div", { class: "issue" }, `issue ${session.issueId}`) : null,
    h("div", {}, prSummary(session.pullRequest)),
    h("div", { class: "activity muted" }, activity ? `${activity} · ` : "last activity ", when(lastActivity(session))),
  );
}
