// The board: sessions grouped by display status, most urgent first. Finished
// sessions only with "Show finished". The search asks bosun
// (ListSessions' search: id, branch, issue id, PR title; and its PR number
// filter for "#1189" or "1189") and looks at finished sessions too; it runs
// again when sessions change, so its results stay live.

import type { MessageInitShape } from "@bufbuild/protobuf";

import { type ListSessionsRequestSchema, type Session } from "../../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { ActivityState, DisplayStatus } from "../../../clients/typescript/src/gen/bosun/v1/sessions_pb.js";
import { allPages, describe } from "../api.js";
import { debounce, h, replace } from "../dom.js";
import { BOARD_ORDER, enumKey, enumLabel, isFinished, lastActivity, sentence, statusLabel, statusTone, toneMark } from "../labels.js";
import type { Context, Page } from "./page.js";
import { prSummary, sessionLink, when } from "./widgets.js";

/** The longest search ListSessions accepts. */
const MAX_SEARCH = 256;

/** The ListSessions calls whose answers, together, are what `query` finds. */
export function searchRequests(query: string): MessageInitShape<typeof ListSessionsRequestSchema>[] {
  const text = query.trim().slice(0, MAX_SEARCH);
  if (!text) return [];
  const number = text.match(/^#?(\d{1,18})$/)?.[1];
  const byNumber = number && BigInt(number) > 0n ? [{ pullRequestNumber: BigInt(number) }] : [];
  return text.startsWith("#") && byNumber.length > 0 ? byNumber : [{ search: text }, ...byNumber];
}

export function board(root: HTMLElement, { api, store }: Context): Page {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const search = h("input", { type: "search", id: "search", name: "search", placeholder: "id, branch, issue, PR # or title", autocomplete: "off", maxlength: MAX_SEARCH, value: params.get("q") ?? "" });
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

  // The ids bosun found for the current search; undefined while none ran.
  let found: Set<string> | undefined;
  let failure = "";
  let generation = 0;
  const runSearch = async () => {
    const requests = searchRequests(search.value);
    const mine = ++generation;
    if (requests.length === 0) {
      found = undefined;
      render();
      return;
    }
    try {
      const answers = await Promise.all(
        requests.map((request) =>
          allPages(async (pageToken) => {
            const page = await api.sessions.listSessions({ ...request, pageSize: 1000, pageToken });
            return [page.sessions, page.nextPageToken];
          }, 5),
        ),
      );
      if (mine !== generation) return;
      for (const session of answers.flat()) if (!store.sessions.has(session.id)) store.sessions.set(session.id, session);
      found = new Set(answers.flat().map((s) => s.id));
      failure = "";
    } catch (error) {
      if (mine !== generation) return;
      failure = `Search failed: ${describe(error)}`;
    }
    render();
  };
  const searchSoon = debounce(() => void runSearch(), 150);

  const render = () => {
    const searching = search.value.trim() !== "";
    const all = [...store.sessions.values()];
    const shown = searching ? all.filter((s) => found?.has(s.id)) : all.filter((s) => finished.checked || !isFinished(s));
    summary.textContent = failure
      ? failure
      : searching && !found
        ? "Searching…"
        : finished.checked && !store.finishedLoaded
          ? "Loading finished sessions…"
          : `${shown.length} session${shown.length === 1 ? "" : "s"} shown` + (finished.checked || searching ? "" : " · finished hidden");
    const groups = BOARD_ORDER.map((status) => [status, shown.filter((s) => s.displayStatus === status)] as const).filter(([, sessions]) => sessions.length > 0);
    replace(
      results,
      groups.length === 0 && (!searching || found) ? h("p", { class: "empty" }, searching ? "No session matches this search." : "No sessions yet.") : null,
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
    found = undefined;
    render();
    searchSoon();
  });
  finished.addEventListener("change", () => {
    render();
    if (finished.checked) {
      store.loadFinished().catch((error) => {
        failure = `Cannot read the finished sessions: ${describe(error)}`;
        render();
      });
    }
  });
  render();
  void runSearch();
  return {
    title: "Board",
    update(events) {
      // A session that changed may now match, or no longer.
      if (search.value.trim() && events.some((e) => e.sessionId || e.payload.case === "session")) searchSoon();
      render();
    },
  };
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
    session.pullRequest?.title ? h("div", { class: "pr-title" }, session.pullRequest.title) : null,
    h("div", { class: "activity muted" }, activity ? `${activity} · ` : "last activity ", when(lastActivity(session))),
  );
}
